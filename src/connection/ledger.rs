//! Audio given to a session and not yet answered, kept so that a session lost mid-speech (a cut
//! connection, an engine that stopped answering) can have it sent again to the next one.

use super::limits::is_quiet;
use std::collections::VecDeque;

/// Chunks sent to one session, by input position, oldest first, up to a limit.
#[derive(Debug, Default)]
pub(super) struct Ledger {
    chunks: VecDeque<(u64, Vec<i16>)>,
    samples: u64,
    /// Speech that fell off past the limit before the session answered it: not sent again.
    overflowed_speech: u64,
}

impl Ledger {
    /// `chunk` (input from `position` on) went to the session. The oldest audio falls off past
    /// `limit` samples: it can no longer be sent again.
    pub(super) fn record(&mut self, position: u64, chunk: &[i16], limit: u64) {
        self.chunks.push_back((position, chunk.to_vec()));
        self.samples += chunk.len() as u64;
        while self.samples > limit {
            let Some((_, old)) = self.chunks.pop_front() else {
                break;
            };
            self.samples -= old.len() as u64;
            if !is_quiet(&old) {
                self.overflowed_speech += old.len() as u64;
            }
        }
    }

    /// The session has answered the input before `position`: that audio need not be kept.
    pub(super) fn forget_before(&mut self, position: u64) {
        if self.first_position().is_some_and(|first| position >= first) {
            // Answered past what fell off: that was answered too.
            self.overflowed_speech = 0;
        }
        while let Some((start, chunk)) = self.chunks.front() {
            if start + chunk.len() as u64 > position {
                break;
            }
            self.samples -= chunk.len() as u64;
            self.chunks.pop_front();
        }
    }

    /// Input position of the oldest audio kept, if any.
    pub(super) fn first_position(&self) -> Option<u64> {
        self.chunks.front().map(|(position, _)| *position)
    }

    /// The audio from `position` on, for the next session (a chunk straddling it is cut there).
    pub(super) fn take_from(&mut self, position: u64) -> Vec<(u64, Vec<i16>)> {
        self.forget_before(position);
        let mut taken: Vec<(u64, Vec<i16>)> = self.chunks.drain(..).collect();
        self.samples = 0;
        if let Some((start, chunk)) = taken.first_mut()
            && *start < position
        {
            let skip = (position - *start) as usize;
            chunk.drain(..skip.min(chunk.len()));
            *start = position;
        }
        taken.retain(|(_, chunk)| !chunk.is_empty());
        taken
    }

    /// Speech given to the session that it never answered and that is no longer kept.
    pub(super) fn overflowed_speech(&self) -> u64 {
        self.overflowed_speech
    }

    #[cfg(test)]
    fn samples(&self) -> u64 {
        self.samples
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(value: i16, length: usize) -> Vec<i16> {
        vec![value; length]
    }

    #[test]
    fn keeps_at_most_its_limit_dropping_the_oldest() {
        let mut ledger = Ledger::default();
        for i in 0..5 {
            ledger.record(i * 100, &chunk(i as i16, 100), 250);
        }
        assert_eq!(ledger.samples(), 200);
        assert_eq!(ledger.first_position(), Some(300));
    }

    #[test]
    fn speech_that_falls_off_unanswered_is_counted_until_answered() {
        let mut ledger = Ledger::default();
        ledger.record(0, &chunk(0, 100), 100);
        ledger.record(100, &chunk(0, 100), 100);
        assert_eq!(ledger.overflowed_speech(), 0, "silence is not speech");
        ledger.record(200, &chunk(5000, 100), 100);
        ledger.record(300, &chunk(5000, 100), 100);
        assert_eq!(ledger.overflowed_speech(), 100);
        ledger.forget_before(300);
        assert_eq!(ledger.overflowed_speech(), 0);
    }

    #[test]
    fn answered_audio_is_forgotten_whole_chunks_only() {
        let mut ledger = Ledger::default();
        for i in 0..4 {
            ledger.record(i * 100, &chunk(i as i16, 100), 1000);
        }
        ledger.forget_before(150);
        assert_eq!(ledger.first_position(), Some(100));
        ledger.forget_before(200);
        assert_eq!(ledger.first_position(), Some(200));
        assert_eq!(ledger.samples(), 200);
    }

    #[test]
    fn taking_from_a_position_cuts_the_chunk_that_straddles_it() {
        let mut ledger = Ledger::default();
        for i in 0..3 {
            ledger.record(i * 100, &chunk(i as i16 + 1, 100), 1000);
        }
        let taken = ledger.take_from(130);
        assert_eq!(taken.len(), 2);
        assert_eq!(taken[0].0, 130);
        assert_eq!(taken[0].1, chunk(2, 70));
        assert_eq!(taken[1], (200, chunk(3, 100)));
        assert_eq!(ledger.samples(), 0);
        assert!(ledger.take_from(0).is_empty());
    }

    #[test]
    fn taking_from_before_the_first_chunk_takes_everything() {
        let mut ledger = Ledger::default();
        ledger.record(500, &chunk(1, 10), 1000);
        assert_eq!(ledger.take_from(0), vec![(500, chunk(1, 10))]);
    }
}
