//! Utterance engine: a deterministic stand-in for a real interpreter, so element tests can predict
//! exactly what comes back and when.
//!
//! Contract (the element's tests rely on it; change it only together with them):
//! - Input is cut into 20 ms frames (480 samples at 24 kHz), counted from the first sample the engine
//!   received. A frame is *voiced* when its RMS exceeds 300 (int16 units). A trailing partial frame
//!   left at `finish` is ignored.
//! - An utterance starts at the first voiced frame and ends once 400 ms (20 frames) of unvoiced frames
//!   have followed its last voiced frame, or at `finish`.
//! - Utterances with fewer than 100 ms (5 frames) of voiced audio are ignored (they get no number).
//! - When utterance `n` (1-based) ends, with `D` = its voiced span in ms (first voiced frame to last
//!   voiced frame inclusive, a multiple of 20), the engine emits, in this order:
//!   1. `InputTranscript("utterance {n} of {D} ms. ")` (only when created with `transcribe`);
//!   2. `OutputTranscript("Frase {n} ")` then `OutputTranscript("de {D} ms. ")` — two fragments that
//!      must be concatenated as they are (no added spaces);
//!   3. `OutputAudio`: a 440 Hz sine of amplitude 8000 lasting exactly `D` ms at 24 kHz (`D * 24`
//!      samples), starting at phase 0.
//! - Outputs are returned from the `push_audio` call that completes the 20th unvoiced frame (or from
//!   `finish`), so with a 1 s tone followed by ≥ 400 ms of silence the output appears 400 ms after the
//!   tone ends.
//!
//! It accepts all 13 target languages and ignores the language.

use super::{Engine, EngineFactory, EngineOutput};
use crate::protocol::TARGET_LANGUAGES;

const FRAME: usize = 480;
const FRAME_MS: u64 = 20;
const VOICED_RMS: f64 = 300.0;
const END_SILENCE_FRAMES: u32 = 20;
const MIN_VOICED_FRAMES: u32 = 5;
const TONE_HZ: f64 = 440.0;
const TONE_AMPLITUDE: f64 = 8000.0;
const RATE: f64 = 24_000.0;

/// Makes [`UtteranceEngine`]s.
#[derive(Debug, Default, Clone, Copy)]
pub struct UtteranceEngineFactory;

impl UtteranceEngineFactory {
    /// The factory; it has no state.
    pub fn new() -> Self {
        Self
    }
}

impl EngineFactory for UtteranceEngineFactory {
    fn name(&self) -> &'static str {
        "utterance"
    }
    fn supported_languages(&self) -> Vec<&'static str> {
        TARGET_LANGUAGES.to_vec()
    }
    fn create(&self, _target_language: &str, transcribe: bool) -> Result<Box<dyn Engine>, String> {
        Ok(Box::new(UtteranceEngine::new(transcribe)))
    }
}

/// The utterance currently being heard.
#[derive(Debug)]
struct Current {
    first_frame: u64,
    last_voiced_frame: u64,
    voiced_frames: u32,
    unvoiced_run: u32,
}

/// Energy-based utterance detector that answers each utterance with a predictable translation.
#[derive(Debug)]
pub struct UtteranceEngine {
    transcribe: bool,
    pending: Vec<i16>,
    frame_index: u64,
    current: Option<Current>,
    utterances: u32,
}

impl UtteranceEngine {
    /// A fresh engine; `transcribe` enables input transcripts.
    pub fn new(transcribe: bool) -> Self {
        Self {
            transcribe,
            pending: Vec::with_capacity(FRAME),
            frame_index: 0,
            current: None,
            utterances: 0,
        }
    }

    fn frame(&mut self, frame: &[i16], out: &mut Vec<EngineOutput>) {
        let k = self.frame_index;
        self.frame_index += 1;
        let voiced = rms(frame) > VOICED_RMS;
        match (&mut self.current, voiced) {
            (None, true) => {
                self.current = Some(Current {
                    first_frame: k,
                    last_voiced_frame: k,
                    voiced_frames: 1,
                    unvoiced_run: 0,
                })
            }
            (None, false) => {}
            (Some(c), true) => {
                c.last_voiced_frame = k;
                c.voiced_frames += 1;
                c.unvoiced_run = 0;
            }
            (Some(c), false) => {
                c.unvoiced_run += 1;
                if c.unvoiced_run >= END_SILENCE_FRAMES {
                    self.end_utterance(out);
                }
            }
        }
    }

