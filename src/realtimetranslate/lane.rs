//! One target language's output: its own connection (sessions) over the element's one converted
//! input, its timeline, the original mixed under it, and the queues of its pads.
//!
//! The always pads (`src`, `subtitle_src`, `source_subtitle_src`) are the lane of
//! `target-language`; every requested language (`src_fr`, `subtitle_src_fr`) has a lane of its
//! own, shared by its two pads. The input is converted once and fanned out to every lane, so a
//! lane costs a session and its output, not another conversion.

use super::ear_voice::EarVoiceSpans;
use super::output::{Output, PadItems, samples_to_time};
use crate::connection::Connection;
use crate::mix::OriginalMix;
use crate::pad_queue::{Item, PadQueue};
use crate::protocol::translation::{CHUNK_SAMPLES, SAMPLE_RATE};
use gst::prelude::*;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

/// Audio buffers queued before an audio pad: ~1 s of output, then the streaming thread waits.
const AUDIO_QUEUE_ITEMS: usize = 32;
const TEXT_QUEUE_ITEMS: usize = 256;
/// Output-delay samples kept for the statistics.
const DELAY_SAMPLES: usize = 10_000;

/// How a lane's current connection stands, for the EOS drain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEnd {
    Running,
    Finished,
    Failed,
    Cancelled,
}

/// Which of a lane's outputs a pad carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PadKind {
    Audio,
    Text,
    SourceText,
}

impl PadKind {
    /// Names the pad's stream in its stream id.
    pub fn stream_name(self) -> &'static str {
        match self {
            PadKind::Audio => "translation",
            PadKind::Text => "subtitles",
            PadKind::SourceText => "source-subtitles",
        }
    }
}

/// A lane's pads; a requested lane may have either or both, the always lane has all three.
#[derive(Debug, Default)]
struct LanePads {
    audio: Option<gst::Pad>,
    text: Option<gst::Pad>,
    source_text: Option<gst::Pad>,
}

/// What the connection callbacks and the pad tasks share with the streaming thread, per language.
pub struct Lane {
    /// Requested lanes keep theirs; the always lane follows `target-language`.
    language: Mutex<String>,
    /// A lane of request pads (`src_%s`, `subtitle_src_%s`).
    pub requested: bool,
    pads: Mutex<LanePads>,
    /// Sticky events for pads that join a running stream, queued as they are activated.
    joining: Mutex<Vec<(PadKind, Vec<Item>)>>,
    pub output: Mutex<Output>,
    /// The original under the translation, applied as audio leaves the audio pad so that what
    /// is known about an outage by then (buffers may wait in the queue) decides the fallback.
    pub mix: Mutex<OriginalMix>,
    pub audio: PadQueue,
    pub text: PadQueue,
    pub source_text: PadQueue,
    pub session_end: Mutex<SessionEnd>,
    pub session_end_changed: Condvar,
    /// Bumped on every new connection: callbacks of an older one are ignored.
    pub generation: AtomicU64,
    /// Microseconds from a translated chunk's arrival to its buffer leaving the audio pad.
    delays: Mutex<VecDeque<u64>>,
    /// Name of the connection's state, for the statistics.
    pub connection_state: Mutex<&'static str>,
    pub ear_voice: Mutex<EarVoiceSpans>,
}

impl Lane {
    pub fn new(language: &str, requested: bool, output: Output, mix: OriginalMix) -> Self {
        Self {
            language: Mutex::new(language.to_owned()),
            requested,
            pads: Mutex::new(LanePads::default()),
            joining: Mutex::new(Vec::new()),
            output: Mutex::new(output),
            mix: Mutex::new(mix),
            audio: PadQueue::new(AUDIO_QUEUE_ITEMS),
            text: PadQueue::new(TEXT_QUEUE_ITEMS),
            source_text: PadQueue::new(TEXT_QUEUE_ITEMS),
            session_end: Mutex::new(SessionEnd::Running),
            session_end_changed: Condvar::new(),
            generation: AtomicU64::new(0),
            delays: Mutex::new(VecDeque::new()),
            connection_state: Mutex::new("connecting"),
            ear_voice: Mutex::new(EarVoiceSpans::default()),
        }
    }

    pub fn language(&self) -> String {
        self.language.lock().unwrap().clone()
    }

