//! Text for the subtitle pads: live phrases or pop-on cues.
//!
//! Live (the default): text goes out as it arrives, whole words at a time, each piece a timed
//! buffer at the speech it belongs to, with a line end after each sentence: what roll-up
//! caption encoders (`tttocea608` in roll-up mode) and live captioners do. Cues: complete pop-on
//! cues of at most `max_lines` × `line_chars`, for files; a cue is pushed once complete, so the
//! element reports a latency that covers its assembly ([`CueSettings::max_assembly`]).
//!
//! The protocol has no end-of-utterance event, so cues are cut here: at a sentence end once its
//! speech has played, when a cue would grow past its size, after an idle time, or when it has
//! been open for `max_assembly`.
//!
//! Text is taken at most as fast as a screen can show it ([`TextBudget`]): a server that sends
//! megabytes of text must not cost time, memory or a timeline running hours ahead of the audio.
//! Each piece of work here is linear in the text admitted, and the text held unfinished is at
//! most a line.

/// How subtitle text is cut; positions in samples.
#[derive(Debug, Clone, PartialEq)]
pub struct CueSettings {
    /// Characters per line; lines are wrapped at spaces.
    pub line_chars: usize,
    /// Lines per cue.
    pub max_lines: usize,
    /// A cue with no new text and no speech left for this long is closed; a live piece's last
    /// unfinished word is let out after it.
    pub idle: u64,
    /// Shortest time a cue (or live piece) stays on screen.
    pub min_duration: u64,
    /// After a sentence end, how long to wait for the speech that goes with the text.
    pub sentence_grace: u64,
    /// A cue open this long is closed whatever follows (what the reported latency allows).
    pub max_assembly: u64,
    /// Whole cues rather than live pieces.
    pub cues: bool,
}

/// A text buffer to push: `[start, end)` in samples; `line_end`: a line (sentence, cue) ends
/// with it, so caption encoders start a new one.
#[derive(Debug, Clone, PartialEq)]
pub struct Cue {
    pub start: u64,
    pub end: u64,
    pub text: String,
    pub line_end: bool,
}

/// How much text a pad takes: at most `max_lines` × `line_chars` characters per `min_duration`
/// of the output timeline (a full screen a second: 84 characters by default, four times fast
/// speech), in bursts of at most `max_assembly` of that (336 characters). Text beyond it is
/// dropped, whole words where it can be cut at a space, and counted.
#[derive(Debug)]
pub struct TextBudget {
    /// Characters that may be taken now.
    available: f64,
    capacity: f64,
    /// Characters earned per sample of timeline.
    rate: f64,
    /// Write head at the last refill.
    refilled_at: u64,
    dropped: u64,
}

impl TextBudget {
    fn new(settings: &CueSettings) -> Self {
        let screen = (settings.line_chars.max(1) * settings.max_lines.max(1)) as f64;
        let min_duration = settings.min_duration.max(1) as f64;
        let capacity = screen * (settings.max_assembly as f64 / min_duration).max(1.0);
        Self {
            available: capacity,
            capacity,
            rate: screen / min_duration,
            refilled_at: 0,
            dropped: 0,
        }
    }

    /// The part of `delta` that may be taken with the write head at `written`; the rest is
    /// counted as dropped. Linear in the delta's length.
    fn admit<'a>(&mut self, delta: &'a str, written: u64) -> &'a str {
        let earned = written.saturating_sub(self.refilled_at) as f64 * self.rate;
        self.refilled_at = self.refilled_at.max(written);
        self.available = (self.available + earned).min(self.capacity);
        let allowed = self.available.max(0.0) as usize;
        let Some((limit, _)) = delta.char_indices().nth(allowed) else {
            self.available -= delta.chars().count() as f64;
            return delta;
        };
        // Cut after the last whole word that fits (and its space: nothing is left unfinished),
        // or at the limit inside a longer word.
        let cut = delta[..limit]
            .rfind(char::is_whitespace)
            .filter(|&i| i > 0)
            .map_or(limit, |i| {
                i + delta[i..].chars().next().map_or(0, char::len_utf8)
            });
        let (taken, rest) = delta.split_at(cut);
        let taken_chars = taken.chars().count();
        self.available -= taken_chars as f64;
        self.dropped += rest.chars().count() as u64;
        taken
    }
}

