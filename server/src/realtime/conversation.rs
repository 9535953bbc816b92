//! A Realtime conversation session that behaves, at the protocol level, like the live model
//! prompted as an interpreter (`docs/protocol/realtime-interpreter.md`), with deterministic
//! "translations".
//!
//! Contract (the element's tests rely on it):
//! - server VAD ([`super::vad`]) on the received audio, with the session's `turn_detection`
//!   settings: `input_audio_buffer.speech_started` at the first voiced frame,
//!   `speech_stopped` after `silence_duration_ms` of silence, then the turn is committed
//!   (`input_audio_buffer.committed`, `conversation.item.added`);
//! - with input transcription on, committed turn `n` with voiced span `D` ms is transcribed as
//!   the deltas `"utterance {n} "`, `"of {D} ms."` and the `completed` transcript
//!   `"utterance {n} of {D} ms."`, arriving 50, 100 and 150 ms after the commit;
//! - with `create_response`, the end of a turn starts response `r`, which answers every turn
//!   committed and not answered yet (`D` = the sum of their spans): `response.created`, the
//!   transcript deltas `"Traducción {r} "` and `"de {D} ms."`, and `D` ms of a 440 Hz tone of
//!   amplitude 8000 in 200 ms `response.output_audio.delta`s sent every 100 ms (twice real
//!   time), then the `.done` events and `response.done`;
//! - a turn that ends while a response is in progress gets the error
//!   `conversation_already_has_active_response` and no response of its own (its audio joins the
//!   next response); with `interrupt_response`, speech starting during a response cancels it
//!   (`response.done` with status `cancelled`);
//! - `input_audio_buffer.commit` commits by hand (at least 100 ms of audio, else
//!   `input_audio_buffer_commit_empty`) and `response.create` starts a response when none is in
//!   progress.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::time::Instant;

use super::events;
use super::session_object::{self, TurnDetection};
use super::vad::{Vad, VadEvent, VadParams};
use super::validate::ClientEvent;
use super::wire::{Dialogue, Gone, Wire};

/// Output audio is sent in 200 ms deltas…
const DELTA_SAMPLES: usize = 4_800;
/// …one every 100 ms: the model speaks faster than real time.
const DELTA_INTERVAL: Duration = Duration::from_millis(100);
/// When the input transcript's pieces arrive after the commit.
const TRANSCRIPT_DELAYS_MS: [u64; 3] = [50, 100, 150];
/// A commit needs at least this much audio (100 ms).
const MIN_COMMIT_SAMPLES: usize = 2_400;
const TONE_HZ: f64 = 440.0;
const TONE_AMPLITUDE: f64 = 8_000.0;

/// A turn committed and not answered yet.
struct Turn {
    voiced_ms: u64,
}

pub(crate) struct Conversation {
    session: Value,
    vad: Vad,
    /// Samples in the input buffer since the last commit or clear.
    buffered: usize,
    items: u64,
    last_item: Option<String>,
    /// Item id announced in `speech_started`, used by the commit that ends that speech.
    speech_item: Option<String>,
    transcribed_turns: u64,
    unanswered: Vec<Turn>,
    responses: u64,
    /// The response in progress.
    active: Option<String>,
    /// The voice is fixed once the model has spoken.
    spoken: bool,
}

impl Conversation {
    pub fn new(session: Value) -> Self {
        let params = vad_params(&session);
        Self {
            session,
            vad: Vad::new(params),
            buffered: 0,
            items: 0,
            last_item: None,
            speech_item: None,
            transcribed_turns: 0,
            unanswered: Vec::new(),
            responses: 0,
            active: None,
            spoken: false,
        }
    }

    fn next_item(&mut self) -> String {
        self.items += 1;
        format!("item_{}", self.items)
    }

    fn turn_detection(&self) -> Option<TurnDetection> {
        session_object::turn_detection(&self.session)
    }

