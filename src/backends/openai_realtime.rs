//! The general OpenAI Realtime model (`/v1/realtime?model=…`) driven as a simultaneous
//! interpreter (`docs/protocol/realtime-interpreter.md`).
//!
//! It is turn based: server VAD ends a turn after 500 ms of silence and the model answers that
//! turn with translated speech, so translations arrive after each pause rather than while the
//! speaker talks. `interrupt_response` stays false so the next sentence never cuts off the
//! translation of the previous one. With that setting a turn that ends while a response is still
//! playing gets no response of its own (the service refuses with
//! `conversation_already_has_active_response`), so [`Turns`] counts committed turns against
//! answered ones and asks for a response to the leftovers when the active one is done.
//!
//! The API has no `session.close`: at the end the backend lets the VAD events of the last audio
//! arrive, commits a turn still being spoken, waits until every turn is answered and transcribed
//! (or the drain time runs out), then closes the socket.

use super::openai_translation::error_event_outcome;
use super::websocket::{Keepalive, close_normally, send_message};
use crate::protocol::realtime::{
    ClientEvent, InterpreterSession, ServerEvent, interpreter_instructions,
};
use crate::protocol::translation::{SAMPLE_RATE, SessionConfig};
use crate::session_types::{
    Control, Endpoint, Link, SessionError, SessionEvent, SessionParams, url_with_model,
};
use crate::transport::{Socket, connect_url};
use futures_util::StreamExt;
use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::time::{Instant, timeout};
use tokio_tungstenite::tungstenite::Message;

/// Error codes that only say a request of ours crossed the server's own turn handling (it had
/// just committed or answered by itself): expected, not worth a warning.
const RACE_ERROR_CODES: [&str; 3] = [
    "conversation_already_has_active_response",
    "input_audio_buffer_commit_empty",
    "response_cancel_not_active",
];

/// The URL of a remote endpoint; the Realtime API has no local engine.
pub(super) fn remote_url(params: &SessionParams) -> Result<String, SessionError> {
    match &params.endpoint {
        Endpoint::Remote { url, model } => Ok(url_with_model(url, model)),
        Endpoint::Local { .. } => Err(SessionError::Refused(
            "the local engine speaks only the translation protocol".into(),
        )),
    }
}

/// Sends one text frame, with a time limit: a stalled write means the peer is gone.
pub(super) async fn send(socket: &mut Socket, event: &ClientEvent) -> Result<(), SessionError> {
    send_message(socket, Message::text(event.to_json())).await
}

/// What an `error` event means: `Err` ends the session, `Ok(Some)` is a warning to show.
pub(super) fn classify_error(
    err: &crate::protocol::translation::ServiceError,
) -> Result<Option<String>, SessionError> {
    if let Some(outcome) = error_event_outcome(err) {
        return Err(outcome);
    }
    if err
        .code
        .as_deref()
        .is_some_and(|code| RACE_ERROR_CODES.contains(&code))
    {
        return Ok(None);
    }
    Ok(Some(format!("service error: {err}")))
}

/// Joins the text of consecutive items (turns, responses) with a space: fragments within an item
/// are concatenated as they come, but separate items are separate sentences.
#[derive(Debug, Default)]
pub(super) struct ItemText {
    current: Option<String>,
    said_anything: bool,
}

impl ItemText {
    /// The fragment as it should be appended to everything said before.
    pub(super) fn fragment(&mut self, item: &str, text: &str) -> Option<String> {
        if text.is_empty() {
            return None;
        }
        let new_item = self.current.as_deref() != Some(item);
        self.current = Some(item.to_owned());
        let separate = new_item && self.said_anything && !text.starts_with(char::is_whitespace);
        self.said_anything = true;
        Some(if separate {
            format!(" {text}")
        } else {
            text.to_owned()
        })
    }
}

/// Source transcripts of input items: deltas as they come; a `completed` only for items that had
/// no deltas (non-streaming transcription models send just that), so nothing is said twice.
#[derive(Debug, Default)]
pub(super) struct InputTranscripts {
    /// Items whose transcript is still expected.
    pub(super) pending: HashSet<String>,
    streamed: HashSet<String>,
    text: ItemText,
}

impl InputTranscripts {
    pub(super) fn expect(&mut self, item: &str) {
        self.pending.insert(item.to_owned());
    }

    pub(super) fn delta(&mut self, item: &str, delta: &str) -> Option<String> {
        self.streamed.insert(item.to_owned());
        self.text.fragment(item, delta)
    }

    pub(super) fn completed(&mut self, item: &str, transcript: &str) -> Option<String> {
        self.pending.remove(item);
        if self.streamed.remove(item) {
            return None;
        }
        self.text.fragment(item, transcript)
    }

    pub(super) fn failed(&mut self, item: &str) {
        self.pending.remove(item);
        self.streamed.remove(item);
    }
}

