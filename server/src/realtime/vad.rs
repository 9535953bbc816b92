//! Energy voice activity detection standing in for the service's server VAD: deterministic, so
//! tests can predict when a turn ends.
//!
//! Contract (tests rely on it):
//! - audio is cut into 20 ms frames (480 samples at 24 kHz) counted from the first sample of the
//!   session; a frame is *voiced* when its RMS exceeds `600 × threshold` (int16 units; the default
//!   threshold 0.5 gives 300, the same as the utterance engine);
//! - speech starts at the first voiced frame (`audio_start_ms` = its start minus
//!   `prefix_padding_ms`, at least 0);
//! - speech stops once `silence_duration_ms` of unvoiced frames followed the last voiced one
//!   (`audio_end_ms` = the end of the frame that completed the silence, as the service counts it);
//! - the *voiced span* of a segment is first voiced frame to last voiced frame inclusive, in ms.

/// Samples per 20 ms frame at 24 kHz.
const FRAME: usize = 480;
const FRAME_MS: u64 = 20;
/// RMS (int16 units) at threshold 1.0.
const FULL_SCALE_THRESHOLD_RMS: f64 = 600.0;

/// The `server_vad` settings the detector follows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VadParams {
    pub threshold: f64,
    pub prefix_padding_ms: u64,
    pub silence_duration_ms: u64,
}

impl Default for VadParams {
    /// The service's documented defaults.
    fn default() -> Self {
        Self {
            threshold: 0.5,
            prefix_padding_ms: 300,
            silence_duration_ms: 500,
        }
    }
}

/// What the detector noticed in the audio just pushed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VadEvent {
    Started { audio_start_ms: u64 },
    Stopped { audio_end_ms: u64 },
}

#[derive(Debug, Clone, Copy)]
struct Segment {
    /// First frame counted in the span (moves when part of the segment is taken).
    first: u64,
    last_voiced: u64,
    unvoiced_run: u64,
}

impl Segment {
    fn span_ms(&self) -> u64 {
        if self.last_voiced >= self.first {
            (self.last_voiced - self.first + 1) * FRAME_MS
        } else {
            0
        }
    }
}

/// Frame-by-frame detector over a session's input.
#[derive(Debug)]
pub struct Vad {
    params: VadParams,
    pending: Vec<i16>,
    frame: u64,
    segment: Option<Segment>,
    /// Voiced spans of segments that ended since the last [`Vad::take_voiced_ms`].
    banked_ms: u64,
}

impl Vad {
    pub fn new(params: VadParams) -> Self {
        Self {
            params,
            pending: Vec::with_capacity(FRAME),
            frame: 0,
            segment: None,
            banked_ms: 0,
        }
    }

    /// New settings apply from the next frame on (a segment in progress continues).
    pub fn set_params(&mut self, params: VadParams) {
        self.params = params;
    }

    /// Whether speech is in progress.
    #[cfg(test)]
    pub fn speaking(&self) -> bool {
        self.segment.is_some()
    }

    /// Feeds audio contiguous with what came before.
    pub fn push(&mut self, mut pcm: &[i16]) -> Vec<VadEvent> {
        let mut events = Vec::new();
        while !pcm.is_empty() {
            let take = (FRAME - self.pending.len()).min(pcm.len());
            self.pending.extend_from_slice(&pcm[..take]);
            pcm = &pcm[take..];
            if self.pending.len() < FRAME {
                break;
            }
            let voiced = rms(&self.pending) > FULL_SCALE_THRESHOLD_RMS * self.params.threshold;
            self.pending.clear();
            if let Some(event) = self.frame(voiced) {
                events.push(event);
            }
        }
        events
    }

