//! A Realtime transcription session (`docs/protocol/realtime-transcription.md`) with deterministic
//! transcripts.
//!
//! Contract (the element's tests rely on it):
//! - item `item_{n}` (numbered from 1 as the audio of a new item starts) with voiced span `D` ms (see [`super::vad`]) has
//!   the transcript `"utterance {n} of {D} ms."`, sent as the deltas `"utterance {n} "` and
//!   `"of {D} ms."` and then `completed`; a commit with no speech has the empty transcript and
//!   no deltas;
//! - with `turn_detection: null` (required by the streaming `gpt-realtime-whisper`), the first
//!   delta comes as soon as speech starts, while the speaker talks, and the rest when the client
//!   commits (`input_audio_buffer.commit`, at least 100 ms of audio);
//! - with `server_vad` (other models only), `speech_started` / `speech_stopped` delimit turns and
//!   the server commits by itself; the whole transcript follows the commit;
//! - with no transcription model configured, committed items get no transcript events.

use serde_json::{Map, Value};

use super::events;
use super::session_object;
use super::vad::{Vad, VadEvent};
use super::validate::ClientEvent;
use super::wire::{Dialogue, Gone, Wire};

/// A commit needs at least this much audio (100 ms).
const MIN_COMMIT_SAMPLES: usize = 2_400;
/// The streaming model that takes no server VAD.
const STREAMING_MODEL: &str = "gpt-realtime-whisper";

pub(crate) struct Transcription {
    session: Value,
    vad: Vad,
    buffered: usize,
    items: u64,
    last_item: Option<String>,
    /// The item being heard: its id, and whether its first delta went out already.
    current: Option<(String, bool)>,
}

impl Transcription {
    pub fn new(session: Value) -> Self {
        let params = session_object::turn_detection(&session)
            .map(|td| td.vad)
            .unwrap_or_default();
        Self {
            session,
            vad: Vad::new(params),
            buffered: 0,
            items: 0,
            last_item: None,
            current: None,
        }
    }

    fn transcribing(&self) -> bool {
        session_object::transcription_model(&self.session).is_some()
    }

    /// The item the audio since the last commit belongs to.
    fn current_item(&mut self) -> String {
        if let Some((id, _)) = &self.current {
            return id.clone();
        }
        self.items += 1;
        let id = format!("item_{}", self.items);
        self.current = Some((id.clone(), false));
        id
    }

    async fn on_audio(&mut self, wire: &mut Wire, pcm: Vec<i16>) -> Result<(), Gone> {
        self.buffered += pcm.len();
        let vad_on = session_object::turn_detection(&self.session).is_some();
        for event in self.vad.push(&pcm) {
            match event {
                VadEvent::Started { audio_start_ms } => {
                    let item = self.current_item();
                    if vad_on {
                        wire.send(events::speech_started(audio_start_ms, &item))
                            .await?;
                    } else if self.transcribing()
                        && let Some((_, streamed @ false)) = &mut self.current
                    {
                        // A streaming model transcribes while it hears.
                        *streamed = true;
                        let n = self.items;
                        wire.send(events::transcription_delta(
                            &item,
                            &format!("utterance {n} "),
                        ))
                        .await?;
                    }
                }
                VadEvent::Stopped { audio_end_ms } if vad_on => {
                    let item = self.current_item();
                    wire.send(events::speech_stopped(audio_end_ms, &item))
                        .await?;
                    if self.buffered >= MIN_COMMIT_SAMPLES {
                        self.commit(wire).await?;
                    }
                }
                VadEvent::Stopped { .. } => {}
            }
        }
        Ok(())
    }

    async fn commit(&mut self, wire: &mut Wire) -> Result<(), Gone> {
        let item = self.current_item();
        let streamed = self.current.take().is_some_and(|(_, streamed)| streamed);
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
        if !self.transcribing() {
            return Ok(());
        }
        let n = item.trim_start_matches("item_");
        let transcript = if voiced_ms > 0 {
            format!("utterance {n} of {voiced_ms} ms.")
        } else {
            String::new()
        };
        if voiced_ms > 0 {
            if !streamed {
                wire.send(events::transcription_delta(
                    &item,
                    &format!("utterance {n} "),
                ))
                .await?;
            }
            wire.send(events::transcription_delta(
                &item,
                &format!("of {voiced_ms} ms."),
            ))
            .await?;
        }
        wire.send(events::transcription_completed(&item, &transcript, seconds))
            .await
    }

    async fn update(
        &mut self,
        wire: &mut Wire,
        patch: Map<String, Value>,
        client_id: Option<&str>,
    ) -> Result<(), Gone> {
        let mut merged = self.session.clone();
        session_object::merge(&mut merged, &patch);
        if session_object::transcription_model(&merged).as_deref() == Some(STREAMING_MODEL)
            && session_object::turn_detection(&merged).is_some()
        {
            return wire
                .error(
                    "invalid_value",
                    "Turn detection is not supported with gpt-realtime-whisper: set \
                     session.audio.input.turn_detection to null and commit each turn.",
                    Some("session.audio.input.turn_detection"),
                    client_id,
                )
                .await;
        }
        self.session = merged;
        if let Some(td) = session_object::turn_detection(&self.session) {
            self.vad.set_params(td.vad);
        }
        wire.send(events::session_updated(&self.session)).await
    }
}

impl Dialogue for Transcription {
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
            ClientEvent::Commit if self.buffered < MIN_COMMIT_SAMPLES => {
                let ms = self.buffered / 24;
                wire.error(
                    "input_audio_buffer_commit_empty",
                    &format!(
                        "Error committing input audio buffer: buffer too small. Expected at \
                         least 100ms of audio, but buffer only has {ms}.00ms of audio."
                    ),
                    None,
                    client_id,
                )
                .await
            }
            ClientEvent::Commit => self.commit(wire).await,
            ClientEvent::Clear => {
                self.buffered = 0;
                self.vad.clear();
                self.current = None;
                wire.send(events::cleared()).await
            }
            // The validator lets only conversation sessions send these.
            ClientEvent::ResponseCreate
            | ClientEvent::ResponseCancel(_)
            | ClientEvent::Unmodelled(_) => Ok(()),
        }
    }

    fn sent(&mut self, _event: &Value) {}
}
