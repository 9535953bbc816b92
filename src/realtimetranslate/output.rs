//! Turns the timeline's output into GStreamer buffers and events for the three src pads, and
//! decides how far the write head may go.
//!
//! Positions are 24 kHz sample counts from `origin`, the PTS of the first input sample, so the
//! output shares the input's timeline and never drifts from it by rounding.
//!
//! The write head is `latency` behind the input's end, live: live input has a deadline, and
//! the element reports that latency plus a margin. Non-live input has none, and may come much
//! faster than real time or in huge buffers, so there the write head is `latency` behind what
//! the engine has *answered*: the element waits for the engine, and every translation finds its
//! place near its source whatever the pacing or buffer size. Either way a small `latency` puts
//! a translation right after its source (low delay) and a large one lines it up with it.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::enums::Pacing;
use crate::captions::{Cue, CueSettings};
use crate::input_gaps::SentToInput;
use crate::onsets::OnsetDetector;
use crate::overproduction::SpeechBudget;
use crate::pad_queue::Item;
use crate::protocol::translation::SAMPLE_RATE;
use crate::timeline::{self, Emitted, Timeline, Utterance};

/// Translated speech kept waiting at most: 2 minutes, far beyond any real backlog in real time.
const MAX_PENDING_SAMPLES: usize = 120 * SAMPLE_RATE as usize;
/// Non-live input can run ahead of the translation by whatever the connection holds in flight,
/// and it all comes back later: keep up to 20 minutes (55 MB) rather than drop any.
const MAX_PENDING_SAMPLES_UNPACED: usize = 1200 * SAMPLE_RATE as usize;
/// Text pads announce silence (GAP) in steps of at least this much, not once per input buffer.
const MIN_GAP_SAMPLES: u64 = SAMPLE_RATE as u64 / 10;
/// Longest audio buffer pushed.
const MAX_BUFFER_SAMPLES: usize = SAMPLE_RATE as usize / 10;
/// Translated speech that has arrived goes out in steps of at least this much (20 ms): input in
/// tiny buffers (one frame, a 32-frame JACK period) must not make tiny output buffers, which
/// would fill the src pad's queue (counted in buffers) with less audio than one text GAP step
/// and so keep a non-live pipeline from prerolling.
const MIN_WRITE_SAMPLES: u64 = SAMPLE_RATE as u64 / 50;
/// The write head moves on its own (nothing translated arrived: the engine is behind, or has
/// nothing to say) in steps of one full buffer, so the element pushes as many buffers a second
/// when the engine falls behind as when it keeps up. In 20 ms steps, a machine too busy for the
/// network threads made every stream push five times as many buffers, which took the CPU those
/// threads needed: hundreds of streams then stayed behind for good (see `benches/element.rs`).
/// The step comes out of the jitter margin of the reported latency; the watch for late input
/// ([`crate::input_gaps::OUTPUT_WAIT`]) leaves the same room as before.
const WRITE_STEP_SAMPLES: u64 = MAX_BUFFER_SAMPLES as u64;
/// Non-live: when the engine has sent nothing for this long (wall time), input older than this
/// counts as answered, so that an engine that neither answers nor sends keep-alives (a turn-based
/// one during a long turn) cannot hold the output back for good. Long enough for an engine
/// busy on a long utterance on a loaded machine: those that send keep-alives (the translation
/// protocol) are placed by what they say, whatever the machine's speed.
pub const NONLIVE_QUIET: Duration = Duration::from_secs(4);
/// Non-live: written at once whatever the engine says, so downstream can preroll.
const PREROLL_SAMPLES: u64 = MAX_BUFFER_SAMPLES as u64;

pub fn samples_to_time(samples: u64) -> gst::ClockTime {
    gst::ClockTime::from_nseconds((samples as u128 * 1_000_000_000 / SAMPLE_RATE as u128) as u64)
}

pub fn time_to_samples(time: gst::ClockTime) -> u64 {
    (time.nseconds() as u128 * SAMPLE_RATE as u128 / 1_000_000_000) as u64
}

/// Items for each src pad, in push order.
#[derive(Debug, Default)]
pub struct PadItems {
    pub audio: Vec<Item>,
    pub text: Vec<Item>,
    pub source_text: Vec<Item>,
}

/// Where a text pad stands: the PTS of its last buffer (buffers never go back) and how far
/// its buffers and GAPs cover the timeline.
#[derive(Debug, Default, Clone, Copy)]
struct TextPad {
    last_start: u64,
    covered: u64,
    /// A text buffer was the last item.
    after_text: bool,
}

