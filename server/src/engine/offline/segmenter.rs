//! Cuts 16 kHz audio into utterances by voice activity, for a recogniser (Whisper) that decodes a
//! whole utterance at a time.
//!
//! Energy in 20 ms frames against an adaptive noise floor: speech starts after 3 loud frames in
//! 5 and ends after [`HANGOVER_FRAMES`] quiet ones. It is deliberately permissive (a tone or a
//! burst of noise starts an utterance too): the worker's Silero VAD and Whisper's no-speech
//! score reject what is not speech. Long utterances are cut at [`MAX_UTTERANCE`], and while one
//! is running, its audio so far is offered for interim decodes ([`INTERIM_FIRST`],
//! [`INTERIM_EVERY`]).
//!
//! Audio comes in 200 ms chunks, so an utterance's end is seen one chunk after the pause began
//! at best. When a chunk ends in a pause of [`TENTATIVE_FRAMES`] or more, the utterance so far is
//! offered as [`Cut::Tentative`]: decoded while the pause goes on, its answer stands if the
//! utterance then ends with no more speech ([`Cut::Confirmed`]), which saves a chunk's wait.

/// Frame length in samples at 16 kHz (20 ms).
const FRAME: usize = 320;
/// A frame is loud when its energy is this many dB over the noise floor…
const OVER_FLOOR_DB: f64 = 10.0;
/// …and over this absolute level (dBFS), so that dither in digital silence is never speech.
const MIN_LEVEL_DB: f64 = -50.0;
/// Frames kept before the first loud one (Whisper needs the onset).
const PREROLL_FRAMES: usize = 15;
/// Quiet frames that end an utterance: 0.3 s (Whisper, unlike PocketSphinx, needs no long tail).
pub const HANGOVER_FRAMES: usize = 15;
/// Longest utterance: 15 s, then it is cut and a new one begins.
const MAX_UTTERANCE: usize = 15 * 16_000;
/// Shortest utterance worth decoding (0.25 s of audio including the hang-over is a click).
const MIN_UTTERANCE: usize = 16_000 * 4 / 10;
/// Interim decodes of a running utterance: the first once it has lasted 1.5 s, then every
/// second, so its words reach the transcript within about 2 s (an interim decode in a 10 s
/// window takes 0.1-0.35 s, less than the chunk that would show the utterance's end).
pub const INTERIM_FIRST: usize = 16_000 * 3 / 2;
pub const INTERIM_EVERY: usize = 16_000;
/// Quiet frames at the end of a chunk that make the utterance so far worth decoding ahead of its
/// end: 0.1 s (a pause between words is shorter; an utterance's end is confirmed at 0.3 s).
pub const TENTATIVE_FRAMES: usize = 5;
/// The floor rises slowly (dB per frame) and falls at once.
const FLOOR_RISE_DB: f64 = 0.1;

/// What [`Segmenter::push`] found.
#[derive(Debug, PartialEq)]
pub enum Cut {
    /// A finished utterance (16 kHz samples, with its pre-roll and hang-over).
    Utterance(Vec<i16>),
    /// The running utterance so far, for an interim decode.
    Interim(Vec<i16>),
    /// The running utterance so far, in a pause that may be its end: decoded now, the answer is
    /// kept for [`Cut::Confirmed`].
    Tentative(Vec<i16>),
    /// A finished utterance that is the last [`Cut::Tentative`] plus quiet: its answer stands.
    Confirmed(Vec<i16>),
}

pub struct Segmenter {
    pending: Vec<i16>,
    floor_db: f64,
    /// Recent frames, before an utterance starts (pre-roll).
    recent: std::collections::VecDeque<Vec<i16>>,
    /// Loudness of the last 5 frames, to start an utterance.
    recent_loud: std::collections::VecDeque<bool>,
    utterance: Option<Vec<i16>>,
    quiet_run: usize,
    next_interim: usize,
    /// A [`Cut::Tentative`] was given in the current pause.
    tentative: bool,
}

