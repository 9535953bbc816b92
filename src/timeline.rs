//! Where translated speech and text land on the output timeline.
//!
//! Positions are sample counts at 24 kHz from the first input sample. The element moves the
//! write head as time allows (see `output.rs`); everything before it is out. Translated speech
//! arrives in *segments* (a burst of speech and its text answering one stretch of source
//! speech). A new segment is anchored by [`Placement`]: at or after the source speech it
//! answers, never before what is already written or queued. Within a segment, audio follows on
//! contiguously. Where nothing is queued the output is silence.
//!
//! A new segment begins when the engine's progress has moved on by more than [`SEGMENT_GAP`]
//! since the segment's last output, or after a silent chunk (engines send digital silence
//! between utterances). Silent chunks are never queued: they only say "nothing here", and
//! skipping them is how a backlog after an outage shrinks again.

use std::collections::VecDeque;
use std::time::Instant;

use crate::captions::{Cue, CueSettings, TextTrack};
use crate::placement::Placement;
use crate::protocol::translation::SAMPLE_RATE;

/// Samples no louder than this are digital silence.
const SILENCE_PEAK: u16 = 8;
/// Engine progress between two outputs beyond which the second starts a new segment.
pub const SEGMENT_GAP: u64 = 600 * SAMPLE_RATE as u64 / 1000;
/// Silence longer than this in one advance of the write head (a long gap in the input) is not
/// written out as samples: it is reported as a span with nothing in it.
const MAX_SILENCE_WRITTEN: u64 = 60 * SAMPLE_RATE as u64;

/// Whether translated audio is digital silence (never queued).
pub fn is_silence(samples: &[i16]) -> bool {
    samples.iter().all(|s| s.unsigned_abs() <= SILENCE_PEAK)
}

/// What one advance of the write head produced.
#[derive(Debug, Default)]
pub struct Emitted {
    /// Position of the first sample in `audio`.
    pub start: u64,
    /// Output samples: translation where queued, silence elsewhere.
    pub audio: Vec<i16>,
    /// After `audio`, nothing up to this position (a silence too long to write out as samples).
    pub silent_until: Option<u64>,
    /// Arrival times of translated chunks whose first sample is in `audio`.
    pub arrivals: Vec<Instant>,
    /// Translated text ready to go out.
    pub cues: Vec<Cue>,
    /// Source text ready to go out.
    pub source_cues: Vec<Cue>,
}

/// One answered stretch of source speech: the figures of the ear-voice span.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Utterance {
    /// Where the source speech began.
    pub source_onset: u64,
    /// Where its translated speech begins (none: text only).
    pub speech: Option<u64>,
    /// Where its first caption is (none: speech only).
    pub caption: Option<u64>,
    /// Where the write head could be when its first speech arrived (it may lag that by a write
    /// step): the earliest it could be heard.
    /// A translation later than its source allows is the engine's lateness when it starts here
    /// (or right behind the translation before it).
    pub arrival: Option<u64>,
}

#[derive(Debug)]
struct Segment {
    start: u64,
    /// Engine progress at its latest output.
    progress: u64,
    source_onset: Option<u64>,
    speech: Option<u64>,
    caption: Option<u64>,
    /// Where the write head could be when its first speech arrived.
    arrival: Option<u64>,
    /// Where its latest audio chunk starts: text arriving now belongs about there.
    latest_audio: u64,
    reported: bool,
}

impl Segment {
    /// The ear-voice record, once both speech and caption are known (or `force`, at its end).
    fn utterance(&mut self, force: bool) -> Option<Utterance> {
        let source_onset = self.source_onset?;
        let complete = self.speech.is_some() && self.caption.is_some();
        if self.reported
            || !(complete || force)
            || (self.speech.is_none() && self.caption.is_none())
        {
            return None;
        }
        self.reported = true;
        Some(Utterance {
            source_onset,
            speech: self.speech,
            caption: self.caption,
            arrival: self.arrival,
        })
    }
}

/// The segments of one kind of output (translated speech and text, or the source text).
#[derive(Debug)]
struct Track {
    placement: Placement,
    segment: Option<Segment>,
    /// A silent chunk came since the last output: the next one starts a segment.
    after_silence: bool,
    text: TextTrack,
}

impl Track {
    fn new(cues: CueSettings) -> Self {
        Self {
            placement: Placement::default(),
            segment: None,
            after_silence: false,
            text: TextTrack::new(cues),
        }
    }