/// One text pad's builder.
#[derive(Debug)]
pub struct TextTrack {
    budget: TextBudget,
    builder: Builder,
}

#[derive(Debug)]
enum Builder {
    Live(PhraseBuilder),
    Cues(CueBuilder),
}

impl TextTrack {
    pub fn new(settings: CueSettings) -> Self {
        let budget = TextBudget::new(&settings);
        let builder = if settings.cues {
            Builder::Cues(CueBuilder::new(settings))
        } else {
            Builder::Live(PhraseBuilder::new(settings))
        };
        Self { budget, builder }
    }

    /// Characters of text dropped because they came faster than they can be shown.
    pub fn dropped(&self) -> u64 {
        let cues = match &self.builder {
            Builder::Cues(b) => b.dropped,
            Builder::Live(_) => 0,
        };
        self.budget.dropped + cues
    }

    /// Adds a fragment (append-only) whose speech is heard from `at`; returns what is ready.
    pub fn push(&mut self, delta: &str, at: u64, written: u64) -> Vec<Cue> {
        let delta = self.budget.admit(delta, written);
        match &mut self.builder {
            Builder::Live(b) => b.push(delta, at, written),
            Builder::Cues(b) => b.push(delta, at, written),
        }
    }

    /// Speech for the open text was queued up to `speech_end`.
    pub fn activity(&mut self, written: u64, speech_end: u64) {
        if let Builder::Cues(b) = &mut self.builder {
            b.activity(written, speech_end);
        }
    }

    /// What the write head's move to `written` lets out.
    pub fn poll(&mut self, written: u64, speech_end: u64) -> Vec<Cue> {
        match &mut self.builder {
            Builder::Live(b) => b.poll(written),
            Builder::Cues(b) => b.poll(written, speech_end).into_iter().collect(),
        }
    }

    /// Position up to which the pad may announce "nothing here" (GAP).
    pub fn hold(&self, written: u64) -> u64 {
        match &self.builder {
            Builder::Live(b) => b.hold(written),
            Builder::Cues(b) => b.hold(written),
        }
    }

    /// The segment the text belongs to ended: nothing more is coming for it.
    pub fn segment_ended(&mut self) -> Vec<Cue> {
        match &mut self.builder {
            Builder::Live(b) => b.flush(),
            Builder::Cues(_) => Vec::new(),
        }
    }

    /// End of stream: everything out, speech up to `speech_end` included.
    pub fn close(&mut self, written: u64, speech_end: u64) -> Vec<Cue> {
        match &mut self.builder {
            Builder::Live(b) => b.flush(),
            Builder::Cues(b) => {
                b.activity(written, speech_end);
                b.close().into_iter().collect()
            }
        }
    }
}

/// Live text: whole words as they arrive, at most a line per piece.
#[derive(Debug)]
pub struct PhraseBuilder {
    settings: CueSettings,
    /// Text not let out yet: an unfinished word.
    held: String,
    /// Where the held text's speech is.
    held_at: u64,
    /// Write head when text last arrived.
    last_activity: u64,
    /// Start of the last piece: pieces never go back in time.
    last_start: u64,
}

impl PhraseBuilder {
    fn new(settings: CueSettings) -> Self {
        Self {
            settings,
            held: String::new(),
            held_at: 0,
            last_activity: 0,
            last_start: 0,
        }
    }