impl Default for Segmenter {
    fn default() -> Self {
        Self::new()
    }
}

impl Segmenter {
    pub fn new() -> Self {
        Segmenter {
            pending: Vec::new(),
            floor_db: -60.0,
            recent: Default::default(),
            recent_loud: Default::default(),
            utterance: None,
            quiet_run: 0,
            next_interim: INTERIM_FIRST,
            tentative: false,
        }
    }

    /// Whether an utterance is running.
    pub fn in_speech(&self) -> bool {
        self.utterance.is_some()
    }

    /// Feeds 16 kHz audio.
    pub fn push(&mut self, pcm: &[i16]) -> Vec<Cut> {
        self.pending.extend_from_slice(pcm);
        let mut cuts = Vec::new();
        let whole = self.pending.len() / FRAME * FRAME;
        let frames: Vec<i16> = self.pending.drain(..whole).collect();
        for frame in frames.chunks_exact(FRAME) {
            self.frame(frame, &mut cuts);
        }
        if let Some(utterance) = &self.utterance
            && self.quiet_run >= TENTATIVE_FRAMES
            && utterance.len() >= MIN_UTTERANCE
            && !self.tentative
        {
            self.tentative = true;
            cuts.push(Cut::Tentative(utterance.clone()));
        }
        cuts
    }

    /// End of input: the running utterance, if any.
    pub fn finish(&mut self) -> Option<Vec<i16>> {
        let rest = std::mem::take(&mut self.pending);
        let mut utterance = self.utterance.take()?;
        utterance.extend_from_slice(&rest);
        self.quiet_run = 0;
        self.tentative = false;
        (utterance.len() >= MIN_UTTERANCE).then_some(utterance)
    }

    fn frame(&mut self, frame: &[i16], cuts: &mut Vec<Cut>) {
        let level = level_db(frame);
        let loud = level > self.floor_db + OVER_FLOOR_DB && level > MIN_LEVEL_DB;
        // The floor follows the quiet: down at once, up slowly (so speech does not raise it).
        self.floor_db = if level < self.floor_db {
            level.max(-90.0)
        } else {
            self.floor_db + FLOOR_RISE_DB
        };
        self.recent_loud.push_back(loud);
        if self.recent_loud.len() > 5 {
            self.recent_loud.pop_front();
        }
        match &mut self.utterance {
            None => {
                self.recent.push_back(frame.to_vec());
                if self.recent.len() > PREROLL_FRAMES {
                    self.recent.pop_front();
                }
                if self.recent_loud.iter().filter(|l| **l).count() >= 3 {
                    self.utterance = Some(self.recent.drain(..).flatten().collect());
                    self.quiet_run = 0;
                    self.next_interim = INTERIM_FIRST;
                    self.tentative = false;
                }
            }
            Some(utterance) => {
                utterance.extend_from_slice(frame);
                self.quiet_run = if loud { 0 } else { self.quiet_run + 1 };
                if loud {
                    // Speech goes on: a tentative decode so far is void.
                    self.tentative = false;
                }
                let len = utterance.len();
                if self.quiet_run >= HANGOVER_FRAMES || len >= MAX_UTTERANCE {
                    let utterance = self.utterance.take().expect("running");
                    self.recent_loud.clear();
                    let confirmed = std::mem::take(&mut self.tentative);
                    if utterance.len() >= MIN_UTTERANCE {
                        cuts.push(if confirmed {
                            Cut::Confirmed(utterance)
                        } else {
                            Cut::Utterance(utterance)
                        });
                    }
                } else if len >= self.next_interim && self.quiet_run == 0 {
                    // Not in a pause: a pause may be the utterance's end, decoded whole soon.
                    self.next_interim = len + INTERIM_EVERY;
                    cuts.push(Cut::Interim(utterance.clone()));
                }
            }
        }
    }
}

