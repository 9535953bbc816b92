//! The dialogue of the GPT Translator realtime API (`docs/protocol/gpttranslator.md`): Socket.IO
//! over a WebSocket, the key in the URL, audio only once the service says `ready_for_audio`.
//!
//! Steps: Engine.IO handshake, join the namespace, `translation_start`, wait for `ready_for_audio`
//! (audio stays queued in the link meanwhile), stream 100 ms `audio_chunk`s, and at the close
//! `translation_stop`, wait for `translation_closed`, leave the namespace and close. The server
//! pings; the client answers and treats `pingInterval + pingTimeout` of silence as a dead link.
//!
//! The key travels in the URL, so every error and warning leaving this module is passed through
//! [`redact`]: neither the key nor any `apiKey=` value can reach a log or a message.

use crate::protocol::gpttranslator::{
    self, API_KEY_ENV, CHUNK_SAMPLES, ClientEvent, ServerEvent, Status, is_key_problem, redact,
    refusal_message,
};
use crate::protocol::socketio::{self, Complete, EnginePacket, Handshake, Packet, PacketType};
use crate::session_types::{Control, Endpoint, Link, SessionError, SessionEvent, SessionParams};
use crate::transport::{SEND_TIMEOUT, Socket, connect_url};
use futures_util::{SinkExt, StreamExt};
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::time::{Instant, sleep_until, timeout, timeout_at};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

/// How long the polite goodbye (leave frame, close handshake) may take before the socket is
/// simply dropped.
const GOODBYE_TIMEOUT: Duration = Duration::from_secs(1);

pub async fn converse(params: &SessionParams, link: &mut Link) -> Result<(), SessionError> {
    let Some(key) = params.api_key.clone() else {
        return Err(SessionError::Authentication(format!(
            "no API key: set the api-key property or {API_KEY_ENV}"
        )));
    };
    let secret = key.expose().to_owned();
    let on_event = link.on_event.clone();
    let report = move |event: SessionEvent| {
        on_event(match event {
            SessionEvent::Warning(text) => SessionEvent::Warning(redact(&text, &secret)),
            other => other,
        })
    };
    dialogue(params, link, &report)
        .await
        .map_err(|err| redact_error(err, key.expose()))
}

/// The same error with the key taken out of its text.
fn redact_error(err: SessionError, key: &str) -> SessionError {
    match err {
        SessionError::Authentication(why) => SessionError::Authentication(redact(&why, key)),
        SessionError::Refused(why) => SessionError::Refused(redact(&why, key)),
        SessionError::Expired(why) => SessionError::Expired(redact(&why, key)),
        SessionError::RateLimited(why) => SessionError::RateLimited(redact(&why, key)),
        SessionError::Connection(why) => SessionError::Connection(redact(&why, key)),
    }
}

/// What a refused namespace join means: a key problem cannot be fixed by retrying, nor can any
/// other refusal the service explains.
fn refusal(data: Option<&serde_json::Value>) -> SessionError {
    let message = refusal_message(data);
    if is_key_problem(&message) {
        SessionError::Authentication(format!(
            "the service refused the key (api-key property or {API_KEY_ENV}): {message}"
        ))
    } else {
        SessionError::Refused(format!("the service refused the connection: {message}"))
    }
}

/// One WebSocket frame, read as Engine.IO / Socket.IO.
enum Incoming {
    /// Nothing to act on: a pong, a noop, half of a binary event, another namespace.
    Nothing,
    Open(Handshake),
    Ping(String),
    /// A complete Socket.IO packet of our namespace.
    Packet(Complete),
    /// The server ended the Engine.IO session (`1`) or the socket.
    Closed(String),
    /// Not valid framing: reported, and the session goes on.
    Malformed(String),
}

/// The session's connection: the socket and the state of reading it.
struct Wire {
    socket: Socket,
    namespace: String,
    reassembly: socketio::Reassembly,
}

