//! The element: pads, properties, the streaming thread, and the connections' callbacks.
//!
//! Threads: the sink pad's streaming thread converts and chunks input once, hands full chunks to
//! every lane's connection (with no lock held) and advances every lane's output timeline (a lane
//! is one target language, see `lane.rs`); each connection's tasks (tokio) queue translations
//! into its lane's timeline, in session order; each src pad pushes from its own task, and an
//! audio pad mixes the original in as it pushes. Lock order: `settings` → `state` → a lane's
//! `output` → its `mix` → a pad queue's own lock; `requested` (the registry of requested lanes)
//! is only ever held alone. The connection's router lock (held while it calls back) comes before
//! every element lock, and no element lock is held while calling into a connection, except
//! `state` for its non-blocking requests. All of a lane's output is queued with its `output`
//! held, so the two producers stay in timeline order; no element lock is held across a push
//! downstream or a wait (clock, queue room, connection room, drain).

use super::enums::{Backend, NoiseReduction, Pacing, SubtitleMode};
use super::lane::{Feed, Lane, PadKind, SessionEnd};
use super::output::{Output, samples_to_time, time_to_samples};
use super::settings::{self, Settings, language_problem};
use crate::connection::{Connection, ConnectionEvent, ConnectionParams, ConnectionState};
use crate::convert::EngineFormatConverter;
use crate::input_gaps::{self, GAP_HEARD_SAMPLES};
use crate::mix::OriginalMix;
use crate::pad_queue::Item;
use crate::protocol::translation::SAMPLE_RATE;
use crate::secret::ApiKey;
use crate::session_types::{SessionError, SessionEvent};
use crate::timeline::Utterance;
use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use once_cell::sync::Lazy;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
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
/// Live, after end of stream, the output moves on in steps of this while the engine drains.
const DRAIN_STEP: Duration = Duration::from_millis(20);
/// Request pad templates: the name's tail is the target language (`src_fr`, `subtitle_src_fr`).
const AUDIO_REQUEST_TEMPLATE: &str = "src_%s";
const TEXT_REQUEST_TEMPLATE: &str = "subtitle_src_%s";

/// Per-stream state, created at READY→PAUSED and dropped at PAUSED→READY.
struct State {
    converter: Option<EngineFormatConverter>,
    /// Every lane's share of the input, the always lane's first.
    feeds: Vec<Feed>,
    /// Engine-format input not yet handed to the lanes (the original under the translation, the
    /// speech onsets).
    heard: Vec<i16>,
    /// PTS of the input's first sample; `None` until the first buffer or GAP.
    origin: Option<gst::ClockTime>,
    segment: gst::FormattedSegment<gst::ClockTime>,
    /// A segment came: a pad requested later gets it too.
    segment_seen: bool,
    /// The stream started (with this group id, if any): a pad requested later starts its own.
    started: Option<Option<gst::GroupId>>,
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
    /// Appends engine-format samples to every lane's outgoing stream; full 200 ms chunks wait in
    /// each feed for [`RealtimeTranslate::send_outgoing`].
    fn send(&mut self, samples: &[i16]) {
        for feed in &mut self.feeds {
            feed.send(samples);
        }
        self.heard.extend_from_slice(samples);
    }

    /// Hands the input heard so far to every lane's mix, so the original is there when output
    /// leaves, and to its speech-onset detector, so translations find their source.
    fn hand_over(&mut self) {
        if self.heard.is_empty() {
            return;
        }
        for feed in &self.feeds {
            feed.lane.input_heard(&self.heard);
        }
        self.heard.clear();
    }

    /// The input's origin, set by its first buffer or GAP; lanes there from the start take it.
    fn origin_at(&mut self, pts: gst::ClockTime) -> gst::ClockTime {
        if let Some(origin) = self.origin {
            return origin;
        }
        self.origin = Some(pts);
        for feed in &self.feeds {
            feed.lane
                .output
                .lock()
                .unwrap()
                .origin
                .get_or_insert(feed.origin(pts));
        }
        pts
    }

    /// Where the input ends, in samples from its origin.
    fn input_end(&self) -> u64 {
        let Some(origin) = self.origin else { return 0 };
        time_to_samples(self.next_pts.unwrap_or(origin).saturating_sub(origin))
    }

    /// Every lane's output as far as the input's end lets it go.
    fn reach_input_end(&self) {
        let input_end = self.input_end();
        for feed in &self.feeds {
            feed.lane
                .input_reached(input_end.saturating_sub(feed.start));
        }
    }

    fn feed_of(&self, lane: &Arc<Lane>) -> Option<&Feed> {
        self.feeds.iter().find(|feed| Arc::ptr_eq(&feed.lane, lane))
    }

    /// Time passed with no input: the converter's filter tail (which belongs before the gap)
    /// goes out first, then silence for the gap, of which the engine hears at most a few seconds
    /// (see `input_gaps.rs`): the rest is skipped, by the mix and the output's positions too, so
    /// a gap of any length costs the same memory and is not billed.
    fn fill_gap(&mut self, duration: gst::ClockTime) {
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
            self.hand_over();
            for feed in &self.feeds {
                feed.lane.input_skipped(feed.sent, skipped);
            }
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
    /// The lane of the always pads, which follows `target-language`.
    always: Arc<Lane>,
    /// The lanes of requested pads, one per language, in the order requested. Held alone.
    requested: Mutex<Vec<Arc<Lane>>>,
    /// A connection failed for good: the stream cannot go on.
    failed: AtomicBool,
    last_warning: Mutex<Option<Instant>>,
    /// The pacing wait in progress, so that a flush or a stop can cut it short.
    pacing_wait: Mutex<Option<gst::SingleShotClockId>>,
    last_seek: Mutex<Option<gst::Seqnum>>,
}

impl RealtimeTranslate {
    /// The always lane, then the requested ones.
    fn lanes(&self) -> Vec<Arc<Lane>> {
        let mut lanes = vec![self.always.clone()];
        lanes.extend(self.requested.lock().unwrap().iter().cloned());
        lanes
    }

