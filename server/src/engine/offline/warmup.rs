//! The warm-up utterance every new decoder decodes once.
//!
//! A fresh PocketSphinx decoder gets its first utterance wrong ("good morning" → "the mining"), so
//! one English sentence is synthesised at start-up and kept. Flite's voices are recognised well
//! (0–6 % WER); eSpeak NG's English (~70 % WER) still moves the decoder's estimates to speech, so it
//! is the fallback when flite is not installed.

use super::espeak::{self, parse_wav};
use super::recognizer::DECODER_RATE;
use super::resample::resample;
use std::process::{Command, Stdio};

const SENTENCE: &str = "good morning, this is a short test of the speech recognizer.";
/// Silence around the sentence, so the decoder's voice-activity detector sees a whole utterance.
const PAD: usize = DECODER_RATE as usize / 2;

/// 16 kHz speech with silence around it.
pub fn warmup_audio() -> Result<Vec<i16>, String> {
    let pcm = flite(SENTENCE).or_else(|_| espeak::synthesize("en-us", SENTENCE))?;
    let speech = resample(&pcm.samples, pcm.rate, DECODER_RATE);
    let mut out = vec![0i16; PAD];
    out.extend_from_slice(&speech);
    out.extend(std::iter::repeat_n(0, PAD));
    Ok(out)
}

fn flite(text: &str) -> Result<espeak::Pcm, String> {
    let out = Command::new("flite")
        .args(["-voice", "slt", "-t", text, "-o", "/dev/stdout"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run flite: {e}"))?;
    if !out.status.success() {
        return Err(format!("flite exited with {}", out.status));
    }
    parse_wav(&out.stdout)
}
