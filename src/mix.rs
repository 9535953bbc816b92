//! The original audio under the translation on `src`.
//!
//! The translation model stays silent for speech already in the target language, so a muted
//! original loses content: broadcasters keep it audible, ducked while translated speech plays.
//! While no session is connected the original can stand in for the translation (fallback).
//! Positions are 24 kHz sample counts from the stream's first input sample, as on the timeline.

use std::collections::VecDeque;

/// Translated audio above this level (peak, after the follower) counts as speech: duck.
const SPEECH_THRESHOLD: f64 = 300.0;
/// The speech follower forgets a peak over about this many samples (25 ms at 24 kHz), so short
/// gaps between words keep the original ducked; the release smooths the rest.
const FOLLOWER_SAMPLES: f64 = 600.0;

/// Levels and timing of the mix.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MixSettings {
    /// Gain of the original while no translated speech plays (0: translation only).
    pub original_volume: f64,
    /// Fraction of the original's gain left while translated speech plays.
    pub duck_level: f64,
    /// Time to duck, and to come back up, in samples.
    pub attack: u64,
    pub release: u64,
    /// While disconnected, the original plays at full level instead of silence.
    pub fallback_original: bool,
    /// No session ever translates (captions-only backend): the fallback applies throughout.
    pub captions_only: bool,
}

/// The original's recent samples and the ducking state.
#[derive(Debug)]
pub struct OriginalMix {
    settings: MixSettings,
    /// Original samples from `start` on.
    original: VecDeque<i16>,
    start: u64,
    /// Samples after a skipped stretch of input (the rest of a long gap, silence), each block
    /// with its position; `original` is the first block.
    later: VecDeque<(u64, VecDeque<i16>)>,
    /// Input samples taken so far, skipped ones included.
    end: u64,
    /// Spans `[start, end)` without a connected session; `end` None: still going on.
    outages: VecDeque<(u64, Option<u64>)>,
    follower: f64,
    gain: f64,
}

impl OriginalMix {
    pub fn new(settings: MixSettings) -> Self {
        Self {
            settings,
            original: VecDeque::new(),
            start: 0,
            later: VecDeque::new(),
            end: 0,
            outages: VecDeque::new(),
            follower: 0.0,
            gain: settings.original_volume,
        }
    }

    pub fn set_settings(&mut self, settings: MixSettings) {
        self.settings = settings;
    }

    /// Whether the original is heard at all: otherwise it need not be kept.
    pub fn uses_original(&self) -> bool {
        self.settings.original_volume > 0.0 || self.settings.fallback_original
    }

    /// The input's next samples, in engine format, in order from position 0.
    pub fn push_original(&mut self, samples: &[i16]) {
        let at = self.end;
        self.end += samples.len() as u64;
        if !self.uses_original() {
            self.start = self.start.max(self.end);
            return;
        }
        if self.original.is_empty() && self.later.is_empty() {
            self.start = at;
        }
        let first_end = self.start + self.original.len() as u64;
        match self.later.back_mut() {
            Some((start, block)) if *start + block.len() as u64 == at => block.extend(samples),
            None if first_end == at => self.original.extend(samples),
            _ => self
                .later
                .push_back((at, samples.iter().copied().collect())),
        }
    }

    /// `samples` of input that are not kept (the rest of a long gap: silence); memory does not
    /// grow with them.
    pub fn skip_original(&mut self, samples: u64) {
        self.end += samples;
        if !self.uses_original() {
            self.start = self.start.max(self.end);
        }
    }

    /// No session takes the audio from `position` on.
    pub fn outage_started(&mut self, position: u64) {
        if self.outages.back().is_none_or(|(_, end)| end.is_some()) {
            self.outages.push_back((position, None));
        }
    }

    /// A session takes the audio again from `position` on.
    pub fn outage_ended(&mut self, position: u64) {
        if let Some((_, end)) = self.outages.back_mut()
            && end.is_none()
        {
            *end = Some(position);
        }
    }

    fn in_outage(&self, position: u64) -> bool {
        self.outages
            .iter()
            .any(|&(start, end)| position >= start && end.is_none_or(|end| position < end))
    }

    fn original_at(&self, position: u64) -> i16 {
        let (start, block) = self
            .later
            .iter()
            .rev()
            .find(|(start, _)| *start <= position)
            .map_or((self.start, &self.original), |(start, block)| {
                (*start, block)
            });
        position
            .checked_sub(start)
            .and_then(|i| block.get(i as usize).copied())
            .unwrap_or(0)
    }

