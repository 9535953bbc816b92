//! An engine that speaks faster than real time.
//!
//! The output timeline plays one second of speech per second; an engine that says more than
//! that, for good, makes the output fall further and further behind. Translated speech is taken
//! against a budget that grows with the output timeline (a sample per sample the write head
//! moves: in real time live, as fast as the engine answers otherwise, since non-live input is
//! read far ahead of the engine) and holds at most an allowance for bursts: the outage buffer (a
//! replay after an outage comes back faster than real time) plus [`BURST_ALLOWANCE_MS`] (a
//! turn-based engine says a whole turn at once). A chunk that finds the budget short is dropped
//! whole as it arrives, so what is already queued plays out intact and the delay stays bounded
//! by the allowance; the dropped samples are counted. Digital silence is never queued (see
//! `timeline.rs`), so it costs nothing here.

use crate::protocol::translation::SAMPLE_RATE;

/// Allowance for bursts beyond the outage buffer: a turn-based engine answers a turn of up to
/// this long at once, and any engine may speak a sentence slower than its source.
pub const BURST_ALLOWANCE_MS: u64 = 20_000;

/// Translated speech taken so far against the output timeline.
#[derive(Debug)]
pub struct SpeechBudget {
    /// Samples that may be taken now.
    available: u64,
    capacity: u64,
    /// Write head at the last refill.
    written: u64,
    dropped: u64,
    /// Dropping started and nobody was told yet.
    unreported: bool,
}

impl SpeechBudget {
    /// `outage_buffer`: samples of audio a replay after an outage may bring back at once.
    pub fn new(outage_buffer: u64) -> Self {
        let capacity = outage_buffer + BURST_ALLOWANCE_MS * u64::from(SAMPLE_RATE) / 1000;
        Self {
            available: capacity,
            capacity,
            written: 0,
            dropped: 0,
            unreported: false,
        }
    }

    /// Whether a chunk of `samples` translated samples may be queued with the write head at
    /// `written`; if not, it is counted.
    pub fn admit(&mut self, samples: u64, written: u64) -> bool {
        let earned = written.saturating_sub(self.written);
        self.written = self.written.max(written);
        self.available = (self.available + earned).min(self.capacity);
        if samples <= self.available {
            self.available -= samples;
            return true;
        }
        if self.dropped == 0 {
            self.unreported = true;
        }
        self.dropped += samples;
        false
    }

    /// Samples dropped for coming faster than real time.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Seconds of allowance, for the warning.
    pub fn allowance_seconds(&self) -> f64 {
        self.capacity as f64 / f64::from(SAMPLE_RATE)
    }

    /// True once, when dropping first starts: the stream's one warning.
    pub fn take_first_drop(&mut self) -> bool {
        std::mem::take(&mut self.unreported)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = SAMPLE_RATE as u64;

    #[test]
    fn speech_at_real_time_is_always_taken() {
        let mut budget = SpeechBudget::new(0);
        for second in 1..=600 {
            assert!(budget.admit(S, second * S));
        }
        assert_eq!(budget.dropped(), 0);
        assert!(!budget.take_first_drop());
    }

    #[test]
    fn three_times_real_time_is_cut_to_real_time_after_the_allowance() {
        let mut budget = SpeechBudget::new(2 * S);
        let mut taken = 0;
        for step in 1..=600u64 {
            // 100 ms of timeline, 300 ms of speech.
            for _ in 0..3 {
                if budget.admit(S / 10, step * S / 10) {
                    taken += S / 10;
                }
            }
        }
        // 60 s: 60 s of speech plus the 22 s allowance taken (less what a whole chunk could
        // not use), the rest dropped.
        assert!((82 * S - S / 10..=82 * S).contains(&taken), "{taken}");
        assert_eq!(budget.dropped(), 180 * S - taken);
        assert!(budget.take_first_drop());
        assert!(!budget.take_first_drop(), "reported once");
    }

    #[test]
    fn a_replay_after_an_outage_fits_the_allowance() {
        let mut budget = SpeechBudget::new(10 * S);
        // The 10 s replayed plus a turn of 20 s, all at once.
        assert!(budget.admit(30 * S, 20 * S));
        assert_eq!(budget.dropped(), 0);
    }
}