    async fn on_audio(&mut self, wire: &mut Wire, pcm: Vec<i16>) -> Result<(), Gone> {
        self.buffered += pcm.len();
        let vad_events = self.vad.push(&pcm);
        let Some(td) = self.turn_detection() else {
            return Ok(());
        };
        for event in vad_events {
            match event {
                VadEvent::Started { audio_start_ms } => {
                    let item = self.next_item();
                    wire.send(events::speech_started(audio_start_ms, &item))
                        .await?;
                    self.speech_item = Some(item);
                    if td.interrupt_response
                        && let Some(id) = self.active.clone()
                    {
                        self.cancel(wire, &id, "turn_detected").await?;
                    }
                }
                VadEvent::Stopped { audio_end_ms } => {
                    let item = match self.speech_item.take() {
                        Some(item) => item,
                        None => self.next_item(),
                    };
                    wire.send(events::speech_stopped(audio_end_ms, &item))
                        .await?;
                    // A client commit during the speech may have taken the audio already.
                    if self.buffered < MIN_COMMIT_SAMPLES {
                        continue;
                    }
                    self.commit(wire, item).await?;
                    if td.create_response {
                        if let Some(active) = self.active.clone() {
                            wire.error(
                                "conversation_already_has_active_response",
                                &format!(
                                    "Conversation already has an active response in progress: \
                                     {active}. Wait until the response is finished before \
                                     creating a new one."
                                ),
                                None,
                                None,
                            )
                            .await?;
                        } else {
                            self.respond(wire);
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Turns the input buffer into a user item (and its transcript).
    async fn commit(&mut self, wire: &mut Wire, item: String) -> Result<(), Gone> {
        let voiced_ms = self.vad.take_voiced_ms();
        let seconds = self.buffered as f64 / 24_000.0;
        self.buffered = 0;
        let previous = self.last_item.replace(item.clone());
        wire.send(events::committed(&item, previous.as_deref()))
            .await?;
        wire.send(events::item_added(
            &events::user_item(&item),
            previous.as_deref(),
        ))
        .await?;
        if session_object::transcription_model(&self.session).is_some() {
            self.transcribed_turns += 1;
            let n = self.transcribed_turns;
            let now = Instant::now();
            let pieces = [
                events::transcription_delta(&item, &format!("utterance {n} ")),
                events::transcription_delta(&item, &format!("of {voiced_ms} ms.")),
                events::transcription_completed(
                    &item,
                    &format!("utterance {n} of {voiced_ms} ms."),
                    seconds,
                ),
            ];
            for (piece, delay) in pieces.into_iter().zip(TRANSCRIPT_DELAYS_MS) {
                wire.schedule(now + Duration::from_millis(delay), piece, None);
            }
        }
        self.unanswered.push(Turn { voiced_ms });
        Ok(())
    }

    /// Schedules a whole response answering the turns not answered yet.
    fn respond(&mut self, wire: &mut Wire) {
        self.responses += 1;
        let r = self.responses;
        let id = format!("resp_{r}");
        let voiced_ms: u64 = self.unanswered.drain(..).map(|t| t.voiced_ms).sum();
        self.items += 1;
        let item_id = format!("item_{}", self.items);
        let previous = self.last_item.replace(item_id.clone());
        let speaks = session_object::speaks(&self.session);
        let first = format!("Traducción {r} ");
        let second = format!("de {voiced_ms} ms.");
        let transcript = format!("{first}{second}");
        let tag = Some(id.as_str());
        let mut at = Instant::now();

        let in_progress = events::assistant_item(&item_id, "in_progress", Vec::new());
        let created = events::response(&id, "in_progress", Value::Null, vec![], &self.session);
        wire.schedule(at, events::response_created(created), tag);
        wire.schedule(at, events::output_item_added(&id, &in_progress), tag);
        wire.schedule(
            at,
            events::item_added(&in_progress, previous.as_deref()),
            tag,
        );
        let (part, delta_kind, done_kind, text_field) = if speaks {
            (
                json!({"type": "audio", "transcript": ""}),
                "response.output_audio_transcript.delta",
                "response.output_audio_transcript.done",
                "transcript",
            )
        } else {
            (
                json!({"type": "text", "text": ""}),
                "response.output_text.delta",
                "response.output_text.done",
                "text",
            )
        };
        wire.schedule(at, events::content_part("added", &id, &item_id, part), tag);
        wire.schedule(
            at,
            events::content_event(delta_kind, &id, &item_id, json!({ "delta": first })),
            tag,
        );
        if speaks {
            let tone = tone(voiced_ms);
            let chunks: Vec<&[i16]> = tone.chunks(DELTA_SAMPLES).collect();
            let half = chunks.len() / 2;
            for (k, chunk) in chunks.iter().enumerate() {
                if k == half {
                    wire.schedule(
                        at,
                        events::content_event(
                            delta_kind,
                            &id,
                            &item_id,
                            json!({ "delta": second }),
                        ),
                        tag,
                    );
                }
                wire.schedule(at, events::audio_delta(&id, &item_id, chunk), tag);
                at += DELTA_INTERVAL;
            }
            if chunks.is_empty() {
                wire.schedule(
                    at,
                    events::content_event(delta_kind, &id, &item_id, json!({ "delta": second })),
                    tag,
                );
            }
            wire.schedule(
                at,
                events::content_event("response.output_audio.done", &id, &item_id, json!({})),
                tag,
            );
            self.spoken = true;
        } else {
            wire.schedule(
                at,
                events::content_event(delta_kind, &id, &item_id, json!({ "delta": second })),
                tag,
            );
        }
        wire.schedule(
            at,
            events::content_event(done_kind, &id, &item_id, json!({ text_field: transcript })),
            tag,
        );
        let content = if speaks {
            json!({"type": "output_audio", "transcript": transcript})
        } else {
            json!({"type": "output_text", "text": transcript})
        };
        let part = if speaks {
            json!({"type": "audio", "transcript": transcript})
        } else {
            json!({"type": "text", "text": transcript})
        };
        let completed = events::assistant_item(&item_id, "completed", vec![content]);
        wire.schedule(at, events::content_part("done", &id, &item_id, part), tag);
        wire.schedule(at, events::output_item_done(&id, &completed), tag);
        wire.schedule(at, events::item_done(&completed, previous.as_deref()), tag);
        let done = events::response(
            &id,
            "completed",
            Value::Null,
            vec![completed],
            &self.session,
        );
        wire.schedule(at, events::response_done(done), tag);
        wire.schedule(at, events::rate_limits_updated(), tag);
        self.active = Some(id);
    }

    async fn cancel(&mut self, wire: &mut Wire, id: &str, reason: &str) -> Result<(), Gone> {
        wire.unschedule(id);
        self.active = None;
        let details = json!({ "type": "cancelled", "reason": reason });
        let done = events::response(id, "cancelled", details, vec![], &self.session);
        wire.send(events::response_done(done)).await
    }

    async fn update(
        &mut self,
        wire: &mut Wire,
        patch: serde_json::Map<String, Value>,
        client_id: Option<&str>,
    ) -> Result<(), Gone> {
        if let Some(model) = patch.get("model")
            && *model != self.session["model"]
        {
            return wire
                .error(
                    "invalid_value",
                    "The session's model cannot be changed; open a new session.",
                    Some("session.model"),
                    client_id,
                )
                .await;
        }
        let voice = patch
            .get("audio")
            .and_then(|a| a.get("output"))
            .and_then(|o| o.get("voice"));
        if self.spoken
            && let Some(voice) = voice
            && *voice != self.session["audio"]["output"]["voice"]
        {
            return wire
                .error(
                    "cannot_update_voice",
                    "Cannot update a conversation's voice if assistant audio is present.",
                    Some("session.audio.output.voice"),
                    client_id,
                )
                .await;
        }
        session_object::merge(&mut self.session, &patch);
        self.vad.set_params(vad_params(&self.session));
        wire.send(events::session_updated(&self.session)).await
    }
}

fn vad_params(session: &Value) -> VadParams {
    session_object::turn_detection(session)
        .map(|td| td.vad)
        .unwrap_or_default()
}

/// `ms` milliseconds of the answer tone at 24 kHz.
fn tone(ms: u64) -> Vec<i16> {
    (0..ms as usize * 24)
        .map(|i| {
            let t = i as f64 / 24_000.0;
            (TONE_AMPLITUDE * (2.0 * std::f64::consts::PI * TONE_HZ * t).sin()).round() as i16
        })
        .collect()
}

impl Dialogue for Conversation {
    fn session(&self) -> &Value {
        &self.session
    }

    async fn on_event(
        &mut self,
        wire: &mut Wire,
        event: ClientEvent,
        client_id: Option<String>,
    ) -> Result<(), Gone> {
        let client_id = client_id.as_deref();
        match event {
            ClientEvent::SessionUpdate(patch) => self.update(wire, patch, client_id).await,
            ClientEvent::Append(pcm) => self.on_audio(wire, pcm).await,
            ClientEvent::Commit => {
                if self.buffered < MIN_COMMIT_SAMPLES {
                    let ms = self.buffered / 24;
                    return wire
                        .error(
                            "input_audio_buffer_commit_empty",
                            &format!(
                                "Error committing input audio buffer: buffer too small. \
                                 Expected at least 100ms of audio, but buffer only has \
                                 {ms}.00ms of audio."
                            ),
                            None,
                            client_id,
                        )
                        .await;
                }
                let item = match self.speech_item.take() {
                    Some(item) => item,
                    None => self.next_item(),
                };
                self.commit(wire, item).await
            }
            ClientEvent::Clear => {
                self.buffered = 0;
                self.vad.clear();
                self.speech_item = None;
                wire.send(events::cleared()).await
            }
            ClientEvent::ResponseCreate => match self.active.clone() {
                Some(active) => {
                    wire.error(
                        "conversation_already_has_active_response",
                        &format!(
                            "Conversation already has an active response in progress: {active}. \
                             Wait until the response is finished before creating a new one."
                        ),
                        None,
                        client_id,
                    )
                    .await
                }
                None => {
                    self.respond(wire);
                    Ok(())
                }
            },
            ClientEvent::ResponseCancel(id) => match self.active.clone() {
                Some(active) if id.as_deref().is_none_or(|id| id == active) => {
                    self.cancel(wire, &active, "client_cancelled").await
                }
                _ => {
                    wire.error(
                        "response_cancel_not_active",
                        "Cancellation failed: no active response found.",
                        None,
                        client_id,
                    )
                    .await
                }
            },
            ClientEvent::Unmodelled(ty) => {
                wire.error(
                    "not_modelled",
                    &format!("'{ty}' is valid but this test server does not model it."),
                    Some("type"),
                    client_id,
                )
                .await
            }
        }
    }

    fn sent(&mut self, event: &Value) {
        if event["type"] == "response.done" {
            self.active = None;
        }
    }
}
