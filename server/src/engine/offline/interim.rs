//! Interim source text of a long utterance, within an append-only transcript.
//!
//! The protocol's transcript deltas are never revised, and Whisper's decode of a growing
//! utterance changes its last words (the audio ends mid-word) and sometimes its first ones
//! (with little context it drops a leading "And"). So a word goes out only once two
//! consecutive interim decodes agree on it and on every word before it (local agreement; with
//! a decode every second, a word is sent 1–2 s after it is spoken), and never the newest
//! decode's last word. At the end of the utterance, the final decode is aligned with the words
//! already sent (by edit distance, so a word the interim missed or added does not shift the
//! rest) and what follows them completes it.

#[derive(Debug, Default)]
pub struct InterimText {
    /// Words already sent for the running utterance.
    sent: Vec<String>,
    /// The words of the last interim decode.
    last: Vec<String>,
}

/// A word as compared: lower case, without punctuation ("man." and "man," agree).
fn key(word: &str) -> String {
    word.chars()
        .filter(|c| c.is_alphanumeric() || *c == '\'')
        .flat_map(char::to_lowercase)
        .collect()
}

fn same(a: &[String], b: &[String]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| key(x) == key(y))
}

impl InterimText {
    /// An interim decode: the words newly stable, as a transcript fragment (with a trailing
    /// space), or `None`.
    pub fn interim(&mut self, text: &str) -> Option<String> {
        let words: Vec<String> = text.split_whitespace().map(str::to_owned).collect();
        let agreed = words
            .iter()
            .zip(&self.last)
            .take_while(|(a, b)| key(a) == key(b))
            .count()
            .min(words.len().saturating_sub(1));
        self.last = words.clone();
        let sent = self.sent.len();
        if agreed <= sent || !same(&self.sent, &words[..sent]) {
            return None;
        }
        let fresh = words[sent..agreed].to_vec();
        self.sent.extend(fresh.iter().cloned());
        Some(format!("{} ", fresh.join(" ")))
    }

    /// The utterance's final text: what remains to send after the interim words (the final
    /// decode's words after those that best match the ones sent), and a reset for the next
    /// utterance.
    pub fn finish(&mut self, final_text: &str) -> String {
        let sent = std::mem::take(&mut self.sent);
        self.last.clear();
        let words: Vec<&str> = final_text.split_whitespace().collect();
        let cut = aligned_end(&sent, &words);
        words[cut..].join(" ")
    }

    /// Whether some words of the running utterance were sent.
    pub fn started(&self) -> bool {
        !self.sent.is_empty()
    }
}

/// How many of `words` the `sent` words stand for: the prefix of `words` closest to them by
/// word edit distance (the longest of equally close ones).
fn aligned_end(sent: &[String], words: &[&str]) -> usize {
    if sent.is_empty() {
        return 0;
    }
    // row[j]: distance between the sent words so far and words[..j].
    let mut row: Vec<usize> = (0..=words.len()).collect();
    for (i, s) in sent.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for j in 1..=words.len() {
            let up = row[j];
            row[j] = (up + 1)
                .min(row[j - 1] + 1)
                .min(diagonal + usize::from(key(s) != key(words[j - 1])));
            diagonal = up;
        }
    }
    let best = row.iter().copied().min().unwrap_or(0);
    row.iter().rposition(|&d| d == best).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_go_out_once_two_decodes_agree_and_the_final_completes_them() {
        let mut t = InterimText::default();
        assert_eq!(t.interim("And Mr. John"), None);
        assert_eq!(
            t.interim("And Mr. John Dashwood had"),
            Some("And Mr. John ".into())
        );
        assert_eq!(
            t.interim("And Mr. John Dashwood had then leisure"),
            Some("Dashwood had ".into())
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
        t.interim("the cat sat on the");
        assert_eq!(
            t.interim("the cat sat on the mat"),
            Some("the cat sat on the ".into())
        );
        assert_eq!(t.interim("a hat sat on the mat"), None);
        assert_eq!(t.finish("The cat sat on the mat."), "mat.");
    }

    #[test]
    fn the_final_is_aligned_with_the_words_sent_not_counted() {
        // The interim missed the leading "And": the final's "Mr." is not sent twice.
        let mut t = InterimText::default();
        t.interim("Mr. John Dashwood had");
        assert_eq!(
            t.interim("Mr. John Dashwood had then"),
            Some("Mr. John Dashwood had ".into())
        );
        assert_eq!(
            t.finish("And Mr. John Dashwood had then leisure."),
            "then leisure."
        );
        // The interim heard a word the final does not have.
        let mut t = InterimText::default();
        t.interim("he was not an old");
        t.interim("he was not an old supposed");
        assert_eq!(
            t.finish("He was not an ill-disposed young man."),
            "young man."
        );
    }
}
