//! Scores the offline engine's tests put on what it heard and said: word error rate under a
//! chosen word normalisation, and the level of an audio buffer.
#![allow(dead_code)]

/// Words as PocketSphinx and Whisper both write them, compared loosely: lower case, trailing
/// sentence punctuation dropped.
pub fn plain_words(s: &str) -> Vec<String> {
    s.split_whitespace()
        .map(|w| w.trim_end_matches(['.', ',', '?', '!']).to_lowercase())
        .collect()
}

/// Whisper's spelling brought to a reference's: punctuation around words dropped, hyphenated
/// words split ("ill-disposed" against "ill disposed").
pub fn spelled_words(s: &str) -> Vec<String> {
    s.split_whitespace()
        .map(|w| {
            w.trim_matches(|c: char| !c.is_alphanumeric())
                .to_lowercase()
                .replace('-', " ")
        })
        .flat_map(|w| w.split(' ').map(str::to_owned).collect::<Vec<_>>())
        .filter(|w| !w.is_empty())
        .collect()
}

/// Word error rate: word-level edit distance over the reference's length, both sides cut
/// into words by `words`.
pub fn wer(reference: &str, hypothesis: &str, words: fn(&str) -> Vec<String>) -> f64 {
    let (r, h) = (words(reference), words(hypothesis));
    let mut row: Vec<usize> = (0..=h.len()).collect();
    for i in 1..=r.len() {
        let mut prev = row[0];
        row[0] = i;
        for j in 1..=h.len() {
            let cur = row[j];
            row[j] = (row[j] + 1)
                .min(row[j - 1] + 1)
                .min(prev + usize::from(r[i - 1] != h[j - 1]));
            prev = cur;
        }
    }
    row[h.len()] as f64 / r.len().max(1) as f64
}

/// Root mean square of PCM16 samples (0 for none).
pub fn rms(pcm: &[i16]) -> f64 {
    (pcm.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / pcm.len().max(1) as f64).sqrt()
}