    /// Whether mixing `len` samples at `start` leaves them as they are: the original's gain is
    /// 0 and stays 0 throughout (no `original-volume`, no outage). The default settings
    /// (translation only, the original as the outage fallback) are so nearly all the time.
    pub fn leaves_unchanged(&self, start: u64, len: usize) -> bool {
        let end = start + len as u64;
        self.gain == 0.0
            && self.settings.original_volume == 0.0
            && !self.settings.captions_only
            && !self
                .outages
                .iter()
                .any(|&(from, to)| from < end && to.is_none_or(|to| to > start))
    }

    /// [`Self::apply`] where it [leaves the audio unchanged](Self::leaves_unchanged): the
    /// speech follower hears it, and what lies before its end is forgotten.
    pub fn follow(&mut self, start: u64, audio: impl IntoIterator<Item = i16>) {
        let follower_decay = 1.0 - 1.0 / FOLLOWER_SAMPLES;
        let mut len = 0;
        for sample in audio {
            self.follower = f64::from(sample).abs().max(self.follower * follower_decay);
            len += 1;
        }
        self.forget_before(start + len);
    }

    /// Mixes the original into `audio` (translation written at `start`), then forgets what lies
    /// before its end.
    pub fn apply(&mut self, start: u64, audio: &mut [i16]) {
        let end = start + audio.len() as u64;
        if self.uses_original() && self.leaves_unchanged(start, audio.len()) {
            self.follow(start, audio.iter().copied());
            return;
        }
        if self.uses_original() {
            let attack = step(self.settings.attack);
            let release = step(self.settings.release);
            let follower_decay = 1.0 - 1.0 / FOLLOWER_SAMPLES;
            for (i, sample) in audio.iter_mut().enumerate() {
                let position = start + i as u64;
                let translated = f64::from(*sample);
                self.follower = translated.abs().max(self.follower * follower_decay);
                // During an outage the original stands in at full level (still ducked under
                // translation queued from before).
                let level = if self.settings.fallback_original
                    && (self.settings.captions_only || self.in_outage(position))
                {
                    1.0
                } else {
                    self.settings.original_volume
                };
                let target = if self.follower > SPEECH_THRESHOLD {
                    level * self.settings.duck_level
                } else {
                    level
                };
                let rate = if target < self.gain { attack } else { release };
                self.gain += (target - self.gain) * rate;
                let mixed = translated + f64::from(self.original_at(position)) * self.gain;
                *sample = mixed.clamp(f64::from(i16::MIN), f64::from(i16::MAX)) as i16;
            }
        }
        self.forget_before(end);
    }

    fn forget_before(&mut self, position: u64) {
        while self
            .later
            .front()
            .is_some_and(|(start, _)| *start <= position)
        {
            let (start, block) = self.later.pop_front().expect("checked");
            self.start = start;
            self.original = block;
        }
        let drop = position.saturating_sub(self.start);
        let drop = (drop as usize).min(self.original.len());
        self.original.drain(..drop);
        self.start += drop as u64;
        if !self.uses_original() {
            self.start = self.start.max(position);
        }
        while self
            .outages
            .front()
            .is_some_and(|(_, end)| end.is_some_and(|end| end <= position))
        {
            self.outages.pop_front();
        }
    }
}