fn level_db(frame: &[i16]) -> f64 {
    let energy = frame.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / frame.len() as f64;
    10.0 * (energy / (32768.0 * 32768.0)).max(1e-12).log10()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(seconds: f64, amplitude: f64) -> Vec<i16> {
        (0..(seconds * 16_000.0) as usize)
            .map(|i| (amplitude * (i as f64 * 0.17).sin()) as i16)
            .collect()
    }

    #[test]
    fn a_burst_between_pauses_is_one_utterance_with_its_onset() {
        let mut s = Segmenter::new();
        let mut audio = vec![0i16; 16_000];
        audio.extend(tone(1.0, 8000.0));
        audio.extend(vec![0i16; 16_000]);
        let cuts = s.push(&audio);
        assert_eq!(cuts.len(), 1, "{}", cuts.len());
        let Cut::Utterance(u) = &cuts[0] else {
            panic!("not an utterance")
        };
        // 1 s of sound, with pre-roll (≤ 0.3 s) and hang-over (0.3 s).
        assert!((1.3 * 16_000.0..1.7 * 16_000.0).contains(&(u.len() as f64)));
        assert!(s.finish().is_none());
    }

    /// Syllables: 200 ms of sound, 60 ms dips, as in running speech.
    fn syllables(seconds: f64) -> Vec<i16> {
        tone(seconds, 8000.0)
            .into_iter()
            .enumerate()
            .map(|(i, s)| if i % 4160 < 3200 { s } else { s / 20 })
            .collect()
    }

    #[test]
    fn a_long_utterance_gives_interim_audio_and_is_cut() {
        let mut s = Segmenter::new();
        let cuts = s.push(&syllables(16.0));
        let interims = cuts.iter().filter(|c| matches!(c, Cut::Interim(_))).count();
        let finals = cuts
            .iter()
            .filter(|c| matches!(c, Cut::Utterance(_)))
            .count();
        assert_eq!((interims, finals), (14, 1));
        assert!(s.in_speech());
        assert!(s.finish().is_some());
    }

    #[test]
    fn a_chunk_ending_in_a_pause_offers_the_utterance_ahead_of_its_end() {
        let mut s = Segmenter::new();
        let mut first = vec![0i16; 8_000];
        first.extend(tone(1.0, 8000.0));
        first.extend(vec![0i16; 2_400]); // 0.15 s of pause at the chunk's end
        let cuts = s.push(&first);
        let [Cut::Tentative(tentative)] = &cuts[..] else {
            panic!("{} cuts", cuts.len())
        };
        // The pause goes on: the utterance ends as offered, plus quiet.
        let cuts = s.push(&vec![0i16; 3_200]);
        let [Cut::Confirmed(utterance)] = &cuts[..] else {
            panic!("{} cuts", cuts.len())
        };
        assert!(utterance.starts_with(tentative) && utterance.len() > tentative.len());
        assert!(utterance[tentative.len()..].iter().all(|&x| x == 0));

        // Speech resumes after the pause: the offer is void, the utterance ends later, whole.
        let mut s = Segmenter::new();
        assert!(matches!(&s.push(&first)[..], [Cut::Tentative(_)]));
        let mut more = tone(0.5, 8000.0);
        more.extend(vec![0i16; 8_000]);
        let cuts = s.push(&more);
        let ends: Vec<&Cut> = cuts
            .iter()
            .filter(|c| !matches!(c, Cut::Interim(_)))
            .collect();
        assert!(
            matches!(&ends[..], [Cut::Utterance(u)] if u.len() > first.len()),
            "{} cuts",
            cuts.len()
        );
    }

    #[test]
    fn silence_starts_nothing_and_a_steady_hum_soon_ends() {
        let mut s = Segmenter::new();
        assert!(s.push(&vec![0i16; 10 * 16_000]).is_empty());
        // A steady hum raises the floor to itself: after a while, it is no speech.
        let cuts = s.push(&tone(30.0, 300.0));
        let finals = cuts.iter().filter(|c| matches!(c, Cut::Utterance(_)));
        assert_eq!(finals.count(), 1);
        assert!(!s.in_speech());
    }
}
