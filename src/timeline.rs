//! Where translated speech and subtitle cues land on the output timeline.
//!
//! Positions are sample counts at 24 kHz from the first input sample. The element advances the
//! write head as input arrives (input end − latency); translated audio waits in a queue and is
//! written at the write head, so it is heard as soon as possible after it arrives, never dropped and
//! never overlapping earlier translation. Where nothing is queued the output is silence.
//!
//! The protocol has no end-of-utterance event, so cues are cut here: at a sentence end once its
//! speech has played, when a cue would grow past its size, or after an idle time.

use std::collections::VecDeque;
use std::time::Instant;

/// Samples no louder than this are digital silence.
const SILENCE_PEAK: u16 = 8;

/// How subtitle cues are cut and shown; positions in samples.
#[derive(Debug, Clone, PartialEq)]
pub struct CueSettings {
    /// Characters per line; lines are wrapped at spaces.
    pub line_chars: usize,
    /// Lines per cue.
    pub max_lines: usize,
    /// A cue with no new text and no speech left for this long is closed.
    pub idle: u64,
    /// Shortest time a cue stays on screen.
    pub min_duration: u64,
    /// After a sentence end, how long to wait for the speech that goes with the text.
    pub sentence_grace: u64,
}

/// A finished subtitle cue, `[start, end)` in samples, text wrapped into lines.
#[derive(Debug, Clone, PartialEq)]
pub struct Cue {
    pub start: u64,
    pub end: u64,
    pub text: String,
}

/// What one advance of the write head produced.
#[derive(Debug, Default)]
pub struct Emitted {
    /// Position of the first sample in `audio`.
    pub start: u64,
    /// Output samples: translation where queued, silence elsewhere.
    pub audio: Vec<i16>,
    /// Arrival times of translated chunks whose first sample is in `audio`.
    pub arrivals: Vec<Instant>,
    /// Translated-text cues that closed.
    pub cues: Vec<Cue>,
    /// Source-text cues that closed.
    pub source_cues: Vec<Cue>,
}

/// The output timeline of one stream.
#[derive(Debug)]
pub struct Timeline {
    written: u64,
    pending: VecDeque<i16>,
    max_pending: usize,
    /// Samples ever queued / ever written out of the queue, to match arrivals with output.
    queued_total: u64,
    dequeued_total: u64,
    arrivals: VecDeque<(u64, Instant)>,
    dropped: u64,
    silence_skipped: u64,
    translated: CueBuilder,
    source: CueBuilder,
}

impl Timeline {
    /// `max_pending`: most translated samples kept waiting; older ones are dropped past it.
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
            translated: CueBuilder::new(cue_settings.clone()),
            source: CueBuilder::new(cue_settings),
        }
    }

    /// Samples written so far: the write head.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Where the speech queued so far ends.
    pub fn speech_end(&self) -> u64 {
        self.written + self.pending.len() as u64
    }

    /// Translated samples waiting for the write head.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Translated samples dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Silent translated samples skipped to catch up.
    pub fn silence_skipped(&self) -> u64 {
        self.silence_skipped
    }

    /// Queues translated speech (24 kHz mono).
    pub fn push_audio(&mut self, samples: &[i16], arrived: Instant) {
        if samples.is_empty() {
            return;
        }
        // Behind (speech already waiting), a chunk of digital silence (a keep-alive frame, or a
        // pause) is skipped: that is how a backlog after an outage shrinks again instead of
        // delaying everything after it for good.
        if !self.pending.is_empty() && samples.iter().all(|s| s.unsigned_abs() <= SILENCE_PEAK) {
            self.silence_skipped += samples.len() as u64;
            return;
        }
        self.arrivals.push_back((self.queued_total, arrived));
        self.queued_total += samples.len() as u64;
        self.pending.extend(samples);
        let speech_end = self.speech_end();
        self.translated.activity(self.written, speech_end);
        let excess = self.pending.len().saturating_sub(self.max_pending);
        if excess > 0 {
            self.pending.drain(..excess);
            self.dequeued_total += excess as u64;
            self.dropped += excess as u64;
        }
    }

    /// Adds a translated-text fragment (append-only); returns cues it closed.
    pub fn push_text(&mut self, delta: &str) -> Vec<Cue> {
        let anchor = self.speech_end();
        self.translated.push(delta, anchor, self.written)
    }

    /// Adds a source-text fragment; returns cues it closed.
    pub fn push_source_text(&mut self, delta: &str) -> Vec<Cue> {
        self.source.push(delta, self.written, self.written)
    }

    /// Position up to which the translated-text pad may announce "nothing here" (GAP).
    pub fn text_hold(&self) -> u64 {
        self.translated.hold(self.written)
    }

    /// Same for the source-text pad.
    pub fn source_text_hold(&self) -> u64 {
        self.source.hold(self.written)
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
        emitted.audio.reserve(count);
        emitted.audio.extend(self.pending.drain(..from_queue));
        emitted.audio.resize(count, 0);
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
            .extend(self.translated.poll(self.written, speech_end));
        emitted
            .source_cues
            .extend(self.source.poll(self.written, self.written));
        emitted
    }

    /// End of stream: writes up to `input_end` and out all queued speech (it may run past the
    /// input's end), and closes every cue.
    pub fn finish(&mut self, input_end: u64) -> Emitted {
        let end = self.speech_end().max(input_end);
        let mut emitted = self.advance(end);
        self.translated.activity(self.written, end);
        emitted.cues.extend(self.translated.close());
        emitted.source_cues.extend(self.source.close());
        emitted
    }
}