    fn push(&mut self, delta: &str, at: u64, written: u64) -> Vec<Cue> {
        if self.held.trim().is_empty() {
            self.held.clear();
            self.held_at = at;
        }
        let text_at = self.held_at;
        self.held.push_str(delta);
        self.last_activity = written;
        // Up to the last word boundary; all of it when a sentence (or a word) just ended.
        let ready = if ends_sentence(&self.held) || self.held.ends_with(char::is_whitespace) {
            self.held.len()
        } else {
            match self.held.rfind(char::is_whitespace) {
                Some(i) => i,
                // A word longer than a line (or text without spaces) goes out a line at a time,
                // so that what is held stays short.
                None => match self
                    .held
                    .char_indices()
                    .nth(self.settings.line_chars.max(1))
                {
                    Some(_) => {
                        let chars = self.held.chars().count();
                        let whole = chars - chars % self.settings.line_chars.max(1);
                        self.held
                            .char_indices()
                            .nth(whole)
                            .map_or(self.held.len(), |(i, _)| i)
                    }
                    None => return Vec::new(),
                },
            }
        };
        let rest = self.held.split_off(ready);
        let text = std::mem::replace(&mut self.held, rest);
        // What is still held belongs to the newest text.
        self.held_at = at;
        self.pieces(&text, text_at)
    }

    fn poll(&mut self, written: u64) -> Vec<Cue> {
        if !self.held.is_empty() && written >= self.last_activity + self.settings.idle {
            // Let out now, so at the write head at the earliest: where its speech was has been
            // written long ago, and a buffer placed there would be late.
            self.held_at = self.held_at.max(written);
            return self.flush();
        }
        Vec::new()
    }

    fn hold(&self, written: u64) -> u64 {
        if self.held.trim().is_empty() {
            written
        } else {
            written.min(self.held_at.max(self.last_start))
        }
    }

    fn flush(&mut self) -> Vec<Cue> {
        let text = std::mem::take(&mut self.held);
        self.pieces(&text, self.held_at)
    }

    /// Whole words of `text` in pieces of at most a line, heard from `at`.
    fn pieces(&mut self, text: &str, at: u64) -> Vec<Cue> {
        let sentence_end = ends_sentence(text);
        let mut pieces: Vec<Cue> = wrap(text.trim(), self.settings.line_chars)
            .lines()
            .map(|line| {
                let start = at.max(self.last_start);
                self.last_start = start;
                Cue {
                    start,
                    end: start + self.piece_duration(line),
                    text: line.to_owned(),
                    line_end: false,
                }
            })
            .collect();
        if let Some(last) = pieces.last_mut() {
            last.line_end = sentence_end;
        }
        pieces
    }

