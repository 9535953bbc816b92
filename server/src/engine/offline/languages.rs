//! The directions the offline engine offers, and the recognisers it can use.

/// Target languages: English (Whisper's translate task, Piper's voice) and what Debian's
/// Apertium pairs from English and eSpeak NG voices cover.
pub const TARGET_LANGUAGES: [&str; 5] = ["es", "ca", "gl", "eo", "en"];

/// How English text becomes a target language: Apertium pair and eSpeak NG voice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApertiumTarget {
    pub pair: &'static str,
    pub voice: &'static str,
}

/// `None` for English (no translation) and for targets the engine lacks.
pub fn apertium_target(code: &str) -> Option<ApertiumTarget> {
    let (pair, voice) = match code {
        "es" => ("eng-spa", "es"),
        "ca" => ("eng-cat", "ca"),
        // eSpeak NG has no Galician voice. Of its Spanish and Portuguese ones, Whisper
        // understood the Spanish one reading Galician better (offline_quality: chrF 26.5–27.9
        // against 20.2–22.0 on 8 sentences).
        "gl" => ("en-gl", "es"),
        "eo" => ("en-eo", "eo"),
        _ => return None,
    };
    Some(ApertiumTarget { pair, voice })
}

/// The error for a target the engine lacks, listing the ones it has.
pub fn unsupported_target(code: &str) -> String {
    format!(
        "the offline engine cannot translate into {code:?} (supported: {})",
        TARGET_LANGUAGES.join(", ")
    )
}

/// Which recogniser a session uses, chosen by the session's `model` (the element's `model`
/// property with `backend=local`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecognizerChoice {
    /// Whisper base, multilingual (99 languages), also translates into English. The default.
    WhisperBase,
    /// Whisper tiny.en: English only, ≈ 1.6× faster, less accurate.
    WhisperTinyEn,
    /// PocketSphinx (Debian): English only, lightest, poor on real voices.
    PocketSphinx,
}

/// The `model` names a session may give; anything else means the default.
pub const RECOGNIZER_NAMES: [&str; 3] = ["whisper-base", "whisper-tiny.en", "pocketsphinx"];

impl RecognizerChoice {
    /// The recogniser for a session's `model`; a name that is no recogniser (the element's
    /// protocol placeholder, a cloud model name) means the default.
    pub fn from_model(model: &str, default: RecognizerChoice) -> RecognizerChoice {
        match model {
            "whisper-base" => RecognizerChoice::WhisperBase,
            "whisper-tiny.en" => RecognizerChoice::WhisperTinyEn,
            "pocketsphinx" => RecognizerChoice::PocketSphinx,
            _ => default,
        }
    }

    /// The model directory the Whisper worker loads, if Whisper.
    pub fn whisper_model(self) -> Option<&'static str> {
        match self {
            RecognizerChoice::WhisperBase => Some("whisper-base"),
            RecognizerChoice::WhisperTinyEn => Some("whisper-tiny.en"),
            RecognizerChoice::PocketSphinx => None,
        }
    }

    /// Whether it hears only English.
    pub fn english_only(self) -> bool {
        self != RecognizerChoice::WhisperBase
    }
}

/// A valid `source_language`: a two- or three-letter lower-case code (Whisper checks the rest).
pub fn valid_source_language(code: &str) -> bool {
    (2..=3).contains(&code.len()) && code.bytes().all(|b| b.is_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_target_but_english_has_a_pair_and_a_voice() {
        for code in TARGET_LANGUAGES {
            assert_eq!(apertium_target(code).is_none(), code == "en", "{code}");
        }
        assert!(unsupported_target("de").contains("es, ca, gl, eo, en"));
    }

    #[test]
    fn the_protocol_takes_every_target() {
        use crate::protocol::{OFFLINE_ONLY_TARGETS, TARGET_LANGUAGES as CLOUD};
        for code in TARGET_LANGUAGES {
            assert!(
                CLOUD.contains(&code) || OFFLINE_ONLY_TARGETS.contains(&code),
                "{code}"
            );
        }
    }

    #[test]
    fn unknown_models_mean_the_default() {
        let d = RecognizerChoice::WhisperBase;
        assert_eq!(RecognizerChoice::from_model("offline", d), d);
        assert_eq!(
            RecognizerChoice::from_model("whisper-tiny.en", d),
            RecognizerChoice::WhisperTinyEn
        );
        assert!(valid_source_language("fr") && !valid_source_language("FR"));
    }
}
