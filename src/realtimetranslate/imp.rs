//! The element: pads, properties, the streaming thread, and the connection's callbacks.
//!
//! Threads: the sink pad's streaming thread converts and chunks input, hands full chunks to the
//! connection (with no lock held) and advances the output timeline; the connection's tasks
//! (tokio) queue translations into the timeline, in session order; each src pad pushes from its
//! own task, and `src` mixes the original in as it pushes. Lock order: `settings` → `state` →
//! `shared.output` → `shared.mix` → a pad queue's own lock; the connection's router lock (held
//! while it calls back) comes before every element lock, and no element lock is held while
//! calling into the connection, except `state` for its non-blocking requests. All output is queued with `shared.output` held, so
//! the two producers stay in timeline order; no element lock is held across a push downstream
//! or a wait (clock, queue room, connection room, drain).

use super::ear_voice::EarVoiceSpans;
use super::enums::{Backend, NoiseReduction, Pacing, SubtitleMode};
use super::output::{Output, PadItems, samples_to_time, time_to_samples};
use super::settings::{self, Settings, language_problem};
use crate::connection::{Connection, ConnectionEvent, ConnectionState};
use crate::convert::EngineFormatConverter;
use crate::input_gaps::{self, GAP_HEARD_SAMPLES};
use crate::mix::OriginalMix;
use crate::pad_queue::{Item, PadQueue};
use crate::protocol::translation::{CHUNK_SAMPLES, SAMPLE_RATE};
use crate::secret::ApiKey;
use crate::session_types::{SessionError, SessionEvent};
use crate::timeline::Utterance;
use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use once_cell::sync::Lazy;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

static CAT: Lazy<gst::DebugCategory> = Lazy::new(|| {
    gst::DebugCategory::new(
        "realtimetranslate",
        gst::DebugColorFlags::empty(),
        Some("Realtime speech translation"),
    )
});

/// A jump in input timestamps larger than this is a gap the engine must hear as silence.
const GAP_TOLERANCE: gst::ClockTime = gst::ClockTime::from_mseconds(40);
/// Non-live input is fed this much ahead of the clock so the output reaches synchronised sinks
/// in time.
const PACING_HEADROOM: gst::ClockTime = gst::ClockTime::from_mseconds(100);
/// Non-live input is fed this much further ahead of the clock, so that the engine's answers
/// (with its keep-alives, how far it has listened) come before their output is due.
const ENGINE_AHEAD: gst::ClockTime = gst::ClockTime::from_mseconds(1500);
/// Non-live input taken while prerolling, beyond the latency: enough for downstream to preroll.
const PREROLL_AHEAD: gst::ClockTime = gst::ClockTime::from_mseconds(200);
/// At most one warning message on the bus per this interval (every one is still logged).
const WARNING_INTERVAL: Duration = Duration::from_secs(10);
/// Audio buffers queued before the src pad: ~1 s of output, then the streaming thread waits.
const AUDIO_QUEUE_ITEMS: usize = 32;
const TEXT_QUEUE_ITEMS: usize = 256;
/// Live, after end of stream, the output moves on in steps of this while the engine drains.
const DRAIN_STEP: Duration = Duration::from_millis(20);
/// Output-delay samples kept for the statistics.
const DELAY_SAMPLES: usize = 10_000;

/// How the current session stands, for the EOS drain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SessionEnd {
    Running,
    Finished,
    Failed,
    Cancelled,
}

/// What the session callbacks and the pad tasks share with the streaming thread.
struct Shared {
    output: Mutex<Output>,
    /// The original under the translation, applied as audio leaves `src` so that what is known
    /// about an outage by then (buffers may wait in the queue) decides the fallback.
    mix: Mutex<OriginalMix>,
    audio: PadQueue,
    text: PadQueue,
    source_text: PadQueue,
    session_end: Mutex<SessionEnd>,
    session_end_changed: Condvar,
    /// Bumped on every new session: callbacks of an older one are ignored.
    generation: AtomicU64,
    /// Microseconds from a translated chunk's arrival to its buffer leaving `src`.
    delays: Mutex<std::collections::VecDeque<u64>>,
    last_warning: Mutex<Option<Instant>>,
    /// Name of the connection's state, for the statistics.
    connection_state: Mutex<&'static str>,
    ear_voice: Mutex<EarVoiceSpans>,
}

impl Shared {
    fn queues(&self) -> [&PadQueue; 3] {
        [&self.audio, &self.text, &self.source_text]
    }

    fn set_flushing(&self, flushing: bool) {
        for queue in self.queues() {
            queue.set_flushing(flushing);
        }
    }

    fn set_session_end(&self, end: SessionEnd) {
        *self.session_end.lock().unwrap() = end;
        self.session_end_changed.notify_all();
    }

    /// Queues output for every pad. Called with the output lock held, so output produced by the
    /// streaming thread and by the session callback stays in timeline order.
    fn push_items(&self, items: PadItems) {
        for item in items.audio {
            self.audio.push_nowait(item);
        }
        for item in items.text {
            self.text.push_nowait(item);
        }
        for item in items.source_text {
            self.source_text.push_nowait(item);
        }
    }
}

/// Per-stream state, created at READY→PAUSED and dropped at PAUSED→READY.
struct State {
    connection: Option<Arc<Connection>>,
    converter: Option<EngineFormatConverter>,
    /// The outgoing chunk being filled.
    chunk: Vec<i16>,
    /// Full chunks to hand to the connection once the locks are released.
    outgoing: Vec<Vec<i16>>,
    /// Engine-format input not yet handed to the mix (the original under the translation).
    heard: Vec<i16>,
    /// Samples appended to the outgoing stream so far: positions as the engine counts them.
    engine_samples: u64,
    segment: gst::FormattedSegment<gst::ClockTime>,
    /// End of the input so far: where the next buffer should start.
    next_pts: Option<gst::ClockTime>,
    upstream_live: Option<bool>,
    /// Live: how late upstream may deliver a buffer after its end (its reported latency).
    upstream_latency: gst::ClockTime,
    /// Silence the engine has heard for the gap in progress (reset by real input).
    gap_heard: u64,
    /// Live: input up to here was missing and is covered already; late buffers are clipped.
    covered_until: Option<gst::ClockTime>,
    /// End of stream reached: no more input, nothing to cover.
    at_eos: bool,
    latency_samples: u64,
    dropped_chunks: u64,
    stats_task: Option<tokio::task::AbortHandle>,
    /// Live: covers input that does not come (see [`RealtimeTranslate::cover_missing_input`]).
    gap_watch: Option<tokio::task::AbortHandle>,
}

impl Drop for State {
    fn drop(&mut self) {
        for task in [&self.stats_task, &self.gap_watch].into_iter().flatten() {
            task.abort();
        }
    }
}

impl State {
    /// Appends engine-format samples to the outgoing stream; full 200 ms chunks wait in
    /// `outgoing` for [`RealtimeTranslate::send_outgoing`].
    fn send(&mut self, samples: &[i16]) {
        self.engine_samples += samples.len() as u64;
        self.chunk.extend_from_slice(samples);
        self.heard.extend_from_slice(samples);
        while self.chunk.len() >= CHUNK_SAMPLES {
            let rest = self.chunk.split_off(CHUNK_SAMPLES);
            self.outgoing.push(std::mem::replace(&mut self.chunk, rest));
        }
    }

    /// Hands the input heard so far to the mix, so the original is there when output leaves,
    /// and to the output's speech-onset detector, so translations find their source.
    fn hand_over(&mut self, mix: &Mutex<OriginalMix>, output: &mut Output) {
        output.input_heard(&self.heard);
        mix.lock().unwrap().push_original(&self.heard);
        self.heard.clear();
    }

    /// Samples sent to and received from the sessions so far.
    fn samples_exchanged(&self) -> (u64, u64) {
        self.connection.as_ref().map_or((0, 0), |connection| {
            let counters = &connection.stats().session;
            (
                counters.samples_sent.load(Ordering::Relaxed),
                counters.samples_received.load(Ordering::Relaxed),
            )
        })
    }

    /// Where the input ends, in samples from `origin`.
    fn input_end(&self, origin: gst::ClockTime) -> u64 {
        time_to_samples(self.next_pts.unwrap_or(origin).saturating_sub(origin))
    }

    /// Time passed with no input: the converter's filter tail (which belongs before the gap)
    /// goes out first, then silence for the gap, of which the engine hears at most a few seconds
    /// (see `input_gaps.rs`): the rest is skipped, by the mix and the output's positions too, so
    /// a gap of any length costs the same memory and is not billed.
    fn fill_gap(
        &mut self,
        duration: gst::ClockTime,
        mix: &Mutex<OriginalMix>,
        output: &mut Output,
    ) {
        let tail = self
            .converter
            .as_mut()
            .map(|c| c.drain())
            .unwrap_or_default();
        self.send(&tail);
        let samples = time_to_samples(duration);
        let heard = samples.min(GAP_HEARD_SAMPLES.saturating_sub(self.gap_heard));
        self.gap_heard += heard;
        self.send(&vec![0; heard as usize]);
        let skipped = samples - heard;
        if skipped > 0 {
            self.hand_over(mix, output);
            mix.lock().unwrap().skip_original(skipped);
            output.input_skipped(self.engine_samples, skipped);
        }
    }
}