    pub fn set_language(&self, language: &str) {
        *self.language.lock().unwrap() = language.to_owned();
    }

    pub fn queue(&self, kind: PadKind) -> &PadQueue {
        match kind {
            PadKind::Audio => &self.audio,
            PadKind::Text => &self.text,
            PadKind::SourceText => &self.source_text,
        }
    }

    fn queues(&self) -> [(PadKind, &PadQueue); 3] {
        [
            (PadKind::Audio, &self.audio),
            (PadKind::Text, &self.text),
            (PadKind::SourceText, &self.source_text),
        ]
    }

    pub fn pad(&self, kind: PadKind) -> Option<gst::Pad> {
        let pads = self.pads.lock().unwrap();
        match kind {
            PadKind::Audio => pads.audio.clone(),
            PadKind::Text => pads.text.clone(),
            PadKind::SourceText => pads.source_text.clone(),
        }
    }

    /// Gives the lane a pad of `kind`, or takes it away (`None`).
    pub fn set_pad(&self, kind: PadKind, pad: Option<gst::Pad>) {
        let mut pads = self.pads.lock().unwrap();
        match kind {
            PadKind::Audio => pads.audio = pad,
            PadKind::Text => pads.text = pad,
            PadKind::SourceText => pads.source_text = pad,
        }
    }

    /// Which of this lane's outputs `pad` carries, if it is one of its pads.
    pub fn kind_of(&self, pad: &gst::Pad) -> Option<PadKind> {
        let pads = self.pads.lock().unwrap();
        [
            (PadKind::Audio, &pads.audio),
            (PadKind::Text, &pads.text),
            (PadKind::SourceText, &pads.source_text),
        ]
        .into_iter()
        .find(|(_, p)| p.as_ref() == Some(pad))
        .map(|(kind, _)| kind)
    }

    pub fn pads(&self) -> Vec<(PadKind, gst::Pad)> {
        let pads = self.pads.lock().unwrap();
        [
            (PadKind::Audio, &pads.audio),
            (PadKind::Text, &pads.text),
            (PadKind::SourceText, &pads.source_text),
        ]
        .into_iter()
        .filter_map(|(kind, pad)| pad.clone().map(|pad| (kind, pad)))
        .collect()
    }

    /// Whether a pad of this lane other than its audio pad is linked (subtitles still wanted).
    pub fn text_linked(&self) -> bool {
        let pads = self.pads.lock().unwrap();
        [&pads.text, &pads.source_text]
            .into_iter()
            .flatten()
            .any(|pad| pad.is_linked())
    }

    /// A pad of `kind` joins the running stream: these items open its queue when it is
    /// activated.
    pub fn set_joining(&self, kind: PadKind, items: Vec<Item>) {
        let mut joining = self.joining.lock().unwrap();
        joining.retain(|(k, _)| *k != kind);
        joining.push((kind, items));
    }

    /// Opens the queue of an activated pad; a pad joining a running stream gets its sticky
    /// events first. Under the output lock, so nothing the stream produces meanwhile comes
    /// before them.
    pub fn open(&self, kind: PadKind) {
        let _output = self.output.lock().unwrap();
        let queue = self.queue(kind);
        queue.set_flushing(false);
        let mut joining = self.joining.lock().unwrap();
        if let Some(index) = joining.iter().position(|(k, _)| *k == kind) {
            for item in joining.remove(index).1 {
                queue.push_nowait(item);
            }
        }
    }

    /// Flushing drops what is queued. Clearing it only opens the queues of pads that exist and
    /// are active: a queue without its pad stays closed, so what it would carry is not kept.
    pub fn set_flushing(&self, flushing: bool) {
        for (kind, queue) in self.queues() {
            if flushing || self.pad(kind).is_some_and(|pad| pad.is_active()) {
                queue.set_flushing(flushing);
            }
        }
    }

    pub fn set_session_end(&self, end: SessionEnd) {
        *self.session_end.lock().unwrap() = end;
        self.session_end_changed.notify_all();
    }

    /// A connection that has not finished counts as cancelled (a flush or a stop).
    pub fn cancel(&self) {
        let mut end = self.session_end.lock().unwrap();
        if *end == SessionEnd::Running {
            *end = SessionEnd::Cancelled;
        }
        self.session_end_changed.notify_all();
    }