    /// The current segment for an output at engine progress `progress`; a new one starts at or
    /// after `floor`. Returns whether it is new, and what the old one leaves behind.
    fn segment(
        &mut self,
        progress: u64,
        floor: u64,
        ended: &mut Vec<Cue>,
        utterances: &mut Vec<Utterance>,
    ) -> bool {
        if let Some(segment) = &mut self.segment
            && !self.after_silence
            && progress <= segment.progress + SEGMENT_GAP
        {
            segment.progress = segment.progress.max(progress);
            return false;
        }
        self.end_segment(ended, utterances);
        let anchor = self.placement.anchor(progress);
        let start = anchor.at.max(floor);
        self.segment = Some(Segment {
            start,
            progress,
            source_onset: anchor.source_onset,
            speech: None,
            caption: None,
            arrival: None,
            latest_audio: start,
            reported: false,
        });
        self.after_silence = false;
        true
    }

    fn end_segment(&mut self, ended: &mut Vec<Cue>, utterances: &mut Vec<Utterance>) {
        if let Some(mut segment) = self.segment.take() {
            utterances.extend(segment.utterance(true));
            ended.extend(self.text.segment_ended());
        }
    }

    /// Text of the current segment, heard from `at`.
    fn text(
        &mut self,
        delta: &str,
        at: u64,
        written: u64,
        utterances: &mut Vec<Utterance>,
    ) -> Vec<Cue> {
        let cues = self.text.push(delta, at, written);
        if let Some(segment) = &mut self.segment {
            if segment.caption.is_none() && !delta.trim().is_empty() {
                // Where its text goes (a cue may only be pushed later, at that position).
                segment.caption = Some(cues.first().map_or(at, |cue| cue.start));
            }
            utterances.extend(segment.utterance(false));
        }
        cues
    }
}

/// The output timeline of one stream.
#[derive(Debug)]
pub struct Timeline {
    written: u64,
    /// Output from the write head on: translated speech, and silence before a segment placed
    /// later than the speech queued so far.
    pending: VecDeque<i16>,
    max_pending: usize,
    /// Samples ever queued / ever written out of the queue, to match arrivals with output.
    queued_total: u64,
    dequeued_total: u64,
    arrivals: VecDeque<(u64, Instant)>,
    dropped: u64,
    silence_skipped: u64,
    translated: Track,
    source: Track,
    utterances: Vec<Utterance>,
}

impl Timeline {
    /// `max_pending`: most output kept waiting; older translation is dropped past it.
    pub fn new(cue_settings: CueSettings, max_pending: usize) -> Self {
        Self {
            written: 0,
            pending: VecDeque::new(),
            max_pending,
            queued_total: 0,
            dequeued_total: 0,
            arrivals: VecDeque::new(),
            dropped: 0,
            silence_skipped: 0,
            translated: Track::new(cue_settings.clone()),
            source: Track::new(cue_settings),
            utterances: Vec::new(),
        }
    }

    /// Samples written so far: the write head.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Where the output queued so far ends.
    pub fn speech_end(&self) -> u64 {
        self.written + self.pending.len() as u64
    }

    /// Output samples waiting for the write head.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Translated samples dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Characters of translated text dropped for coming faster than a screen shows them.
    pub fn text_dropped(&self) -> u64 {
        self.translated.text.dropped()
    }

    /// Same for the source text.
    pub fn source_text_dropped(&self) -> u64 {
        self.source.text.dropped()
    }

    /// Silent translated samples not queued.
    pub fn silence_skipped(&self) -> u64 {
        self.silence_skipped
    }

    /// Speech began in the input at `position`: a source a translation may answer.
    pub fn onset(&mut self, position: u64) {
        self.translated.placement.onset(position);
        self.source.placement.onset(position);
    }

    /// The ear-voice records completed since the last call.
    pub fn take_utterances(&mut self) -> Vec<Utterance> {
        std::mem::take(&mut self.utterances)
    }