impl Wire {
    fn read(&mut self, frame: Message) -> Incoming {
        let text = match frame {
            Message::Text(text) => text,
            Message::Binary(bytes) => {
                return match self.reassembly.binary(bytes.to_vec()) {
                    Ok(Some(complete)) => self.ours(complete),
                    Ok(None) => Incoming::Nothing,
                    Err(err) => Incoming::Malformed(err.to_string()),
                };
            }
            Message::Close(frame) => {
                return Incoming::Closed(match frame {
                    Some(frame) => format!(
                        "the server closed the connection (code {} {})",
                        u16::from(frame.code),
                        frame.reason
                    ),
                    None => "the server closed the connection".into(),
                });
            }
            _ => return Incoming::Nothing,
        };
        match socketio::parse_engine(&text) {
            Err(err) => Incoming::Malformed(err.to_string()),
            Ok(EnginePacket::Open(handshake)) => Incoming::Open(handshake),
            Ok(EnginePacket::Ping(payload)) => Incoming::Ping(payload.to_owned()),
            Ok(EnginePacket::Close) => {
                Incoming::Closed("the server ended the Engine.IO session".into())
            }
            Ok(EnginePacket::Pong(_) | EnginePacket::Upgrade | EnginePacket::Noop) => {
                Incoming::Nothing
            }
            Ok(EnginePacket::Message(inner)) => match Packet::parse(inner) {
                Err(err) => Incoming::Malformed(err.to_string()),
                Ok(packet) => match self.reassembly.text(packet) {
                    (_, Some(abandoned)) => Incoming::Malformed(abandoned.to_string()),
                    (Some(complete), None) => self.ours(complete),
                    (None, None) => Incoming::Nothing,
                },
            },
        }
    }

    fn ours(&self, complete: Complete) -> Incoming {
        if complete.packet.namespace == self.namespace {
            Incoming::Packet(complete)
        } else {
            Incoming::Nothing
        }
    }

    async fn send(&mut self, frame: String) -> Result<(), SessionError> {
        match timeout(SEND_TIMEOUT, self.socket.send(Message::text(frame))).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(err)) => Err(SessionError::Connection(err.to_string())),
            Err(_) => Err(SessionError::Connection(format!(
                "sending stalled for {} s",
                SEND_TIMEOUT.as_secs()
            ))),
        }
    }

    async fn emit(&mut self, event: ClientEvent<'_>) -> Result<(), SessionError> {
        let frame = event.frame(&self.namespace);
        self.send(frame).await
    }

    /// Leaves the namespace and closes the socket, giving up quietly if the peer is gone.
    async fn goodbye(&mut self) {
        let leave = socketio::disconnect(&self.namespace);
        let _ = timeout(GOODBYE_TIMEOUT, self.socket.send(Message::text(leave))).await;
        let normal = CloseFrame {
            code: CloseCode::Normal,
            reason: "".into(),
        };
        let _ = timeout(GOODBYE_TIMEOUT, self.socket.close(Some(normal))).await;
    }

    /// The next frame before `deadline`, for the setup steps.
    async fn next_before(
        &mut self,
        deadline: Instant,
        step: &str,
    ) -> Result<Message, SessionError> {
        match timeout_at(deadline, self.socket.next()).await {
            Err(_) => Err(SessionError::Connection(format!(
                "no {step} from the server in time"
            ))),
            Ok(None) => Err(SessionError::Connection(format!(
                "the connection ended before the {step}"
            ))),
            Ok(Some(Err(err))) => Err(SessionError::Connection(err.to_string())),
            Ok(Some(Ok(frame))) => Ok(frame),
        }
    }
}

/// Sends 24 kHz samples as ~100 ms `audio_chunk`s.
async fn send_audio(wire: &mut Wire, link: &Link, samples: &[i16]) -> Result<(), SessionError> {
    for chunk in samples.chunks(CHUNK_SAMPLES) {
        wire.emit(ClientEvent::AudioChunk(chunk)).await?;
        link.counters
            .samples_sent
            .fetch_add(chunk.len() as u64, Ordering::Relaxed);
    }
    Ok(())
}