    /// Waits until the lane's connection is no longer running, or `deadline`.
    pub fn wait_session_end(&self, deadline: Instant) -> SessionEnd {
        let mut end = self.session_end.lock().unwrap();
        while *end == SessionEnd::Running {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            end = self.session_end_changed.wait_timeout(end, left).unwrap().0;
        }
        *end
    }

    /// Queues output for every pad. Called with the output lock held, so output produced by the
    /// streaming thread and by the session callback stays in timeline order.
    pub fn push_items(&self, items: PadItems) {
        for item in items.audio {
            self.audio.push_nowait(item);
        }
        self.push_text(PadKind::Text, items.text);
        self.push_text(PadKind::SourceText, items.source_text);
    }

    /// GAPs only tell downstream that time passed without text: a text pad with nothing linked
    /// has nobody to tell, and waking its task for them (up to ten times a second) counts at
    /// hundreds of streams. A pad linked later joins with the next GAP, like any late-linked branch.
    fn push_text(&self, kind: PadKind, items: Vec<Item>) {
        if items.is_empty() {
            return;
        }
        let linked = self.pad(kind).is_some_and(|pad| pad.is_linked());
        let queue = self.queue(kind);
        for item in items {
            let is_gap =
                matches!(&item, Item::Event(event) if event.type_() == gst::EventType::Gap);
            if linked || !is_gap {
                queue.push_nowait(item);
            }
        }
    }

    /// Input as the engine hears it: to the speech-onset detector and to the mix. A lane with
    /// no audio pad keeps no original: nothing would ever mix it in and let it go.
    pub fn input_heard(&self, samples: &[i16]) {
        let has_audio = self.pads.lock().unwrap().audio.is_some();
        let mut output = self.output.lock().unwrap();
        output.input_heard(samples);
        let mut mix = self.mix.lock().unwrap();
        if has_audio {
            mix.push_original(samples);
        } else {
            mix.skip_original(samples.len() as u64);
        }
    }

    /// `samples` of input after `sent` samples sent to this lane's engine are never sent (the
    /// rest of a long gap).
    pub fn input_skipped(&self, sent: u64, samples: u64) {
        let mut output = self.output.lock().unwrap();
        output.input_skipped(sent, samples);
        self.mix.lock().unwrap().skip_original(samples);
    }

    /// The input reaches `input_end` (samples from the lane's origin): output as far as due.
    pub fn input_reached(&self, input_end: u64) {
        let mut output = self.output.lock().unwrap();
        let items = output.input_reached(input_end);
        self.push_items(items);
    }

    /// Times from translated chunks' arrival to their buffer leaving the audio pad.
    pub fn record_delays(&self, pushed: Instant, arrivals: Vec<Instant>) {
        let mut delays = self.delays.lock().unwrap();
        for at in arrivals {
            if delays.len() >= DELAY_SAMPLES {
                delays.pop_front();
            }
            delays.push_back(pushed.duration_since(at).as_micros() as u64);
        }
    }

    /// A new stream: no delays, no spans, output and mix as given.
    pub fn reset(&self, output: Output, mix: OriginalMix) {
        *self.output.lock().unwrap() = output;
        *self.mix.lock().unwrap() = mix;
        *self.ear_voice.lock().unwrap() = EarVoiceSpans::default();
        self.delays.lock().unwrap().clear();
    }

