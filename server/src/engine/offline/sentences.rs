//! Recognised and translated text as captions show it: sentence case and a closing stop.

use super::apertium;

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
