//! Interim source text of a long utterance, within an append-only transcript.
//!
//! The protocol's transcript deltas are never revised, and Whisper's decode of a growing
//! utterance changes its last words (the audio ends mid-word). So an interim decode sends its
//! words but the last [`UNSTABLE_WORDS`], and only while it agrees with what was already sent
//! (waiting for a second decode to confirm each word would put the text 2 s further behind); at
//! the end of the utterance, the final decode's words after those already sent complete it.

/// Trailing words of an interim decode that are held back.
const UNSTABLE_WORDS: usize = 2;

#[derive(Debug, Default)]
pub struct InterimText {
    /// Words already sent for the running utterance.
    sent: Vec<String>,
}

impl InterimText {
    /// An interim decode: the words newly stable, as a transcript fragment (with a trailing
    /// space), or `None`.
    pub fn interim(&mut self, text: &str) -> Option<String> {
        let words: Vec<String> = text.split_whitespace().map(str::to_owned).collect();
        let stable = words.len().saturating_sub(UNSTABLE_WORDS);
        if stable <= self.sent.len() || self.sent[..] != words[..self.sent.len()] {
            return None;
        }
        let fresh = words[self.sent.len()..stable].to_vec();
        self.sent.extend(fresh.iter().cloned());
        Some(format!("{} ", fresh.join(" ")))
    }

    /// The utterance's final text: what remains to send after the interim words (the final
    /// decode's words past as many as were sent), and a reset for the next utterance.
    pub fn finish(&mut self, final_text: &str) -> String {
        let sent = std::mem::take(&mut self.sent).len();
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
    fn words_go_out_but_the_last_two_and_the_final_completes_them() {
        let mut t = InterimText::default();
        assert_eq!(t.interim("And Mr."), None);
        assert_eq!(t.interim("And Mr. John Dashwood"), Some("And Mr. ".into()));
        assert_eq!(
            t.interim("And Mr. John Dashwood had then leisure"),
            Some("John Dashwood had ".into())
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
        assert_eq!(t.interim("the cat sat on the"), Some("the cat sat ".into()));
        assert_eq!(t.interim("a hat sat on the mat"), None);
        assert_eq!(t.finish("The cat sat on the mat."), "on the mat.");
    }
}