    /// The lane a src pad belongs to, and what it carries.
    fn lane_of(&self, pad: &gst::Pad) -> Option<(Arc<Lane>, PadKind)> {
        self.lanes()
            .into_iter()
            .find_map(|lane| lane.kind_of(pad).map(|kind| (lane, kind)))
    }

    /// One iteration of a src pad's task: push the next queued item.
    fn pad_loop(&self, lane: &Lane, kind: PadKind, pad: &gst::Pad) {
        let queue = lane.queue(kind);
        let Some(item) = queue.pop() else {
            let _ = pad.pause_task();
            return;
        };
        match item {
            Item::Buffer(mut buffer, arrivals) => {
                if kind == PadKind::Audio {
                    mix_original(&lane.mix, &mut buffer);
                }
                // Taken before the push: time spent downstream (a sink's clock wait) is not ours.
                let now = Instant::now();
                let flow = pad.push(buffer);
                if !arrivals.is_empty() {
                    lane.record_delays(now, arrivals);
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

    fn start_task(
        &self,
        pad: &gst::Pad,
        lane: Arc<Lane>,
        kind: PadKind,
    ) -> Result<(), gst::LoggableError> {
        let element = self.obj().downgrade();
        let pad_weak = pad.downgrade();
        pad.start_task(move || {
            let (Some(element), Some(pad)) = (element.upgrade(), pad_weak.upgrade()) else {
                return;
            };
            element.imp().pad_loop(&lane, kind, &pad);
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
        let Some((lane, kind)) = self.lane_of(pad) else {
            return Err(gst::loggable_error!(
                CAT,
                "{} is not a pad of a lane",
                pad.name()
            ));
        };
        if active {
            lane.open(kind);
            self.start_task(pad, lane, kind)
        } else {
            lane.queue(kind).set_flushing(true);
            pad.stop_task()
                .map_err(|err| gst::loggable_error!(CAT, "cannot stop task: {err}"))
        }
    }

    /// Posts a warning on the bus, at most once per [`WARNING_INTERVAL`]; always logs it.
    fn warn(&self, text: &str) {
        gst::warning!(CAT, imp = self, "{text}");
        let mut last = self.last_warning.lock().unwrap();
        if last.is_some_and(|at| at.elapsed() < WARNING_INTERVAL) {
            return;
        }
        *last = Some(Instant::now());
        drop(last);
        gst::element_imp_warning!(self, gst::StreamError::Failed, ("{}", text));
    }

    /// Opens a lane's connection for the stream and makes it the one its callbacks listen to.
    fn start_connection(&self, feed: &mut Feed, params: ConnectionParams, live: Option<bool>) {
        let lane = &feed.lane;
        let generation = lane.generation.fetch_add(1, Ordering::SeqCst) + 1;
        lane.set_session_end(SessionEnd::Running);
        let element = self.obj().downgrade();
        let weak_lane = Arc::downgrade(lane);
        let callback = Arc::new(move |event: ConnectionEvent| {
            if let (Some(element), Some(lane)) = (element.upgrade(), weak_lane.upgrade()) {
                element.imp().on_connection_event(&lane, generation, event);
            }
        });
        let connection = Connection::start(params, callback);
        connection.set_lossless(live == Some(false));
        feed.connection = Some(Arc::new(connection));
    }

    fn on_connection_event(&self, lane: &Lane, generation: u64, event: ConnectionEvent) {
        if lane.generation.load(Ordering::SeqCst) != generation {
            return;
        }
        match event {
            ConnectionEvent::State { state, position } => {
                self.on_connection_state(lane, state, position)
            }
            ConnectionEvent::Session(event) => self.on_session_output(lane, event),
            ConnectionEvent::Finished => {
                gst::info!(CAT, imp = self, "{} connection finished", lane.language());
                lane.set_session_end(SessionEnd::Finished);
            }
            ConnectionEvent::Failed(err) => {
                gst::error!(CAT, imp = self, "{} connection: {err}", lane.language());
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
                self.failed.store(true, Ordering::SeqCst);
                lane.set_session_end(SessionEnd::Failed);
                // Wake a streaming thread waiting on a full queue: the stream cannot go on.
                lane.audio.set_flow(Err(gst::FlowError::Error));
            }
        }
    }

    /// Connection state changes: an element message for operators, and the fallback audio
    /// while no session takes the input.
    fn on_connection_state(&self, lane: &Lane, state: ConnectionState, sent: u64) {
        // The connection counts the audio it was sent; skipped gaps put the input further on.
        let position = lane.output.lock().unwrap().sent_to_input.to_input(sent);
        let language = lane.language();
        gst::info!(
            CAT,
            imp = self,
            "{language} connection {state:?} at input sample {position}"
        );
        {
            let mut mix = lane.mix.lock().unwrap();
            match &state {
                ConnectionState::Connected { .. } => mix.outage_ended(position),
                ConnectionState::Reconnecting { .. } => mix.outage_started(position),
                _ => {}
            }
        }
        *lane.connection_state.lock().unwrap() = state.name();
        let mut structure = gst::Structure::builder("realtimetranslate/connection")
            .field("status", state.name())
            .field("language", language)
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

    /// What a session said: translated speech and text into its lane's timeline, warnings on
    /// the bus.
    fn on_session_output(&self, lane: &Lane, event: SessionEvent) {
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
                let mut output = lane.output.lock().unwrap();
                let items = output.push_audio(&samples, Instant::now());
                lane.push_items(items);
                let utterances = output.take_utterances();
                let origin = output.origin;
                let overproducing = output
                    .speech_budget
                    .take_first_drop()
                    .then(|| output.speech_budget.allowance_seconds());
                drop(output);
                self.report_utterances(lane, origin, utterances);
                if let Some(allowance) = overproducing {
                    self.warn_overproduction(allowance);
                }
            }
            SessionEvent::OutputTranscript(delta) => {
                gst::debug!(CAT, imp = self, "translated text ({} bytes)", delta.len());
                let mut output = lane.output.lock().unwrap();
                let dropped_before = output.timeline.text_dropped();
                for item in output.push_text(&delta) {
                    lane.text.push_nowait(item);
                }
                let dropped = output.timeline.text_dropped() - dropped_before;
                let utterances = output.take_utterances();
                let origin = output.origin;
                drop(output);
                self.report_utterances(lane, origin, utterances);
                self.warn_text_dropped("translated", dropped);
            }
            SessionEvent::InputTranscript(delta) => {
                gst::debug!(CAT, imp = self, "source text ({} bytes)", delta.len());
                let mut output = lane.output.lock().unwrap();
                let dropped_before = output.timeline.source_text_dropped();
                for item in output.push_source_text(&delta) {
                    lane.source_text.push_nowait(item);
                }
                let dropped = output.timeline.source_text_dropped() - dropped_before;
                drop(output);
                self.warn_text_dropped("source", dropped);
            }
            SessionEvent::Progress { input_samples } => {
                lane.output.lock().unwrap().engine_progress(input_samples);
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

    /// Ear-voice spans into the lane's statistics, and a `realtimetranslate/utterance` message
    /// each.
    fn report_utterances(
        &self,
        lane: &Lane,
        origin: Option<gst::ClockTime>,
        utterances: Vec<Utterance>,
    ) {
        if utterances.is_empty() {
            return;
        }
        let origin = origin.unwrap_or(gst::ClockTime::ZERO);
        let language = lane.language();
        for utterance in utterances {
            lane.ear_voice.lock().unwrap().record(&utterance);
            let source = origin + samples_to_time(utterance.source_onset);
            let span = |at: u64| samples_to_time(at.saturating_sub(utterance.source_onset));
            gst::debug!(CAT, imp = self, "{language} utterance {utterance:?}");
            self.post_element_message(
                gst::Structure::builder("realtimetranslate/utterance")
                    .field("language", &language)
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
        self.failed.load(Ordering::SeqCst)
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
    /// State changes and flushes notify the always lane's `session_end_changed`; the time limit
    /// only covers a state change made by a parent without passing through this element's
    /// `change_state`.
    fn wait_for_playing(&self) {
        let mut guard = self.always.session_end.lock().unwrap();
        while self.obj().current_state() != gst::State::Playing
            && self.obj().pending_state() != gst::State::Playing
            && !self.always.audio.is_flushing()
        {
            guard = self
                .always
                .session_end_changed
                .wait_timeout(guard, Duration::from_millis(100))
                .unwrap()
                .0;
        }
    }

    fn cancel_waits(&self) {
        // A streaming thread blocked on a full connection queue looks at its cancellation again.
        let connections: Vec<Arc<Connection>> = self
            .state
            .lock()
            .unwrap()
            .as_ref()
            .map(|state| {
                state
                    .feeds
                    .iter()
                    .filter_map(|feed| feed.connection.clone())
                    .collect()
            })
            .unwrap_or_default();
        for connection in connections {
            connection.interrupt();
        }
        if let Some(id) = self.pacing_wait.lock().unwrap().take() {
            id.unschedule();
        }
        for lane in self.lanes() {
            lane.cancel();
        }
    }

    /// Waits for the last translations of every lane after end of stream. Live, time goes on
    /// meanwhile: the output keeps being written `latency` behind where the input would be, so
    /// that what the engines still say is placed (and pushed) on time rather than after the
    /// drain.
    fn wait_drain(&self, lanes: &[Arc<Lane>], deadline: Instant) -> SessionEnd {
        let live = self
            .state
            .lock()
            .unwrap()
            .as_ref()
            .is_some_and(|s| s.upstream_live == Some(true));
        if !live {
            return wait_session_ends(lanes, deadline);
        }
        let started = Instant::now();
        let input_ends: Vec<Option<u64>> = lanes
            .iter()
            .map(|lane| lane.output.lock().unwrap().input_end)
            .collect();
        loop {
            let step = (Instant::now() + DRAIN_STEP).min(deadline);
            let end = wait_session_ends(lanes, step);
            if end != SessionEnd::Running || Instant::now() >= deadline {
                return end;
            }
            let elapsed = time_to_samples(gst::ClockTime::from_nseconds(
                started.elapsed().as_nanos() as u64,
            ));
            for (lane, input_end) in lanes.iter().zip(&input_ends) {
                if let Some(input_end) = input_end {
                    lane.input_reached(input_end + elapsed);
                }
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
                for feed in &state.feeds {
                    if let Some(connection) = &feed.connection {
                        connection.set_lossless(!live);
                    }
                    feed.lane.output.lock().unwrap().set_live(live);
                }
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
            let bpf = converter.in_info().bpf() as usize;
            let map = buffer.map_readable().map_err(|_| gst::FlowError::Error)?;
            let frames = (map.len() / bpf) as u64;
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
                ((frames - (skip_bytes / bpf) as u64) as u128 * 1_000_000_000 / rate as u128)
                    as u64,
            );

            state.origin_at(pts);
            let expected = *state.next_pts.get_or_insert(pts);
            if pts > expected + GAP_TOLERANCE {
                gst::debug!(
                    CAT,
                    imp = self,
                    "input gap of {}: sending silence",
                    pts - expected
                );
                state.fill_gap(pts - expected);
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
            state.hand_over();
            state.next_pts = Some((pts + duration).max(expected));
            state.reach_input_end();
        }
        self.send_outgoing();
        self.audio_flow()
    }

    /// Hands the full chunks to every lane's connection, with no element lock held: non-live
    /// input waits for room (faster than real time must slow down, not lose audio); live input
    /// never waits, and a chunk that finds the queue full is dropped and counted.
    fn send_outgoing(&self) {
        let (sends, wait) = {
            let mut state = self.state.lock().unwrap();
            let Some(state) = state.as_mut() else { return };
            let sends: Vec<_> = state
                .feeds
                .iter_mut()
                .filter_map(|feed| {
                    let chunks = std::mem::take(&mut feed.outgoing);
                    let connection = feed.connection.clone()?;
                    Some((feed.lane.clone(), connection, chunks))
                })
                .collect();
            (sends, state.upstream_live == Some(false))
        };
        let mut dropped_by_lane = Vec::new();
        for (lane, connection, chunks) in sends {
            let mut dropped = 0;
            for chunk in chunks {
                if wait {
                    connection.send_audio_waiting(chunk, || {
                        self.always.audio.is_flushing() || self.failed()
                    });
                } else if connection.send_audio(chunk).is_err() {
                    dropped += 1;
                }
            }
            if dropped > 0 {
                dropped_by_lane.push((lane, dropped));
            }
        }
        if dropped_by_lane.is_empty() {
            return;
        }
        if let Some(state) = self.state.lock().unwrap().as_mut() {
            for (lane, dropped) in &dropped_by_lane {
                if let Some(feed) = state
                    .feeds
                    .iter_mut()
                    .find(|feed| Arc::ptr_eq(&feed.lane, lane))
                {
                    feed.dropped_chunks += dropped;
                }
            }
        }
        self.warn("the connection is not keeping up: audio chunks were dropped");
    }

    /// Waits while an audio queue is full (backpressure from downstream) and returns the
    /// combined flow result for upstream: the stream goes on while any pad of any lane is
    /// linked; a requested pad being released does not stop it.
    fn audio_flow(&self) -> Result<gst::FlowSuccess, gst::FlowError> {
        let mut linked = false;
        for lane in self.lanes() {
            if lane.pad(PadKind::Audio).is_none() {
                // A requested lane of subtitles only.
                linked |= lane.text_linked();
                continue;
            }
            match lane.audio.wait_for_room() {
                Ok(_) => linked = true,
                // Audio unlinked is fine while a text pad still carries the subtitles.
                Err(gst::FlowError::NotLinked) => linked |= lane.text_linked(),
                Err(gst::FlowError::Error) if self.failed() => return Err(gst::FlowError::Error),
                Err(gst::FlowError::Flushing | gst::FlowError::Eos) if lane.requested => {}
                Err(err) => return Err(err),
            }
        }
        if linked {
            Ok(gst::FlowSuccess::Ok)
        } else {
            Err(gst::FlowError::NotLinked)
        }
    }

    /// GAP on the input: time passes with nothing to hear.
    fn handle_gap(&self, pts: gst::ClockTime, duration: Option<gst::ClockTime>) {
        let Some(duration) = duration else { return };
        {
            let mut state = self.state.lock().unwrap();
            let Some(state) = state.as_mut() else { return };
            state.origin_at(pts);
            let start = state.next_pts.unwrap_or(pts).min(pts);
            let end = pts + duration;
            if end > start {
                state.fill_gap(end - start);
            }
            state.hand_over();
            state.next_pts = Some(end.max(state.next_pts.unwrap_or(end)));
            state.reach_input_end();
        }
        self.send_outgoing();
        let _ = self.audio_flow();
    }

    /// EOS: flush the input, close every lane's session, wait (bounded) for the last
    /// translations, write them out, then EOS on every src pad.
    fn handle_eos(&self) -> bool {
        let (drain_timeout, connect_timeout) = {
            let settings = self.settings.lock().unwrap();
            (
                Duration::from_millis(settings.drain_timeout_ms.into()),
                Duration::from_millis(settings.connect_timeout_ms.into()),
            )
        };
        let feeds: Vec<(Arc<Lane>, Option<Arc<Connection>>)> = {
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
            state.hand_over();
            for feed in &mut state.feeds {
                feed.flush_chunk();
            }
            state.at_eos = true;
            state
                .feeds
                .iter()
                .map(|feed| (feed.lane.clone(), feed.connection.clone()))
                .collect()
        };
        self.send_outgoing();
        for (lane, connection) in &feeds {
            match connection {
                Some(connection) => connection.close(),
                None => lane.set_session_end(SessionEnd::Finished),
            }
        }
        let lanes: Vec<Arc<Lane>> = feeds.iter().map(|(lane, _)| lane.clone()).collect();
        // The sessions have their own time limits (connecting, then draining); this one only
        // guards against a task that died.
        let deadline = Instant::now() + connect_timeout + drain_timeout + Duration::from_secs(3);
        let end = self.wait_drain(&lanes, deadline);
        if end == SessionEnd::Cancelled {
            return false;
        }
        if end == SessionEnd::Running {
            self.warn("the session did not finish in time after end of stream");
            // What it still had is lost: counted, so the final statistics say so.
            for (lane, connection) in &feeds {
                if *lane.session_end.lock().unwrap() == SessionEnd::Running
                    && let Some(connection) = connection
                {
                    connection.abandon();
                }
            }
        }
        let finished: Vec<_> = {
            let state = self.state.lock().unwrap();
            let Some(state) = state.as_ref() else {
                return false;
            };
            let input_end = state.input_end();
            state
                .feeds
                .iter()
                .map(|feed| {
                    let mut output = feed.lane.output.lock().unwrap();
                    if output.origin.is_some() {
                        // The input end as the streaming thread last saw it, including a
                        // trailing gap.
                        output.input_end = Some(input_end.saturating_sub(feed.start));
                    }
                    let items = output.finish();
                    let figures = feed.figures();
                    gst::info!(
                        CAT,
                        imp = self,
                        "end of stream ({}): {} s of audio sent, {} s of translation received, \
                         output ends at {}",
                        feed.lane.language(),
                        figures.sent as f64 / SAMPLE_RATE as f64,
                        figures.received as f64 / SAMPLE_RATE as f64,
                        output.origin.unwrap_or(gst::ClockTime::ZERO)
                            + samples_to_time(output.timeline.written()),
                    );
                    let utterances = output.take_utterances();
                    (feed.lane.clone(), output.origin, utterances, items, figures)
                })
                .collect()
        };
        // The last segments' ear-voice spans, with no lock held.
        for (lane, origin, utterances, ..) in &finished {
            self.report_utterances(lane, *origin, utterances.clone());
        }
        // The stream's final figures (what went untranslated among them), once per lane,
        // before the end of stream goes downstream: an application that stops at EOS has them.
        for (lane, _, _, items, figures) in finished {
            self.post_element_message(lane.stats(figures));
            lane.push_items(items);
        }
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

    /// Sticky events a src pad needs before data: stream-start, caps, language tag, and for a
    /// pad joining a running stream, the segment.
    fn sticky_events(
        &self,
        lane: &Lane,
        kind: PadKind,
        pad: &gst::Pad,
        group_id: Option<gst::GroupId>,
        segment: Option<&gst::FormattedSegment<gst::ClockTime>>,
    ) -> Vec<Item> {
        let language = lane.language();
        let name = if lane.requested {
            format!("{}-{language}", kind.stream_name())
        } else {
            kind.stream_name().to_owned()
        };
        let stream_id = pad.create_stream_id(&*self.obj(), Some(name.as_str()));
        let mut builder = gst::event::StreamStart::builder(&stream_id);
        if let Some(group_id) = group_id {
            builder = builder.group_id(group_id);
        }
        let mut items = vec![
            Item::Event(builder.build()),
            Item::Event(gst::event::Caps::new(&pad.pad_template_caps())),
        ];
        if kind != PadKind::SourceText {
            items.push(Item::Event(language_tags(&language)));
        }
        if let Some(segment) = segment {
            items.push(Item::Event(gst::event::Segment::new(segment)));
        }
        items
    }

    fn stream_start(&self, group_id: Option<gst::GroupId>) {
        if let Some(state) = self.state.lock().unwrap().as_mut() {
            state.started = Some(group_id);
        }
        for lane in self.lanes() {
            for (kind, pad) in lane.pads() {
                for item in self.sticky_events(&lane, kind, &pad, group_id, None) {
                    lane.queue(kind).push_nowait(item);
                }
            }
        }
    }

    /// Every src pad of every lane.
    fn src_pads(&self) -> Vec<(Arc<Lane>, PadKind, gst::Pad)> {
        self.lanes()
            .into_iter()
            .flat_map(|lane| {
                lane.pads()
                    .into_iter()
                    .map(move |(kind, pad)| (lane.clone(), kind, pad))
            })
            .collect()
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
                    state.segment_seen = true;
                }
                for lane in self.lanes() {
                    for queue in [&lane.audio, &lane.text, &lane.source_text] {
                        queue.push_nowait(Item::Event(event.clone()));
                    }
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
                for lane in self.lanes() {
                    lane.set_flushing(true);
                }
                self.cancel_waits();
                for (_, _, pad) in self.src_pads() {
                    pad.push_event(event.clone());
                    let _ = pad.pause_task();
                }
                true
            }
            EventView::FlushStop(_) => {
                self.reset_stream();
                for lane in self.lanes() {
                    lane.set_flushing(false);
                }
                for (lane, kind, pad) in self.src_pads() {
                    pad.push_event(event.clone());
                    if pad.is_active() {
                        let _ = self.start_task(&pad, lane, kind);
                    }
                }
                true
            }
            EventView::Tag(_) => true,
            _ if event.is_serialized() => {
                for lane in self.lanes() {
                    // Under the output lock: in order with audio the session callback queues.
                    let output = lane.output.lock().unwrap();
                    lane.audio.push_nowait(Item::Event(event.clone()));
                    drop(output);
                }
                let _ = self.audio_flow();
                true
            }
            _ => self.srcpad.push_event(event),
        }
    }

    /// After a flush: new sessions and empty timelines for every lane; the format stays.
    fn reset_stream(&self) {
        let settings = self.settings.lock().unwrap().clone();
        self.failed.store(false, Ordering::SeqCst);
        let mut state = self.state.lock().unwrap();
        let Some(state) = state.as_mut() else { return };
        if let Some(converter) = &mut state.converter {
            converter.reset();
        }
        state.heard.clear();
        state.origin = None;
        state.gap_heard = 0;
        state.covered_until = None;
        state.at_eos = false;
        state.next_pts = None;
        let live = state.upstream_live;
        for feed in &mut state.feeds {
            feed.restart();
            let mut output = new_output(&settings);
            if let Some(live) = live {
                output.set_live(live);
            }
            feed.lane.reset(output, new_mix(&settings));
            match lane_params(&settings, &feed.lane) {
                Ok(params) => self.start_connection(feed, params, live),
                Err(err) => {
                    gst::element_imp_error!(self, gst::LibraryError::Settings, ("{err}"));
                }
            }
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

    /// The latency is the same on every src pad of every lane: all lanes share the settings.
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

    /// Posts one `stats` structure per lane on the bus every `stats-interval`, for as long as
    /// the stream runs (the task ends with the state).
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
                for stats in imp.stats() {
                    imp.post_element_message(stats);
                }
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
    /// once it has been missing for [`input_gaps::ENGINE_WAIT`] the engines hear silence for it
    /// (at most a few seconds a gap), so that they finish the last words meanwhile. Returns how
    /// long the watch may sleep before the next check.
    fn cover_missing_input(&self) -> Duration {
        if self.obj().current_state() != gst::State::Playing || self.always.audio.is_flushing() {
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
            if state.upstream_live != Some(true) || state.at_eos || state.origin.is_none() {
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
            let input_end = state.input_end();
            if now <= due + input_gaps::OUTPUT_WAIT {
                return input_gaps::watch_sleep(due + input_gaps::OUTPUT_WAIT - now);
            }
            // Written as if the input had come on time.
            let position = input_end + time_to_samples(now - due);
            for feed in &state.feeds {
                let mut output = feed.lane.output.lock().unwrap();
                let items = output.clock_reached(position.saturating_sub(feed.start));
                feed.lane.push_items(items);
            }
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
            state.fill_gap(missing);
            state.hand_over();
            let covered = next_pts + missing;
            state.next_pts = Some(covered);
            state.covered_until = Some(covered);
            state.reach_input_end();
        }
        self.send_outgoing();
        input_gaps::WATCH_PERIOD
    }

    /// READY→PAUSED: settings are checked here, before any connection.
    fn prepare(&self) -> Result<(), gst::StateChangeError> {
        let settings = self.settings.lock().unwrap().clone();
        let lanes = self.lanes();
        let mut params = Vec::new();
        for lane in &lanes {
            match lane_params(&settings, lane) {
                Ok(p) => params.push(p),
                Err(err) => {
                    gst::element_imp_error!(self, gst::LibraryError::Settings, ("{}", err));
                    return Err(gst::StateChangeError);
                }
            }
        }
        *self.last_warning.lock().unwrap() = None;
        self.failed.store(false, Ordering::SeqCst);
        let mut state = State {
            converter: None,
            feeds: Vec::new(),
            heard: Vec::new(),
            origin: None,
            stats_task: self.start_stats_task(settings.stats_interval_ms),
            segment: gst::FormattedSegment::new(),
            segment_seen: false,
            started: None,
            next_pts: None,
            upstream_live: None,
            upstream_latency: gst::ClockTime::ZERO,
            gap_heard: 0,
            covered_until: None,
            at_eos: false,
            latency_samples: time_to_samples(gst::ClockTime::from_mseconds(
                settings.latency_ms.into(),
            )),
            gap_watch: Some(self.start_gap_watch()),
        };
        for (lane, params) in lanes.into_iter().zip(params) {
            lane.reset(new_output(&settings), new_mix(&settings));
            let mut feed = Feed::new(lane, 0);
            self.start_connection(&mut feed, params, None);
            state.feeds.push(feed);
        }
        *self.state.lock().unwrap() = Some(state);
        Ok(())
    }

    /// One `realtimetranslate/stats` structure per lane, the always lane's first.
    fn stats(&self) -> Vec<gst::Structure> {
        let state = self.state.lock().unwrap();
        match state.as_ref() {
            Some(state) => state
                .feeds
                .iter()
                .map(|feed| feed.lane.stats(feed.figures()))
                .collect(),
            None => vec![self.always.stats(Default::default())],
        }
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
        self.always.set_language(&language);
        if let Some(state) = self.state.lock().unwrap().as_ref()
            && let Some(connection) = state
                .feed_of(&self.always)
                .and_then(|feed| feed.connection.as_ref())
        {
            gst::info!(CAT, imp = self, "target language now {language}");
            connection.update(config);
            for queue in [&self.always.audio, &self.always.text] {
                queue.push_nowait(Item::Event(language_tags(&language)));
            }
        }
    }

    /// A pad of a requested language (`src_fr`, `subtitle_src_fr`): the language's lane is
    /// made with its first pad, and when the stream runs, it joins it from the input's end.
    fn request_pad(&self, templ: &gst::PadTemplate, name: Option<&str>) -> Option<gst::Pad> {
        let template = templ.name_template();
        let (kind, prefix) = if template == AUDIO_REQUEST_TEMPLATE {
            (PadKind::Audio, "src_")
        } else {
            (PadKind::Text, "subtitle_src_")
        };
        let settings = self.settings.lock().unwrap().clone();
        let Some(name) = name.filter(|name| name.len() > prefix.len()) else {
            self.refuse_pad(&format!(
                "a {template} pad is named after its target language, e.g. {prefix}fr"
            ));
            return None;
        };
        let language = &name[prefix.len()..];
        if let Some(problem) = language_problem(settings.backend, language) {
            self.refuse_pad(&format!("cannot make pad {name}: {problem}"));
            return None;
        }
        let (lane, new) = {
            let mut requested = self.requested.lock().unwrap();
            match requested.iter().find(|lane| lane.language() == language) {
                Some(lane) if lane.pad(kind).is_some() => {
                    gst::warning!(CAT, imp = self, "pad {name} exists already");
                    return None;
                }
                Some(lane) => (lane.clone(), false),
                None => {
                    let lane = Arc::new(Lane::new(
                        language,
                        true,
                        new_output(&settings),
                        new_mix(&settings),
                    ));
                    requested.push(lane.clone());
                    (lane, true)
                }
            }
        };
        let pad = build_src_pad(templ, Some(name));
        lane.set_pad(kind, Some(pad.clone()));
        self.prepare_join(&lane, kind, &pad);
        // Activated here if the stream runs, with the sticky events prepared.
        if self.obj().add_pad(&pad).is_err() {
            lane.set_pad(kind, None);
            return None;
        }
        if new {
            self.add_feed(&lane, &settings);
        }
        gst::info!(CAT, imp = self, "pad {name} added");
        Some(pad)
    }

    /// A pad requested while the stream runs gets the stream's sticky events (stream-start,
    /// caps, language, segment) as it is activated, before any output can reach it.
    fn prepare_join(&self, lane: &Lane, kind: PadKind, pad: &gst::Pad) {
        let state = self.state.lock().unwrap();
        let Some(state) = state.as_ref() else { return };
        if let Some(group_id) = state.started {
            let segment = state.segment_seen.then_some(&state.segment);
            lane.set_joining(kind, self.sticky_events(lane, kind, pad, group_id, segment));
        }
    }

    /// A new lane joining a running stream: its own connection, starting at the input's end
    /// (its output covers the timeline from there).
    fn add_feed(&self, lane: &Arc<Lane>, settings: &Settings) {
        if self.state.lock().unwrap().is_none() {
            // Not streaming: the lane gets its feed when the stream starts (`prepare`).
            return;
        }
        let params = match lane_params(settings, lane) {
            Ok(params) => params,
            Err(err) => {
                self.refuse_pad(&err);
                return;
            }
        };
        let mut state = self.state.lock().unwrap();
        let Some(state) = state.as_mut() else { return };
        let mut feed = Feed::new(lane.clone(), state.input_end());
        {
            let mut output = lane.output.lock().unwrap();
            if let Some(origin) = state.origin {
                output.origin = Some(feed.origin(origin));
            }
            if let Some(live) = state.upstream_live {
                output.set_live(live);
            }
        }
        self.start_connection(&mut feed, params, state.upstream_live);
        gst::info!(
            CAT,
            imp = self,
            "{} joins the stream at input sample {}",
            lane.language(),
            feed.start
        );
        state.feeds.push(feed);
    }

    /// Releasing a requested pad; with a language's last pad its session closes (the server is
    /// told, and what it still says is not waited for).
    fn release_requested_pad(&self, pad: &gst::Pad) {
        let Some((lane, kind)) = self.lane_of(pad) else {
            return;
        };
        if !lane.requested {
            return;
        }
        let _ = pad.set_active(false);
        lane.set_pad(kind, None);
        let _ = self.obj().remove_pad(pad);
        gst::info!(CAT, imp = self, "pad {} released", pad.name());
        if !lane.pads().is_empty() {
            return;
        }
        self.requested
            .lock()
            .unwrap()
            .retain(|other| !Arc::ptr_eq(other, &lane));
        let feed = {
            let mut state = self.state.lock().unwrap();
            state.as_mut().and_then(|state| {
                let index = state
                    .feeds
                    .iter()
                    .position(|feed| Arc::ptr_eq(&feed.lane, &lane))?;
                Some(state.feeds.remove(index))
            })
        };
        let Some(connection) = feed.and_then(|feed| feed.connection) else {
            return;
        };
        gst::info!(CAT, imp = self, "closing the {} session", lane.language());
        connection.close();
        // Kept until the session has finished closing (dropping it would cut the socket).
        let limit = {
            let settings = self.settings.lock().unwrap();
            Duration::from_millis(
                u64::from(settings.connect_timeout_ms) + u64::from(settings.drain_timeout_ms),
            )
        };
        crate::runtime::RUNTIME.spawn(async move {
            let deadline = tokio::time::Instant::now() + limit;
            while *lane.session_end.lock().unwrap() == SessionEnd::Running
                && tokio::time::Instant::now() < deadline
            {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            drop(connection);
        });
    }

    /// A pad request that cannot be met: an error on the bus that says why.
    fn refuse_pad(&self, message: &str) {
        gst::error!(CAT, imp = self, "{message}");
        gst::element_imp_error!(self, gst::LibraryError::Settings, ("{}", message));
    }
}

/// Waits for every lane's connection to end, or `deadline`: cancelled or still running if one
/// is, failed if one failed, else finished.
fn wait_session_ends(lanes: &[Arc<Lane>], deadline: Instant) -> SessionEnd {
    let mut result = SessionEnd::Finished;
    for lane in lanes {
        match lane.wait_session_end(deadline) {
            end @ (SessionEnd::Cancelled | SessionEnd::Running) => return end,
            SessionEnd::Failed => result = SessionEnd::Failed,
            SessionEnd::Finished => {}
        }
    }
    result
}

/// Mixes the original into an outgoing translation buffer (its offset is its position).
fn mix_original(mix: &Mutex<OriginalMix>, buffer: &mut gst::Buffer) {
    let position = buffer.offset();
    let mut mix = mix.lock().unwrap();
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

/// An empty output side for these settings.
fn new_output(settings: &Settings) -> Output {
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

fn new_mix(settings: &Settings) -> OriginalMix {
    OriginalMix::new(settings.mix_settings())
}

/// The settings a lane's sessions use: a requested lane translates into its own language and
/// asks for no source transcript (`source_subtitle_src` belongs to the always lane).
fn lane_settings(settings: &Settings, lane: &Lane) -> Settings {
    let mut settings = settings.clone();
    if lane.requested {
        settings.target_language = lane.language();
        settings.transcription_model.clear();
    }
    settings
}

fn lane_params(settings: &Settings, lane: &Lane) -> Result<ConnectionParams, String> {
    lane_settings(settings, lane).connection_params()
}

/// A src pad of this element: its task pushes what its lane's queue holds.
fn build_src_pad(templ: &gst::PadTemplate, name: Option<&str>) -> gst::Pad {
    let mut builder = gst::Pad::builder_from_template(templ)
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
        .flags(gst::PadFlags::FIXED_CAPS);
    if let Some(name) = name {
        builder = builder.name(name);
    }
    builder.build()
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
        let make_src = |name: &str| build_src_pad(&klass.pad_template(name).unwrap(), None);
        let defaults = Settings::default();
        let always = Arc::new(Lane::new(
            &defaults.target_language,
            false,
            new_output(&defaults),
            new_mix(&defaults),
        ));
        let srcpad = make_src("src");
        let subtitle_srcpad = make_src("subtitle_src");
        let source_subtitle_srcpad = make_src("source_subtitle_src");
        always.set_pad(PadKind::Audio, Some(srcpad.clone()));
        always.set_pad(PadKind::Text, Some(subtitle_srcpad.clone()));
        always.set_pad(PadKind::SourceText, Some(source_subtitle_srcpad.clone()));
        Self {
            sinkpad,
            srcpad,
            subtitle_srcpad,
            source_subtitle_srcpad,
            settings: Mutex::new(defaults),
            state: Mutex::new(None),
            always,
            requested: Mutex::new(Vec::new()),
            failed: AtomicBool::new(false),
            last_warning: Mutex::new(None),
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
                let settings = {
                    let mut settings = self.settings.lock().unwrap();
                    if pspec.name() == "transcription-model" {
                        settings.transcription_model = string();
                    } else {
                        settings.noise_reduction =
                            value.get::<NoiseReduction>().expect("type checked");
                    }
                    settings.clone()
                };
                if let Some(state) = self.state.lock().unwrap().as_ref() {
                    for feed in &state.feeds {
                        if let Some(connection) = &feed.connection {
                            connection
                                .update(lane_settings(&settings, &feed.lane).session_config());
                        }
                    }
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
                for lane in self.lanes() {
                    lane.mix.lock().unwrap().set_settings(mix);
                }
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
            return self.stats().swap_remove(0).to_value();
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
                 Translator, or the offline engine); request pads src_<language> and \
                 subtitle_src_<language> add more target languages, one session each",
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
            // One more target language per name: `src_fr` and `subtitle_src_fr` share a session.
            let request = |name, caps: &gst::Caps| {
                gst::PadTemplate::new(
                    name,
                    gst::PadDirection::Src,
                    gst::PadPresence::Request,
                    caps,
                )
                .unwrap()
            };
            vec![
                template("sink", gst::PadDirection::Sink, &sink_caps),
                template("src", gst::PadDirection::Src, &src_caps),
                template("subtitle_src", gst::PadDirection::Src, &text_caps),
                template("source_subtitle_src", gst::PadDirection::Src, &text_caps),
                request(AUDIO_REQUEST_TEMPLATE, &src_caps),
                request(TEXT_REQUEST_TEMPLATE, &text_caps),
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
                for lane in self.lanes() {
                    lane.set_flushing(true);
                }
                self.cancel_waits();
            }
            _ => {}
        }
        let result = self.parent_change_state(transition);
        {
            // Wakes a streaming thread waiting for PLAYING.
            let _guard = self.always.session_end.lock().unwrap();
            self.always.session_end_changed.notify_all();
        }
        match transition {
            gst::StateChange::PausedToReady => {
                *self.state.lock().unwrap() = None;
                let settings = self.settings.lock().unwrap().clone();
                for lane in self.lanes() {
                    lane.reset(new_output(&settings), new_mix(&settings));
                }
            }
            gst::StateChange::ReadyToPaused if result.is_err() => {
                *self.state.lock().unwrap() = None;
            }
            _ => {}
        }
        result
    }

    fn request_new_pad(
        &self,
        templ: &gst::PadTemplate,
        name: Option<&str>,
        _caps: Option<&gst::Caps>,
    ) -> Option<gst::Pad> {
        self.request_pad(templ, name)
    }

    fn release_pad(&self, pad: &gst::Pad) {
        self.release_requested_pad(pad);
    }
}
