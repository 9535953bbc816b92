//! chrF as sacreBLEU's `CHRF()` computes it: character n-grams of orders 1–6, whitespace removed,
//! case kept, β = 2, precision and recall averaged over the orders both sides have (sacreBLEU's
//! "effective order"), no ε smoothing.

use super::is_python_whitespace;
use std::collections::HashMap;

pub const CHAR_ORDER: usize = 6;
const BETA: f64 = 2.0;

/// Per order: hypothesis n-grams, reference n-grams, matched n-grams. Summed over a corpus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ChrfStats {
    pub orders: [[u64; 3]; CHAR_ORDER],
}

impl ChrfStats {
    /// The statistics of one hypothesis against one reference.
    pub fn of(hypothesis: &str, reference: &str) -> Self {
        let hyp: Vec<char> = hypothesis
            .chars()
            .filter(|c| !is_python_whitespace(*c))
            .collect();
        let reference: Vec<char> = reference
            .chars()
            .filter(|c| !is_python_whitespace(*c))
            .collect();
        let mut stats = Self::default();
        for n in 1..=CHAR_ORDER {
            let hyp_grams = ngrams(&hyp, n);
            let ref_grams = ngrams(&reference, n);
            let hyp_count: u64 = hyp_grams.values().sum();
            let ref_count: u64 = ref_grams.values().sum();
            let matched: u64 = hyp_grams
                .iter()
                .map(|(gram, count)| (*count).min(ref_grams.get(gram).copied().unwrap_or(0)))
                .sum();
            // sacreBLEU counts no hypothesis n-grams of an order the reference lacks.
            let hyp_count = if ref_grams.is_empty() { 0 } else { hyp_count };
            stats.orders[n - 1] = [hyp_count, ref_count, matched];
        }
        stats
    }

    pub fn add(&mut self, other: &Self) {
        for (mine, theirs) in self.orders.iter_mut().zip(other.orders.iter()) {
            for (a, b) in mine.iter_mut().zip(theirs.iter()) {
                *a += b;
            }
        }
    }

    /// The score, 0–100.
    pub fn score(&self) -> f64 {
        let factor = BETA * BETA;
        let (mut precision, mut recall, mut effective) = (0.0, 0.0, 0);
        for [hyp, reference, matched] in self.orders {
            if hyp > 0 && reference > 0 {
                precision += matched as f64 / hyp as f64;
                recall += matched as f64 / reference as f64;
                effective += 1;
            }
        }
        if effective == 0 {
            return 0.0;
        }
        precision /= effective as f64;
        recall /= effective as f64;
        if precision + recall == 0.0 {
            return 0.0;
        }
        100.0 * (1.0 + factor) * precision * recall / (factor * precision + recall)
    }
}

fn ngrams(chars: &[char], n: usize) -> HashMap<&[char], u64> {
    let mut grams = HashMap::new();
    if chars.len() >= n {
        for window in chars.windows(n) {
            *grams.entry(window).or_insert(0) += 1;
        }
    }
    grams
}

/// sacreBLEU's `sentence_chrf(hypothesis, [reference])`.
pub fn sentence_chrf(hypothesis: &str, reference: &str) -> f64 {
    ChrfStats::of(hypothesis, reference).score()
}

/// sacreBLEU's `corpus_chrf(hypotheses, [references])`: statistics summed, then scored.
pub fn corpus_chrf<H: AsRef<str>, R: AsRef<str>>(pairs: &[(H, R)]) -> f64 {
    let mut total = ChrfStats::default();
    for (hyp, reference) in pairs {
        total.add(&ChrfStats::of(hyp.as_ref(), reference.as_ref()));
    }
    total.score()
}
