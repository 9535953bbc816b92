//! Offline engine: PocketSphinx (English recognition) → Apertium (translation) → eSpeak NG
//! (speech), all from Debian packages, nothing downloaded.
//!
//! Each session gets a warmed decoder from a pool; the translator pipeline is shared by all
//! sessions. Output comes per utterance, once the decoder's voice-activity detector hears its end.

pub mod apertium;
pub mod espeak;
pub mod pocketsphinx;
pub mod pool;
pub mod recognizer;
pub mod resample;
pub mod warmup;

use super::{Engine, EngineFactory, EngineOutput};
use apertium::Apertium;
use pool::DecoderPool;
use recognizer::{INPUT_RATE, Recognizer};
use std::path::Path;
use std::sync::Arc;

/// Debian's US English model (package `pocketsphinx-en-us`).
const MODEL_DIR: &str = "/usr/share/pocketsphinx/model/en-us";
/// Post-speech hang-over in 10 ms frames: an utterance ends after 0.4 s of silence.
const VAD_POSTSPEECH: &str = "40";

/// Makes offline engines; holds what sessions share (decoder pool, translator processes).
pub struct OfflineEngineFactory {
    pool: DecoderPool,
    eng_spa: Arc<Apertium>,
}

impl OfflineEngineFactory {
    /// Loads what the engine needs; fails with a clear message when a package is missing.
    pub fn new() -> Result<Self, String> {
        let model = Path::new(MODEL_DIR);
        for file in ["en-us/mdef", "en-us.lm.bin", "cmudict-en-us.dict"] {
            if !model.join(file).exists() {
                return Err(format!(
                    "missing {} (install the Debian package pocketsphinx-en-us)",
                    model.join(file).display()
                ));
            }
        }
        let probe = espeak::synthesize("es", "hola")
            .map_err(|e| format!("eSpeak NG does not work: {e}"))?;
        if probe.samples.is_empty() {
            return Err(
                "espeak-ng produced no audio (install the Debian package espeak-ng)".into(),
            );
        }
        let eng_spa = Arc::new(Apertium::new("eng-spa")?);
        eng_spa
            .translate("hello")
            .map_err(|e| format!("apertium eng-spa does not work: {e}"))?;
        let path = |p: &str| model.join(p).to_string_lossy().into_owned();
        let args = vec![
            ("-hmm".to_string(), path("en-us")),
            ("-lm".to_string(), path("en-us.lm.bin")),
            ("-dict".to_string(), path("cmudict-en-us.dict")),
            ("-vad_postspeech".to_string(), VAD_POSTSPEECH.to_string()),
        ];
        let pool = DecoderPool::new(args, warmup::warmup_audio()?, 1)?;
        Ok(OfflineEngineFactory { pool, eng_spa })
    }

    /// Decoders ready for new sessions (for tests and logs).
    pub fn idle_decoders(&self) -> usize {
        self.pool.idle_count()
    }
}

impl EngineFactory for OfflineEngineFactory {
    fn name(&self) -> &'static str {
        "offline"
    }

    fn supported_languages(&self) -> Vec<&'static str> {
        vec!["es", "en"]
    }

    fn create(&self, target_language: &str, transcribe: bool) -> Result<Box<dyn Engine>, String> {
        let translator = match target_language {
            "es" => Some(self.eng_spa.clone()),
            // The input is English: like the real service, stay silent for speech already in the
            // target language (transcripts only).
            "en" => None,
            other => {
                return Err(format!(
                    "the offline engine cannot translate into {other:?} (supported: es, en)"
                ));
            }
        };
        let recognizer = Recognizer::new(self.pool.take()?);
        Ok(Box::new(OfflineEngine {
            recognizer,
            translator,
            transcribe,
        }))
    }
}

/// An utterance as a caption shows it: capital first letter, closing full stop. The recogniser
/// has neither, and the stop is what lets a caption end at the utterance rather than wait for a
/// pause in the text.
pub fn as_sentence(utterance: &str) -> String {
    let mut chars = utterance.trim().chars();
    let Some(first) = chars.next() else {
        return String::new();
    };
    let mut sentence: String = first.to_uppercase().chain(chars).collect();
    if !sentence.ends_with(['.', '?', '!']) {
        sentence.push('.');
    }
    sentence
}

/// One session: recogniser of its own, shared translator.
struct OfflineEngine {
    recognizer: Recognizer,
    /// `None` when the target is English (no translation, no speech).
    translator: Option<Arc<Apertium>>,
    /// Only informative: the server filters input transcripts by the session's setting.
    #[allow(dead_code)]
    transcribe: bool,
}

impl OfflineEngine {
    fn utterance(&self, english: String, out: &mut Vec<EngineOutput>) {
        let english = capitalise_pronoun(&english);
        out.push(EngineOutput::InputTranscript(format!(
            "{} ",
            as_sentence(&english)
        )));
        let Some(translator) = &self.translator else {
            return;
        };
        let spanish = match translator.translate(&english) {
            Ok(s) => tidy_translation(&s),
            Err(e) => {
                eprintln!("offline engine: translation failed: {e}");
                return;
            }
        };
        if spanish.is_empty() {
            return;
        }
        out.push(EngineOutput::OutputTranscript(format!("{spanish} ")));
        match espeak::synthesize("es", &spanish) {
            Ok(pcm) if !pcm.samples.is_empty() => {
                out.push(EngineOutput::OutputAudio(resample::resample(
                    &pcm.samples,
                    pcm.rate,
                    INPUT_RATE,
                )));
            }
            Ok(_) => {}
            Err(e) => eprintln!("offline engine: speech synthesis failed: {e}"),
        }
    }
}

/// PocketSphinx writes everything in lower case; Apertium only knows the pronoun as "I" (lower-case
/// "i would like" comes out as "i Gustaría" instead of "Me gustaría").
pub fn capitalise_pronoun(text: &str) -> String {
    text.split_whitespace()
        .map(|w| match w {
            "i" | "i'm" | "i'd" | "i'll" | "i've" => format!("I{}", &w[1..]),
            _ => w.to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Apertium's output as the engine speaks and shows it: unknown-word marks removed, sentence
/// case, a final full stop (Apertium leaves those to its input).
pub fn tidy_translation(raw: &str) -> String {
    let text = apertium::strip_marks(raw)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let mut chars = text.chars();
    let Some(first) = chars.next() else {
        return text;
    };
    let mut out: String = first.to_uppercase().chain(chars).collect();
    if !out.ends_with(['.', '!', '?', '…']) {
        out.push('.');
    }
    out
}

impl Engine for OfflineEngine {
    fn push_audio(&mut self, pcm: &[i16]) -> Vec<EngineOutput> {
        let mut out = Vec::new();
        for hyp in self.recognizer.push(pcm) {
            self.utterance(hyp, &mut out);
        }
        out
    }

    fn finish(&mut self) -> Vec<EngineOutput> {
        let mut out = Vec::new();
        for hyp in self.recognizer.finish() {
            self.utterance(hyp, &mut out);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utterances_become_sentences() {
        assert_eq!(as_sentence("the weather is warm"), "The weather is warm.");
        assert_eq!(as_sentence(" is it? "), "Is it?");
        assert_eq!(as_sentence(""), "");
    }
}
