//! What every WebSocket dialogue needs: time-limited writes, frames read as text, a keep-alive
//! that notices a dead peer, and a polite close.

use super::openai_translation::close_error;
use crate::session::{SEND_TIMEOUT, SessionError, Socket};
use futures_util::SinkExt;
use std::time::Duration;
use tokio::time::{Instant, Interval, MissedTickBehavior, timeout};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

/// Sends one frame, with a time limit: a stalled write means the peer is gone.
pub(super) async fn send_message(
    socket: &mut Socket,
    message: Message,
) -> Result<(), SessionError> {
    match timeout(SEND_TIMEOUT, socket.send(message)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(err)) => Err(SessionError::Connection(err.to_string())),
        Err(_) => Err(SessionError::Connection(format!(
            "sending stalled for {} s",
            SEND_TIMEOUT.as_secs()
        ))),
    }
}

/// Ends the connection with a normal close frame, not waiting long for the reply.
pub(super) async fn close_normally(socket: &mut Socket) {
    let goodbye = CloseFrame {
        code: CloseCode::Normal,
        reason: "".into(),
    };
    let _ = timeout(Duration::from_secs(1), socket.close(Some(goodbye))).await;
}

/// What one received frame holds.
pub(super) enum Frame {
    Text(String),
    /// Ping, pong, or a frame to warn about and skip.
    Skip(Option<String>),
}

/// Turns a received frame into text, or the error that ends the session.
pub(super) fn frame_text(
    frame: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>,
) -> Result<Frame, SessionError> {
    match frame {
        None => Err(SessionError::Connection("the connection ended".into())),
        Some(Err(err)) => Err(SessionError::Connection(err.to_string())),
        Some(Ok(Message::Text(text))) => Ok(Frame::Text(text.as_str().to_owned())),
        Some(Ok(Message::Binary(bytes))) => Ok(match std::str::from_utf8(&bytes) {
            Ok(text) => Frame::Text(text.to_owned()),
            Err(_) => Frame::Skip(Some("binary frame that is not UTF-8 JSON ignored".into())),
        }),
        Some(Ok(Message::Close(close))) => Err(close_error(close.as_ref())),
        Some(Ok(_)) => Ok(Frame::Skip(None)),
    }
}

/// Pings keep NATs open and prove the peer alive: a pong or any frame resets the deadline.
pub(super) struct Keepalive {
    timeout: Duration,
    pub(super) ticks: Interval,
    silent_until: Instant,
}

impl Keepalive {
    pub(super) fn new(timeout: Duration) -> Self {
        let mut ticks = tokio::time::interval(timeout / 3);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        Self {
            timeout,
            ticks,
            silent_until: Instant::now() + timeout,
        }
    }

    pub(super) fn heard(&mut self) {
        self.silent_until = Instant::now() + self.timeout;
    }

    /// On each tick: a ping, or the error when the peer has been silent too long.
    pub(super) async fn tick(&self, socket: &mut Socket) -> Result<(), SessionError> {
        if Instant::now() >= self.silent_until {
            return Err(SessionError::Connection(format!(
                "nothing from the server for {} ms (not even a pong): the connection is dead",
                self.timeout.as_millis()
            )));
        }
        send_message(socket, Message::Ping(Vec::new().into())).await
    }
}