/// Connects, joins the namespace and returns the wire with the server's handshake.
async fn open(params: &SessionParams) -> Result<(Wire, Handshake, String), SessionError> {
    let Endpoint::Remote { url, .. } = &params.endpoint else {
        return Err(SessionError::Refused(
            "the gpttranslator backend needs the service's URL".into(),
        ));
    };
    let key = params
        .api_key
        .as_ref()
        .map(|key| key.expose())
        .unwrap_or_default();
    let target = gpttranslator::connection_target(url, key).map_err(SessionError::Refused)?;
    let deadline = Instant::now() + params.connect_timeout;
    let socket = connect_url(params, &target.url, false).await?;
    let mut wire = Wire {
        socket,
        namespace: target.namespace,
        reassembly: socketio::Reassembly::default(),
    };
    let handshake = loop {
        let frame = wire.next_before(deadline, "Engine.IO handshake").await?;
        match wire.read(frame) {
            Incoming::Open(handshake) => break handshake,
            Incoming::Closed(why) => return Err(SessionError::Connection(why)),
            Incoming::Malformed(why) => {
                return Err(SessionError::Connection(format!(
                    "not an Engine.IO server: {why}"
                )));
            }
            _ => {}
        }
    };
    let join = socketio::connect(&wire.namespace);
    wire.send(join).await?;
    let sid = loop {
        let frame = wire
            .next_before(deadline, "answer to the namespace join")
            .await?;
        match wire.read(frame) {
            Incoming::Ping(payload) => wire.send(socketio::pong(&payload)).await?,
            Incoming::Closed(why) => return Err(SessionError::Connection(why)),
            Incoming::Packet(Complete { packet, .. }) => match packet.kind {
                PacketType::Connect => {
                    break packet
                        .data
                        .as_ref()
                        .and_then(|data| data.get("sid"))
                        .and_then(|sid| sid.as_str())
                        .unwrap_or(&handshake.sid)
                        .to_owned();
                }
                PacketType::ConnectError | PacketType::Disconnect => {
                    wire.goodbye().await;
                    return Err(refusal(packet.data.as_ref()));
                }
                _ => {}
            },
            _ => {}
        }
    };
    Ok((wire, handshake, sid))
}