    /// Queues translated speech (24 kHz mono) that the engine sent having heard the input up
    /// to `progress`; a new segment starts no earlier than `due` (where the write head may be
    /// now). Returns text a segment change let out.
    pub fn push_audio(
        &mut self,
        samples: &[i16],
        arrived: Instant,
        progress: u64,
        due: u64,
    ) -> Vec<Cue> {
        if samples.is_empty() {
            return Vec::new();
        }
        if is_silence(samples) {
            self.silence_skipped += samples.len() as u64;
            self.translated.after_silence = true;
            return Vec::new();
        }
        let ended = self.open_segment(progress, due);
        let at = self.speech_end();
        let segment = self.translated.segment.as_mut().expect("just opened");
        segment.speech.get_or_insert(at);
        segment.arrival.get_or_insert(self.written.max(due));
        segment.latest_audio = at;
        self.utterances.extend(segment.utterance(false));
        self.arrivals.push_back((self.queued_total, arrived));
        self.queue(samples);
        let speech_end = self.speech_end();
        self.translated.text.activity(self.written, speech_end);
        let excess = self.pending.len().saturating_sub(self.max_pending);
        if excess > 0 {
            self.pending.drain(..excess);
            self.dequeued_total += excess as u64;
            self.dropped += excess as u64;
        }
        ended
    }

    /// Adds a translated-text fragment (append-only) sent at engine progress `progress`;
    /// returns the text ready to go out.
    pub fn push_text(&mut self, delta: &str, progress: u64, due: u64) -> Vec<Cue> {
        let mut out = self.open_segment(progress, due);
        let segment = self.translated.segment.as_ref().expect("just opened");
        // Text that comes first goes at the segment's start; text that follows its speech goes
        // with the latest of it; never before the write head (it would be late).
        let at = segment.latest_audio.max(self.written);
        out.extend(
            self.translated
                .text(delta, at, self.written, &mut self.utterances),
        );
        out
    }

    /// Adds a source-text fragment; it goes with the source speech it transcribes.
    pub fn push_source_text(&mut self, delta: &str, progress: u64, due: u64) -> Vec<Cue> {
        let mut out = Vec::new();
        let floor = self.written.max(due);
        let mut ignored = Vec::new();
        self.source.segment(progress, floor, &mut out, &mut ignored);
        // At its segment's start, unless the write head has passed it (later text of a long
        // segment): a buffer placed behind the write head would be late.
        let at = self
            .source
            .segment
            .as_ref()
            .expect("just opened")
            .start
            .max(self.written);
        out.extend(self.source.text(delta, at, self.written, &mut ignored));
        out
    }

    /// Starts a translated segment if this output begins one: silence is queued up to its anchor.
    fn open_segment(&mut self, progress: u64, due: u64) -> Vec<Cue> {
        let mut ended = Vec::new();
        let floor = self.speech_end().max(due);
        if self
            .translated
            .segment(progress, floor, &mut ended, &mut self.utterances)
        {
            let start = self.translated.segment.as_ref().expect("opened").start;
            let silence = start - self.speech_end();
            self.pending
                .extend(std::iter::repeat_n(0, silence as usize));
            self.queued_total += silence;
        }
        ended
    }

    fn queue(&mut self, samples: &[i16]) {
        self.queued_total += samples.len() as u64;
        self.pending.extend(samples);
    }

    /// Position up to which the translated-text pad may announce "nothing here" (GAP).
    pub fn text_hold(&self) -> u64 {
        self.translated.text.hold(self.written)
    }

    /// Same for the source-text pad.
    pub fn source_text_hold(&self) -> u64 {
        self.source.text.hold(self.written)
    }

    /// Moves the write head to `to` and returns the output in between.
    pub fn advance(&mut self, to: u64) -> Emitted {
        let mut emitted = Emitted {
            start: self.written,
            ..Default::default()
        };
        if to <= self.written {
            return emitted;
        }
        let count = (to - self.written) as usize;
        let from_queue = count.min(self.pending.len());
        if (count - from_queue) as u64 > MAX_SILENCE_WRITTEN {
            take_front(&mut self.pending, from_queue, &mut emitted.audio);
            emitted.silent_until = Some(to);
        } else {
            emitted.audio.reserve(count);
            take_front(&mut self.pending, from_queue, &mut emitted.audio);
            emitted.audio.resize(count, 0);
        }
        self.dequeued_total += from_queue as u64;
        while let Some(&(first, at)) = self.arrivals.front() {
            if first >= self.dequeued_total {
                break;
            }
            emitted.arrivals.push(at);
            self.arrivals.pop_front();
        }
        self.written = to;
        let speech_end = self.speech_end();
        emitted
            .cues
            .extend(self.translated.text.poll(self.written, speech_end));
        emitted
            .source_cues
            .extend(self.source.text.poll(self.written, self.written));
        emitted
    }

