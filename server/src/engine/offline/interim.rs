//! Interim source text of a long utterance, within an append-only transcript.
//!
//! The protocol's transcript deltas are never revised, and Whisper's decode of a growing
//! utterance changes its last words. So a word is sent once two interim decodes in a row agree
//! on it (and it is not the last word of the newer one, which may be cut mid-word); at the end
//! of the utterance, the final decode's words after those already sent complete it.

#[derive(Debug, Default)]
pub struct InterimText {
    /// Words of the previous interim decode.
    previous: Vec<String>,
    /// Words already sent for the running utterance.
    sent: Vec<String>,
}

impl InterimText {
    /// An interim decode: the words newly agreed on, as a transcript fragment (with a trailing
    /// space), or `None`.
    pub fn interim(&mut self, text: &str) -> Option<String> {
        let words: Vec<String> = text.split_whitespace().map(str::to_owned).collect();
        let agreed = self
            .previous
            .iter()
            .zip(&words)
            .take(words.len().saturating_sub(1))
            .take_while(|(a, b)| a == b)
            .count();
        self.previous = words;
        if agreed <= self.sent.len() || self.sent[..] != self.previous[..self.sent.len()] {
            return None;
        }
        let fresh = self.previous[self.sent.len()..agreed].to_vec();
        self.sent.extend(fresh.iter().cloned());
        Some(format!("{} ", fresh.join(" ")))
    }

    /// The utterance's final text: what remains to send after the interim words (the final
    /// decode's words past as many as were sent), and a reset for the next utterance.
    pub fn finish(&mut self, final_text: &str) -> String {
        let sent = std::mem::take(&mut self.sent).len();
        self.previous.clear();
        let rest: Vec<&str> = final_text.split_whitespace().skip(sent).collect();
        rest.join(" ")
    }

    /// Whether some words of the running utterance were sent.
    pub fn started(&self) -> bool {
        !self.sent.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_go_out_once_two_decodes_agree_and_the_final_completes_them() {
        let mut t = InterimText::default();
        assert_eq!(t.interim("And Mister John"), None);
        assert_eq!(t.interim("And Mr. John Dashwood had"), Some("And ".into()));
        assert_eq!(
            t.interim("And Mr. John Dashwood had then leisure"),
            Some("Mr. John Dashwood had ".into())
        );
        assert!(t.started());
        assert_eq!(
            t.finish("And Mr. John Dashwood had then leisure to consider."),
            "then leisure to consider."
        );
        assert!(!t.started());
        assert_eq!(t.finish("Next one."), "Next one.");
    }

    #[test]
    fn a_decode_that_revises_sent_words_sends_nothing_more() {
        let mut t = InterimText::default();
        t.interim("the cat sat on");
        assert_eq!(
            t.interim("the cat sat on the"),
            Some("the cat sat on ".into())
        );
        t.interim("a hat sat on the mat");
        assert_eq!(t.interim("a hat sat on the mat"), None);
        assert_eq!(t.finish("The cat sat on the mat."), "the mat.");
    }
}
