//! Where a translated segment starts on the output timeline.
//!
//! A segment (a burst of translated speech and its text) answers source speech that began at
//! one of the input's speech onsets (`onsets.rs`). When it arrives, the engine had heard the
//! input up to some position, its *progress* (what the engine says in `elapsed_ms`, or what the
//! element had sent it). The source is then the latest onset at least [`MIN_LAG`] before that
//! progress: an engine cannot answer speech it has barely heard, and it answers in order.
//!
//! The segment is anchored [`ALIGN_LAG`] after that onset: never before the words it
//! translates. With no onset to match (speech the detector missed, or an engine that splits
//! one utterance into several answers), it is anchored at progress − the smallest lag seen
//! recently: as early as the engine has shown it can be, and no earlier. The caller never
//! places a segment before what is already written or queued, so in low-delay mode the anchor
//! rarely matters and in aligned mode it decides.

use std::collections::VecDeque;

use crate::protocol::translation::SAMPLE_RATE;

const MS: u64 = SAMPLE_RATE as u64 / 1000;
/// The quickest an engine can answer speech after it starts.
pub const MIN_LAG: u64 = 300 * MS;
/// Onsets older than this before the progress are no longer candidates.
const MAX_LAG: u64 = 30_000 * MS;
/// A translation starts this long after its source: an onset is found to within a 20 ms frame
/// and a soft first consonant can hide under the threshold.
pub const ALIGN_LAG: u64 = 150 * MS;
/// Onsets remembered at most (about two minutes of speech with short pauses).
const MAX_ONSETS: usize = 256;
/// Lags remembered for the estimate.
const LAG_HISTORY: usize = 8;

/// Where a segment goes and what it answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Anchor {
    /// Earliest position for the segment's first sample.
    pub at: u64,
    /// The onset of the source speech it was matched to, if any.
    pub source_onset: Option<u64>,
}

/// Onsets not answered yet, and the lags seen so far.
#[derive(Debug, Default)]
pub struct Placement {
    onsets: VecDeque<u64>,
    lags: VecDeque<u64>,
}

impl Placement {
    /// An onset in the input (positions only grow).
    pub fn onset(&mut self, position: u64) {
        if self.onsets.back().is_some_and(|&last| last >= position) {
            return;
        }
        if self.onsets.len() == MAX_ONSETS {
            self.onsets.pop_front();
        }
        self.onsets.push_back(position);
    }

    /// A new segment arrives; the engine had heard the input up to `progress`.
    pub fn anchor(&mut self, progress: u64) -> Anchor {
        let oldest = progress.saturating_sub(MAX_LAG);
        while self.onsets.front().is_some_and(|&o| o < oldest) {
            self.onsets.pop_front();
        }
        let matched = self
            .onsets
            .iter()
            .rposition(|&o| o + MIN_LAG <= progress)
            .map(|index| {
                let onset = self.onsets[index];
                self.onsets.drain(..=index);
                onset
            });
        match matched {
            Some(onset) => {
                if self.lags.len() == LAG_HISTORY {
                    self.lags.pop_front();
                }
                self.lags.push_back(progress - onset);
                Anchor {
                    at: onset + ALIGN_LAG,
                    source_onset: Some(onset),
                }
            }
            None => Anchor {
                at: progress.saturating_sub(self.lags.iter().copied().min().unwrap_or(0)),
                source_onset: None,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = SAMPLE_RATE as u64;

    #[test]
    fn a_segment_answers_the_latest_onset_the_engine_can_have_heard() {
        let mut p = Placement::default();
        p.onset(S);
        p.onset(4 * S);
        // Answered at 3.5 s: the onset at 4 s is not heard yet.
        let a = p.anchor(3 * S + S / 2);
        assert_eq!(a.source_onset, Some(S));
        assert_eq!(a.at, S + ALIGN_LAG);
        // The onset at 4 s is taken only once the engine is at least MIN_LAG past it.
        assert_eq!(p.anchor(4 * S + MIN_LAG - 1).source_onset, None);
        assert_eq!(p.anchor(6 * S).source_onset, Some(4 * S));
    }

    #[test]
    fn a_late_answer_skips_onsets_it_covers() {
        let mut p = Placement::default();
        for second in [1, 2, 3] {
            p.onset(second * S);
        }
        // One answer for three onsets (the engine merged them): the latest is taken, the others
        // are consumed so the next answer is not placed before its own source.
        assert_eq!(p.anchor(5 * S).source_onset, Some(3 * S));
        assert_eq!(p.anchor(6 * S).source_onset, None);
    }

    #[test]
    fn unmatched_segments_trail_progress_by_the_smallest_lag_seen() {
        let mut p = Placement::default();
        // No history: at the progress itself, which is never before the source.
        assert_eq!(
            p.anchor(2 * S),
            Anchor {
                at: 2 * S,
                source_onset: None
            }
        );
        p.onset(10 * S);
        p.anchor(12 * S); // lag 2 s
        p.onset(20 * S);
        p.anchor(23 * S); // lag 3 s
        assert_eq!(p.anchor(40 * S).at, 38 * S);
    }

    #[test]
    fn onsets_long_past_are_forgotten() {
        let mut p = Placement::default();
        p.onset(S);
        assert_eq!(p.anchor(S + MAX_LAG + 1).source_onset, None);
        for i in 0..1000 {
            p.onset(i * S);
        }
        assert!(p.onsets.len() <= MAX_ONSETS);
    }
}
