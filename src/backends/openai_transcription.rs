//! Captions only: an OpenAI Realtime transcription session (`/v1/realtime?intent=transcription`,
//! `docs/protocol/realtime-transcription.md`) turns the speech into source-language text; nothing
//! is translated.
//!
//! The session runs without server VAD (`turn_detection: null`), which the natively streaming
//! `gpt-realtime-whisper` requires and every other model accepts. Streaming models send
//! transcript deltas while the speaker talks; the final transcript of a turn comes when the
//! client commits it, so [`TurnCutter`] commits after each pause in the speech. Models that do
//! not stream send only that final transcript.

use super::openai_realtime::{InputTranscripts, classify_error, remote_url, send};
use super::websocket::{Keepalive, close_normally};
use crate::protocol::realtime::{
    ClientEvent, DEFAULT_TRANSCRIPTION_MODEL, ServerEvent, TranscriptionSession,
};
use crate::protocol::translation::SessionConfig;
use crate::session_types::{
    Control, Link, SessionCounters, SessionError, SessionEvent, SessionParams,
};
use crate::transport::{Socket, connect_url};
use futures_util::StreamExt;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::time::{Instant, timeout};

/// 20 ms frames at 24 kHz.
const FRAME: usize = 480;
const FRAME_MS: u32 = 20;
/// A frame louder than this (int16 RMS, about -40 dBFS) is speech.
const SPEECH_RMS: f64 = 300.0;
/// Speech shorter than this is a click, not a turn.
const MIN_SPEECH_MS: u32 = 100;
/// The pause that ends a turn, as the service's own VAD defaults to.
const PAUSE_MS: u32 = 500;
/// A turn is committed at this length even without a pause, so its final transcript does not
/// wait for ever on a speaker who never stops.
const MAX_TURN_MS: u32 = 15_000;

/// What to do with the input buffer after some audio.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// Keep listening.
    None,
    /// A turn ended: commit it to get its final transcript.
    Commit,
    /// A long stretch with no speech: drop it rather than have it transcribed (speech models
    /// invent words in silence).
    Clear,
}

/// Finds the ends of turns in the audio sent, by energy.
#[derive(Debug, Default)]
pub struct TurnCutter {
    pending: Vec<i16>,
    speech_ms: u32,
    pause_ms: u32,
    turn_ms: u32,
}

impl TurnCutter {
    /// Feeds audio as it is sent; returns the cut due after it, if any.
    pub fn push(&mut self, mut pcm: &[i16]) -> Cut {
        let mut cut = Cut::None;
        while !pcm.is_empty() {
            let take = (FRAME - self.pending.len()).min(pcm.len());
            self.pending.extend_from_slice(&pcm[..take]);
            pcm = &pcm[take..];
            if self.pending.len() < FRAME {
                break;
            }
            let loud = rms(&self.pending) > SPEECH_RMS;
            self.pending.clear();
            self.turn_ms += FRAME_MS;
            if loud {
                self.speech_ms += FRAME_MS;
                self.pause_ms = 0;
            } else {
                self.pause_ms += FRAME_MS;
            }
            let spoken = self.speech_ms >= MIN_SPEECH_MS;
            let this = if spoken && (self.pause_ms >= PAUSE_MS || self.turn_ms >= MAX_TURN_MS) {
                Cut::Commit
            } else if !spoken && self.turn_ms >= MAX_TURN_MS {
                Cut::Clear
            } else {
                Cut::None
            };
            if this != Cut::None {
                self.reset();
                cut = this;
            }
        }
        cut
    }

    /// Whether the audio since the last cut holds speech (the end of input commits it).
    pub fn has_speech(&self) -> bool {
        self.speech_ms >= MIN_SPEECH_MS
    }

    pub fn reset(&mut self) {
        self.speech_ms = 0;
        self.pause_ms = 0;
        self.turn_ms = 0;
    }
}

fn rms(frame: &[i16]) -> f64 {
    let sum: f64 = frame.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    (sum / frame.len().max(1) as f64).sqrt()
}

