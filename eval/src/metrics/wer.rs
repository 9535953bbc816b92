//! Word error rate of a transcript: word-level edit distance (substitutions, insertions,
//! deletions) over the reference's word count, case and punctuation ignored ("ill-disposed" is
//! two words, as a recogniser writes it).

/// Edits and reference words; summed over a corpus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WerStats {
    pub edits: u64,
    pub reference_words: u64,
}

impl WerStats {
    pub fn of(hypothesis: &str, reference: &str) -> Self {
        let (h, r) = (words(hypothesis), words(reference));
        Self {
            edits: edit_distance(&r, &h) as u64,
            reference_words: r.len() as u64,
        }
    }

    pub fn add(&mut self, other: &Self) {
        self.edits += other.edits;
        self.reference_words += other.reference_words;
    }

    /// Percent; `None` for an empty reference.
    pub fn percent(&self) -> Option<f64> {
        (self.reference_words > 0).then(|| 100.0 * self.edits as f64 / self.reference_words as f64)
    }
}

fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .map(|w| w.trim_matches('\'').to_lowercase())
        .filter(|w| !w.is_empty())
        .collect()
}

fn edit_distance(reference: &[String], hypothesis: &[String]) -> usize {
    let mut previous: Vec<usize> = (0..=hypothesis.len()).collect();
    for (i, r) in reference.iter().enumerate() {
        let mut current = vec![i + 1; hypothesis.len() + 1];
        for (j, h) in hypothesis.iter().enumerate() {
            let substitution = previous[j] + usize::from(r != h);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        previous = current;
    }
    previous[hypothesis.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_substitutions_insertions_and_deletions() {
        let s = WerStats::of(
            "He was not until disclosed young man.",
            "He was not an ill-disposed young man,",
        );
        // an→until, ill→disclosed, disposed deleted.
        assert_eq!(
            s,
            WerStats {
                edits: 3,
                reference_words: 8
            }
        );
        assert_eq!(
            WerStats::of("The weather, today!", "the weather today").edits,
            0
        );
        assert_eq!(WerStats::of("a b c d", "a c").edits, 2);
        assert_eq!(WerStats::of("", "").percent(), None);
    }
}
