//! What every WebSocket dialogue needs: time-limited writes, frames read as text, a keep-alive
//! that notices a dead peer, and a polite close.

use crate::session_types::{SessionError, SessionEvent};
use crate::transport::{SEND_TIMEOUT, Socket};
use futures_util::SinkExt;
use std::time::Duration;
use tokio::time::{Instant, Interval, MissedTickBehavior, timeout};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

/// Close codes after which a new connection may work (the Python SDK's list).
const RECOVERABLE_CLOSE_CODES: [u16; 7] = [1001, 1005, 1006, 1011, 1012, 1013, 1015];

/// Classifies a close frame; `<error.type>.<error.code>` reasons are how the service says why.
pub fn close_error(frame: Option<&CloseFrame>) -> SessionError {
    let Some(frame) = frame else {
        return SessionError::Connection("the server closed the connection".into());
    };
    let reason = frame.reason.as_str();
    let code = u16::from(frame.code);
    let text = format!("close code {code} {reason}");
    if reason.contains("invalid_api_key") || reason.starts_with("authentication") {
        SessionError::Authentication(text)
    } else if reason.contains("insufficient_quota") || reason.starts_with("permission") {
        SessionError::Refused(text)
    } else if reason.contains("session_expired") {
        SessionError::Expired(text)
    } else if reason.contains("rate_limit") {
        SessionError::RateLimited(text)
    } else if reason.starts_with("invalid_request_error")
        && !RECOVERABLE_CLOSE_CODES.contains(&code)
    {
        SessionError::Refused(text)
    } else {
        // A normal or unexplained close mid-session: the service went away, try again.
        SessionError::Connection(text)
    }
}

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

/// Turns a received frame into text, or the error that ends the session; `Ok(None)` for a frame
/// to skip (ping, pong, or one to warn about: the warning is reported).
fn frame_text(
    frame: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>,
    on_event: &(dyn Fn(SessionEvent) + Send + Sync),
) -> Result<Option<String>, SessionError> {
    match frame {
        None => Err(SessionError::Connection("the connection ended".into())),
        Some(Err(err)) => Err(SessionError::Connection(err.to_string())),
        Some(Ok(Message::Text(text))) => Ok(Some(text.as_str().to_owned())),
        Some(Ok(Message::Binary(bytes))) => match std::str::from_utf8(&bytes) {
            Ok(text) => Ok(Some(text.to_owned())),
            Err(_) => {
                on_event(SessionEvent::Warning(
                    "binary frame that is not UTF-8 JSON ignored".into(),
                ));
                Ok(None)
            }
        },
        Some(Ok(Message::Close(close))) => Err(close_error(close.as_ref())),
        Some(Ok(_)) => Ok(None),
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

    fn heard(&mut self) {
        self.silent_until = Instant::now() + self.timeout;
    }

    /// A frame from the peer, which proves it alive, as text (see [`frame_text`]).
    pub(super) fn received(
        &mut self,
        frame: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>,
        on_event: &(dyn Fn(SessionEvent) + Send + Sync),
    ) -> Result<Option<String>, SessionError> {
        let text = frame_text(frame, on_event)?;
        self.heard();
        Ok(text)
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