fn transcription_session(config: &SessionConfig) -> ClientEvent {
    ClientEvent::Transcription(TranscriptionSession {
        model: config
            .transcription
            .as_ref()
            .map(|t| t.model.clone())
            .filter(|model| !model.is_empty())
            .unwrap_or_else(|| DEFAULT_TRANSCRIPTION_MODEL.to_owned()),
        noise_reduction: config.noise_reduction.clone(),
    })
}

/// A transcription session is chosen by `intent=transcription` in the URL (and no model).
pub fn url_with_intent(url: &str) -> String {
    let query = url.split_once('?').map(|(_, q)| q).unwrap_or("");
    if query.split('&').any(|pair| pair.starts_with("intent=")) {
        return url.to_owned();
    }
    let separator = if url.contains('?') { "&" } else { "?" };
    format!("{url}{separator}intent=transcription")
}

/// The loop's view of the input buffer: commits sent and not yet acknowledged, and whether
/// source text arrived for audio not committed yet.
#[derive(Debug, Default)]
struct Buffer {
    commits_in_flight: u32,
    /// Deltas arrived since the last commit: the server heard speech there, so it is committed
    /// rather than cleared.
    text_since_commit: bool,
}

pub async fn converse(params: &SessionParams, link: &mut Link) -> Result<(), SessionError> {
    let on_event = &*link.on_event.clone();
    let counters = link.counters.clone();
    let url = url_with_intent(&remote_url(params)?);
    let mut socket = connect_url(params, &url, true).await?;
    send(&mut socket, &transcription_session(&params.config)).await?;
    let mut cutter = TurnCutter::default();
    let mut buffer = Buffer::default();
    let mut transcripts = InputTranscripts::default();
    let mut drain_deadline: Option<Instant> = None;
    let mut control_open = true;
    let mut audio_open = true;
    let mut keepalive = Keepalive::new(params.keepalive_timeout);
    loop {
        if drain_deadline.is_some()
            && buffer.commits_in_flight == 0
            && transcripts.pending.is_empty()
        {
            close_normally(&mut socket).await;
            return Ok(());
        }
        let deadline = drain_deadline;
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
                    Ok(ServerEvent::InputTranscriptDelta { item_id, delta }) => {
                        // Text of an item not committed yet: the server hears speech there.
                        if buffer.commits_in_flight == 0 && !transcripts.pending.contains(&item_id) {
                            buffer.text_since_commit = true;
                        }
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
                    Ok(ServerEvent::Committed { item_id }) => {
                        buffer.commits_in_flight = buffer.commits_in_flight.saturating_sub(1);
                        transcripts.expect(&item_id);
                    }
                    Ok(ServerEvent::Error(err)) => {
                        if err.code.as_deref() == Some("input_audio_buffer_commit_empty") {
                            buffer.commits_in_flight = buffer.commits_in_flight.saturating_sub(1);
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
                    // Output events do not exist here; VAD and response events neither, with
                    // turn detection off.
                    Ok(_) => {}
                }
            }
            command = link.control.recv(), if control_open => match command {
                None => control_open = false,
                Some(Control::Update(config)) => {
                    send(&mut socket, &transcription_session(&config)).await?;
                }
                Some(Control::Close) => {
                    // Everything queued before the close goes out first.
                    while let Ok(chunk) = link.audio.try_recv() {
                        send_audio(&mut socket, &mut cutter, &mut buffer, &counters, chunk).await?;
                    }
                    link.audio.close();
                    control_open = false;
                    if cutter.has_speech() || buffer.text_since_commit {
                        commit(&mut socket, &mut cutter, &mut buffer).await?;
                    }
                    drain_deadline = Some(Instant::now() + params.drain_timeout);
                }
            },
            chunk = link.audio.recv(), if audio_open && drain_deadline.is_none() => match chunk {
                None => audio_open = false,
                Some(chunk) => send_audio(&mut socket, &mut cutter, &mut buffer, &counters, chunk).await?,
            },
            _ = keepalive.ticks.tick() => keepalive.tick(&mut socket).await?,
            _ = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {
                // Not a clean end: what it had not answered is sent again or counted.
                close_normally(&mut socket).await;
                return Err(SessionError::Connection(format!(
                    "transcripts still missing {} ms after the end of the input",
                    params.drain_timeout.as_millis()
                )));
            }
        }
    }
}