    /// The `realtimetranslate/stats` structure of this lane (see the README, "Running for days").
    pub fn stats(&self, feed: FeedFigures) -> gst::Structure {
        let counter = |get: fn(&crate::connection::ConnectionStats) -> &AtomicU64| {
            feed.connection
                .as_ref()
                .map_or(0, |c| get(c.stats()).load(Ordering::Relaxed))
        };
        let (written, pending, dropped_translation, silence_skipped);
        let (overproduced, gap_skipped, text_dropped, source_text_dropped);
        {
            let output = self.output.lock().unwrap();
            let timeline = &output.timeline;
            (written, pending, dropped_translation, silence_skipped) = (
                timeline.written(),
                timeline.pending(),
                timeline.dropped(),
                timeline.silence_skipped(),
            );
            (overproduced, gap_skipped, text_dropped, source_text_dropped) = (
                output.speech_budget.dropped(),
                output.sent_to_input.total_skipped(),
                timeline.text_dropped(),
                timeline.source_text_dropped(),
            );
        }
        let mut delays: Vec<u64> = self.delays.lock().unwrap().iter().copied().collect();
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
            let spans = self.ear_voice.lock().unwrap();
            (spans.speech(), spans.caption())
        };
        gst::Structure::builder("realtimetranslate/stats")
            .field("language", self.language())
            .field("lane", if self.requested { "request" } else { "always" })
            .field("utterances", speech_span.count as u64)
            .field("ear-voice-span-p50", seconds(speech_span.p50))
            .field("ear-voice-span-p90", seconds(speech_span.p90))
            .field("ear-voice-span-max", seconds(speech_span.max))
            .field("caption-span-p50", seconds(caption_span.p50))
            .field("caption-span-p90", seconds(caption_span.p90))
            .field("caption-span-max", seconds(caption_span.max))
            .field("audio-sent-seconds", seconds(feed.sent))
            .field("audio-received-seconds", seconds(feed.received))
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
            .field("input-chunks-dropped", feed.dropped_chunks)
            .field("connection-state", *self.connection_state.lock().unwrap())
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
            .field("audio-queue-buffers", self.audio.len() as u64)
            .field("subtitle-queue-items", self.text.len() as u64)
            .field("output-delay-p50-ms", percentile(0.5))
            .field("output-delay-p99-ms", percentile(0.99))
            .field("output-delay-samples", delays.len() as u64)
            .build()
    }
}

/// What the statistics take from a lane's feed.
#[derive(Default)]
pub struct FeedFigures {
    pub connection: Option<Arc<Connection>>,
    pub sent: u64,
    pub received: u64,
    pub dropped_chunks: u64,
}

/// A lane's share of the stream: its connection and the audio on its way there. Per stream
/// (in the element's `State`), while the [`Lane`] outlives streams.
pub struct Feed {
    pub lane: Arc<Lane>,
    pub connection: Option<Arc<Connection>>,
    /// Where the lane starts on the input, in samples from the input's origin: 0 for a lane
    /// there from the start, the input's end at the time for a lane requested while playing.
    pub start: u64,
    /// Samples appended to this lane's outgoing stream: positions as its engine counts them.
    pub sent: u64,
    /// The outgoing chunk being filled.
    chunk: Vec<i16>,
    /// Full chunks to hand to the connection once the locks are released.
    pub outgoing: Vec<Vec<i16>>,
    pub dropped_chunks: u64,
}

impl Feed {
    pub fn new(lane: Arc<Lane>, start: u64) -> Self {
        Self {
            lane,
            connection: None,
            start,
            sent: 0,
            chunk: Vec::with_capacity(CHUNK_SAMPLES * 2),
            outgoing: Vec::new(),
            dropped_chunks: 0,
        }
    }

    /// Appends engine-format samples to the outgoing stream; full 200 ms chunks wait in
    /// `outgoing`.
    pub fn send(&mut self, samples: &[i16]) {
        self.sent += samples.len() as u64;
        self.chunk.extend_from_slice(samples);
        while self.chunk.len() >= CHUNK_SAMPLES {
            let rest = self.chunk.split_off(CHUNK_SAMPLES);
            self.outgoing.push(std::mem::replace(&mut self.chunk, rest));
        }
    }

    /// End of stream: the partial chunk goes out too.
    pub fn flush_chunk(&mut self) {
        let last = std::mem::take(&mut self.chunk);
        if !last.is_empty() {
            self.outgoing.push(last);
        }
    }

    /// After a flush: nothing on its way, counted from the start again.
    pub fn restart(&mut self) {
        self.connection = None;
        self.start = 0;
        self.sent = 0;
        self.chunk.clear();
        self.outgoing.clear();
    }

    /// The lane's origin: where it starts on the input's timeline.
    pub fn origin(&self, input_origin: gst::ClockTime) -> gst::ClockTime {
        input_origin + samples_to_time(self.start)
    }

    pub fn figures(&self) -> FeedFigures {
        let (sent, received) = self.connection.as_ref().map_or((0, 0), |connection| {
            let counters = &connection.stats().session;
            (
                counters.samples_sent.load(Ordering::Relaxed),
                counters.samples_received.load(Ordering::Relaxed),
            )
        });
        FeedFigures {
            connection: self.connection.clone(),
            sent,
            received,
            dropped_chunks: self.dropped_chunks,
        }
    }
}