/// Per-sample smoothing coefficient that covers most (≈95 %) of a step in `samples`.
fn step(samples: u64) -> f64 {
    if samples == 0 {
        1.0
    } else {
        1.0 - (-3.0 / samples as f64).exp()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> MixSettings {
        MixSettings {
            original_volume: 0.8,
            duck_level: 0.25,
            attack: 1200,
            release: 4800,
            fallback_original: false,
            captions_only: false,
        }
    }

    #[test]
    fn original_is_ducked_under_translated_speech_and_recovers() {
        let mut mix = OriginalMix::new(settings());
        mix.push_original(&vec![1000; 48_000]);
        // 0.5 s silence, 1 s speech (a loud square wave), 0.5 s silence.
        let mut audio: Vec<i16> = (0..48_000)
            .map(|i| {
                if (12_000..36_000).contains(&i) {
                    if i % 48 < 24 { 8000 } else { -8000 }
                } else {
                    0
                }
            })
            .collect();
        mix.apply(0, &mut audio);
        // Before the speech: the original at 0.8.
        assert!((audio[11_000] - 800).abs() <= 2, "{}", audio[11_000]);
        // Well into the speech: original at 0.2 on top of the translation.
        let ducked = audio[30_000] as i32 - 8000;
        assert!((ducked - 200).abs() <= 5, "{ducked}");
        // Ducked within the attack time.
        let at_attack = audio[12_000 + 1_300] as i32 - 8000;
        assert!(at_attack < 300, "{at_attack}");
        // Back up after the release.
        assert!((audio[47_999] - 800).abs() <= 20, "{}", audio[47_999]);
    }

    /// No original under the translation, the original in full during outages, no ramps.
    fn fallback_only() -> MixSettings {
        MixSettings {
            original_volume: 0.0,
            duck_level: 0.25,
            attack: 0,
            release: 0,
            fallback_original: true,
            captions_only: false,
        }
    }

    #[test]
    fn fallback_plays_the_original_in_full_during_an_outage() {
        let mut mix = OriginalMix::new(fallback_only());
        mix.push_original(&vec![1000; 30_000]);
        mix.outage_started(10_000);
        mix.outage_ended(20_000);
        let mut audio = vec![0i16; 30_000];
        mix.apply(0, &mut audio);
        assert_eq!(audio[9_999], 0);
        assert_eq!(audio[10_000], 1000);
        assert_eq!(audio[19_999], 1000);
        assert_eq!(audio[20_000], 0);
    }

    #[test]
    fn the_default_fallback_leaves_translation_untouched_outside_outages_and_not_in_them() {
        let mut mix = OriginalMix::new(fallback_only());
        mix.push_original(&vec![1000; 30_000]);
        mix.outage_started(20_000);
        mix.outage_ended(25_000);
        assert!(mix.leaves_unchanged(0, 10_000));
        assert!(!mix.leaves_unchanged(15_000, 5_001), "ends in the outage");
        assert!(!mix.leaves_unchanged(24_999, 10), "starts in it");
        let speech: Vec<i16> = (0..10_000)
            .map(|i| ((i * 37) % 20_000 - 10_000) as i16)
            .collect();
        let mut audio = speech.clone();
        mix.apply(0, &mut audio);
        assert_eq!(audio, speech, "translation only: bit for bit");
        // Translated speech going on into the outage keeps the original ducked there (the
        // follower heard the speech before it), silence lets it up to full level.
        let mut audio = speech.clone();
        mix.apply(10_000, &mut audio);
        let mut outage = vec![5_000i16; 600];
        outage.extend(vec![0i16; 4_400]);
        mix.apply(20_000, &mut outage);
        assert_eq!(outage[0], 5_000 + 250, "ducked at once");
        assert_eq!(outage[4_999], 1000);
        assert!(!mix.leaves_unchanged(20_000, 1));
        // After the outage the original's gain first returns to 0.
        assert!(!mix.leaves_unchanged(25_000, 1_000));
        let mut after = vec![0i16; 1_000];
        mix.apply(25_000, &mut after);
        assert_eq!(after, vec![0i16; 1_000]);
        assert!(mix.leaves_unchanged(26_000, 1_000));
    }

    #[test]
    fn a_skipped_stretch_costs_nothing_and_the_original_resumes_after_it() {
        let mut mix = OriginalMix::new(MixSettings {
            original_volume: 1.0,
            duck_level: 0.25,
            attack: 0,
            release: 0,
            fallback_original: false,
            captions_only: false,
        });
        mix.push_original(&[100; 1000]);
        mix.skip_original(86_400_000);
        mix.push_original(&[200; 1000]);
        assert_eq!(mix.original.len() + mix.later[0].1.len(), 2000);
        let mut before = vec![0i16; 1000];
        mix.apply(0, &mut before);
        assert!(before.iter().all(|&s| s == 100));
        let mut after = vec![0i16; 1000];
        mix.apply(86_401_000, &mut after);
        assert!(after.iter().all(|&s| s == 200));
    }

    #[test]
    fn translation_only_keeps_no_original() {
        let mut mix = OriginalMix::new(MixSettings {
            original_volume: 0.0,
            duck_level: 0.25,
            attack: 0,
            release: 0,
            fallback_original: false,
            captions_only: false,
        });
        mix.push_original(&vec![1000; 10_000]);
        assert!(mix.original.is_empty());
        let mut audio = vec![5i16; 100];
        mix.apply(0, &mut audio);
        assert!(audio.iter().all(|&s| s == 5));
    }
}