    fn frame(&mut self, voiced: bool) -> Option<VadEvent> {
        let k = self.frame;
        self.frame += 1;
        let silence_frames = self.params.silence_duration_ms.div_ceil(FRAME_MS).max(1);
        match (&mut self.segment, voiced) {
            (None, true) => {
                self.segment = Some(Segment {
                    first: k,
                    last_voiced: k,
                    unvoiced_run: 0,
                });
                let start = (k * FRAME_MS).saturating_sub(self.params.prefix_padding_ms);
                Some(VadEvent::Started {
                    audio_start_ms: start,
                })
            }
            (None, false) => None,
            (Some(segment), true) => {
                segment.last_voiced = k;
                segment.unvoiced_run = 0;
                None
            }
            (Some(segment), false) => {
                segment.unvoiced_run += 1;
                if segment.unvoiced_run < silence_frames {
                    return None;
                }
                self.banked_ms += segment.span_ms();
                self.segment = None;
                Some(VadEvent::Stopped {
                    audio_end_ms: (k + 1) * FRAME_MS,
                })
            }
        }
    }

    /// The voiced span heard since the last call (segments that ended plus the part of the one
    /// in progress so far): what a commit of the input buffer now contains.
    pub fn take_voiced_ms(&mut self) -> u64 {
        let mut total = std::mem::take(&mut self.banked_ms);
        if let Some(segment) = &mut self.segment {
            total += segment.span_ms();
            segment.first = segment.last_voiced + 1;
        }
        total
    }

    /// Forgets the audio heard so far (`input_audio_buffer.clear`); the frame clock goes on.
    pub fn clear(&mut self) {
        self.segment = None;
        self.banked_ms = 0;
    }
}

fn rms(frame: &[i16]) -> f64 {
    let sum: f64 = frame.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    (sum / frame.len().max(1) as f64).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(ms: u64) -> Vec<i16> {
        (0..ms * 24)
            .map(|i| (4000.0 * (i as f64 * 0.06).sin()) as i16)
            .collect()
    }

    fn silence(ms: u64) -> Vec<i16> {
        vec![0; ms as usize * 24]
    }

    #[test]
    fn start_and_stop_follow_the_settings() {
        let mut vad = Vad::new(VadParams::default());
        let mut events = vad.push(&silence(1000));
        events.extend(vad.push(&tone(800)));
        assert!(vad.speaking());
        events.extend(vad.push(&silence(480)));
        assert!(vad.speaking(), "480 ms of silence is not yet a pause");
        events.extend(vad.push(&silence(20)));
        assert_eq!(
            events,
            vec![
                VadEvent::Started {
                    audio_start_ms: 700
                },
                VadEvent::Stopped { audio_end_ms: 2300 }
            ]
        );
        assert_eq!(vad.take_voiced_ms(), 800);
        assert_eq!(vad.take_voiced_ms(), 0);
    }

    #[test]
    fn short_gaps_stay_in_the_segment_and_chunking_does_not_matter() {
        let mut pcm = tone(300);
        pcm.extend(silence(300));
        pcm.extend(tone(300));
        pcm.extend(silence(600));
        let mut vad = Vad::new(VadParams::default());
        let events: Vec<_> = pcm.chunks(333).flat_map(|c| vad.push(c)).collect();
        assert_eq!(events.len(), 2, "{events:?}");
        assert_eq!(vad.take_voiced_ms(), 900);
    }

    #[test]
    fn taking_mid_segment_splits_the_span() {
        let mut vad = Vad::new(VadParams::default());
        vad.push(&tone(400));
        assert_eq!(vad.take_voiced_ms(), 400);
        vad.push(&tone(200));
        vad.push(&silence(600));
        assert_eq!(vad.take_voiced_ms(), 200);
    }

    #[test]
    fn threshold_scales_the_energy_needed() {
        let quiet: Vec<i16> = tone(500).iter().map(|s| s / 10).collect(); // RMS ≈ 283
        let mut vad = Vad::new(VadParams::default());
        assert!(vad.push(&quiet).is_empty());
        vad.set_params(VadParams {
            threshold: 0.2,
            ..VadParams::default()
        });
        assert_eq!(
            vad.push(&quiet)[0],
            VadEvent::Started {
                audio_start_ms: 200
            }
        );
    }
}