/// How far a non-live engine has answered.
#[derive(Debug)]
struct Answered {
    /// Engine progress of its latest output.
    reported: u64,
    /// When its latest output came.
    last_output: Option<Instant>,
    /// Input end as the streaming thread saw it, recently.
    history: VecDeque<(Instant, u64)>,
}

impl Answered {
    fn position(&self, now: Instant) -> u64 {
        let quiet = self
            .last_output
            .is_none_or(|at| now.duration_since(at) >= NONLIVE_QUIET);
        let heard_long_ago = self
            .history
            .iter()
            .rev()
            .find(|(at, _)| quiet && now.duration_since(*at) >= NONLIVE_QUIET)
            .map_or(0, |&(_, end)| end);
        self.reported.max(heard_long_ago)
    }

    fn output(&mut self, now: Instant, progress: u64) {
        self.reported = self.reported.max(progress);
        self.last_output = Some(now);
    }

    fn input_reached(&mut self, now: Instant, input_end: u64) {
        self.history.push_back((now, input_end));
        // Keep one entry older than the quiet time, and the newer ones.
        while self.history.len() > 2 && now.duration_since(self.history[1].0) >= NONLIVE_QUIET {
            self.history.pop_front();
        }
    }
}

/// The output side of one stream (reset by flushes).
#[derive(Debug)]
pub struct Output {
    pub timeline: Timeline,
    /// PTS of the first input sample; `None` until the first buffer.
    pub origin: Option<gst::ClockTime>,
    /// End of the input so far (samples from origin).
    pub input_end: Option<u64>,
    /// How far behind the input output is written (the `latency` property).
    write_lag: u64,
    /// Set for non-live input: the write head follows the engine.
    answered: Option<Answered>,
    /// The engine's progress that came with the output being delivered (`elapsed_ms`).
    reported_progress: Option<u64>,
    /// Live: translated speech arrived since the last write (see [`Output::input_reached`]).
    arrived: bool,
    onsets: OnsetDetector,
    text_pad: TextPad,
    source_text_pad: TextPad,
    discont: bool,
    /// Translated speech taken against the input heard (an engine faster than real time).
    pub speech_budget: SpeechBudget,
    /// Where the audio sent to the engine lies on the input's timeline (long gaps are cut).
    pub sent_to_input: SentToInput,
}

impl Output {
    /// `outage_buffer`: samples of audio an outage may replay at once (see `overproduction.rs`).
    pub fn new(cues: CueSettings, pacing: Pacing, write_lag: u64, outage_buffer: u64) -> Self {
        let max_pending = match pacing {
            Pacing::Realtime => MAX_PENDING_SAMPLES,
            Pacing::None => MAX_PENDING_SAMPLES_UNPACED,
        };
        Self {
            timeline: Timeline::new(cues, max_pending),
            origin: None,
            input_end: None,
            write_lag,
            answered: None,
            reported_progress: None,
            arrived: false,
            onsets: OnsetDetector::new(),
            text_pad: TextPad::default(),
            source_text_pad: TextPad::default(),
            discont: true,
            speech_budget: SpeechBudget::new(outage_buffer),
            sent_to_input: SentToInput::default(),
        }
    }

    /// `samples` of input after `sent` samples sent to the engine are never sent (the rest of a
    /// long gap): the speech-onset detector and the engine's positions skip them too.
    pub fn input_skipped(&mut self, sent: u64, samples: u64) {
        self.sent_to_input.skipped(sent, samples);
        self.onsets.skip(samples);
    }

    /// Non-live input: from now on the write head waits for the engine's answers.
    pub fn set_live(&mut self, live: bool) {
        if live {
            self.answered = None;
        } else if self.answered.is_none() {
            self.answered = Some(Answered {
                reported: 0,
                last_output: None,
                history: VecDeque::new(),
            });
        }
    }

    fn time(&self, samples: u64) -> gst::ClockTime {
        self.origin.unwrap_or(gst::ClockTime::ZERO) + samples_to_time(samples)
    }

    /// Input as the engine hears it (24 kHz mono), for the speech onsets placement needs.
    pub fn input_heard(&mut self, samples: &[i16]) {
        for onset in self.onsets.push(samples) {
            self.timeline.onset(onset);
        }
    }

    /// The engine says the output that follows was produced having heard the audio sent up to
    /// `position`.
    pub fn engine_progress(&mut self, position: u64) {
        self.reported_progress = Some(self.sent_to_input.to_input(position));
    }

