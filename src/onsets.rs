//! Speech onsets in the input: where the source speech that a translation answers may begin.
//!
//! The element places each translated segment relative to the source speech it answers (see
//! `placement.rs`); no engine says where that speech began, so the element finds the candidates
//! itself. An onset is the first voiced 20 ms frame after at least [`ONSET_PAUSE`] of unvoiced
//! ones, confirmed once [`CONFIRM_FRAMES`] voiced frames follow. "Voiced" is energy above a
//! floor that adapts to the input's background noise, so a noisy room does not read as one
//! endless utterance.

/// 20 ms at 24 kHz.
const FRAME: usize = 480;
/// Lowest RMS (int16 units) that counts as speech, whatever the noise floor.
const MIN_VOICED_RMS: f64 = 300.0;
/// Speech must stand this far above the background (RMS ratio, ≈ 10 dB).
const ABOVE_NOISE: f64 = 3.0;
/// The background estimate falls at once to a quieter frame and rises by this factor per frame
/// (doubling in 0.7 s): the dips between words keep it down during speech, a steady hum lifts it.
const FLOOR_RISE: f64 = 1.02;
const INITIAL_FLOOR: f64 = MIN_VOICED_RMS / ABOVE_NOISE;
/// Unvoiced frames before a voiced one for it to start a new utterance (300 ms).
const ONSET_PAUSE: u32 = 15;
/// Voiced frames within the first [`CONFIRM_WINDOW`] that make an onset real (60 ms).
const CONFIRM_FRAMES: u32 = 3;
const CONFIRM_WINDOW: u32 = 10;

/// Finds speech onsets in a 24 kHz mono stream; positions are sample counts from its start.
#[derive(Debug, Default)]
pub struct OnsetDetector {
    partial: Vec<i16>,
    /// Samples taken so far (complete frames and the partial one).
    position: u64,
    /// Unvoiced frames in a row.
    unvoiced_run: u32,
    /// An onset waiting for confirmation: its position, frames seen, voiced frames seen.
    candidate: Option<(u64, u32, u32)>,
    /// Background level (RMS): a follower of the quietest frames.
    noise_floor: f64,
}

impl OnsetDetector {
    pub fn new() -> Self {
        Self {
            unvoiced_run: ONSET_PAUSE,
            noise_floor: INITIAL_FLOOR,
            ..Default::default()
        }
    }

    /// Feeds input samples; returns the onsets confirmed by them, in order.
    pub fn push(&mut self, samples: &[i16]) -> Vec<u64> {
        let mut onsets = Vec::new();
        let mut rest = samples;
        while !rest.is_empty() {
            let take = (FRAME - self.partial.len()).min(rest.len());
            self.partial.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.partial.len() == FRAME {
                let start = self.position + take as u64 - FRAME as u64;
                let frame = std::mem::take(&mut self.partial);
                onsets.extend(self.frame(start, &frame));
                self.partial = frame;
                self.partial.clear();
            }
            self.position += take as u64;
        }
        onsets
    }

    /// `samples` of input that are not heard (the rest of a long gap): silence, in effect.
    pub fn skip(&mut self, samples: u64) {
        self.position += samples;
        self.partial.clear();
        self.candidate = None;
        self.unvoiced_run = ONSET_PAUSE;
    }

    fn frame(&mut self, start: u64, frame: &[i16]) -> Option<u64> {
        let energy = frame.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / FRAME as f64;
        let rms = energy.sqrt();
        let voiced = rms > MIN_VOICED_RMS.max(self.noise_floor * ABOVE_NOISE);
        self.noise_floor = if rms < self.noise_floor {
            rms.max(1.0)
        } else {
            (self.noise_floor * FLOOR_RISE).min(rms)
        };
        let mut confirmed = None;
        if let Some((position, seen, voiced_seen)) = &mut self.candidate {
            *seen += 1;
            *voiced_seen += u32::from(voiced);
            if *voiced_seen >= CONFIRM_FRAMES {
                confirmed = Some(*position);
                self.candidate = None;
            } else if *seen >= CONFIRM_WINDOW {
                self.candidate = None;
            }
        } else if voiced && self.unvoiced_run >= ONSET_PAUSE {
            self.candidate = Some((start, 1, 1));
        }
        self.unvoiced_run = if voiced {
            0
        } else {
            self.unvoiced_run.saturating_add(1)
        };
        confirmed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(ms: usize, amplitude: f64) -> Vec<i16> {
        (0..ms * 24)
            .map(|i| (amplitude * (i as f64 * 0.115).sin()) as i16)
            .collect()
    }

    fn silence(ms: usize) -> Vec<i16> {
        vec![0; ms * 24]
    }

    #[test]
    fn onsets_after_pauses_in_any_buffer_size() {
        let signal = [
            silence(500),
            tone(800, 4000.0),
            silence(200), // too short a pause: same utterance
            tone(300, 4000.0),
            silence(600),
            tone(400, 4000.0),
        ]
        .concat();
        for size in [1, 7, 480, 481, 4800, signal.len()] {
            let mut detector = OnsetDetector::new();
            let onsets: Vec<u64> = signal.chunks(size).flat_map(|c| detector.push(c)).collect();
            assert_eq!(onsets, vec![500 * 24, 2400 * 24], "buffer size {size}");
        }
    }

    #[test]
    fn clicks_and_steady_noise_are_not_speech() {
        let mut detector = OnsetDetector::new();
        let mut signal = silence(400);
        signal.extend(tone(20, 8000.0)); // one frame: a click
        signal.extend(silence(400));
        assert!(detector.push(&signal).is_empty());
        // Hum at RMS ≈ 700 for 3 s reads as speech only until the floor has risen to it; a
        // word 10 dB above it then starts an utterance of its own.
        let mut detector = OnsetDetector::new();
        let mut noisy = tone(3000, 1000.0);
        let word_at = noisy.len() as u64;
        noisy.extend(tone(400, 8000.0));
        assert_eq!(detector.push(&noisy), vec![0, word_at]);
    }

    #[test]
    fn a_skipped_stretch_moves_positions_on_and_counts_as_a_pause() {
        let mut detector = OnsetDetector::new();
        // Speech cut off mid-frame by a skipped hour: the next speech is an onset, at its
        // position after the hour.
        assert_eq!(detector.push(&tone(510, 4000.0)), vec![0]);
        detector.skip(86_400_000);
        let after = 510 * 24 + 86_400_000;
        assert_eq!(detector.push(&tone(400, 4000.0)), vec![after]);
    }
}
