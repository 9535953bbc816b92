//! Translation scores exactly as sacreBLEU 2.x defines them, so figures can be compared with
//! published ones: chrF (`CHRF()` defaults) and BLEU (`BLEU()` defaults, 13a tokenizer).
//! Corpus scores come from statistics summed over segments, never from averaging segment scores.

pub mod bleu;
pub mod chrf;
pub mod tokenizer_13a;
pub mod wer;

/// Python's `str.split()` whitespace: Unicode white space plus the ASCII separators 0x1C–0x1F.
pub(crate) fn is_python_whitespace(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}
