//! The dialogue of the OpenAI realtime translation protocol (`docs/protocol/translation.md`), which
//! the local engine speaks too.

use super::websocket::{Keepalive, close_normally, send_message};
use crate::protocol::translation::{ClientEvent, SAMPLE_RATE, ServerEvent, ServiceError};
use crate::session_types::{Control, Link, SessionError, SessionEvent, SessionParams};
use crate::transport::{Socket, connect};
use futures_util::StreamExt;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::time::{Instant, timeout, timeout_at};
use tokio_tungstenite::tungstenite::Message;

/// What an `error` event means for the session: `None` when it can go on.
pub fn error_event_outcome(err: &ServiceError) -> Option<SessionError> {
    let text = err.to_string();
    if err.code.as_deref() == Some("invalid_api_key") || err.kind == "authentication_error" {
        Some(SessionError::Authentication(text))
    } else if err.is_fatal() {
        Some(SessionError::Refused(text))
    } else if err.is_session_expired() {
        Some(SessionError::Expired(text))
    } else if err.code.as_deref() == Some("rate_limit_exceeded") || err.kind == "rate_limit_error" {
        Some(SessionError::RateLimited(text))
    } else {
        // server_error and request errors are reported; a close follows if the service gives up.
        None
    }
}

async fn send(socket: &mut Socket, event: &ClientEvent) -> Result<(), SessionError> {
    send_message(socket, Message::text(event.to_json())).await
}

pub async fn converse(params: &SessionParams, link: &mut Link) -> Result<(), SessionError> {
    let on_event = &*link.on_event.clone();
    let counters = link.counters.clone();
    let mut socket = connect(params).await?;
    send(&mut socket, &ClientEvent::Update(params.config.clone())).await?;
    let mut drain_deadline: Option<Instant> = None;
    let mut control_open = true;
    let mut audio_open = true;
    let mut keepalive = Keepalive::new(params.keepalive_timeout);
    loop {
        let deadline = drain_deadline;
        tokio::select! {
            biased;
            frame = socket.next() => {
                let Some(text) = keepalive.received(frame, on_event)? else {
                    continue;
                };
                let event = ServerEvent::parse_timed(&text).map(|(event, elapsed_ms)| {
                    let is_output = matches!(
                        event,
                        ServerEvent::InputTranscript { .. }
                            | ServerEvent::OutputTranscript { .. }
                            | ServerEvent::OutputAudio { .. }
                    );
                    if let Some(ms) = elapsed_ms.filter(|_| is_output) {
                        let input_samples = ms.saturating_mul(u64::from(SAMPLE_RATE)) / 1000;
                        on_event(SessionEvent::Progress { input_samples });
                    }
                    event
                });
                match event {
                    Err(err) => on_event(SessionEvent::Warning(err.to_string())),
                    Ok(ServerEvent::Created(info)) => on_event(SessionEvent::Connected {
                        session_id: info.id,
                        expires_at: info.expires_at,
                    }),
                    Ok(ServerEvent::Updated(_) | ServerEvent::Unknown(_)) => {}
                    Ok(ServerEvent::InputTranscript { delta }) => on_event(SessionEvent::InputTranscript(delta)),
                    Ok(ServerEvent::OutputTranscript { delta }) => on_event(SessionEvent::OutputTranscript(delta)),
                    Ok(ServerEvent::OutputAudio { samples, sample_rate, channels }) => {
                        counters.samples_received.fetch_add(samples.len() as u64 / channels as u64, Ordering::Relaxed);
                        on_event(SessionEvent::OutputAudio { samples, sample_rate, channels });
                    }
                    Ok(ServerEvent::Error(err)) => match error_event_outcome(&err) {
                        Some(outcome) => {
                            let _ = timeout(Duration::from_secs(1), socket.close(None)).await;
                            return Err(outcome);
                        }
                        None => on_event(SessionEvent::Warning(format!("service error: {err}"))),
                    },
                    Ok(ServerEvent::Closed) => {
                        close_normally(&mut socket).await;
                        return Ok(());
                    }
                }
            }
            command = link.control.recv(), if control_open => match command {
                None => control_open = false,
                Some(Control::Update(config)) => send(&mut socket, &ClientEvent::Update(config)).await?,
                Some(Control::Close) => {
                    // Everything queued before the close goes out first.
                    while let Ok(chunk) = link.audio.try_recv() {
                        counters.samples_sent.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                        send(&mut socket, &ClientEvent::Append(chunk)).await?;
                    }
                    link.audio.close();
                    send(&mut socket, &ClientEvent::Close).await?;
                    drain_deadline = Some(Instant::now() + params.drain_timeout);
                    control_open = false;
                }
            },
            chunk = link.audio.recv(), if audio_open && drain_deadline.is_none() => match chunk {
                None => audio_open = false,
                Some(chunk) => {
                    counters.samples_sent.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                    send(&mut socket, &ClientEvent::Append(chunk)).await?;
                }
            },
            _ = keepalive.ticks.tick() => keepalive.tick(&mut socket).await?,
            _ = async { timeout_at(deadline.unwrap_or_else(Instant::now), std::future::pending::<()>()).await }, if deadline.is_some() => {
                // Not a clean end: what it had not answered is sent again or counted.
                let _ = timeout(Duration::from_secs(1), socket.close(None)).await;
                return Err(SessionError::Connection(format!(
                    "no session.closed within {} ms of session.close",
                    params.drain_timeout.as_millis()
                )));
            }
        }
    }
}