/// The turn bookkeeping of the conversation: which turns are spoken, committed, answered.
#[derive(Debug, Default)]
struct Turns {
    /// Between `speech_started` and `speech_stopped`.
    speaking: bool,
    /// A turn ended (VAD stop or our commit) and its `committed` has not arrived yet.
    commit_pending: bool,
    /// Turns committed so far.
    committed: u64,
    /// Turns covered by the responses created so far (a response answers every turn committed
    /// before it started).
    answered: u64,
    response_active: bool,
    /// We sent `response.create` and neither `response.created` nor a refusal came back yet.
    response_requested: bool,
}

impl Turns {
    /// Whether to send `response.create`: turns wait and nothing is answering them.
    fn needs_response(&self) -> bool {
        !self.response_active && !self.response_requested && self.committed > self.answered
    }

    /// Nothing is said, committed, or being answered: the session may end.
    fn settled(&self) -> bool {
        !self.speaking
            && !self.commit_pending
            && !self.response_active
            && !self.response_requested
            && self.committed <= self.answered
    }
}

/// How long the end of the input waits at least, so that VAD events about the last audio sent
/// (a turn that just started) reach us before we decide nothing is left to answer.
const CLOSE_LINGER: Duration = Duration::from_millis(300);

fn interpreter_session(config: &SessionConfig, voice: &str) -> ClientEvent {
    ClientEvent::Interpreter(InterpreterSession {
        instructions: interpreter_instructions(&config.target_language),
        voice: voice.to_owned(),
        transcription_model: config.transcription.as_ref().map(|t| t.model.clone()),
        noise_reduction: config.noise_reduction.clone(),
    })
}