pub struct RealtimeTranslate {
    sinkpad: gst::Pad,
    srcpad: gst::Pad,
    subtitle_srcpad: gst::Pad,
    source_subtitle_srcpad: gst::Pad,
    settings: Mutex<Settings>,
    state: Mutex<Option<State>>,
    shared: Arc<Shared>,
    /// The pacing wait in progress, so that a flush or a stop can cut it short.
    pacing_wait: Mutex<Option<gst::SingleShotClockId>>,
    last_seek: Mutex<Option<gst::Seqnum>>,
}

impl RealtimeTranslate {
    fn queue_for(&self, pad: &gst::Pad) -> &PadQueue {
        if pad == &self.srcpad {
            &self.shared.audio
        } else if pad == &self.subtitle_srcpad {
            &self.shared.text
        } else {
            &self.shared.source_text
        }
    }

    fn src_pads(&self) -> [&gst::Pad; 3] {
        [
            &self.srcpad,
            &self.subtitle_srcpad,
            &self.source_subtitle_srcpad,
        ]
    }

    /// One iteration of a src pad's task: push the next queued item.
    fn pad_loop(&self, pad: &gst::Pad) {
        let queue = self.queue_for(pad);
        let Some(item) = queue.pop() else {
            let _ = pad.pause_task();
            return;
        };
        match item {
            Item::Buffer(mut buffer, arrivals) => {
                if pad == &self.srcpad {
                    self.mix_original(&mut buffer);
                }
                // Taken before the push: time spent downstream (a sink's clock wait) is not ours.
                let now = Instant::now();
                let flow = pad.push(buffer);
                if !arrivals.is_empty() {
                    let mut delays = self.shared.delays.lock().unwrap();
                    for at in arrivals {
                        if delays.len() >= DELAY_SAMPLES {
                            delays.pop_front();
                        }
                        delays.push_back(now.duration_since(at).as_micros() as u64);
                    }
                }
                if let Err(err) = flow {
                    gst::debug!(CAT, obj = pad, "push returned {err:?}");
                }
                queue.set_flow(flow);
            }
            Item::Event(event) => {
                let eos = event.type_() == gst::EventType::Eos;
                pad.push_event(event);
                if eos {
                    let _ = pad.pause_task();
                }
            }
        }
    }