#[derive(Debug)]
struct OpenCue {
    start: u64,
    text: String,
    /// Write-head position of the latest text or speech for this cue.
    last_activity: u64,
    /// Where the speech that goes with this cue ends, as far as known.
    speech_until: u64,
    sentence_done: bool,
}

/// Accumulates append-only text fragments into cues.
#[derive(Debug)]
struct CueBuilder {
    settings: CueSettings,
    open: Option<OpenCue>,
    /// End of the last closed cue: cues never overlap.
    last_end: u64,
}

impl CueBuilder {
    fn new(settings: CueSettings) -> Self {
        Self {
            settings,
            open: None,
            last_end: 0,
        }
    }

    fn max_chars(&self) -> usize {
        self.settings.line_chars * self.settings.max_lines
    }

    fn activity(&mut self, written: u64, speech_end: u64) {
        if let Some(open) = &mut self.open {
            open.last_activity = written;
            open.speech_until = open.speech_until.max(speech_end);
        }
    }

    /// `anchor`: where speech for text arriving now will be heard.
    fn push(&mut self, delta: &str, anchor: u64, written: u64) -> Vec<Cue> {
        let mut closed = Vec::new();
        let mut text = delta.to_owned();
        if let Some(open) = &self.open
            && open.sentence_done
            && !delta.trim().is_empty()
        {
            closed.extend(self.close());
        }
        if let Some(open) = &mut self.open {
            open.text.push_str(&text);
            open.last_activity = written;
            text.clear();
        }
        if !text.trim().is_empty() || self.open.is_some() {
            if self.open.is_none() {
                let start = anchor.max(self.last_end);
                self.open = Some(OpenCue {
                    start,
                    text: text.trim_start().to_owned(),
                    last_activity: written,
                    speech_until: start,
                    sentence_done: false,
                });
            }
            // A cue too long to show is cut at the last space that fits; the rest starts the next.
            let max_chars = self.max_chars();
            while self
                .open
                .as_ref()
                .is_some_and(|o| o.text.chars().count() > max_chars)
            {
                let open = self.open.as_mut().expect("checked");
                let limit = char_boundary(&open.text, max_chars);
                let cut = open.text[..limit]
                    .rfind(' ')
                    .filter(|&i| i > 0)
                    .unwrap_or(limit);
                let rest = open.text[cut..].trim_start().to_owned();
                open.text.truncate(cut);
                closed.extend(self.close());
                let start = anchor.max(self.last_end);
                self.open = Some(OpenCue {
                    start,
                    text: rest,
                    last_activity: written,
                    speech_until: start,
                    sentence_done: false,
                });
            }
            if let Some(open) = &mut self.open {
                open.sentence_done = ends_sentence(&open.text);
            }
        }
        closed
    }