pub async fn converse(
    params: &SessionParams,
    voice: &str,
    link: &mut Link,
) -> Result<(), SessionError> {
    let on_event = &*link.on_event.clone();
    let counters = link.counters.clone();
    let url = remote_url(params)?;
    let mut socket = connect_url(params, &url, true).await?;
    send(&mut socket, &interpreter_session(&params.config, voice)).await?;
    let mut turns = Turns::default();
    let mut transcripts = InputTranscripts::default();
    let mut transcribing = params.config.transcription.is_some();
    let mut output_text = ItemText::default();
    let mut current_response = String::new();
    let mut drain_deadline: Option<Instant> = None;
    let mut linger_until: Option<Instant> = None;
    let mut control_open = true;
    let mut audio_open = true;
    let mut keepalive = Keepalive::new(params.keepalive_timeout);
    loop {
        if drain_deadline.is_some() {
            if turns.needs_response() && !turns.commit_pending {
                send(&mut socket, &ClientEvent::CreateResponse).await?;
                turns.response_requested = true;
            }
            if linger_until.is_none() && turns.settled() && transcripts.pending.is_empty() {
                close_normally(&mut socket).await;
                return Ok(());
            }
        }
        let deadline = drain_deadline;
        let linger = linger_until;
        tokio::select! {
            biased;
            frame = socket.next() => {
                let Some(text) = keepalive.received(frame, on_event)? else {
                    continue;
                };
                match ServerEvent::parse(&text) {
                    Err(err) => on_event(SessionEvent::Warning(err.to_string())),
                    Ok(ServerEvent::Created(info)) => on_event(SessionEvent::Connected {
                        session_id: info.id,
                        expires_at: info.expires_at,
                    }),
                    Ok(ServerEvent::Updated(_) | ServerEvent::Unknown(_)) => {}
                    Ok(ServerEvent::OutputAudio(samples)) => {
                        counters.samples_received.fetch_add(samples.len() as u64, Ordering::Relaxed);
                        on_event(SessionEvent::OutputAudio { samples, sample_rate: SAMPLE_RATE, channels: 1 });
                    }
                    Ok(ServerEvent::OutputTranscript(delta)) => {
                        if let Some(text) = output_text.fragment(&current_response, &delta) {
                            on_event(SessionEvent::OutputTranscript(text));
                        }
                    }
                    Ok(ServerEvent::InputTranscriptDelta { item_id, delta }) => {
                        if let Some(text) = transcripts.delta(&item_id, &delta) {
                            on_event(SessionEvent::InputTranscript(text));
                        }
                    }
                    Ok(ServerEvent::InputTranscriptCompleted { item_id, transcript }) => {
                        if let Some(text) = transcripts.completed(&item_id, &transcript) {
                            on_event(SessionEvent::InputTranscript(text));
                        }
                    }
                    Ok(ServerEvent::InputTranscriptFailed { item_id }) => {
                        transcripts.failed(&item_id);
                        on_event(SessionEvent::Warning(format!("transcription of {item_id} failed")));
                    }
                    Ok(ServerEvent::SpeechStarted) => turns.speaking = true,
                    Ok(ServerEvent::SpeechStopped) => {
                        turns.speaking = false;
                        turns.commit_pending = true;
                    }
                    Ok(ServerEvent::Committed { item_id }) => {
                        turns.commit_pending = false;
                        turns.committed += 1;
                        if transcribing {
                            transcripts.expect(&item_id);
                        }
                    }
                    Ok(ServerEvent::ResponseCreated { response_id }) => {
                        turns.response_active = true;
                        turns.response_requested = false;
                        turns.answered = turns.committed;
                        current_response = response_id;
                    }
                    Ok(ServerEvent::ResponseDone { .. }) => {
                        turns.response_active = false;
                        if turns.needs_response() {
                            send(&mut socket, &ClientEvent::CreateResponse).await?;
                            turns.response_requested = true;
                        }
                    }
                    Ok(ServerEvent::Error(err)) => {
                        match err.code.as_deref() {
                            // Our closing commit found the buffer already committed by VAD.
                            Some("input_audio_buffer_commit_empty") => turns.commit_pending = false,
                            // Our request crossed a response the server started by itself.
                            Some("conversation_already_has_active_response") => {
                                turns.response_requested = false
                            }
                            _ => {}
                        }
                        match classify_error(&err) {
                            Err(outcome) => {
                                let _ = timeout(Duration::from_secs(1), socket.close(None)).await;
                                return Err(outcome);
                            }
                            Ok(Some(warning)) => on_event(SessionEvent::Warning(warning)),
                            Ok(None) => {}
                        }
                    }
                }
            }
            command = link.control.recv(), if control_open => match command {
                None => control_open = false,
                Some(Control::Update(config)) => {
                    transcribing = config.transcription.is_some();
                    send(&mut socket, &interpreter_session(&config, voice)).await?;
                }
                Some(Control::Close) => {
                    // Everything queued before the close goes out first.
                    while let Ok(chunk) = link.audio.try_recv() {
                        counters.samples_sent.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                        send(&mut socket, &ClientEvent::Append(chunk)).await?;
                    }
                    link.audio.close();
                    control_open = false;
                    let now = Instant::now();
                    drain_deadline = Some(now + params.drain_timeout);
                    linger_until = Some(now + CLOSE_LINGER.min(params.drain_timeout));
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
            _ = tokio::time::sleep_until(linger.unwrap_or_else(Instant::now)), if linger.is_some() => {
                linger_until = None;
                // The VAD events for the last audio have had time to arrive: a turn still being
                // spoken would wait for a pause that never comes.
                if turns.speaking {
                    send(&mut socket, &ClientEvent::Commit).await?;
                    turns.speaking = false;
                    turns.commit_pending = true;
                }
            }
            _ = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {
                // Not a clean end: what it had not answered is sent again or counted.
                close_normally(&mut socket).await;
                return Err(SessionError::Connection(format!(
                    "turns still unanswered {} ms after the end of the input",
                    params.drain_timeout.as_millis()
                )));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_are_separate_sentences_fragments_are_not() {
        let mut text = ItemText::default();
        assert_eq!(text.fragment("a", "Hola"), Some("Hola".into()));
        assert_eq!(text.fragment("a", ", amigo."), Some(", amigo.".into()));
        assert_eq!(text.fragment("b", "Adiós."), Some(" Adiós.".into()));
        assert_eq!(text.fragment("c", " Ya."), Some(" Ya.".into()));
        assert_eq!(text.fragment("d", ""), None);
    }

    #[test]
    fn completed_adds_nothing_after_deltas_and_everything_without() {
        let mut t = InputTranscripts::default();
        t.expect("i1");
        t.expect("i2");
        assert_eq!(t.delta("i1", "Good "), Some("Good ".into()));
        assert_eq!(t.delta("i1", "morning."), Some("morning.".into()));
        assert_eq!(t.completed("i1", "Good morning."), None);
        assert_eq!(
            t.completed("i2", "How are you?"),
            Some(" How are you?".into())
        );
        assert!(t.pending.is_empty());
        t.expect("i3");
        t.failed("i3");
        assert!(t.pending.is_empty());
    }

    #[test]
    fn a_turn_refused_during_a_response_is_answered_after_it() {
        let mut turns = Turns::default();
        assert!(turns.settled());
        turns.speaking = true;
        assert!(!turns.settled());
        turns.speaking = false;
        turns.commit_pending = true;
        turns.commit_pending = false;
        turns.committed = 1;
        assert!(turns.needs_response());
        turns.response_active = true;
        turns.answered = 1;
        // A second turn ends while the first is being answered: refused by the server.
        turns.committed = 2;
        assert!(!turns.needs_response());
        turns.response_active = false;
        assert!(turns.needs_response(), "the leftover turn needs a response");
        assert!(!turns.settled());
        turns.response_requested = true;
        assert!(!turns.needs_response() && !turns.settled());
        turns.response_requested = false;
        turns.response_active = true;
        turns.answered = 2;
        turns.response_active = false;
        assert!(turns.settled());
    }

    #[test]
    fn race_errors_are_silent_fatal_ones_end_the_session() {
        let err = |code: &str| crate::protocol::translation::ServiceError {
            kind: "invalid_request_error".into(),
            code: Some(code.into()),
            ..Default::default()
        };
        assert_eq!(
            classify_error(&err("conversation_already_has_active_response")),
            Ok(None)
        );
        assert!(matches!(classify_error(&err("invalid_value")), Ok(Some(_))));
        assert!(matches!(
            classify_error(&err("invalid_api_key")),
            Err(SessionError::Authentication(_))
        ));
        assert!(matches!(
            classify_error(&err("session_expired")),
            Err(SessionError::Expired(_))
        ));
    }
}