    /// Mixes the original into an outgoing translation buffer (its offset is its position).
    fn mix_original(&self, buffer: &mut gst::Buffer) {
        let position = buffer.offset();
        let mut mix = self.shared.mix.lock().unwrap();
        if !mix.uses_original() {
            // Translation only: nothing to change, only the past to forget.
            mix.apply(position, &mut []);
            return;
        }
        if let Ok(map) = buffer.map_readable()
            && mix.leaves_unchanged(position, map.len() / 2)
        {
            // The original at gain 0 (the default, outside outages): read, not rewritten.
            mix.follow(
                position,
                map.chunks_exact(2)
                    .map(|b| i16::from_le_bytes([b[0], b[1]])),
            );
            return;
        }
        let buffer = buffer.make_mut();
        let Ok(mut map) = buffer.map_writable() else {
            return;
        };
        let mut samples: Vec<i16> = map
            .chunks_exact(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]]))
            .collect();
        mix.apply(position, &mut samples);
        for (bytes, sample) in map.chunks_exact_mut(2).zip(samples) {
            bytes.copy_from_slice(&sample.to_le_bytes());
        }
    }

    fn start_task(&self, pad: &gst::Pad) -> Result<(), gst::LoggableError> {
        let element = self.obj().downgrade();
        let pad_weak = pad.downgrade();
        pad.start_task(move || {
            let (Some(element), Some(pad)) = (element.upgrade(), pad_weak.upgrade()) else {
                return;
            };
            element.imp().pad_loop(&pad);
        })
        .map_err(|err| gst::loggable_error!(CAT, "cannot start task: {err}"))
    }

    fn src_activate_mode(
        &self,
        pad: &gst::Pad,
        mode: gst::PadMode,
        active: bool,
    ) -> Result<(), gst::LoggableError> {
        if mode != gst::PadMode::Push {
            return Err(gst::loggable_error!(CAT, "only push mode is supported"));
        }
        if active {
            self.queue_for(pad).set_flushing(false);
            self.start_task(pad)
        } else {
            self.queue_for(pad).set_flushing(true);
            pad.stop_task()
                .map_err(|err| gst::loggable_error!(CAT, "cannot stop task: {err}"))
        }
    }

    /// Posts a warning on the bus, at most once per [`WARNING_INTERVAL`]; always logs it.
    fn warn(&self, text: &str) {
        gst::warning!(CAT, imp = self, "{text}");
        let mut last = self.shared.last_warning.lock().unwrap();
        if last.is_some_and(|at| at.elapsed() < WARNING_INTERVAL) {
            return;
        }
        *last = Some(Instant::now());
        drop(last);
        gst::element_imp_warning!(self, gst::StreamError::Failed, ("{}", text));
    }

    /// Opens the stream's connection for the current settings and makes it the one callbacks
    /// listen to.
    fn start_connection(&self, state: &mut State) -> Result<(), String> {
        let params = self.settings.lock().unwrap().connection_params()?;
        let generation = self.shared.generation.fetch_add(1, Ordering::SeqCst) + 1;
        self.shared.set_session_end(SessionEnd::Running);
        let element = self.obj().downgrade();
        let callback = Arc::new(move |event: ConnectionEvent| {
            if let Some(element) = element.upgrade() {
                element.imp().on_connection_event(generation, event);
            }
        });
        let connection = Connection::start(params, callback);
        connection.set_lossless(state.upstream_live == Some(false));
        state.connection = Some(Arc::new(connection));
        Ok(())
    }

    fn on_connection_event(&self, generation: u64, event: ConnectionEvent) {
        if self.shared.generation.load(Ordering::SeqCst) != generation {
            return;
        }
        match event {
            ConnectionEvent::State { state, position } => self.on_connection_state(state, position),
            ConnectionEvent::Session(event) => self.on_session_output(event),
            ConnectionEvent::Finished => {
                gst::info!(CAT, imp = self, "connection finished");
                self.shared.set_session_end(SessionEnd::Finished);
            }
            ConnectionEvent::Failed(err) => {
                gst::error!(CAT, imp = self, "{err}");
                match &err {
                    SessionError::Authentication(_) => {
                        let variable =
                            settings::api_key_variable(self.settings.lock().unwrap().backend);
                        gst::element_imp_error!(
                            self,
                            gst::LibraryError::Settings,
                            (
                                "Authentication failed: check the api-key property or {}",
                                variable
                            ),
                            ["{}", err]
                        )
                    }
                    // The reason says whose problem it is (a quota, a certificate, a CA file).
                    SessionError::Refused(why) => gst::element_imp_error!(
                        self,
                        gst::ResourceError::Failed,
                        ("Cannot translate: {}", why),
                        ["{}", err]
                    ),
                    _ => gst::element_imp_error!(
                        self,
                        gst::ResourceError::OpenReadWrite,
                        ("Cannot reach the translation service: {}", err),
                        ["{}", err]
                    ),
                }
                self.shared.set_session_end(SessionEnd::Failed);
                // Wake a streaming thread waiting on a full queue: the stream cannot go on.
                self.shared.audio.set_flow(Err(gst::FlowError::Error));
            }
        }
    }

    /// Connection state changes: an element message for operators, and the fallback audio
    /// while no session takes the input.
    fn on_connection_state(&self, state: ConnectionState, sent: u64) {
        // The connection counts the audio it was sent; skipped gaps put the input further on.
        let position = self
            .shared
            .output
            .lock()
            .unwrap()
            .sent_to_input
            .to_input(sent);
        gst::info!(
            CAT,
            imp = self,
            "connection {state:?} at input sample {position}"
        );
        {
            let mut mix = self.shared.mix.lock().unwrap();
            match &state {
                ConnectionState::Connected { .. } => mix.outage_ended(position),
                ConnectionState::Reconnecting { .. } => mix.outage_started(position),
                _ => {}
            }
        }
        *self.shared.connection_state.lock().unwrap() = state.name();
        let mut structure = gst::Structure::builder("realtimetranslate/connection")
            .field("status", state.name())
            .field("input-position", samples_to_time(position));
        match &state {
            ConnectionState::Connecting { attempt } => {
                structure = structure.field("attempt", attempt);
            }
            ConnectionState::Connected {
                session_id,
                expires_at,
            } => {
                structure = structure
                    .field("session-id", session_id)
                    .field_if_some("expires-at", *expires_at);
            }
            ConnectionState::Rotating { session_id } => {
                structure = structure.field("session-id", session_id);
            }
            ConnectionState::Reconnecting {
                attempt,
                delay,
                reason,
            } => {
                structure = structure
                    .field("attempt", attempt)
                    .field("delay-ms", delay.as_millis() as u64)
                    .field("reason", reason);
            }
            ConnectionState::Lost { session_id, reason } => {
                structure = structure
                    .field("session-id", session_id)
                    .field("reason", reason);
            }
            ConnectionState::Failed { reason } => {
                structure = structure.field("reason", reason);
            }
        }
        self.post_element_message(structure.build());
    }

    /// What a session said: translated speech and text into the timeline, warnings on the bus.
    fn on_session_output(&self, event: SessionEvent) {
        match event {
            SessionEvent::OutputAudio {
                samples,
                sample_rate,
                channels,
            } => {
                let samples = if sample_rate == SAMPLE_RATE && channels == 1 {
                    samples
                } else {
                    resample_to_engine_format(&samples, sample_rate, channels)
                };
                let mut output = self.shared.output.lock().unwrap();
                let items = output.push_audio(&samples, Instant::now());
                self.shared.push_items(items);
                let utterances = output.take_utterances();
                let origin = output.origin;
                let overproducing = output
                    .speech_budget
                    .take_first_drop()
                    .then(|| output.speech_budget.allowance_seconds());
                drop(output);
                self.report_utterances(origin, utterances);
                if let Some(allowance) = overproducing {
                    self.warn_overproduction(allowance);
                }
            }
            SessionEvent::OutputTranscript(delta) => {
                gst::debug!(CAT, imp = self, "translated text ({} bytes)", delta.len());
                let mut output = self.shared.output.lock().unwrap();
                let dropped_before = output.timeline.text_dropped();
                for item in output.push_text(&delta) {
                    self.shared.text.push_nowait(item);
                }
                let dropped = output.timeline.text_dropped() - dropped_before;
                let utterances = output.take_utterances();
                let origin = output.origin;
                drop(output);
                self.report_utterances(origin, utterances);
                self.warn_text_dropped("translated", dropped);
            }
            SessionEvent::InputTranscript(delta) => {
                gst::debug!(CAT, imp = self, "source text ({} bytes)", delta.len());
                let mut output = self.shared.output.lock().unwrap();
                let dropped_before = output.timeline.source_text_dropped();
                for item in output.push_source_text(&delta) {
                    self.shared.source_text.push_nowait(item);
                }
                let dropped = output.timeline.source_text_dropped() - dropped_before;
                drop(output);
                self.warn_text_dropped("source", dropped);
            }
            SessionEvent::Progress { input_samples } => {
                self.shared
                    .output
                    .lock()
                    .unwrap()
                    .engine_progress(input_samples);
            }
            SessionEvent::Warning(text) => self.warn(&text),
            // The connection turns session lifecycle into its own events.
            SessionEvent::Connected { .. } | SessionEvent::Finished | SessionEvent::Failed(_) => {}
        }
    }

    /// The engine sends more speech than real time: said once per stream, on the bus, whatever
    /// other warnings were posted lately (each drop is counted in `stats`).
    fn warn_overproduction(&self, allowance: f64) {
        let text = format!(
            "the translation engine sends more audio than real time: translated speech beyond \
             {allowance:.0} s ahead of the input is dropped (translation-overproduced-seconds)"
        );
        gst::warning!(CAT, imp = self, "{text}");
        gst::element_imp_warning!(self, gst::StreamError::Failed, ("{}", text));
    }

    /// Text that came faster than a screen shows it was dropped (counted in `stats`).
    fn warn_text_dropped(&self, which: &str, characters: u64) {
        if characters > 0 {
            self.warn(&format!(
                "the engine sent {which} text faster than subtitles can show it: \
                 {characters} characters dropped"
            ));
        }
    }

    /// Ear-voice spans into the statistics, and a `realtimetranslate/utterance` message each.
    fn report_utterances(&self, origin: Option<gst::ClockTime>, utterances: Vec<Utterance>) {
        if utterances.is_empty() {
            return;
        }
        let origin = origin.unwrap_or(gst::ClockTime::ZERO);
        for utterance in utterances {
            self.shared.ear_voice.lock().unwrap().record(&utterance);
            let source = origin + samples_to_time(utterance.source_onset);
            let span = |at: u64| samples_to_time(at.saturating_sub(utterance.source_onset));
            gst::debug!(CAT, imp = self, "utterance {utterance:?}");
            self.post_element_message(
                gst::Structure::builder("realtimetranslate/utterance")
                    .field("source-onset", source)
                    .field_if_some(
                        "translation-onset",
                        utterance.speech.map(|at| origin + samples_to_time(at)),
                    )
                    .field_if_some("ear-voice-span", utterance.speech.map(span))
                    .field_if_some(
                        "caption-onset",
                        utterance.caption.map(|at| origin + samples_to_time(at)),
                    )
                    .field_if_some("caption-span", utterance.caption.map(span))
                    .field_if_some(
                        "translation-arrival",
                        utterance.arrival.map(|at| origin + samples_to_time(at)),
                    )
                    .build(),
            );
        }
    }

    fn post_element_message(&self, structure: gst::Structure) {
        let _ = self.obj().post_message(
            gst::message::Element::builder(structure)
                .src(&*self.obj())
                .build(),
        );
    }

    fn failed(&self) -> bool {
        *self.shared.session_end.lock().unwrap() == SessionEnd::Failed
    }

    /// For non-live input paced to the clock: waits until this buffer is due.
    fn pace(&self, pts: Option<gst::ClockTime>) {
        let Some((running_time, ahead)) = self.pacing_position(pts) else {
            return;
        };
        if self.obj().current_state() != gst::State::Playing {
            // Prerolling: enough for downstream to preroll, then wait for PLAYING, or the input
            // would run seconds ahead and its translations land late.
            if running_time > ahead + PREROLL_AHEAD {
                self.wait_for_playing();
            }
            return;
        }
        let (Some(clock), Some(base_time)) = (self.obj().clock(), self.obj().base_time()) else {
            return;
        };
        let target = base_time + running_time.saturating_sub(ahead);
        if clock.time() >= target {
            return;
        }
        let id = clock.new_single_shot_id(target);
        *self.pacing_wait.lock().unwrap() = Some(id.clone());
        let _ = id.wait();
        *self.pacing_wait.lock().unwrap() = None;
    }

    /// The buffer's running time and how far ahead of the clock it may be fed, when the input
    /// is paced at all (`pacing=realtime`, non-live).
    fn pacing_position(
        &self,
        pts: Option<gst::ClockTime>,
    ) -> Option<(gst::ClockTime, gst::ClockTime)> {
        let settings = self.settings.lock().unwrap();
        if settings.pacing != Pacing::Realtime {
            return None;
        }
        let state = self.state.lock().unwrap();
        let state = state.as_ref()?;
        if state.upstream_live != Some(false) {
            return None;
        }
        let running_time = state.segment.to_running_time(pts?)?;
        // Output follows the engine's answers: feed it far enough ahead that they come in time.
        Some((
            running_time,
            samples_to_time(state.latency_samples) + ENGINE_AHEAD + PACING_HEADROOM,
        ))
    }

    /// Blocks the streaming thread while the element is not PLAYING (until a flush or stop).
    /// State changes and flushes notify `session_end_changed`; the time limit only covers a
    /// state change made by a parent without passing through this element's `change_state`.
    fn wait_for_playing(&self) {
        let mut guard = self.shared.session_end.lock().unwrap();
        while self.obj().current_state() != gst::State::Playing
            && self.obj().pending_state() != gst::State::Playing
            && !self.shared.audio.is_flushing()
        {
            guard = self
                .shared
                .session_end_changed
                .wait_timeout(guard, Duration::from_millis(100))
                .unwrap()
                .0;
        }
    }

    fn cancel_waits(&self) {
        // A streaming thread blocked on a full connection queue looks at its cancellation again.
        let connection = self
            .state
            .lock()
            .unwrap()
            .as_ref()
            .and_then(|state| state.connection.clone());
        if let Some(connection) = connection {
            connection.interrupt();
        }
        if let Some(id) = self.pacing_wait.lock().unwrap().take() {
            id.unschedule();
        }
        let mut end = self.shared.session_end.lock().unwrap();
        if *end == SessionEnd::Running {
            *end = SessionEnd::Cancelled;
        }
        self.shared.session_end_changed.notify_all();
    }

    /// Waits until the session is no longer running, or `deadline`. The guard is released before
    /// returning: everything after (pushing, `failed()`) takes the same lock.
    fn wait_session_end(&self, deadline: Instant) -> SessionEnd {
        let mut end = self.shared.session_end.lock().unwrap();
        while *end == SessionEnd::Running {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            end = self
                .shared
                .session_end_changed
                .wait_timeout(end, left)
                .unwrap()
                .0;
        }
        *end
    }

    /// Waits for the last translations after end of stream. Live, time goes on meanwhile: the
    /// output keeps being written `latency` behind where the input would be, so that what the
    /// engine still says is placed (and pushed) on time rather than after the drain.
    fn wait_drain(&self, deadline: Instant) -> SessionEnd {
        let live = self
            .state
            .lock()
            .unwrap()
            .as_ref()
            .is_some_and(|s| s.upstream_live == Some(true));
        if !live {
            return self.wait_session_end(deadline);
        }
        let started = Instant::now();
        let input_end = self.shared.output.lock().unwrap().input_end;
        loop {
            let step = (Instant::now() + DRAIN_STEP).min(deadline);
            let end = self.wait_session_end(step);
            if end != SessionEnd::Running || Instant::now() >= deadline {
                return end;
            }
            if let Some(input_end) = input_end {
                let elapsed = time_to_samples(gst::ClockTime::from_nseconds(
                    started.elapsed().as_nanos() as u64,
                ));
                let mut output = self.shared.output.lock().unwrap();
                let items = output.input_reached(input_end + elapsed);
                self.shared.push_items(items);
            }
        }
    }

    /// Whether upstream is live, and its latency.
    fn upstream_liveness(&self) -> (bool, gst::ClockTime) {
        let mut query = gst::query::Latency::new();
        if !self.sinkpad.peer_query(&mut query) {
            return (false, gst::ClockTime::ZERO);
        }
        let (live, min, _) = query.result();
        (live, min)
    }

    fn chain(&self, buffer: gst::Buffer) -> Result<gst::FlowSuccess, gst::FlowError> {
        if self.failed() {
            return Err(gst::FlowError::Error);
        }
        let needs_liveness = self
            .state
            .lock()
            .unwrap()
            .as_ref()
            .is_some_and(|s| s.upstream_live.is_none());
        if needs_liveness {
            let (live, upstream_latency) = self.upstream_liveness();
            if let Some(state) = self.state.lock().unwrap().as_mut() {
                state.upstream_live = Some(live);
                state.upstream_latency = upstream_latency;
                if let Some(connection) = &state.connection {
                    connection.set_lossless(!live);
                }
                self.shared.output.lock().unwrap().set_live(live);
            }
        }
        self.pace(buffer.pts());

        {
            let mut state = self.state.lock().unwrap();
            let state = state.as_mut().ok_or(gst::FlowError::Flushing)?;
            let Some(converter) = state.converter.as_mut() else {
                gst::element_imp_error!(
                    self,
                    gst::CoreError::Negotiation,
                    ("No caps before the first buffer")
                );
                return Err(gst::FlowError::NotNegotiated);
            };
            let rate = converter.in_info().rate() as u64;
            let map = buffer.map_readable().map_err(|_| gst::FlowError::Error)?;
            let frames = (map.len() / converter.in_info().bpf() as usize) as u64;
            let mut pts = buffer
                .pts()
                .or(state.next_pts)
                .unwrap_or_else(|| state.segment.start().unwrap_or(gst::ClockTime::ZERO));
            // Live input that comes after the element covered its time (it was missing for
            // long): what is left of it goes on from there, or the engine would hear that
            // time twice.
            let mut skip_bytes = 0;
            if let Some(covered) = state.covered_until
                && pts < covered
            {
                let bpf = converter.in_info().bpf() as usize;
                let late = input_gaps::frames_in(covered - pts, rate);
                if late >= frames {
                    gst::debug!(
                        CAT,
                        imp = self,
                        "input at {pts} came after its time was covered"
                    );
                    return Ok(gst::FlowSuccess::Ok);
                }
                skip_bytes = late as usize * bpf;
                pts = covered;
            }
            let duration = gst::ClockTime::from_nseconds(
                ((frames - (skip_bytes / converter.in_info().bpf() as usize) as u64) as u128
                    * 1_000_000_000
                    / rate as u128) as u64,
            );

            let mut output = self.shared.output.lock().unwrap();
            let origin = *output.origin.get_or_insert(pts);
            let expected = *state.next_pts.get_or_insert(pts);
            if pts > expected + GAP_TOLERANCE {
                gst::debug!(
                    CAT,
                    imp = self,
                    "input gap of {}: sending silence",
                    pts - expected
                );
                state.fill_gap(pts - expected, &self.shared.mix, &mut output);
            }
            let converted = state
                .converter
                .as_mut()
                .map(|c| c.convert(&map[skip_bytes..]))
                .unwrap_or_default();
            drop(map);
            if !converted.is_empty() {
                state.gap_heard = 0;
            }
            state.send(&converted);
            state.hand_over(&self.shared.mix, &mut output);
            state.next_pts = Some((pts + duration).max(expected));
            let items = output.input_reached(state.input_end(origin));
            self.shared.push_items(items);
        }
        self.send_outgoing();
        self.audio_flow()
    }

    /// Hands the full chunks to the connection, with no element lock held: non-live input waits
    /// for room (faster than real time must slow down, not lose audio); live input never waits,
    /// and a chunk that finds the queue full is dropped and counted.
    fn send_outgoing(&self) {
        let (connection, chunks, wait) = {
            let mut state = self.state.lock().unwrap();
            let Some(state) = state.as_mut() else { return };
            (
                state.connection.clone(),
                std::mem::take(&mut state.outgoing),
                state.upstream_live == Some(false),
            )
        };
        let Some(connection) = connection else { return };
        let mut dropped = 0;
        for chunk in chunks {
            if wait {
                connection
                    .send_audio_waiting(chunk, || self.shared.audio.is_flushing() || self.failed());
            } else if connection.send_audio(chunk).is_err() {
                dropped += 1;
            }
        }
        if dropped > 0 {
            if let Some(state) = self.state.lock().unwrap().as_mut() {
                state.dropped_chunks += dropped;
            }
            self.warn("the connection is not keeping up: audio chunks were dropped");
        }
    }

    /// Waits while the audio queue is full (backpressure from downstream) and returns the
    /// combined flow result for upstream.
    fn audio_flow(&self) -> Result<gst::FlowSuccess, gst::FlowError> {
        match self.shared.audio.wait_for_room() {
            // Audio unlinked is fine while a text pad still carries the subtitles.
            Err(gst::FlowError::NotLinked)
                if self.subtitle_srcpad.is_linked() || self.source_subtitle_srcpad.is_linked() =>
            {
                Ok(gst::FlowSuccess::Ok)
            }
            Err(gst::FlowError::Error) if self.failed() => Err(gst::FlowError::Error),
            other => other,
        }
    }

    /// GAP on the input: time passes with nothing to hear.
    fn handle_gap(&self, pts: gst::ClockTime, duration: Option<gst::ClockTime>) {
        let Some(duration) = duration else { return };
        {
            let mut state = self.state.lock().unwrap();
            let Some(state) = state.as_mut() else { return };
            let mut output = self.shared.output.lock().unwrap();
            let origin = *output.origin.get_or_insert(pts);
            let start = state.next_pts.unwrap_or(pts).min(pts);
            let end = pts + duration;
            if end > start {
                state.fill_gap(end - start, &self.shared.mix, &mut output);
            }
            state.hand_over(&self.shared.mix, &mut output);
            state.next_pts = Some(end.max(state.next_pts.unwrap_or(end)));
            let items = output.input_reached(state.input_end(origin));
            self.shared.push_items(items);
        }
        self.send_outgoing();
        let _ = self.audio_flow();
    }

    /// EOS: flush the input, close the session, wait (bounded) for the last translations, write
    /// them out, then EOS on every src pad.
    fn handle_eos(&self) -> bool {
        let (drain_timeout, connect_timeout) = {
            let settings = self.settings.lock().unwrap();
            (
                Duration::from_millis(settings.drain_timeout_ms.into()),
                Duration::from_millis(settings.connect_timeout_ms.into()),
            )
        };
        let connection = {
            let mut state = self.state.lock().unwrap();
            let Some(state) = state.as_mut() else {
                return false;
            };
            let tail = state
                .converter
                .as_mut()
                .map(|c| c.drain())
                .unwrap_or_default();
            state.send(&tail);
            state.hand_over(&self.shared.mix, &mut self.shared.output.lock().unwrap());
            let last = std::mem::take(&mut state.chunk);
            if !last.is_empty() {
                state.outgoing.push(last);
            }
            state.at_eos = true;
            state.connection.clone()
        };
        self.send_outgoing();
        match &connection {
            Some(connection) => connection.close(),
            None => self.shared.set_session_end(SessionEnd::Finished),
        }
        // The sessions have their own time limits (connecting, then draining); this one only
        // guards against a task that died.
        let deadline = Instant::now() + connect_timeout + drain_timeout + Duration::from_secs(3);
        let end = self.wait_drain(deadline);
        if end == SessionEnd::Cancelled {
            return false;
        }
        if end == SessionEnd::Running {
            self.warn("the session did not finish in time after end of stream");
            // What it still had is lost: counted, so the final statistics say so.
            if let Some(connection) = &connection {
                connection.abandon();
            }
        }
        let (origin, utterances, items) = {
            let state = self.state.lock().unwrap();
            let Some(state) = state.as_ref() else {
                return false;
            };
            let mut output = self.shared.output.lock().unwrap();
            if let Some(origin) = output.origin {
                // The input end as the streaming thread last saw it, including a trailing gap.
                output.input_end = Some(state.input_end(origin));
            }
            let items = output.finish();
            let (samples_sent, samples_received) = state.samples_exchanged();
            gst::info!(
                CAT,
                imp = self,
                "end of stream: {} s of audio sent, {} s of translation received, output ends at {}",
                samples_sent as f64 / SAMPLE_RATE as f64,
                samples_received as f64 / SAMPLE_RATE as f64,
                output.origin.unwrap_or(gst::ClockTime::ZERO)
                    + samples_to_time(output.timeline.written()),
            );
            (output.origin, output.take_utterances(), items)
        };
        // The last segments' ear-voice spans, with no lock held.
        self.report_utterances(origin, utterances);
        // The stream's final figures (what went untranslated among them), once, before the
        // end of stream goes downstream: an application that stops at EOS has them.
        self.post_element_message(self.stats());
        self.shared.push_items(items);
        let _ = self.audio_flow();
        true
    }

    fn handle_caps(&self, caps: &gst::CapsRef) -> bool {
        let info = match gst_audio::AudioInfo::from_caps(caps) {
            Ok(info) => info,
            Err(err) => {
                gst::element_imp_error!(
                    self,
                    gst::CoreError::Negotiation,
                    ("Unusable caps {caps}: {err}")
                );
                return false;
            }
        };
        let mut state = self.state.lock().unwrap();
        let Some(state) = state.as_mut() else {
            return false;
        };
        if state
            .converter
            .as_ref()
            .is_some_and(|c| c.in_info() == &info)
        {
            return true;
        }
        // Keep what the old converter still holds before switching formats.
        if let Some(tail) = state.converter.as_mut().map(|c| c.drain()) {
            state.send(&tail);
        }
        match EngineFormatConverter::new(&info) {
            Ok(converter) => {
                gst::info!(CAT, imp = self, "converting {caps} to 24 kHz mono S16LE");
                state.converter = Some(converter);
                true
            }
            Err(err) => {
                gst::element_imp_error!(
                    self,
                    gst::CoreError::Negotiation,
                    ("Cannot convert {caps}: {err}")
                );
                false
            }
        }
    }

    /// Sticky events each src pad needs before data: stream-start, caps, language tag.
    fn stream_start(&self, group_id: Option<gst::GroupId>) {
        let language = self.settings.lock().unwrap().target_language.clone();
        let obj = self.obj();
        for (pad, name) in [
            (&self.srcpad, "translation"),
            (&self.subtitle_srcpad, "subtitles"),
            (&self.source_subtitle_srcpad, "source-subtitles"),
        ] {
            let stream_id = pad.create_stream_id(&*obj, Some(name));
            let mut builder = gst::event::StreamStart::builder(&stream_id);
            if let Some(group_id) = group_id {
                builder = builder.group_id(group_id);
            }
            let queue = self.queue_for(pad);
            queue.push_nowait(Item::Event(builder.build()));
            queue.push_nowait(Item::Event(gst::event::Caps::new(&pad.pad_template_caps())));
            if pad != &self.source_subtitle_srcpad {
                queue.push_nowait(Item::Event(language_tags(&language)));
            }
        }
    }

    fn sink_event(&self, pad: &gst::Pad, event: gst::Event) -> bool {
        use gst::EventView;
        gst::log!(CAT, obj = pad, "event {event:?}");
        match event.view() {
            EventView::StreamStart(ev) => {
                self.stream_start(ev.group_id());
                true
            }
            EventView::Caps(ev) => self.handle_caps(ev.caps()),
            EventView::Segment(ev) => {
                let Ok(segment) = ev.segment().clone().downcast::<gst::ClockTime>() else {
                    gst::element_imp_error!(
                        self,
                        gst::StreamError::Format,
                        ("Only TIME segments are supported")
                    );
                    return false;
                };
                if let Some(state) = self.state.lock().unwrap().as_mut() {
                    state.segment = segment;
                }
                for queue in self.shared.queues() {
                    queue.push_nowait(Item::Event(event.clone()));
                }
                true
            }
            EventView::Gap(ev) => {
                let (pts, duration) = ev.get();
                self.handle_gap(pts, duration);
                true
            }
            EventView::Eos(_) => self.handle_eos(),
            EventView::FlushStart(_) => {
                self.shared.set_flushing(true);
                self.cancel_waits();
                for pad in self.src_pads() {
                    pad.push_event(event.clone());
                    let _ = pad.pause_task();
                }
                true
            }
            EventView::FlushStop(_) => {
                self.reset_stream();
                self.shared.set_flushing(false);
                for pad in self.src_pads() {
                    pad.push_event(event.clone());
                    if pad.is_active() {
                        let _ = self.start_task(pad);
                    }
                }
                true
            }
            EventView::Tag(_) => true,
            _ if event.is_serialized() => {
                // Under the output lock: in order with audio the session callback queues.
                let output = self.shared.output.lock().unwrap();
                self.shared.audio.push_nowait(Item::Event(event));
                drop(output);
                let _ = self.audio_flow();
                true
            }
            _ => self.srcpad.push_event(event),
        }
    }

    /// After a flush: a new session and an empty timeline; the format stays.
    fn reset_stream(&self) {
        let mut output = self.new_output();
        let mut state = self.state.lock().unwrap();
        let Some(state) = state.as_mut() else { return };
        state.connection = None;
        if let Some(converter) = &mut state.converter {
            converter.reset();
        }
        state.chunk.clear();
        state.outgoing.clear();
        state.heard.clear();
        state.engine_samples = 0;
        state.gap_heard = 0;
        state.covered_until = None;
        state.at_eos = false;
        state.next_pts = None;
        if let Some(live) = state.upstream_live {
            output.set_live(live);
        }
        *self.shared.output.lock().unwrap() = output;
        if let Err(err) = self.start_connection(state) {
            gst::element_imp_error!(self, gst::LibraryError::Settings, ("{err}"));
        }
    }

    /// Upstream events from the src pads. A pipeline seek reaches every sink, so the same seek
    /// arrives on each src pad: forward it once, or upstream would flush and seek twice.
    fn src_event(&self, pad: &gst::Pad, event: gst::Event) -> bool {
        if event.type_() == gst::EventType::Seek {
            let mut last = self.last_seek.lock().unwrap();
            if *last == Some(event.seqnum()) {
                gst::debug!(
                    CAT,
                    obj = pad,
                    "seek {:?} already forwarded",
                    event.seqnum()
                );
                return true;
            }
            *last = Some(event.seqnum());
        }
        self.sinkpad.push_event(event)
    }

    fn src_query(&self, pad: &gst::Pad, query: &mut gst::QueryRef) -> bool {
        match query.view_mut() {
            gst::QueryViewMut::Latency(q) => {
                // Answered from the settings alone: no connection is needed to know it.
                let latency = self.settings.lock().unwrap().reported_latency();
                let mut upstream = gst::query::Latency::new();
                if self.sinkpad.peer_query(&mut upstream) {
                    let (live, min, max) = upstream.result();
                    q.set(live, min + latency, max.map(|max| max + latency));
                } else {
                    q.set(false, latency, gst::ClockTime::NONE);
                }
                true
            }
            _ => gst::Pad::query_default(pad, Some(&*self.obj()), query),
        }
    }

    /// An empty output side for the current settings (takes the settings lock); the mix starts
    /// over with it.
    fn new_output(&self) -> Output {
        let settings = self.settings.lock().unwrap();
        *self.shared.mix.lock().unwrap() = OriginalMix::new(settings.mix_settings());
        *self.shared.ear_voice.lock().unwrap() = EarVoiceSpans::default();
        let write_lag = time_to_samples(gst::ClockTime::from_mseconds(settings.latency_ms.into()));
        let outage_buffer = time_to_samples(gst::ClockTime::from_mseconds(
            settings.outage_buffer_ms.into(),
        ));
        Output::new(
            settings.cue_settings(),
            settings.pacing,
            write_lag,
            outage_buffer,
        )
    }

    /// Posts the `stats` structure on the bus every `stats-interval`, for as long as the stream
    /// runs (the task ends with the state).
    fn start_stats_task(&self, interval_ms: u32) -> Option<tokio::task::AbortHandle> {
        if interval_ms == 0 {
            return None;
        }
        let element = self.obj().downgrade();
        let period = Duration::from_millis(interval_ms.into());
        let task = crate::runtime::RUNTIME.spawn(async move {
            let mut ticks = tokio::time::interval(period);
            ticks.tick().await;
            loop {
                ticks.tick().await;
                let Some(element) = element.upgrade() else {
                    return;
                };
                let imp = element.imp();
                imp.post_element_message(imp.stats());
            }
        });
        Some(task.abort_handle())
    }

    /// Live input that stops coming (a stalled source, a timestamp jump) is noticed by the clock,
    /// not by the next buffer: the output is checked when input on time would become late, and
    /// every [`input_gaps::WATCH_PERIOD`] while it is (see [`input_gaps::watch_sleep`]).
    fn start_gap_watch(&self) -> tokio::task::AbortHandle {
        let element = self.obj().downgrade();
        let task = crate::runtime::RUNTIME.spawn(async move {
            loop {
                let Some(element) = element.upgrade() else {
                    return;
                };
                let sleep = element.imp().cover_missing_input();
                drop(element);
                tokio::time::sleep(sleep).await;
            }
        });
        task.abort_handle()
    }

    /// Live: while input is missing, the output goes on with the clock (silence, on time), and
    /// once it has been missing for [`input_gaps::ENGINE_WAIT`] the engine hears silence for it
    /// (at most a few seconds a gap), so that it finishes the last words meanwhile. Returns how
    /// long the watch may sleep before the next check.
    fn cover_missing_input(&self) -> Duration {
        if self.obj().current_state() != gst::State::Playing || self.shared.audio.is_flushing() {
            return input_gaps::WATCH_PERIOD;
        }
        let (Some(clock), Some(base_time)) = (self.obj().clock(), self.obj().base_time()) else {
            return input_gaps::WATCH_PERIOD;
        };
        let now = clock.time().saturating_sub(base_time);
        {
            let mut state = self.state.lock().unwrap();
            let Some(state) = state.as_mut() else {
                return input_gaps::WATCH_PERIOD;
            };
            if state.upstream_live != Some(true) || state.at_eos {
                return input_gaps::WATCH_PERIOD;
            }
            let Some(next_pts) = state.next_pts else {
                return input_gaps::WATCH_PERIOD;
            };
            let Some(end) = state.segment.to_running_time(next_pts) else {
                return input_gaps::WATCH_PERIOD;
            };
            // When the next input should have come, at the latest.
            let due = end + state.upstream_latency;
            let mut output = self.shared.output.lock().unwrap();
            let Some(origin) = output.origin else {
                return input_gaps::WATCH_PERIOD;
            };
            let input_end = state.input_end(origin);
            if now <= due + input_gaps::OUTPUT_WAIT {
                return input_gaps::watch_sleep(due + input_gaps::OUTPUT_WAIT - now);
            }
            // Written as if the input had come on time.
            let items = output.clock_reached(input_end + time_to_samples(now - due));
            self.shared.push_items(items);
            let Some(missing) = now.checked_sub(due + input_gaps::ENGINE_WAIT) else {
                return input_gaps::WATCH_PERIOD;
            };
            if missing < GAP_TOLERANCE {
                return input_gaps::WATCH_PERIOD;
            }
            gst::debug!(
                CAT,
                imp = self,
                "live input missing for {missing} more: covering it"
            );
            state.fill_gap(missing, &self.shared.mix, &mut output);
            state.hand_over(&self.shared.mix, &mut output);
            let covered = next_pts + missing;
            state.next_pts = Some(covered);
            state.covered_until = Some(covered);
            let items = output.input_reached(state.input_end(origin));
            self.shared.push_items(items);
        }
        self.send_outgoing();
        input_gaps::WATCH_PERIOD
    }

    /// READY→PAUSED: settings are checked here, before any connection.
    fn prepare(&self) -> Result<(), gst::StateChangeError> {
        let (latency_samples, stats_interval_ms) = {
            let settings = self.settings.lock().unwrap();
            if let Err(err) = settings.connection_params() {
                gst::element_imp_error!(self, gst::LibraryError::Settings, ("{}", err));
                return Err(gst::StateChangeError);
            }
            (
                time_to_samples(gst::ClockTime::from_mseconds(settings.latency_ms.into())),
                settings.stats_interval_ms,
            )
        };
        *self.shared.output.lock().unwrap() = self.new_output();
        *self.shared.last_warning.lock().unwrap() = None;
        self.shared.delays.lock().unwrap().clear();
        let mut state = State {
            connection: None,
            converter: None,
            chunk: Vec::with_capacity(CHUNK_SAMPLES * 2),
            outgoing: Vec::new(),
            heard: Vec::new(),
            engine_samples: 0,
            stats_task: self.start_stats_task(stats_interval_ms),
            segment: gst::FormattedSegment::new(),
            next_pts: None,
            upstream_live: None,
            upstream_latency: gst::ClockTime::ZERO,
            gap_heard: 0,
            covered_until: None,
            at_eos: false,
            latency_samples,
            dropped_chunks: 0,
            gap_watch: Some(self.start_gap_watch()),
        };
        if let Err(err) = self.start_connection(&mut state) {
            gst::element_imp_error!(self, gst::LibraryError::Settings, ("{}", err));
            return Err(gst::StateChangeError);
        }
        *self.state.lock().unwrap() = Some(state);
        Ok(())
    }

    fn stats(&self) -> gst::Structure {
        let state = self.state.lock().unwrap();
        let ((sent, received), dropped) = state
            .as_ref()
            .map_or(((0, 0), 0), |s| (s.samples_exchanged(), s.dropped_chunks));
        let connection = state.as_ref().and_then(|s| s.connection.clone());
        drop(state);
        let counter = |get: fn(&crate::connection::ConnectionStats) -> &AtomicU64| {
            connection
                .as_ref()
                .map_or(0, |c| get(c.stats()).load(Ordering::Relaxed))
        };
        let (written, pending, dropped_translation, silence_skipped) = {
            let output = self.shared.output.lock().unwrap();
            (
                output.timeline.written(),
                output.timeline.pending(),
                output.timeline.dropped(),
                output.timeline.silence_skipped(),
            )
        };
        let (overproduced, gap_skipped, text_dropped, source_text_dropped) = {
            let output = self.shared.output.lock().unwrap();
            (
                output.speech_budget.dropped(),
                output.sent_to_input.total_skipped(),
                output.timeline.text_dropped(),
                output.timeline.source_text_dropped(),
            )
        };
        let mut delays: Vec<u64> = self.shared.delays.lock().unwrap().iter().copied().collect();
        delays.sort_unstable();
        let percentile = |p: f64| {
            if delays.is_empty() {
                0.0
            } else {
                delays[((delays.len() - 1) as f64 * p).round() as usize] as f64 / 1000.0
            }
        };
        let seconds = |samples: u64| samples as f64 / SAMPLE_RATE as f64;
        let (speech_span, caption_span) = {
            let spans = self.shared.ear_voice.lock().unwrap();
            (spans.speech(), spans.caption())
        };
        gst::Structure::builder("realtimetranslate/stats")
            .field("utterances", speech_span.count as u64)
            .field("ear-voice-span-p50", seconds(speech_span.p50))
            .field("ear-voice-span-p90", seconds(speech_span.p90))
            .field("ear-voice-span-max", seconds(speech_span.max))
            .field("caption-span-p50", seconds(caption_span.p50))
            .field("caption-span-p90", seconds(caption_span.p90))
            .field("caption-span-max", seconds(caption_span.max))
            .field("audio-sent-seconds", seconds(sent))
            .field("audio-received-seconds", seconds(received))
            .field("output-seconds", seconds(written))
            .field("translation-queued-seconds", seconds(pending as u64))
            .field("translation-dropped-seconds", seconds(dropped_translation))
            .field(
                "translation-silence-skipped-seconds",
                seconds(silence_skipped),
            )
            .field("translation-overproduced-seconds", seconds(overproduced))
            .field("input-gap-skipped-seconds", seconds(gap_skipped))
            .field("subtitle-dropped-characters", text_dropped)
            .field("source-subtitle-dropped-characters", source_text_dropped)
            .field("input-chunks-dropped", dropped)
            .field(
                "connection-state",
                *self.shared.connection_state.lock().unwrap(),
            )
            .field("sessions", counter(|s| &s.sessions_opened))
            .field("rotations", counter(|s| &s.rotations))
            .field("reconnects", counter(|s| &s.reconnects))
            .field(
                "buffered-seconds",
                seconds(counter(|s| &s.buffered_samples)),
            )
            .field(
                "untranslated-seconds",
                seconds(counter(|s| &s.untranslated_samples)),
            )
            .field(
                "translation-held-dropped-seconds",
                seconds(counter(|s| &s.held_dropped_samples)),
            )
            .field("audio-queue-buffers", self.shared.audio.len() as u64)
            .field("subtitle-queue-items", self.shared.text.len() as u64)
            .field("output-delay-p50-ms", percentile(0.5))
            .field("output-delay-p99-ms", percentile(0.99))
            .field("output-delay-samples", delays.len() as u64)
            .build()
    }

    fn set_target_language(&self, language: String) {
        let backend = self.settings.lock().unwrap().backend;
        if let Some(message) = language_problem(backend, &language) {
            // Kept so that going to PAUSED fails with a clear message; in PLAYING, refused.
            gst::error!(CAT, imp = self, "{message}");
            if self.state.lock().unwrap().is_some() {
                gst::element_imp_warning!(self, gst::LibraryError::Settings, ("{}", message));
                return;
            }
        }
        let config = {
            let mut settings = self.settings.lock().unwrap();
            if settings.target_language == language {
                return;
            }
            settings.target_language = language.clone();
            settings.session_config()
        };
        if let Some(state) = self.state.lock().unwrap().as_ref()
            && let Some(connection) = &state.connection
        {
            gst::info!(CAT, imp = self, "target language now {language}");
            connection.update(config);
            for queue in [&self.shared.audio, &self.shared.text] {
                queue.push_nowait(Item::Event(language_tags(&language)));
            }
        }
    }
}