    /// Engine progress for output arriving now: what the engine said, or else the input's end
    /// (what it may have heard), never beyond the input; and where the write head may be now.
    fn progress(&mut self) -> (u64, u64) {
        let input_end = self.input_end.unwrap_or(0);
        let progress = self
            .reported_progress
            .take()
            .map_or(input_end, |p| p.min(input_end));
        if let Some(answered) = &mut self.answered {
            answered.output(Instant::now(), progress);
        }
        (progress, self.due(input_end))
    }

    /// Translated speech arrived. Speech beyond what the engine can have said in real time
    /// (see `overproduction.rs`) is dropped and counted.
    pub fn push_audio(&mut self, samples: &[i16], arrived: Instant) -> PadItems {
        if !timeline::is_silence(samples)
            && !self
                .speech_budget
                .admit(samples.len() as u64, self.timeline.written())
        {
            self.reported_progress = None;
            return PadItems::default();
        }
        let (progress, due) = self.progress();
        let cues = self.timeline.push_audio(samples, arrived, progress, due);
        let mut items = if self.answered.is_some() {
            self.write_arrived()
        } else {
            self.arrived = true;
            PadItems::default()
        };
        items.text.extend(self.cue_items(&cues, false));
        items
    }

    /// Translated text arrived.
    pub fn push_text(&mut self, delta: &str) -> Vec<Item> {
        let (progress, due) = self.progress();
        let cues = self.timeline.push_text(delta, progress, due);
        self.cue_items(&cues, false)
    }

    /// Source text arrived.
    pub fn push_source_text(&mut self, delta: &str) -> Vec<Item> {
        let (progress, due) = self.progress();
        let cues = self.timeline.push_source_text(delta, progress, due);
        self.cue_items(&cues, true)
    }

    /// Ear-voice records completed since the last call, as (source onset, speech, caption) times.
    pub fn take_utterances(&mut self) -> Vec<Utterance> {
        self.timeline.take_utterances()
    }

    /// Converts what the timeline emitted, plus the GAPs the text pads may now announce.
    pub fn items(&mut self, emitted: Emitted) -> PadItems {
        let mut items = PadItems::default();
        let mut position = emitted.start;
        let mut arrivals = emitted.arrivals;
        for piece in emitted.audio.chunks(MAX_BUFFER_SAMPLES) {
            let bytes: Vec<u8> = piece.iter().flat_map(|s| s.to_le_bytes()).collect();
            let mut buffer = gst::Buffer::from_mut_slice(bytes);
            {
                let buffer = buffer.get_mut().expect("new buffer");
                let pts = self.time(position);
                buffer.set_pts(pts);
                buffer.set_duration(self.time(position + piece.len() as u64) - pts);
                buffer.set_offset(position);
                buffer.set_offset_end(position + piece.len() as u64);
                if std::mem::take(&mut self.discont) {
                    buffer.set_flags(gst::BufferFlags::DISCONT);
                }
            }
            items
                .audio
                .push(Item::Buffer(buffer, std::mem::take(&mut arrivals)));
            position += piece.len() as u64;
        }
        if let (Some(origin), Some(to)) = (self.origin, emitted.silent_until) {
            // A long stretch with nothing to say (a gap in the input): one GAP, not hours of
            // silence in memory.
            items.audio.push(gap(origin, position, to));
        }
        items.text = self.cue_items(&emitted.cues, false);
        items.source_text = self.cue_items(&emitted.source_cues, true);
        self.gaps(&mut items, false);
        items
    }

    /// Where the write head may be now: `latency` behind the input (live) or behind what the
    /// engine has answered (non-live).
    fn due(&self, input_end: u64) -> u64 {
        match &self.answered {
            None => input_end.saturating_sub(self.write_lag),
            Some(answered) => {
                let answered = answered.position(Instant::now()).min(input_end);
                answered
                    .saturating_sub(self.write_lag)
                    .max(PREROLL_SAMPLES.min(input_end))
            }
        }
    }

    /// The input now reaches `input_end`: output is written up to where it is due, and live,
    /// translated speech that has arrived goes out up to the input's end (when it is heard does
    /// not change, only how soon downstream has it). Live speech waits for this next input
    /// buffer rather than going out from the network thread as it arrives: that would wake
    /// the src pad's task from there for every delta, which was the largest cost of the
    /// network threads at hundreds of streams. It is due `latency` later than this anyway.
    pub fn input_reached(&mut self, input_end: u64) -> PadItems {
        self.input_end = Some(input_end);
        if let Some(answered) = &mut self.answered {
            answered.input_reached(Instant::now(), input_end);
        }
        let due = self.due(input_end);
        if !self.arrived {
            return self.advance_to(due, WRITE_STEP_SAMPLES);
        }
        let to = due.max(self.timeline.speech_end().min(input_end));
        let items = self.advance_to(to, MIN_WRITE_SAMPLES);
        // Less than a write step arrived: it goes with a later buffer.
        self.arrived = self.timeline.written() < to;
        items
    }

