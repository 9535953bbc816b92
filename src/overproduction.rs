//! An engine that speaks faster than real time.
//!
//! A translation engine answers the input it hears; in the long run it cannot say more than it
//! was given, or the output falls further and further behind the input. Translated speech is
//! taken against a budget that grows with the input (one sample earned per input sample) and
//! holds at most an allowance for bursts: the outage buffer (a replay after an outage comes back
//! faster than real time) plus [`BURST_ALLOWANCE_MS`]. A chunk that finds the budget short is
//! dropped whole as it arrives, so what is already queued plays out intact and the delay stays
//! bounded by the allowance; the dropped samples are counted. Digital silence is never queued
//! (see `timeline.rs`), so it costs nothing here.

use crate::protocol::translation::SAMPLE_RATE;

/// Allowance for bursts beyond the outage buffer: an engine's answer may run a few seconds
/// ahead of the input it has heard (a long sentence spoken slower than its source).
pub const BURST_ALLOWANCE_MS: u64 = 5000;

/// Translated speech taken so far against the input heard.
#[derive(Debug)]
pub struct SpeechBudget {
    /// Samples that may be taken now.
    available: u64,
    capacity: u64,
    /// Input end at the last refill.
    input_end: u64,
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
            input_end: 0,
            dropped: 0,
            unreported: false,
        }
    }

    /// The input now reaches `input_end` (samples from its start).
    pub fn input_reached(&mut self, input_end: u64) {
        let earned = input_end.saturating_sub(self.input_end);
        self.input_end = self.input_end.max(input_end);
        self.available = (self.available + earned).min(self.capacity);
    }

    /// Whether a chunk of `samples` translated samples may be queued; if not, it is counted.
    pub fn admit(&mut self, samples: u64) -> bool {
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
            budget.input_reached(second * S);
            assert!(budget.admit(S));
        }
        assert_eq!(budget.dropped(), 0);
        assert!(!budget.take_first_drop());
    }

    #[test]
    fn three_times_real_time_is_cut_to_real_time_after_the_allowance() {
        let mut budget = SpeechBudget::new(2 * S);
        let mut taken = 0;
        for step in 1..=300u64 {
            // 100 ms of input, 300 ms of speech back.
            budget.input_reached(step * S / 10);
            for _ in 0..3 {
                if budget.admit(S / 10) {
                    taken += S / 10;
                }
            }
        }
        // 30 s of input: 30 s of speech plus the 7 s allowance taken (less what a whole chunk
        // could not use), the rest dropped.
        assert!(taken <= 37 * S && taken >= 37 * S - S / 10, "{taken}");
        assert_eq!(budget.dropped(), 90 * S - taken);
        assert!(budget.take_first_drop());
        assert!(!budget.take_first_drop(), "reported once");
    }

    #[test]
    fn a_replay_after_an_outage_fits_the_allowance() {
        let mut budget = SpeechBudget::new(10 * S);
        budget.input_reached(20 * S);
        // The 10 s replayed plus the engine's answer a few seconds ahead, all at once.
        assert!(budget.admit(14 * S));
        assert_eq!(budget.dropped(), 0);
    }
}
