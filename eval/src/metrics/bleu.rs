//! BLEU as sacreBLEU's `BLEU()` computes it: 13a tokens, 1–4-grams clipped by the reference,
//! brevity penalty, `exp` smoothing (an order with no match counts as 1/(2^k · total)), the
//! geometric mean over all four orders at corpus level; at sentence level, as `sentence_bleu`,
//! over the orders the hypothesis has (`use_effective_order=True`).

use super::tokenizer_13a::tokenize;
use std::collections::HashMap;

pub const MAX_ORDER: usize = 4;

/// Hypothesis and reference lengths, and per order matched and total hypothesis n-grams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BleuStats {
    pub hyp_len: u64,
    pub ref_len: u64,
    pub correct: [u64; MAX_ORDER],
    pub total: [u64; MAX_ORDER],
}

impl BleuStats {
    pub fn of(hypothesis: &str, reference: &str) -> Self {
        let hyp = tokenize(hypothesis);
        let reference = tokenize(reference);
        let mut stats = Self {
            hyp_len: hyp.len() as u64,
            ref_len: reference.len() as u64,
            ..Self::default()
        };
        for n in 1..=MAX_ORDER {
            let hyp_grams = ngrams(&hyp, n);
            let ref_grams = ngrams(&reference, n);
            stats.total[n - 1] = hyp_grams.values().sum();
            stats.correct[n - 1] = hyp_grams
                .iter()
                .map(|(gram, count)| (*count).min(ref_grams.get(gram).copied().unwrap_or(0)))
                .sum();
        }
        stats
    }

    pub fn add(&mut self, other: &Self) {
        self.hyp_len += other.hyp_len;
        self.ref_len += other.ref_len;
        for n in 0..MAX_ORDER {
            self.correct[n] += other.correct[n];
            self.total[n] += other.total[n];
        }
    }

    /// The score, 0–100; `effective_order` as sacreBLEU's option of that name.
    pub fn score(&self, effective_order: bool) -> f64 {
        let brevity = if self.hyp_len < self.ref_len {
            if self.hyp_len > 0 {
                (1.0 - self.ref_len as f64 / self.hyp_len as f64).exp()
            } else {
                0.0
            }
        } else {
            1.0
        };
        if self.correct.iter().all(|&c| c == 0) {
            return 0.0;
        }
        let mut precisions = [0.0f64; MAX_ORDER];
        let mut smooth = 1.0;
        let mut orders = MAX_ORDER;
        for (n, precision) in precisions.iter_mut().enumerate() {
            let (correct, total) = (self.correct[n], self.total[n]);
            if total == 0 {
                break;
            }
            if effective_order {
                orders = n + 1;
            }
            *precision = if correct == 0 {
                smooth *= 2.0;
                100.0 / (smooth * total as f64)
            } else {
                100.0 * correct as f64 / total as f64
            };
        }
        let log_sum: f64 = precisions[..orders].iter().map(|&p| python_log(p)).sum();
        brevity * (log_sum / orders as f64).exp()
    }
}

/// sacreBLEU's `my_log`: log, with log(0) taken as -9999999999.
fn python_log(x: f64) -> f64 {
    if x == 0.0 { -9_999_999_999.0 } else { x.ln() }
}

fn ngrams(tokens: &[String], n: usize) -> HashMap<&[String], u64> {
    let mut grams = HashMap::new();
    if tokens.len() >= n {
        for window in tokens.windows(n) {
            *grams.entry(window).or_insert(0) += 1;
        }
    }
    grams
}

/// sacreBLEU's `sentence_bleu(hypothesis, [reference])`.
pub fn sentence_bleu(hypothesis: &str, reference: &str) -> f64 {
    BleuStats::of(hypothesis, reference).score(true)
}

/// sacreBLEU's `corpus_bleu(hypotheses, [references])`.
pub fn corpus_bleu<H: AsRef<str>, R: AsRef<str>>(pairs: &[(H, R)]) -> f64 {
    let mut total = BleuStats::default();
    for (hyp, reference) in pairs {
        total.add(&BleuStats::of(hyp.as_ref(), reference.as_ref()));
    }
    total.score(false)
}