    fn poll(&mut self, written: u64, speech_end: u64) -> Option<Cue> {
        let open = self.open.as_ref()?;
        let wait = if open.sentence_done {
            self.settings.sentence_grace
        } else {
            self.settings.idle
        };
        if written >= speech_end && written >= open.last_activity + wait {
            return self.close();
        }
        None
    }

    fn hold(&self, written: u64) -> u64 {
        match &self.open {
            Some(open) => open.start.min(written).max(self.last_end.min(written)),
            None => written,
        }
    }

    fn close(&mut self) -> Option<Cue> {
        let open = self.open.take()?;
        let text = wrap(open.text.trim(), self.settings.line_chars);
        if text.is_empty() {
            return None;
        }
        let end = open
            .speech_until
            .max(open.start + self.settings.min_duration);
        self.last_end = end;
        Some(Cue {
            start: open.start,
            end,
            text,
        })
    }
}

fn ends_sentence(text: &str) -> bool {
    matches!(
        text.trim_end().chars().last(),
        Some('.' | '!' | '?' | '…' | '。' | '！' | '？')
    )
}

fn char_boundary(text: &str, chars: usize) -> usize {
    text.char_indices()
        .nth(chars)
        .map_or(text.len(), |(i, _)| i)
}

/// Greedy word wrap; a word longer than a line stands on its own line.
fn wrap(text: &str, line_chars: usize) -> String {
    let mut lines: Vec<String> = Vec::new();
    for word in text.split_whitespace() {
        match lines.last_mut() {
            Some(line) if line.chars().count() + 1 + word.chars().count() <= line_chars => {
                line.push(' ');
                line.push_str(word);
            }
            _ => lines.push(word.to_owned()),
        }
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 24;

    fn settings() -> CueSettings {
        CueSettings {
            line_chars: 42,
            max_lines: 2,
            idle: 1200 * MS,
            min_duration: 1000 * MS,
            sentence_grace: 300 * MS,
        }
    }

    #[test]
    fn silence_where_nothing_is_queued_and_translation_at_the_write_head() {
        let mut t = Timeline::new(settings(), 1 << 20);
        let out = t.advance(100);
        assert_eq!(out.audio, vec![0; 100]);
        t.push_audio(&[7; 50], Instant::now());
        let out = t.advance(130);
        assert_eq!(out.start, 100);
        assert_eq!(&out.audio[..30], &[7; 30]);
        assert_eq!(out.arrivals.len(), 1);
        let out = t.advance(200);
        assert_eq!(&out.audio[..20], &[7; 20]);
        assert_eq!(&out.audio[20..], &[0; 50]);
        assert!(out.arrivals.is_empty());
    }

    #[test]
    fn queued_translation_is_never_dropped_or_overlapped() {
        let mut t = Timeline::new(settings(), 1 << 20);
        t.push_audio(&[100; 10], Instant::now());
        t.push_audio(&[200; 10], Instant::now());
        let out = t.advance(5);
        assert_eq!(out.audio, vec![100; 5]);
        let out = t.finish(0);
        assert_eq!(out.audio, [vec![100; 5], vec![200; 10]].concat());
        assert_eq!(t.written(), 20);
    }

    #[test]
    fn queue_bound_drops_oldest_and_counts() {
        let mut t = Timeline::new(settings(), 8);
        t.push_audio(&[100; 6], Instant::now());
        t.push_audio(&[200; 6], Instant::now());
        assert_eq!(t.pending(), 8);
        assert_eq!(t.dropped(), 4);
        assert_eq!(t.advance(8).audio, [vec![100; 2], vec![200; 6]].concat());
    }

    #[test]
    fn silent_chunks_are_skipped_only_when_behind() {
        let mut t = Timeline::new(settings(), 1 << 20);
        // Not behind: silence is queued like speech (it keeps its place on the timeline).
        t.push_audio(&[0; 10], Instant::now());
        assert_eq!(t.pending(), 10);
        t.advance(10);
        // Behind: a silent keep-alive chunk is skipped, so the backlog shrinks in pauses.
        t.push_audio(&[300; 10], Instant::now());
        t.push_audio(&[0; 10], Instant::now());
        t.push_audio(&[-300; 10], Instant::now());
        assert_eq!(t.pending(), 20);
        assert_eq!(t.silence_skipped(), 10);
        assert_eq!(
            t.advance(30).audio,
            [vec![300; 10], vec![-300; 10]].concat()
        );
    }

    #[test]
    fn sentence_cue_spans_its_speech_and_is_held_back_from_gaps() {
        let mut t = Timeline::new(settings(), 1 << 20);
        t.advance(1000);
        assert!(t.push_text("Buenos ").is_empty());
        assert!(t.push_text("días.").is_empty());
        assert_eq!(t.text_hold(), 1000);
        t.push_audio(&[5; 48_000], Instant::now());
        // Speech still playing: the cue stays open and the text pad waits at its start.
        let out = t.advance(30_000);
        assert!(out.cues.is_empty());
        assert_eq!(t.text_hold(), 1000);
        let out = t.advance(49_000 + 300 * MS);
        assert_eq!(
            out.cues,
            vec![Cue {
                start: 1000,
                end: 49_000,
                text: "Buenos días.".into()
            }]
        );
        assert_eq!(t.text_hold(), t.written());
    }

    #[test]
    fn idle_closes_a_cue_without_punctuation_with_a_minimum_duration() {
        let mut t = Timeline::new(settings(), 1 << 20);
        t.push_text("hola");
        let out = t.advance(1199 * MS);
        assert!(out.cues.is_empty());
        let out = t.advance(1200 * MS);
        assert_eq!(
            out.cues,
            vec![Cue {
                start: 0,
                end: 1000 * MS,
                text: "hola".into()
            }]
        );
    }

    #[test]
    fn next_sentence_closes_the_previous_cue_and_cues_never_overlap() {
        let mut t = Timeline::new(settings(), 1 << 20);
        t.push_text("Uno.");
        t.advance(10);
        let closed = t.push_text(" Dos.");
        assert_eq!(
            closed,
            vec![Cue {
                start: 0,
                end: 1000 * MS,
                text: "Uno.".into()
            }]
        );
        let out = t.finish(0);
        assert_eq!(out.cues[0].start, 1000 * MS);
        assert_eq!(out.cues[0].text, "Dos.");
    }

    #[test]
    fn long_text_is_cut_at_spaces_into_two_line_cues() {
        let mut t = Timeline::new(settings(), 1 << 20);
        let words = "palabra ".repeat(30);
        let closed = t.push_text(&words);
        assert!(!closed.is_empty());
        for cue in &closed {
            let lines: Vec<&str> = cue.text.lines().collect();
            assert!(lines.len() <= 2, "{:?}", cue.text);
            assert!(
                lines
                    .iter()
                    .all(|l| l.chars().count() <= 42 && !l.ends_with(' '))
            );
            assert!(cue.text.split_whitespace().all(|w| w == "palabra"));
        }
        let out = t.finish(0);
        let total: usize = closed
            .iter()
            .chain(&out.cues)
            .map(|c| c.text.split_whitespace().count())
            .sum();
        assert_eq!(total, 30);
    }

    #[test]
    fn fragments_are_concatenated_without_added_spaces() {
        let mut t = Timeline::new(settings(), 1 << 20);
        t.push_text("Bue");
        t.push_text("nos");
        t.push_text(" días");
        let out = t.finish(0);
        assert_eq!(out.cues[0].text, "Buenos días");
    }

    #[test]
    fn source_cues_start_at_the_write_head() {
        let mut t = Timeline::new(settings(), 1 << 20);
        t.advance(500);
        t.push_source_text("good morning. ");
        let out = t.advance(500 + 300 * MS);
        assert_eq!(
            out.source_cues,
            vec![Cue {
                start: 500,
                end: 500 + 1000 * MS,
                text: "good morning.".into()
            }]
        );
    }
}