/// Appends a chunk, then commits or clears the buffer when the chunk ends a turn.
async fn send_audio(
    socket: &mut Socket,
    cutter: &mut TurnCutter,
    buffer: &mut Buffer,
    counters: &SessionCounters,
    chunk: Vec<i16>,
) -> Result<(), SessionError> {
    counters
        .samples_sent
        .fetch_add(chunk.len() as u64, Ordering::Relaxed);
    let cut = cutter.push(&chunk);
    send(socket, &ClientEvent::Append(chunk)).await?;
    match cut {
        Cut::None => Ok(()),
        Cut::Commit => commit(socket, cutter, buffer).await,
        Cut::Clear if buffer.text_since_commit => commit(socket, cutter, buffer).await,
        Cut::Clear => send(socket, &ClientEvent::Clear).await,
    }
}

async fn commit(
    socket: &mut Socket,
    cutter: &mut TurnCutter,
    buffer: &mut Buffer,
) -> Result<(), SessionError> {
    cutter.reset();
    buffer.commits_in_flight += 1;
    buffer.text_since_commit = false;
    send(socket, &ClientEvent::Commit).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(ms: usize) -> Vec<i16> {
        (0..ms * 24)
            .map(|i| (5000.0 * (i as f64 * 0.05).sin()) as i16)
            .collect()
    }

    fn feed(cutter: &mut TurnCutter, pcm: &[i16]) -> Vec<(usize, Cut)> {
        pcm.chunks(4800)
            .enumerate()
            .map(|(i, c)| (i, cutter.push(c)))
            .filter(|(_, cut)| *cut != Cut::None)
            .collect()
    }

    #[test]
    fn a_pause_after_speech_commits_the_turn() {
        let mut cutter = TurnCutter::default();
        let mut pcm = vec![0; 24 * 400];
        pcm.extend(tone(1000));
        pcm.extend(vec![0; 24 * 1000]);
        // Speech ends at 1.4 s; 500 ms later falls in the chunk covering 1.8–2.0 s.
        assert_eq!(feed(&mut cutter, &pcm), vec![(9, Cut::Commit)]);
        assert!(!cutter.has_speech());
    }

    #[test]
    fn clicks_and_short_gaps_do_not_commit() {
        let mut cutter = TurnCutter::default();
        let mut pcm = tone(60);
        pcm.extend(vec![0; 24 * 1000]);
        pcm.extend(tone(300));
        pcm.extend(vec![0; 24 * 300]);
        pcm.extend(tone(300));
        assert!(feed(&mut cutter, &pcm).is_empty());
        assert!(cutter.has_speech(), "the end of input commits this turn");
    }

    #[test]
    fn long_turns_are_cut_and_long_silence_cleared() {
        let mut cutter = TurnCutter::default();
        assert_eq!(
            feed(&mut cutter, &tone(16_000)),
            vec![(74, Cut::Commit)],
            "15 s of speech without a pause"
        );
        let mut cutter = TurnCutter::default();
        assert_eq!(
            feed(&mut cutter, &vec![0; 24 * 16_000]),
            vec![(74, Cut::Clear)]
        );
    }

    #[test]
    fn intent_is_added_unless_present() {
        assert_eq!(
            url_with_intent("wss://h/v1/realtime"),
            "wss://h/v1/realtime?intent=transcription"
        );
        assert_eq!(
            url_with_intent("ws://h/v1/realtime?x=1"),
            "ws://h/v1/realtime?x=1&intent=transcription"
        );
        assert_eq!(
            url_with_intent("ws://h/v1/realtime?intent=transcription"),
            "ws://h/v1/realtime?intent=transcription"
        );
    }

    #[test]
    fn empty_model_means_the_streaming_default() {
        let config = SessionConfig {
            target_language: "es".into(),
            transcription: None,
            noise_reduction: None,
        };
        match transcription_session(&config) {
            ClientEvent::Transcription(session) => {
                assert_eq!(session.model, DEFAULT_TRANSCRIPTION_MODEL)
            }
            other => panic!("{other:?}"),
        }
    }
}