async fn dialogue(
    params: &SessionParams,
    link: &mut Link,
    report: &(dyn Fn(SessionEvent) + Send + Sync),
) -> Result<(), SessionError> {
    let (mut wire, handshake, sid) = open(params).await?;
    report(SessionEvent::Connected {
        session_id: sid,
        expires_at: None,
    });
    let language = params.config.target_language.clone();
    wire.emit(ClientEvent::Start {
        target_language: &language,
    })
    .await?;

    let silence_limit = handshake.silence_limit();
    let mut silent_until = Instant::now() + silence_limit;
    // The service sets up a model session before it takes audio; it gets the connect time for it.
    let ready_by = Instant::now() + params.connect_timeout;
    let mut ready = false;
    let mut close_requested = false;
    let mut stop_sent = false;
    let mut drain_deadline: Option<Instant> = None;
    let mut control_open = true;
    let mut audio_open = true;
    loop {
        // Once closing was asked for and the service takes audio: everything queued, then stop.
        if close_requested && ready && !stop_sent {
            while let Ok(chunk) = link.audio.try_recv() {
                send_audio(&mut wire, link, &chunk).await?;
            }
            link.audio.close();
            wire.emit(ClientEvent::Stop).await?;
            stop_sent = true;
        }
        let drain = drain_deadline;
        tokio::select! {
            biased;
            frame = wire.socket.next() => {
                let frame = match frame {
                    None => return Err(SessionError::Connection("the connection ended".into())),
                    Some(Err(err)) => return Err(SessionError::Connection(err.to_string())),
                    Some(Ok(frame)) => frame,
                };
                silent_until = Instant::now() + silence_limit;
                let complete = match wire.read(frame) {
                    Incoming::Nothing | Incoming::Open(_) => continue,
                    Incoming::Ping(payload) => {
                        wire.send(socketio::pong(&payload)).await?;
                        continue;
                    }
                    Incoming::Malformed(why) => {
                        report(SessionEvent::Warning(format!("unreadable frame from the service: {why}")));
                        continue;
                    }
                    Incoming::Closed(why) if stop_sent => {
                        report(SessionEvent::Warning(format!("{why} before translation_closed")));
                        return Ok(());
                    }
                    Incoming::Closed(why) => return Err(SessionError::Connection(why)),
                    Incoming::Packet(complete) => complete,
                };
                let packet = &complete.packet;
                match packet.kind {
                    PacketType::Disconnect if stop_sent => return Ok(()),
                    PacketType::Disconnect => {
                        let _ = timeout(GOODBYE_TIMEOUT, wire.socket.close(None)).await;
                        return Err(SessionError::Connection(
                            "the service ended the session (left the namespace)".into(),
                        ));
                    }
                    PacketType::ConnectError => {
                        wire.goodbye().await;
                        return Err(refusal(packet.data.as_ref()));
                    }
                    _ => {}
                }
                let Some((name, args)) = packet.event() else { continue };
                if let Some(id) = packet.id {
                    wire.send(socketio::ack(&wire.namespace, id)).await?;
                }
                match ServerEvent::parse(name, args, &complete.attachments) {
                    Err(err) => report(SessionEvent::Warning(format!("`{name}` from the service: {err}"))),
                    Ok(ServerEvent::Status(Status::ReadyForAudio)) => ready = true,
                    Ok(ServerEvent::Status(_) | ServerEvent::Unknown(_)) => {}
                    Ok(ServerEvent::OutputAudio { samples, sample_rate }) => {
                        link.counters.samples_received.fetch_add(samples.len() as u64, Ordering::Relaxed);
                        report(SessionEvent::OutputAudio { samples, sample_rate, channels: 1 });
                    }
                    Ok(ServerEvent::OutputTranscript(delta)) => report(SessionEvent::OutputTranscript(delta)),
                    Ok(ServerEvent::InputTranscript(delta)) => report(SessionEvent::InputTranscript(delta)),
                    Ok(ServerEvent::TranslationError(message)) => {
                        report(SessionEvent::Warning(format!("translation error from the service: {message}")));
                    }
                    Ok(ServerEvent::InsufficientTokens { message, remaining_tokens }) => {
                        wire.goodbye().await;
                        let remaining = remaining_tokens
                            .map(|n| format!(" ({n} tokens left)"))
                            .unwrap_or_default();
                        return Err(SessionError::Refused(format!(
                            "the account has run out of tokens: {message}{remaining}; top up the \
                             GPT Translator balance"
                        )));
                    }
                    Ok(ServerEvent::Closed) if stop_sent => {
                        wire.goodbye().await;
                        return Ok(());
                    }
                    Ok(ServerEvent::Closed) => {
                        wire.goodbye().await;
                        return Err(SessionError::Connection(
                            "the service closed the translation unasked".into(),
                        ));
                    }
                }
            }
            command = link.control.recv(), if control_open => match command {
                None => control_open = false,
                Some(Control::Update(config)) => {
                    if config.target_language != language {
                        report(SessionEvent::Warning(format!(
                            "the GPT Translator service takes the target language once per \
                             session: '{}' applies from the next session, this one stays in '{language}'",
                            config.target_language
                        )));
                    }
                }
                Some(Control::Close) => {
                    close_requested = true;
                    control_open = false;
                    drain_deadline = Some(Instant::now() + params.drain_timeout);
                }
            },
            chunk = link.audio.recv(), if ready && !close_requested && audio_open => match chunk {
                None => audio_open = false,
                Some(chunk) => send_audio(&mut wire, link, &chunk).await?,
            },
            _ = sleep_until(silent_until) => {
                return Err(SessionError::Connection(format!(
                    "nothing from the server for {} ms (pingInterval + pingTimeout): the \
                     connection is dead",
                    silence_limit.as_millis()
                )));
            }
            _ = sleep_until(ready_by), if !ready => {
                wire.goodbye().await;
                return Err(SessionError::Connection(format!(
                    "the service did not become ready for audio within {} ms",
                    params.connect_timeout.as_millis()
                )));
            }
            _ = sleep_until(drain.unwrap_or_else(Instant::now)), if drain.is_some() => {
                // Not a clean end: what it had not answered is sent again or counted.
                wire.goodbye().await;
                return Err(SessionError::Connection(format!(
                    "no translation_closed within {} ms of the end of the input",
                    params.drain_timeout.as_millis()
                )));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn refusals_are_classified() {
        assert!(matches!(
            refusal(Some(&json!({"message": "Invalid API key"}))),
            SessionError::Authentication(why) if why.contains(API_KEY_ENV)
        ));
        assert!(matches!(
            refusal(Some(&json!("Unable to connect"))),
            SessionError::Refused(_)
        ));
    }

    #[test]
    fn errors_lose_the_key() {
        let err = SessionError::Connection("ws://h/socket.io/?apiKey=s3cr3t-key&EIO=4".into());
        assert_eq!(
            redact_error(err, "s3cr3t-key"),
            SessionError::Connection("ws://h/socket.io/?apiKey=<redacted>&EIO=4".into())
        );
    }
}