fn language_tags(language: &str) -> gst::Event {
    let mut tags = gst::TagList::new();
    tags.get_mut()
        .expect("new tag list")
        .add::<gst::tags::LanguageCode>(&language, gst::TagMergeMode::Replace);
    gst::event::Tag::new(tags)
}

/// Output audio in another format than 24 kHz mono (allowed by the protocol, rare in practice).
fn resample_to_engine_format(samples: &[i16], rate: u32, channels: u16) -> Vec<i16> {
    let Ok(info) =
        gst_audio::AudioInfo::builder(gst_audio::AudioFormat::S16le, rate, channels.into()).build()
    else {
        return Vec::new();
    };
    let Ok(mut converter) = EngineFormatConverter::new(&info) else {
        return Vec::new();
    };
    let bytes: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
    let mut out = converter.convert(&bytes);
    out.extend(converter.drain());
    out
}

#[glib::object_subclass]
impl ObjectSubclass for RealtimeTranslate {
    const NAME: &'static str = "GstRealtimeTranslate";
    type Type = super::RealtimeTranslate;
    type ParentType = gst::Element;

    fn with_class(klass: &Self::Class) -> Self {
        let templ = klass.pad_template("sink").unwrap();
        let sinkpad = gst::Pad::builder_from_template(&templ)
            .chain_function(|_pad, parent, buffer| {
                RealtimeTranslate::catch_panic_pad_function(
                    parent,
                    || Err(gst::FlowError::Error),
                    |imp| imp.chain(buffer),
                )
            })
            .event_function(|pad, parent, event| {
                RealtimeTranslate::catch_panic_pad_function(
                    parent,
                    || false,
                    |imp| imp.sink_event(pad, event),
                )
            })
            .flags(gst::PadFlags::ACCEPT_TEMPLATE)
            .build();
        let make_src = |name: &str| {
            let templ = klass.pad_template(name).unwrap();
            gst::Pad::builder_from_template(&templ)
                .activatemode_function(|pad, parent, mode, active| {
                    RealtimeTranslate::catch_panic_pad_function(
                        parent,
                        || Err(gst::loggable_error!(CAT, "panic in activate")),
                        |imp| imp.src_activate_mode(pad, mode, active),
                    )
                })
                .event_function(|pad, parent, event| {
                    RealtimeTranslate::catch_panic_pad_function(
                        parent,
                        || false,
                        |imp| imp.src_event(pad, event),
                    )
                })
                .query_function(|pad, parent, query| {
                    RealtimeTranslate::catch_panic_pad_function(
                        parent,
                        || false,
                        |imp| imp.src_query(pad, query),
                    )
                })
                .flags(gst::PadFlags::FIXED_CAPS)
                .build()
        };
        let shared = Arc::new(Shared {
            output: Mutex::new(Output::new(
                Settings::default().cue_settings(),
                Pacing::default(),
                0,
                0,
            )),
            mix: Mutex::new(OriginalMix::new(Settings::default().mix_settings())),
            audio: PadQueue::new(AUDIO_QUEUE_ITEMS),
            text: PadQueue::new(TEXT_QUEUE_ITEMS),
            source_text: PadQueue::new(TEXT_QUEUE_ITEMS),
            session_end: Mutex::new(SessionEnd::Running),
            session_end_changed: Condvar::new(),
            generation: AtomicU64::new(0),
            delays: Mutex::new(std::collections::VecDeque::new()),
            last_warning: Mutex::new(None),
            connection_state: Mutex::new("connecting"),
            ear_voice: Mutex::new(EarVoiceSpans::default()),
        });
        Self {
            sinkpad,
            srcpad: make_src("src"),
            subtitle_srcpad: make_src("subtitle_src"),
            source_subtitle_srcpad: make_src("source_subtitle_src"),
            settings: Mutex::new(Settings::default()),
            state: Mutex::new(None),
            shared,
            pacing_wait: Mutex::new(None),
            last_seek: Mutex::new(None),
        }
    }
}

