//! Long gaps in the input (timestamp jumps, GAP events) and what the engine hears of them.
//!
//! The engine treats the audio it receives as contiguous, so a gap is sent as silence; but a
//! long one would be billed and take memory in proportion to its length. The engine hears at
//! most [`GAP_HEARD_MS`] of a gap (enough to finish the last words and say them); the rest is
//! never sent. Positions the engine reports count the audio it was sent: [`SentToInput`] maps
//! them back to the input's timeline.
//!
//! Live, a gap is noticed by the clock rather than by the buffer after it: once input is
//! [`OUTPUT_WAIT`] later than upstream's latency allows, the output goes on without it (so every
//! pad stays on time), and once it is [`ENGINE_WAIT`] late the missing time counts as a gap the
//! engine hears (so it finishes the last words during the gap, not after it). Input that still
//! comes after its time was covered is clipped to what was not.

use std::collections::VecDeque;

use crate::protocol::translation::SAMPLE_RATE;

/// Silence sent to the engine for a gap, at most.
pub const GAP_HEARD_MS: u64 = 3000;
/// Samples of silence sent to the engine for a gap, at most.
pub const GAP_HEARD_SAMPLES: u64 = GAP_HEARD_MS * SAMPLE_RATE as u64 / 1000;
/// Live: input this late (beyond upstream's latency) no longer holds the output back. With the
/// output's 100 ms write step it leaves 80 ms of the reported latency's 250 ms jitter margin
/// for the output to reach the sink: the output not yet written when input stops may begin a
/// step behind where it is due.
pub const OUTPUT_WAIT: gst::ClockTime = gst::ClockTime::from_mseconds(70);
/// Live: input this late is missing: the engine hears silence for it.
pub const ENGINE_WAIT: gst::ClockTime = gst::ClockTime::from_mseconds(1000);
/// How often live input is checked for while it is late.
pub const WATCH_PERIOD: std::time::Duration = std::time::Duration::from_millis(20);
/// The check for live input sleeps at most this long: the pipeline's clock may run apart from
/// the wall time the watch sleeps by.
const WATCH_SLEEP_MAX: std::time::Duration = std::time::Duration::from_millis(150);

/// How long the check for live input may sleep when input is on time and would be late in
/// `until_late` (clock time): until then, but at least [`WATCH_PERIOD`] and at most
/// [`WATCH_SLEEP_MAX`].
/// Checking only when input could be late, rather than every [`WATCH_PERIOD`], saves most of
/// the watch's wake-ups (50 a second per element before), which count at hundreds of streams.
pub fn watch_sleep(until_late: gst::ClockTime) -> std::time::Duration {
    std::time::Duration::from_nanos(until_late.nseconds()).clamp(WATCH_PERIOD, WATCH_SLEEP_MAX)
}

/// Whole frames at `rate` in `time`, rounded up (a partial frame is covered too).
pub fn frames_in(time: gst::ClockTime, rate: u64) -> u64 {
    (time.nseconds() as u128 * rate as u128).div_ceil(1_000_000_000) as u64
}

/// Gaps remembered; older ones only matter to positions long answered.
const MAX_SKIPS: usize = 1024;

/// Where the audio sent to the engine lies on the input's timeline.
#[derive(Debug, Default)]
pub struct SentToInput {
    /// `(sent position, input samples skipped before it)`, in order.
    skips: VecDeque<(u64, u64)>,
    skipped: u64,
}

impl SentToInput {
    /// `samples` of input after `sent` samples sent are never sent.
    pub fn skipped(&mut self, sent: u64, samples: u64) {
        if samples == 0 {
            return;
        }
        self.skipped += samples;
        match self.skips.back_mut() {
            Some((at, total)) if *at == sent => *total = self.skipped,
            _ => self.skips.push_back((sent, self.skipped)),
        }
        if self.skips.len() > MAX_SKIPS {
            self.skips.pop_front();
        }
    }

    /// Input samples never sent, in all.
    pub fn total_skipped(&self) -> u64 {
        self.skipped
    }

    /// The input position of sent position `sent` (audio after a skip lies after the gap).
    pub fn to_input(&self, sent: u64) -> u64 {
        let before = self
            .skips
            .iter()
            .rev()
            .find(|(at, _)| *at <= sent)
            .map_or(0, |(_, total)| *total);
        sent + before
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_after_a_skip_lie_after_the_gap() {
        let mut map = SentToInput::default();
        assert_eq!(map.to_input(500), 500);
        map.skipped(1000, 86_400_000);
        map.skipped(3000, 50);
        map.skipped(3000, 50);
        assert_eq!(map.to_input(999), 999);
        assert_eq!(map.to_input(1000), 1000 + 86_400_000);
        assert_eq!(map.to_input(2999), 2999 + 86_400_000);
        assert_eq!(map.to_input(3000), 3000 + 86_400_100);
        assert_eq!(map.total_skipped(), 86_400_100);
    }

    #[test]
    fn the_watch_sleeps_until_input_would_be_late_within_bounds() {
        let ms = gst::ClockTime::from_mseconds;
        let d = std::time::Duration::from_millis;
        assert_eq!(watch_sleep(ms(90)), d(90));
        assert_eq!(watch_sleep(ms(0)), WATCH_PERIOD);
        assert_eq!(watch_sleep(ms(5)), WATCH_PERIOD);
        assert_eq!(watch_sleep(ms(10_000)), d(150));
    }
}