    /// Writes up to `to`, once that is at least `step` past what is written.
    fn advance_to(&mut self, to: u64, step: u64) -> PadItems {
        if to < self.timeline.written() + step {
            return PadItems::default();
        }
        let emitted = self.timeline.advance(to);
        self.items(emitted)
    }

    /// Live input is late: the output goes on as if it had reached `position` (the input's end
    /// stays where it is; input that still comes is heard, but its time has been written).
    pub fn clock_reached(&mut self, position: u64) -> PadItems {
        self.advance_to(position.saturating_sub(self.write_lag), WRITE_STEP_SAMPLES)
    }

    /// Non-live, the engine said something: its progress is what moves the write head, so
    /// output goes out up to where it is now due (the streaming thread may be waiting meanwhile).
    fn write_arrived(&mut self) -> PadItems {
        let Some(input_end) = self.input_end else {
            return PadItems::default();
        };
        let to = self.due(input_end);
        self.advance_to(to, MIN_WRITE_SAMPLES)
    }

    /// End of stream: everything out (translation may run past the input's end), all text let
    /// out, the text pads covered to the end, then EOS on every pad.
    pub fn finish(&mut self) -> PadItems {
        let mut items = PadItems::default();
        if self.origin.is_some() {
            let emitted = self.timeline.finish(self.input_end.unwrap_or(0));
            items = self.items(emitted);
            self.gaps(&mut items, true);
        }
        self.input_end = None;
        for queued in [&mut items.audio, &mut items.text, &mut items.source_text] {
            queued.push(Item::Event(gst::event::Eos::new()));
        }
        items
    }

    /// Text buffers (and the line-end events after them) for one text pad.
    fn cue_items(&mut self, cues: &[Cue], source: bool) -> Vec<Item> {
        let origin = self.origin.unwrap_or(gst::ClockTime::ZERO);
        let pad = if source {
            &mut self.source_text_pad
        } else {
            &mut self.text_pad
        };
        cues.iter()
            .flat_map(|cue| cue_items(origin, cue, pad))
            .collect()
    }

    /// GAP events up to where the timeline lets each text pad advance; `all` ignores the minimum
    /// step (end of stream).
    fn gaps(&mut self, items: &mut PadItems, all: bool) {
        let min = if all { 1 } else { MIN_GAP_SAMPLES };
        let hold = self.timeline.text_hold();
        items
            .text
            .extend(gap_items(self.origin, &mut self.text_pad, hold, min));
        let hold = self.timeline.source_text_hold();
        items
            .source_text
            .extend(gap_items(self.origin, &mut self.source_text_pad, hold, min));
    }
}

/// GAP events from where the pad stands up to `hold`. Right after a text buffer the first one is
/// short: caption encoders take the end of a GAP that follows a caption as when to clear it.
fn gap_items(origin: Option<gst::ClockTime>, pad: &mut TextPad, hold: u64, min: u64) -> Vec<Item> {
    let Some(origin) = origin else {
        return Vec::new();
    };
    if hold < pad.covered + min {
        return Vec::new();
    }
    let mut items = Vec::new();
    let mut from = pad.covered;
    if std::mem::take(&mut pad.after_text) && hold > from + MIN_GAP_SAMPLES {
        items.push(gap(origin, from, from + MIN_GAP_SAMPLES));
        from += MIN_GAP_SAMPLES;
    }
    items.push(gap(origin, from, hold));
    pad.covered = hold;
    pad.last_start = pad.last_start.max(hold);
    items
}

fn gap(origin: gst::ClockTime, from: u64, to: u64) -> Item {
    let start = origin + samples_to_time(from);
    let end = origin + samples_to_time(to);
    Item::Event(
        gst::event::Gap::builder(start)
            .duration(end - start)
            .build(),
    )
}