impl ObjectImpl for RealtimeTranslate {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: Lazy<Vec<glib::ParamSpec>> = Lazy::new(|| {
            let d = Settings::default();
            vec![
                glib::ParamSpecString::builder("api-key")
                    .nick("API key")
                    .blurb("Key for the translation service (write-only; OPENAI_API_KEY is used when unset)")
                    .write_only()
                    .mutable_ready()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("backend", d.backend)
                    .nick("Backend")
                    .blurb("Translation engine")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("url")
                    .nick("URL")
                    .blurb("WebSocket endpoint of the translation service (a model parameter is added unless present)")
                    .default_value(Some(settings::DEFAULT_URL))
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("model")
                    .nick("Model")
                    .blurb("Translation model (backend=local: the recogniser, whisper-base, whisper-tiny.en or pocketsphinx; left at the default: whisper-base)")
                    .default_value(Some(settings::DEFAULT_MODEL))
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("target-language")
                    .nick("Target language")
                    .blurb("Language to translate into: es pt fr ja ru zh de ko hi id vi it en; backend=local: es ca gl eo en (can change while playing)")
                    .default_value(Some(settings::DEFAULT_TARGET_LANGUAGE))
                    .mutable_playing()
                    .build(),
                glib::ParamSpecString::builder("source-language")
                    .nick("Source language")
                    .blurb("backend=local: the spoken language (en, fr, de…), empty to detect it per utterance")
                    .default_value(Some(""))
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("voice")
                    .nick("Voice")
                    .blurb("Voice of the interpreter (backend=openai-realtime only, e.g. marin, cedar; the translation model follows the speaker's voice)")
                    .default_value(Some(settings::DEFAULT_VOICE))
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("transcription-model")
                    .nick("Transcription model")
                    .blurb("Model for the source-language transcript on source_subtitle_src, e.g. gpt-realtime-whisper (empty: off)")
                    .default_value(Some(""))
                    .mutable_playing()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("noise-reduction", d.noise_reduction)
                    .nick("Noise reduction")
                    .blurb("Noise reduction the service applies to the input")
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("latency")
                    .nick("Latency")
                    .blurb("How far output is written behind the input, in ms (the element reports this + 250 ms, + 4 s with subtitle-mode=cues): small = low delay, translation heard as soon as it arrives; at or above the engine's delay (3000-5000) = aligned, translation and captions start with the speech they translate")
                    .maximum(30_000)
                    .default_value(d.latency_ms)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("pacing", d.pacing)
                    .nick("Pacing")
                    .blurb("How non-live input is fed to the engine")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("subtitle-mode", d.subtitle_mode)
                    .nick("Subtitle mode")
                    .blurb(
                        "live: words pushed as they arrive, at their speech, a line end after each \
                         sentence (roll-up captions, no added latency); cues: whole pop-on cues \
                         (files, pop-on captions; the reported latency grows by 4 s)",
                    )
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("safety-identifier")
                    .nick("Safety identifier")
                    .blurb("Hashed end-user id sent as OpenAI-Safety-Identifier (empty: none)")
                    .default_value(Some(""))
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("drain-timeout")
                    .nick("Drain timeout")
                    .blurb("At end of stream, how long to wait in ms for the last translations")
                    .maximum(600_000)
                    .default_value(d.drain_timeout_ms)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("connect-timeout")
                    .nick("Connect timeout")
                    .blurb("How long to wait in ms for the service to accept the connection")
                    .minimum(100)
                    .maximum(600_000)
                    .default_value(d.connect_timeout_ms)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("keepalive-timeout")
                    .nick("Keep-alive timeout")
                    .blurb("A connection on which nothing arrives for this many ms (pings are sent meanwhile) is treated as dropped")
                    .minimum(500)
                    .maximum(600_000)
                    .default_value(d.keepalive_timeout_ms)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("tls-ca-file")
                    .nick("TLS CA file")
                    .blurb("PEM file of extra certificate authorities to trust for wss:// (e.g. a self-signed server); the public web roots are always trusted")
                    .default_value(Some(""))
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("outage-buffer")
                    .nick("Outage buffer")
                    .blurb("While no session takes audio (connecting, reconnecting), the most recent this many ms are kept and translated once connected; older audio is not translated")
                    .maximum(120_000)
                    .default_value(d.outage_buffer_ms)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("rotation-margin")
                    .nick("Rotation margin")
                    .blurb("The next session is opened this many ms before the current one expires and takes over at a pause")
                    .minimum(1_000)
                    .maximum(1_800_000)
                    .default_value(d.rotation_margin_ms)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("reconnect-backoff-max")
                    .nick("Reconnect back-off maximum")
                    .blurb("Longest wait in ms between reconnection attempts (the wait starts at 0.5 s and doubles, with jitter)")
                    .minimum(500)
                    .maximum(600_000)
                    .default_value(d.backoff_max_ms)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecInt::builder("reconnect-attempts")
                    .nick("Reconnect attempts")
                    .blurb("Failed connection attempts in a row after which the element stops with an error (-1: keep trying for ever, as a 24/7 broadcast wants)")
                    .minimum(-1)
                    .default_value(d.reconnect_attempts)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("fallback", d.fallback)
                    .nick("Fallback")
                    .blurb("What src carries while no session is connected")
                    .mutable_playing()
                    .build(),
                glib::ParamSpecDouble::builder("original-volume")
                    .nick("Original volume")
                    .blurb("Level of the original audio mixed under the translation on src (0: translation only)")
                    .minimum(0.0)
                    .maximum(1.0)
                    .default_value(d.original_volume)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecDouble::builder("duck-level")
                    .nick("Duck level")
                    .blurb("Fraction of original-volume left while translated speech plays (0.25 = -12 dB)")
                    .minimum(0.0)
                    .maximum(1.0)
                    .default_value(d.duck_level)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("duck-attack")
                    .nick("Duck attack")
                    .blurb("Time in ms to duck the original when translated speech starts")
                    .maximum(5_000)
                    .default_value(d.duck_attack_ms)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("duck-release")
                    .nick("Duck release")
                    .blurb("Time in ms to bring the original back up when translated speech stops")
                    .maximum(10_000)
                    .default_value(d.duck_release_ms)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("subtitle-line-chars")
                    .nick("Subtitle line length")
                    .blurb("Characters per subtitle line (CEA-608 shows 32, most players about 42)")
                    .minimum(10)
                    .maximum(200)
                    .default_value(d.subtitle_line_chars)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("subtitle-lines")
                    .nick("Subtitle lines")
                    .blurb("Lines per subtitle cue")
                    .minimum(1)
                    .maximum(4)
                    .default_value(d.subtitle_lines)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("subtitle-timeout")
                    .nick("Subtitle timeout")
                    .blurb("A cue with no new text and no speech left is taken off screen after this many ms (cues last at least 1 s)")
                    .minimum(200)
                    .maximum(30_000)
                    .default_value(d.subtitle_timeout_ms)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("stats-interval")
                    .nick("Statistics interval")
                    .blurb("Post the stats structure as an element message every this many ms (0: never)")
                    .maximum(3_600_000)
                    .default_value(d.stats_interval_ms)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoxed::builder::<gst::Structure>("stats")
                    .nick("Statistics")
                    .blurb("Seconds of audio sent and received, output delay percentiles, queue depths")
                    .read_only()
                    .build(),
            ]
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let string = || {
            value
                .get::<Option<String>>()
                .expect("type checked")
                .unwrap_or_default()
        };
        match pspec.name() {
            "target-language" => return self.set_target_language(string()),
            "transcription-model" | "noise-reduction" => {
                let config = {
                    let mut settings = self.settings.lock().unwrap();
                    if pspec.name() == "transcription-model" {
                        settings.transcription_model = string();
                    } else {
                        settings.noise_reduction =
                            value.get::<NoiseReduction>().expect("type checked");
                    }
                    settings.session_config()
                };
                if let Some(state) = self.state.lock().unwrap().as_ref()
                    && let Some(connection) = &state.connection
                {
                    connection.update(config);
                }
                return;
            }
            "fallback" | "original-volume" | "duck-level" | "duck-attack" | "duck-release" => {
                let mix = {
                    let mut settings = self.settings.lock().unwrap();
                    match pspec.name() {
                        "fallback" => settings.fallback = value.get().expect("type checked"),
                        "original-volume" => {
                            settings.original_volume = value.get().expect("type checked")
                        }
                        "duck-level" => settings.duck_level = value.get().expect("type checked"),
                        "duck-attack" => {
                            settings.duck_attack_ms = value.get().expect("type checked")
                        }
                        _ => settings.duck_release_ms = value.get().expect("type checked"),
                    }
                    settings.mix_settings()
                };
                self.shared.mix.lock().unwrap().set_settings(mix);
                return;
            }
            _ => {}
        }
        let mut settings = self.settings.lock().unwrap();
        match pspec.name() {
            "api-key" => settings.api_key = ApiKey::new(string()),
            "backend" => settings.backend = value.get::<Backend>().expect("type checked"),
            "url" => settings.url = string(),
            "model" => settings.model = string(),
            "voice" => settings.voice = string(),
            "source-language" => settings.source_language = string(),
            "latency" => settings.latency_ms = value.get().expect("type checked"),
            "pacing" => settings.pacing = value.get::<Pacing>().expect("type checked"),
            "subtitle-mode" => {
                settings.subtitle_mode = value.get::<SubtitleMode>().expect("type checked")
            }
            "safety-identifier" => settings.safety_identifier = string(),
            "drain-timeout" => settings.drain_timeout_ms = value.get().expect("type checked"),
            "connect-timeout" => settings.connect_timeout_ms = value.get().expect("type checked"),
            "keepalive-timeout" => {
                settings.keepalive_timeout_ms = value.get().expect("type checked")
            }
            "tls-ca-file" => settings.tls_ca_file = string(),
            "outage-buffer" => settings.outage_buffer_ms = value.get().expect("type checked"),
            "rotation-margin" => settings.rotation_margin_ms = value.get().expect("type checked"),
            "reconnect-backoff-max" => settings.backoff_max_ms = value.get().expect("type checked"),
            "reconnect-attempts" => {
                settings.reconnect_attempts = value.get().expect("type checked")
            }
            "subtitle-line-chars" => {
                settings.subtitle_line_chars = value.get().expect("type checked")
            }
            "subtitle-lines" => settings.subtitle_lines = value.get().expect("type checked"),
            "subtitle-timeout" => settings.subtitle_timeout_ms = value.get().expect("type checked"),
            "stats-interval" => settings.stats_interval_ms = value.get().expect("type checked"),
            name => unreachable!("unknown property {name}"),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        if pspec.name() == "stats" {
            return self.stats().to_value();
        }
        let settings = self.settings.lock().unwrap();
        match pspec.name() {
            "backend" => settings.backend.to_value(),
            "url" => settings.url.to_value(),
            "model" => settings.model.to_value(),
            "voice" => settings.voice.to_value(),
            "source-language" => settings.source_language.to_value(),
            "target-language" => settings.target_language.to_value(),
            "transcription-model" => settings.transcription_model.to_value(),
            "noise-reduction" => settings.noise_reduction.to_value(),
            "latency" => settings.latency_ms.to_value(),
            "pacing" => settings.pacing.to_value(),
            "subtitle-mode" => settings.subtitle_mode.to_value(),
            "safety-identifier" => settings.safety_identifier.to_value(),
            "drain-timeout" => settings.drain_timeout_ms.to_value(),
            "connect-timeout" => settings.connect_timeout_ms.to_value(),
            "keepalive-timeout" => settings.keepalive_timeout_ms.to_value(),
            "tls-ca-file" => settings.tls_ca_file.to_value(),
            "outage-buffer" => settings.outage_buffer_ms.to_value(),
            "rotation-margin" => settings.rotation_margin_ms.to_value(),
            "reconnect-backoff-max" => settings.backoff_max_ms.to_value(),
            "reconnect-attempts" => settings.reconnect_attempts.to_value(),
            "fallback" => settings.fallback.to_value(),
            "original-volume" => settings.original_volume.to_value(),
            "duck-level" => settings.duck_level.to_value(),
            "duck-attack" => settings.duck_attack_ms.to_value(),
            "duck-release" => settings.duck_release_ms.to_value(),
            "subtitle-line-chars" => settings.subtitle_line_chars.to_value(),
            "subtitle-lines" => settings.subtitle_lines.to_value(),
            "subtitle-timeout" => settings.subtitle_timeout_ms.to_value(),
            "stats-interval" => settings.stats_interval_ms.to_value(),
            name => unreachable!("property {name} is not readable"),
        }
    }

    fn constructed(&self) {
        self.parent_constructed();
        let obj = self.obj();
        obj.add_pad(&self.sinkpad).unwrap();
        obj.add_pad(&self.srcpad).unwrap();
        obj.add_pad(&self.subtitle_srcpad).unwrap();
        obj.add_pad(&self.source_subtitle_srcpad).unwrap();
    }
}

impl GstObjectImpl for RealtimeTranslate {}

impl ElementImpl for RealtimeTranslate {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static METADATA: Lazy<gst::subclass::ElementMetadata> = Lazy::new(|| {
            gst::subclass::ElementMetadata::new(
                "Realtime speech translation",
                "Filter/Audio/Converter/Text",
                "Translates live speech into speech and subtitles in another language, over a \
                 realtime translation engine (OpenAI realtime translation or Realtime, GPT \
                 Translator, or the offline engine)",
                "realtimetranslate developers",
            )
        });
        Some(&*METADATA)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: Lazy<Vec<gst::PadTemplate>> = Lazy::new(|| {
            use gst_audio::AudioFormat::*;
            let sink_caps = gst_audio::AudioCapsBuilder::new_interleaved()
                .format_list([
                    S16le, S16be, S32le, S32be, F32le, F32be, F64le, F64be, U8, S8, S24le, S24be,
                    S2432le, U16le,
                ])
                .rate_range(8_000..=192_000)
                .channels_range(1..=8)
                .build();
            let src_caps = gst_audio::AudioCapsBuilder::new_interleaved()
                .format(S16le)
                .rate(SAMPLE_RATE as i32)
                .channels(1)
                .build();
            let text_caps = gst::Caps::builder("text/x-raw")
                .field("format", "utf8")
                .build();
            let template = |name, direction, caps: &gst::Caps| {
                gst::PadTemplate::new(name, direction, gst::PadPresence::Always, caps).unwrap()
            };
            vec![
                template("sink", gst::PadDirection::Sink, &sink_caps),
                template("src", gst::PadDirection::Src, &src_caps),
                template("subtitle_src", gst::PadDirection::Src, &text_caps),
                template("source_subtitle_src", gst::PadDirection::Src, &text_caps),
            ]
        });
        TEMPLATES.as_ref()
    }

    fn change_state(
        &self,
        transition: gst::StateChange,
    ) -> Result<gst::StateChangeSuccess, gst::StateChangeError> {
        gst::debug!(CAT, imp = self, "{transition:?}");
        match transition {
            gst::StateChange::ReadyToPaused => self.prepare()?,
            gst::StateChange::PausedToReady => {
                self.shared.set_flushing(true);
                self.cancel_waits();
            }
            _ => {}
        }
        let result = self.parent_change_state(transition);
        {
            // Wakes a streaming thread waiting for PLAYING.
            let _guard = self.shared.session_end.lock().unwrap();
            self.shared.session_end_changed.notify_all();
        }
        match transition {
            gst::StateChange::PausedToReady => {
                *self.state.lock().unwrap() = None;
                *self.shared.output.lock().unwrap() = self.new_output();
            }
            gst::StateChange::ReadyToPaused if result.is_err() => {
                *self.state.lock().unwrap() = None;
            }
            _ => {}
        }
        result
    }
}