    /// End of stream: writes up to `input_end` and out all queued speech (it may run past the
    /// input's end), and lets out all text.
    pub fn finish(&mut self, input_end: u64) -> Emitted {
        let end = self.speech_end().max(input_end);
        let mut cues = Vec::new();
        let mut source_cues = Vec::new();
        self.translated.end_segment(&mut cues, &mut self.utterances);
        let mut ignored = Vec::new();
        self.source.end_segment(&mut source_cues, &mut ignored);
        let speech_end = self.speech_end();
        cues.extend(self.translated.text.close(self.written, speech_end));
        source_cues.extend(self.source.text.close(self.written, self.written));
        let mut emitted = self.advance(end);
        cues.append(&mut emitted.cues);
        source_cues.append(&mut emitted.source_cues);
        emitted.cues = cues;
        emitted.source_cues = source_cues;
        emitted
    }
}

/// Moves the first `n` samples of `queue` to the end of `into`, as two slice copies: draining
/// a `VecDeque` through an iterator copies sample by sample, a visible cost at hundreds of
/// streams.
fn take_front(queue: &mut VecDeque<i16>, n: usize, into: &mut Vec<i16>) {
    let (front, back) = queue.as_slices();
    let from_front = n.min(front.len());
    into.extend_from_slice(&front[..from_front]);
    into.extend_from_slice(&back[..n - from_front]);
    queue.drain(..n);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::placement::ALIGN_LAG;

    const MS: u64 = 24;
    const S: u64 = 24_000;

    fn settings(cues: bool) -> CueSettings {
        crate::captions::default_settings(cues)
    }

    fn timeline() -> Timeline {
        Timeline::new(settings(false), 1 << 24)
    }

    #[test]
    fn take_front_keeps_order_across_the_deque_wrapping() {
        // Pushing at the back after popping at the front wraps the ring buffer, so the
        // samples lie in two slices.
        let mut queue: VecDeque<i16> = VecDeque::with_capacity(8);
        queue.extend(0..8);
        queue.drain(..5);
        queue.extend(8..12);
        assert!(!queue.as_slices().1.is_empty(), "not wrapped");
        for n in 0..=queue.len() {
            let mut copy = queue.clone();
            let mut out = vec![-1];
            take_front(&mut copy, n, &mut out);
            let expected: Vec<i16> = std::iter::once(-1).chain(5..5 + n as i16).collect();
            assert_eq!(out, expected);
            assert_eq!(
                copy.iter().copied().collect::<Vec<_>>(),
                (5 + n as i16..12).collect::<Vec<_>>()
            );
        }
    }

    #[test]
    fn silence_where_nothing_is_queued_and_translation_at_the_write_head() {
        let mut t = timeline();
        let out = t.advance(100);
        assert_eq!(out.audio, vec![0; 100]);
        t.push_audio(&[70; 50], Instant::now(), 100, 0);
        let out = t.advance(130);
        assert_eq!(out.start, 100);
        assert_eq!(&out.audio[..30], &[70; 30]);
        assert_eq!(out.arrivals.len(), 1);
        let out = t.advance(200);
        assert_eq!(&out.audio[..20], &[70; 20]);
        assert_eq!(&out.audio[20..], &[0; 50]);
        assert!(out.arrivals.is_empty());
    }

    #[test]
    fn a_segment_follows_on_and_the_next_is_never_overlapped() {
        let mut t = timeline();
        t.push_audio(&[100; 10], Instant::now(), 0, 0);
        t.push_audio(&[200; 10], Instant::now(), 0, 0);
        assert_eq!(t.advance(5).audio, vec![100; 5]);
        // A new segment (progress moved on) is placed after what is queued, at its progress
        // (no onset to match, no lag seen: never earlier than the engine could have heard it).
        t.push_audio(&[300; 10], Instant::now(), 2 * S, 0);
        let out = t.finish(0);
        assert_eq!(
            &out.audio[..15],
            &[vec![100; 5], vec![200; 10]].concat()[..]
        );
        let third = out.audio.iter().position(|&s| s == 300).unwrap() as u64 + out.start;
        assert_eq!(third, 2 * S);
        assert_eq!(out.audio.iter().filter(|&&s| s == 300).count(), 10);
    }

    #[test]
    fn aligned_translation_starts_after_its_source_not_at_the_write_head() {
        let mut t = timeline();
        // Input speech starts at 2 s; the write head is 5 s behind the input (latency 5 s).
        t.onset(2 * S);
        t.advance(S);
        // The engine answers at 3.5 s of input: the translation goes just after 2 s.
        t.push_text("Hola. ", 3 * S + S / 2, 0);
        t.push_audio(&[500; 100], Instant::now(), 3 * S + S / 2, 0);
        assert_eq!(t.speech_end(), 2 * S + ALIGN_LAG + 100);
        let out = t.advance(3 * S);
        let first = out.audio.iter().position(|&s| s != 0).unwrap() as u64 + out.start;
        assert_eq!(first, 2 * S + ALIGN_LAG);
        assert_eq!(
            t.take_utterances(),
            vec![Utterance {
                source_onset: 2 * S,
                speech: Some(2 * S + ALIGN_LAG),
                caption: Some(2 * S + ALIGN_LAG),
                // Written up to 1 s when it arrived.
                arrival: Some(S),
            }]
        );
    }

    #[test]
    fn low_delay_translation_goes_at_the_write_head_when_its_anchor_has_passed() {
        let mut t = timeline();
        t.onset(S);
        t.advance(3 * S);
        let text = t.push_text("Hola ", 3 * S, 0);
        assert_eq!(text[0].start, 3 * S);
        t.push_audio(&[500; 100], Instant::now(), 3 * S, 0);
        assert_eq!(t.advance(3 * S + 100).audio, vec![500; 100]);
    }

    #[test]
    fn silent_chunks_are_never_queued_and_end_a_segment() {
        let mut t = timeline();
        t.push_audio(&[300; 10], Instant::now(), 0, 0);
        t.push_audio(&[0; 10], Instant::now(), 0, 0);
        assert_eq!(t.pending(), 10);
        assert_eq!(t.silence_skipped(), 10);
        t.onset(0); // too old to match: the next segment trails the progress by the lag seen
        t.push_audio(&[-300; 10], Instant::now(), 0, 0);
        assert_eq!(
            t.advance(20).audio,
            [vec![300; 10], vec![-300; 10]].concat()
        );
    }

    #[test]
    fn queue_bound_drops_oldest_and_counts() {
        let mut t = Timeline::new(settings(false), 8);
        t.push_audio(&[100; 6], Instant::now(), 0, 0);
        t.push_audio(&[200; 6], Instant::now(), 0, 0);
        assert_eq!(t.pending(), 8);
        assert_eq!(t.dropped(), 4);
        assert_eq!(t.advance(8).audio, [vec![100; 2], vec![200; 6]].concat());
    }

    #[test]
    fn source_text_goes_with_its_source_speech() {
        let mut t = timeline();
        t.onset(2 * S);
        t.advance(S);
        let cues = t.push_source_text("good morning. ", 4 * S, 0);
        assert_eq!(cues[0].start, 2 * S + ALIGN_LAG);
        assert!(cues[0].line_end);
        // Never before the write head.
        t.onset(5 * S);
        t.advance(10 * S);
        let cues = t.push_source_text("again. ", 11 * S, 0);
        assert_eq!(cues[0].start, 10 * S);
    }

    #[test]
    fn an_hour_of_silence_is_a_span_not_samples() {
        let mut t = timeline();
        t.push_audio(&[70; 50], Instant::now(), 0, 0);
        let out = t.advance(3600 * S);
        assert_eq!(out.audio, vec![70; 50]);
        assert_eq!(out.silent_until, Some(3600 * S));
        assert_eq!(t.written(), 3600 * S);
        // Shorter silences are written out.
        let out = t.advance(3601 * S);
        assert_eq!((out.audio.len() as u64, out.silent_until), (S, None));
    }

    #[test]
    fn cue_mode_cues_cover_their_speech() {
        let mut t = Timeline::new(settings(true), 1 << 24);
        assert!(t.push_text("Buenos días.", 0, 0).is_empty());
        t.push_audio(&[500; 48_000], Instant::now(), 0, 0);
        let out = t.advance(30_000);
        assert!(out.cues.is_empty());
        assert_eq!(t.text_hold(), 0);
        let out = t.advance(48_000 + 300 * MS);
        assert_eq!((out.cues[0].start, out.cues[0].end), (0, 48_000));
    }
}