    /// Long enough to read, and for a CEA-608 encoder to send it (2 characters a frame).
    fn piece_duration(&self, text: &str) -> u64 {
        let per_char = crate::protocol::translation::SAMPLE_RATE as u64 / 15;
        (text.chars().count() as u64 * per_char).max(self.settings.min_duration)
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

/// Accumulates append-only text fragments into pop-on cues.
#[derive(Debug)]
pub struct CueBuilder {
    settings: CueSettings,
    open: Option<OpenCue>,
    /// End of the last closed cue: cues never overlap.
    last_end: u64,
    /// Characters that found no cue before the horizon.
    dropped: u64,
}

impl CueBuilder {
    fn new(settings: CueSettings) -> Self {
        Self {
            settings,
            open: None,
            last_end: 0,
            dropped: 0,
        }
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
        // Cues last at least `min_duration` each and never overlap: a burst of text would push
        // them ever further past their speech. None starts later than this; its text is dropped.
        let horizon = anchor.max(written)
            + self
                .settings
                .max_assembly
                .saturating_sub(self.settings.min_duration);
        if !text.trim().is_empty() || self.open.is_some() {
            if self.open.is_none() {
                let start = anchor.max(self.last_end);
                if start > horizon {
                    self.dropped += text.chars().count() as u64;
                    return closed;
                }
                self.open = Some(OpenCue {
                    start,
                    text: text.trim_start().to_owned(),
                    last_activity: written,
                    speech_until: start,
                    sentence_done: false,
                });
            }
            // A cue too long to show is cut after the last word that fits its lines; the rest
            // starts the next.
            while let Some(cut) = self
                .open
                .as_ref()
                .and_then(|o| overflow(&o.text, self.settings.line_chars, self.settings.max_lines))
            {
                let open = self.open.as_mut().expect("checked");
                let rest = open.text[cut..].trim_start().to_owned();
                open.text.truncate(cut);
                closed.extend(self.close());
                let start = anchor.max(self.last_end);
                if start > horizon {
                    self.dropped += rest.chars().count() as u64;
                    break;
                }
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
        if written >= open.start + self.settings.max_assembly {
            return self.close();
        }
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
            line_end: true,
        })
    }
}

fn ends_sentence(text: &str) -> bool {
    matches!(
        text.trim_end().chars().last(),
        Some('.' | '!' | '?' | '…' | '。' | '！' | '？')
    )
}

/// Where to cut `text` so that it wraps into `max_lines` lines (after the last whole word that
/// fits, or inside a word longer than a line); `None` when it fits already.
fn overflow(text: &str, line_chars: usize, max_lines: usize) -> Option<usize> {
    if wrap(text.trim(), line_chars).lines().count() <= max_lines {
        return None;
    }
    let mut cut = None;
    for (index, _) in text.match_indices(char::is_whitespace) {
        if wrap(text[..index].trim(), line_chars).lines().count() > max_lines {
            break;
        }
        cut = Some(index);
    }
    cut.filter(|&i| !text[..i].trim().is_empty()).or_else(|| {
        // No whole word fits: cut the text at what the lines hold.
        let chars = line_chars.max(1) * max_lines.max(1);
        text.char_indices().nth(chars).map(|(i, _)| i)
    })
}

/// Greedy word wrap; a word longer than a line is cut.
fn wrap(text: &str, line_chars: usize) -> String {
    let mut lines: Vec<String> = Vec::new();
    for word in text.split_whitespace() {
        match lines.last_mut() {
            Some(line) if line.chars().count() + 1 + word.chars().count() <= line_chars => {
                line.push(' ');
                line.push_str(word);
            }
            _ => {
                let chars: Vec<char> = word.chars().collect();
                for part in chars.chunks(line_chars.max(1)) {
                    lines.push(part.iter().collect());
                }
            }
        }
    }
    lines.join("\n")
}

/// The element's default text settings (2 × 42 characters, 1.2 s idle, 1 s minimum), for tests.
#[cfg(test)]
pub(crate) fn default_settings(cues: bool) -> CueSettings {
    const MS: u64 = 24;
    CueSettings {
        line_chars: 42,
        max_lines: 2,
        idle: 1200 * MS,
        min_duration: 1000 * MS,
        sentence_grace: 300 * MS,
        max_assembly: 4000 * MS,
        cues,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 24;

    fn settings(cues: bool) -> CueSettings {
        default_settings(cues)
    }

    #[test]
    fn live_text_goes_out_word_by_word_at_its_speech() {
        let mut t = TextTrack::new(settings(false));
        assert!(t.push("Bue", 1000, 0).is_empty(), "half a word waits");
        let out = t.push("nos días, ", 1000, 10);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].text, "Buenos días,");
        assert_eq!(out[0].start, 1000);
        assert!(!out[0].line_end);
        assert_eq!(t.hold(5000), 5000);
        let out = t.push("amigos.", 3000, 20);
        assert_eq!(out[0].text, "amigos.");
        assert_eq!(out[0].start, 3000);
        assert!(out[0].line_end, "a sentence end ends the line");
        assert!(out[0].end >= out[0].start + 1000 * MS);
    }

    #[test]
    fn live_pieces_fit_a_line_and_never_go_back() {
        let mut t = TextTrack::new(settings(false));
        let words = "palabra ".repeat(30);
        let out = t.push(&words, 500, 0);
        assert!(out.len() >= 6);
        assert!(
            out.iter()
                .all(|c| c.text.chars().count() <= 42 && c.start == 500)
        );
        let total: usize = out.iter().map(|c| c.text.split_whitespace().count()).sum();
        assert_eq!(total, 30);
        // Later text anchored earlier still goes after what was pushed.
        let out = t.push("otra. ", 100, 0);
        assert_eq!(out[0].start, 500);
        // One word longer than a line is cut, never shown longer (a second later: the burst
        // above used most of what a screen can show at once).
        let out = t.push(&format!("{} ", "x".repeat(100)), 600, 1000 * MS);
        assert!(out.iter().all(|c| c.text.chars().count() <= 42));
    }

    #[test]
    fn a_held_word_goes_out_after_the_idle_time_or_at_the_segment_end() {
        let mut t = TextTrack::new(settings(false));
        assert!(t.push("hola", 200, 100).is_empty());
        assert_eq!(t.hold(10_000), 200, "no GAP past held text");
        assert!(t.poll(100 + 1199 * MS, 0).is_empty());
        let out = t.poll(100 + 1200 * MS, 0);
        assert_eq!(out[0].text, "hola");
        assert_eq!(
            out[0].start,
            100 + 1200 * MS,
            "at the write head, not in the past"
        );
        t.push("adiós", 300, 0);
        assert_eq!(t.segment_ended()[0].text, "adiós");
    }

    #[test]
    fn sentence_cue_spans_its_speech_and_is_held_back_from_gaps() {
        let mut t = TextTrack::new(settings(true));
        assert!(t.push("Buenos ", 1000, 1000).is_empty());
        assert!(t.push("días.", 1000, 1000).is_empty());
        assert_eq!(t.hold(1000), 1000);
        t.activity(1000, 49_000);
        // Speech still playing: the cue stays open and the text pad waits at its start.
        assert!(t.poll(30_000, 49_000).is_empty());
        assert_eq!(t.hold(30_000), 1000);
        let out = t.poll(49_000 + 300 * MS, 49_000);
        assert_eq!(
            out,
            vec![Cue {
                start: 1000,
                end: 49_000,
                text: "Buenos días.".into(),
                line_end: true,
            }]
        );
        assert_eq!(t.hold(60_000), 60_000);
    }

    #[test]
    fn a_cue_is_closed_once_open_for_the_assembly_time() {
        let mut t = TextTrack::new(settings(true));
        t.push("una frase que no termina", 0, 0);
        t.activity(0, 10_000 * MS);
        assert!(t.poll(3999 * MS, 10_000 * MS).is_empty());
        let out = t.poll(4000 * MS, 10_000 * MS);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].start, 0);
    }

    #[test]
    fn idle_closes_a_cue_without_punctuation_with_a_minimum_duration() {
        let mut t = TextTrack::new(settings(true));
        t.push("hola", 0, 0);
        assert!(t.poll(1199 * MS, 0).is_empty());
        let out = t.poll(1200 * MS, 0);
        assert_eq!((out[0].start, out[0].end), (0, 1000 * MS));
    }

    #[test]
    fn next_sentence_closes_the_previous_cue_and_cues_never_overlap() {
        let mut t = TextTrack::new(settings(true));
        t.push("Uno.", 0, 0);
        let closed = t.push(" Dos.", 0, 10);
        assert_eq!((closed[0].start, closed[0].end), (0, 1000 * MS));
        assert_eq!(closed[0].text, "Uno.");
        let out = t.close(10, 0);
        assert_eq!(out[0].start, 1000 * MS);
        assert_eq!(out[0].text, "Dos.");
    }

    #[test]
    fn long_text_is_cut_at_spaces_into_two_line_cues() {
        let mut t = TextTrack::new(settings(true));
        let words = "palabra ".repeat(30);
        let closed = t.push(&words, 0, 0);
        assert!(!closed.is_empty());
        for cue in &closed {
            let lines: Vec<&str> = cue.text.lines().collect();
            assert!(lines.len() <= 2, "{:?}", cue.text);
            assert!(
                lines
                    .iter()
                    .all(|l| l.chars().count() <= 42 && !l.ends_with(' '))
            );
        }
        let out = t.close(0, 0);
        let total: usize = closed
            .iter()
            .chain(&out)
            .map(|c| c.text.split_whitespace().count())
            .sum();
        assert_eq!(total, 30);
    }

    #[test]
    fn a_cue_never_wraps_into_more_lines_than_allowed() {
        // 84 characters, yet three lines once wrapped at spaces.
        let text = format!(
            "{} {} {} {}",
            "a".repeat(30),
            "b".repeat(20),
            "c".repeat(20),
            "d".repeat(10)
        );
        let mut t = TextTrack::new(settings(true));
        let mut cues = t.push(&text, 0, 0);
        cues.extend(t.close(0, 0));
        assert!(cues.len() >= 2);
        for cue in &cues {
            assert!(cue.text.lines().count() <= 2, "{:?}", cue.text);
            assert!(cue.text.lines().all(|l| l.chars().count() <= 42));
        }
        let words: Vec<String> = cues
            .iter()
            .flat_map(|c| c.text.split_whitespace().map(str::to_owned))
            .collect();
        assert_eq!(words.join(" "), text);
    }

    #[test]
    fn fragments_are_concatenated_without_added_spaces() {
        let mut t = TextTrack::new(settings(true));
        t.push("Bue", 0, 0);
        t.push("nos", 0, 0);
        t.push(" días", 0, 0);
        assert_eq!(t.close(0, 0)[0].text, "Buenos días");
    }

    /// Counts the characters that are not spaces.
    fn visible(text: &str) -> usize {
        text.chars().filter(|c| !c.is_whitespace()).count()
    }

    #[test]
    fn a_flood_of_text_is_cut_to_what_a_screen_shows_and_counted() {
        let flood = "palabra ".repeat(256 * 1024); // 2 MiB, no sentence end
        for cues in [false, true] {
            let mut t = TextTrack::new(settings(cues));
            let mut out = t.push(&flood, 1000, 1000);
            out.extend(t.close(1000, 1000));
            let shown: usize = out.iter().map(|c| c.text.chars().count()).sum();
            // A burst of at most 4 screens (4 × 84 characters).
            assert!(shown <= 336, "cues={cues}: {shown} characters shown");
            assert!(shown >= 200, "cues={cues}: {shown} characters shown");
            // Everything not shown is counted (spaces where lines wrap are not shown).
            let dropped = t.dropped() as usize;
            assert!(
                dropped + shown <= flood.len() && dropped + shown + out.len() + 8 >= flood.len(),
                "cues={cues}: {dropped} dropped + {shown} shown of {}",
                flood.len()
            );
            // Nothing lands more than 4 s past where the text belongs.
            for cue in &out {
                assert!(cue.end <= 1000 + 4000 * MS, "cues={cues}: {cue:?}");
            }
        }
    }

    #[test]
    fn text_keeps_flowing_at_the_rate_a_screen_shows_it() {
        // A second of timeline earns a screen (84 characters): fast speech is never cut.
        let mut t = TextTrack::new(settings(false));
        let mut shown = 0;
        for second in 0..60u64 {
            let text = "veinte caracteres y. ".repeat(3); // 63 characters a second
            for cue in t.push(&text, second * 1000 * MS, second * 1000 * MS) {
                shown += visible(&cue.text);
            }
        }
        assert_eq!(t.dropped(), 0);
        assert_eq!(shown, 60 * visible(&"veinte caracteres y. ".repeat(3)));
    }

    #[test]
    fn text_without_spaces_is_held_a_line_at_most() {
        let mut t = TextTrack::new(settings(false));
        let mut out = Vec::new();
        for i in 0..1000u64 {
            // Ten characters every 200 ms, no space ever (within the rate a screen shows).
            out.extend(t.push(&"字".repeat(10), i * 200 * MS, i * 200 * MS));
        }
        assert_eq!(t.dropped(), 0);
        assert!(out.len() >= 200, "{} pieces", out.len());
        assert!(out.iter().all(|c| c.text.chars().count() == 42));
    }
}
