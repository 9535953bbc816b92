//! Echo engine: a zero-latency, sample-exact loopback used to measure latency and count frames.
//!
//! Contract (tests rely on it):
//! - every non-empty pushed chunk comes back unchanged, right away, as one `OutputAudio`;
//! - each time the total input crosses a further full second (24000 samples), it then emits
//!   `InputTranscript("[n s] ")` (only when created with `transcribe`) and `OutputTranscript("[n s] ")`,
//!   n being the number of whole seconds received so far;
//! - `finish` returns nothing.
//!
//! The server relays each returned chunk at once, in order, as `session.output_audio.delta`s of at
//! most 4800 samples, so a client's concatenated output equals its concatenated input sample for
//! sample: soak benchmarks embed frame ids in the samples and count lost or duplicated frames.
//! (Audio an injected fault discards is the exception: see [`crate::faults`].)
//!
//! It accepts all 13 target languages and ignores the language.

use super::{Engine, EngineFactory, EngineOutput};
use crate::protocol::TARGET_LANGUAGES;

/// Makes [`EchoEngine`]s.
#[derive(Debug, Default, Clone, Copy)]
pub struct EchoEngineFactory;

impl EchoEngineFactory {
    /// The factory; it has no state.
    pub fn new() -> Self {
        Self
    }
}

impl EngineFactory for EchoEngineFactory {
    fn name(&self) -> &'static str {
        "echo"
    }
    fn supported_languages(&self) -> Vec<&'static str> {
        TARGET_LANGUAGES.to_vec()
    }
    fn answers_at_once(&self) -> bool {
        true
    }
    fn create(&self, _target_language: &str, transcribe: bool) -> Result<Box<dyn Engine>, String> {
        Ok(Box::new(EchoEngine {
            transcribe,
            samples: 0,
        }))
    }
}

/// Returns its input; counts seconds.
#[derive(Debug)]
pub struct EchoEngine {
    transcribe: bool,
    samples: u64,
}

const RATE: u64 = 24_000;

impl Engine for EchoEngine {
    fn push_audio(&mut self, pcm: &[i16]) -> Vec<EngineOutput> {
        let mut out = Vec::new();
        if pcm.is_empty() {
            return out;
        }
        out.push(EngineOutput::OutputAudio(pcm.to_vec()));
        let before = self.samples / RATE;
        self.samples += pcm.len() as u64;
        for n in before + 1..=self.samples / RATE {
            let text = format!("[{n} s] ");
            if self.transcribe {
                out.push(EngineOutput::InputTranscript(text.clone()));
            }
            out.push(EngineOutput::OutputTranscript(text));
        }
        out
    }

    fn finish(&mut self) -> Vec<EngineOutput> {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echoes_and_counts_seconds() {
        let mut e = EchoEngineFactory.create("es", true).unwrap();
        let chunk = vec![7i16; 18_000];
        assert_eq!(
            e.push_audio(&chunk),
            vec![EngineOutput::OutputAudio(chunk.clone())]
        );
        let out = e.push_audio(&chunk);
        assert_eq!(
            out,
            vec![
                EngineOutput::OutputAudio(chunk.clone()),
                EngineOutput::InputTranscript("[1 s] ".into()),
                EngineOutput::OutputTranscript("[1 s] ".into()),
            ]
        );
        let big = vec![0i16; 48_000];
        let out = e.push_audio(&big);
        assert_eq!(out.len(), 5);
        assert_eq!(out[4], EngineOutput::OutputTranscript("[3 s] ".into()));
        assert!(e.push_audio(&[]).is_empty());
        assert!(e.finish().is_empty());
    }

    #[test]
    fn no_input_transcript_without_transcribe() {
        let mut e = EchoEngineFactory.create("es", false).unwrap();
        let out = e.push_audio(&vec![1i16; 24_000]);
        assert_eq!(out.len(), 2);
        assert_eq!(out[1], EngineOutput::OutputTranscript("[1 s] ".into()));
    }
}