    fn end_utterance(&mut self, out: &mut Vec<EngineOutput>) {
        let Some(c) = self.current.take() else {
            return;
        };
        if c.voiced_frames < MIN_VOICED_FRAMES {
            return;
        }
        self.utterances += 1;
        let n = self.utterances;
        let d = (c.last_voiced_frame - c.first_frame + 1) * FRAME_MS;
        if self.transcribe {
            out.push(EngineOutput::InputTranscript(format!(
                "utterance {n} of {d} ms. "
            )));
        }
        out.push(EngineOutput::OutputTranscript(format!("Frase {n} ")));
        out.push(EngineOutput::OutputTranscript(format!("de {d} ms. ")));
        out.push(EngineOutput::OutputAudio(sine(d)));
    }
}

/// `ms` milliseconds of the answer tone.
fn sine(ms: u64) -> Vec<i16> {
    let n = ms as usize * 24;
    (0..n)
        .map(|i| {
            let t = i as f64 / RATE;
            (TONE_AMPLITUDE * (2.0 * std::f64::consts::PI * TONE_HZ * t).sin()).round() as i16
        })
        .collect()
}

fn rms(frame: &[i16]) -> f64 {
    if frame.is_empty() {
        return 0.0;
    }
    let sum: f64 = frame.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    (sum / frame.len() as f64).sqrt()
}

impl Engine for UtteranceEngine {
    fn push_audio(&mut self, mut pcm: &[i16]) -> Vec<EngineOutput> {
        let mut out = Vec::new();
        if !self.pending.is_empty() {
            let take = (FRAME - self.pending.len()).min(pcm.len());
            self.pending.extend_from_slice(&pcm[..take]);
            pcm = &pcm[take..];
            if self.pending.len() < FRAME {
                return out;
            }
            let frame = std::mem::take(&mut self.pending);
            self.frame(&frame, &mut out);
            self.pending = frame;
            self.pending.clear();
        }
        let mut chunks = pcm.chunks_exact(FRAME);
        for frame in &mut chunks {
            self.frame(frame, &mut out);
        }
        self.pending.extend_from_slice(chunks.remainder());
        out
    }

    fn finish(&mut self) -> Vec<EngineOutput> {
        let mut out = Vec::new();
        self.pending.clear();
        self.end_utterance(&mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(ms: usize, amp: f64, hz: f64) -> Vec<i16> {
        (0..ms * 24)
            .map(|i| (amp * (2.0 * std::f64::consts::PI * hz * i as f64 / RATE).sin()) as i16)
            .collect()
    }

    fn feed(e: &mut UtteranceEngine, pcm: &[i16], chunk: usize) -> Vec<EngineOutput> {
        pcm.chunks(chunk).flat_map(|c| e.push_audio(c)).collect()
    }

    #[test]
    fn one_utterance_in_odd_chunks() {
        let mut pcm = vec![0i16; 12_000];
        pcm.extend(tone(1000, 6000.0, 200.0));
        pcm.extend(vec![0i16; 14_400]);
        let mut e = UtteranceEngine::new(true);
        let out = feed(&mut e, &pcm, 333);
        assert_eq!(out.len(), 4);
        assert_eq!(
            out[0],
            EngineOutput::InputTranscript("utterance 1 of 1000 ms. ".into())
        );
        assert_eq!(out[1], EngineOutput::OutputTranscript("Frase 1 ".into()));
        assert_eq!(
            out[2],
            EngineOutput::OutputTranscript("de 1000 ms. ".into())
        );
        match &out[3] {
            EngineOutput::OutputAudio(a) => {
                assert_eq!(a.len(), 24_000);
                assert_eq!(a[0], 0);
                assert!(a.iter().map(|s| s.abs()).max().unwrap() == 8000);
            }
            other => panic!("{other:?}"),
        }
        assert!(e.finish().is_empty());
    }

    #[test]
    fn finish_ends_utterance_and_short_blips_are_ignored() {
        let mut e = UtteranceEngine::new(false);
        let mut pcm = tone(80, 6000.0, 200.0); // 4 voiced frames: ignored
        pcm.extend(vec![0i16; 24_000]);
        pcm.extend(tone(300, 6000.0, 200.0));
        assert!(feed(&mut e, &pcm, 4800).is_empty());
        let out = e.finish();
        assert_eq!(
            out[..2],
            [
                EngineOutput::OutputTranscript("Frase 1 ".into()),
                EngineOutput::OutputTranscript("de 300 ms. ".into())
            ]
        );
    }

    #[test]
    fn short_gaps_stay_in_one_utterance() {
        let mut e = UtteranceEngine::new(true);
        let mut pcm = tone(200, 6000.0, 200.0);
        pcm.extend(vec![0i16; 24 * 300]);
        pcm.extend(tone(200, 6000.0, 200.0));
        pcm.extend(vec![0i16; 24 * 400]);
        let out = feed(&mut e, &pcm, 4800);
        assert_eq!(
            out[0],
            EngineOutput::InputTranscript("utterance 1 of 700 ms. ".into())
        );
    }
}