/// A text buffer (after a GAP up to it, if the pad lags), then, at a line end, the event
/// caption encoders take as the end of a line.
fn cue_items(origin: gst::ClockTime, cue: &Cue, pad: &mut TextPad) -> Vec<Item> {
    let start = cue.start.max(pad.last_start);
    let end = cue.end.max(start + 1);
    let mut items = Vec::new();
    if start > pad.covered {
        items.extend(gap_items(Some(origin), pad, start, 1));
    }
    let mut buffer = gst::Buffer::from_mut_slice(cue.text.clone().into_bytes());
    {
        let buffer = buffer.get_mut().expect("new buffer");
        let pts = origin + samples_to_time(start);
        buffer.set_pts(pts);
        buffer.set_duration(origin + samples_to_time(end) - pts);
    }
    items.push(Item::Buffer(buffer, Vec::new()));
    if cue.line_end {
        items.push(Item::Event(
            gst::event::CustomDownstream::builder(gst::Structure::new_empty(
                "rstranscribe/final-transcript",
            ))
            .build(),
        ));
    }
    pad.last_start = start;
    pad.covered = pad.covered.max(end);
    pad.after_text = true;
    items
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::captions::default_settings;

    const MS: u64 = SAMPLE_RATE as u64 / 1000;
    const LAG: u64 = 200 * MS;
    const INPUT_STEP: u64 = 20 * MS;
    const CHUNK: u64 = 200 * MS;

    fn live_output() -> Output {
        gst::init().unwrap();
        let mut output = Output::new(default_settings(false), Pacing::Realtime, LAG, 10_000 * MS);
        output.origin = Some(gst::ClockTime::ZERO);
        output.set_live(true);
        output
    }

    /// Audio buffers as (start, length) in samples.
    fn audio_buffers(items: &PadItems) -> Vec<(u64, u64)> {
        items
            .audio
            .iter()
            .filter_map(|item| match item {
                Item::Buffer(buffer, _) => {
                    Some((buffer.offset(), buffer.offset_end() - buffer.offset()))
                }
                Item::Event(_) => None,
            })
            .collect()
    }

    /// 3 s of live input in 20 ms buffers; with `answering`, an engine that answers each 200 ms
    /// chunk with 200 ms of speech as soon as the chunk is complete. Returns every audio buffer
    /// written, and checks after each input buffer that the write head is no more than one
    /// write step behind where it is due.
    fn run(answering: bool) -> Vec<(u64, u64)> {
        let mut output = live_output();
        let mut buffers = Vec::new();
        let mut input_end = 0;
        while input_end < 3000 * MS {
            input_end += INPUT_STEP;
            if answering && input_end % CHUNK == 0 {
                output.engine_progress(input_end);
                let speech = vec![1000i16; CHUNK as usize];
                buffers.extend(audio_buffers(&output.push_audio(&speech, Instant::now())));
            }
            buffers.extend(audio_buffers(&output.input_reached(input_end)));
            let due = input_end.saturating_sub(LAG);
            assert!(
                output.timeline.written() + WRITE_STEP_SAMPLES > due,
                "written {} with {due} due",
                output.timeline.written()
            );
        }
        buffers
    }

    #[test]
    fn live_output_goes_in_full_buffers_when_nothing_is_translated() {
        let buffers = run(false);
        // 2.8 s due (3 s of input, 200 ms behind), in 100 ms buffers end to end.
        assert_eq!(buffers.len(), 28, "{buffers:?}");
        let mut at = 0;
        for (start, len) in buffers {
            assert_eq!((start, len), (at, WRITE_STEP_SAMPLES));
            at += len;
        }
    }

    /// An engine falling behind must not make the element push more buffers: in 20 ms steps a
    /// saturated machine's hundreds of streams pushed five times as many, which took the CPU
    /// the network threads needed to catch up.
    #[test]
    fn live_output_pushes_no_more_buffers_when_the_engine_is_behind_than_when_it_keeps_up() {
        let keeping_up = run(true);
        let behind = run(false);
        assert!(
            behind.len() <= keeping_up.len(),
            "{} buffers with nothing translated, {} with the engine keeping up",
            behind.len(),
            keeping_up.len()
        );
        // Speech that arrived went out with the next input buffer, up to the input's end.
        assert!(keeping_up.iter().any(|&(start, _)| start + LAG > 2800 * MS));
    }

    /// Input that stops: the watch writes on with the clock, in the same full steps.
    #[test]
    fn output_written_from_the_clock_goes_in_full_buffers() {
        let mut output = live_output();
        let mut buffers = audio_buffers(&output.input_reached(1000 * MS));
        let mut position = 1000 * MS;
        while position < 2000 * MS {
            position += INPUT_STEP;
            buffers.extend(audio_buffers(&output.clock_reached(position)));
            assert!(output.timeline.written() + WRITE_STEP_SAMPLES > position - LAG);
        }
        assert_eq!(buffers.len(), 18, "{buffers:?}");
        assert!(buffers.iter().all(|&(_, len)| len == WRITE_STEP_SAMPLES));
    }
}
