//! Which translated text answers which reference segment, by time and text.
//!
//! The rule (also in the README): cues and segments are both in programme order, and a cue is
//! given to at most one segment, never to an earlier segment than the cue before it (engines
//! answer in order). A cue may answer a segment only if it starts no more than `early_s` before
//! the segment starts and no more than `max_delay_s` after it ends. Among such assignments the one
//! with the highest total of `chrF(cue, reference) / 100 + 0.5 × timing` is chosen (dynamic
//! programming, ties to the earlier segment), where timing is 1 while the cue starts between the
//! segment's start and its end + the engine's typical delay, and falls linearly to 0 at the edges
//! of the allowed window. The typical delay is the median, over cues whose best text match scores
//! chrF ≥ 40, of cue start − that segment's end (1 s when no cue matches that well). A cue left
//! unassigned is *extra*: text with no reference.

use crate::metrics::chrf::sentence_chrf;
use crate::subtitles::Cue;

#[derive(Debug, Clone, Copy)]
pub struct Window {
    /// How long before its segment starts a cue may start (the references' timing tolerance).
    pub early_s: f64,
    /// How long after its segment ends a cue may still answer it.
    pub max_delay_s: f64,
}

impl Default for Window {
    fn default() -> Self {
        Self {
            early_s: 0.5,
            max_delay_s: 10.0,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Alignment {
    /// Per segment, the indices of the cues answering it, in order.
    pub per_segment: Vec<Vec<usize>>,
    /// Cues that answer no segment.
    pub extra: Vec<usize>,
    /// The typical delay used for the timing term.
    pub typical_delay_s: f64,
}

/// Aligns `cues` (translated or heard text) to `segments` (references; a reference with empty
/// text is aligned by time alone).
pub fn align(segments: &[Cue], cues: &[Cue], window: Window) -> Alignment {
    let feasible = |c: &Cue, s: &Cue| {
        c.start_s >= s.start_s - window.early_s && c.start_s <= s.end_s + window.max_delay_s
    };
    // Text similarity of every feasible pair, computed once.
    let similarity: Vec<Vec<Option<f64>>> = cues
        .iter()
        .map(|c| {
            segments
                .iter()
                .map(|s| feasible(c, s).then(|| sentence_chrf(&c.text, &s.text)))
                .collect()
        })
        .collect();
    let typical_delay_s = typical_delay(segments, cues, &similarity, window);
    let timing = |c: &Cue, s: &Cue| {
        let (core_start, core_end) = (s.start_s, s.end_s + typical_delay_s);
        if c.start_s < core_start {
            1.0 - (core_start - c.start_s) / window.early_s.max(1e-9)
        } else if c.start_s > core_end {
            let room = (s.end_s + window.max_delay_s - core_end).max(1e-9);
            1.0 - (c.start_s - core_end) / room
        } else {
            1.0
        }
        .clamp(0.0, 1.0)
    };

    // best[i][j]: best total for the first i cues with every assigned segment ≤ j − 1.
    let (m, n) = (cues.len(), segments.len());
    let mut best = vec![vec![0.0f64; n + 1]; m + 1];
    let mut took = vec![vec![false; n + 1]; m + 1];
    for i in 1..=m {
        for j in 1..=n {
            let mut value = best[i][j - 1].max(best[i - 1][j]);
            let mut take = false;
            if let Some(sim) = similarity[i - 1][j - 1] {
                let gain = sim / 100.0 + 0.5 * timing(&cues[i - 1], &segments[j - 1]);
                if gain > 0.0 && best[i - 1][j] + gain > value {
                    value = best[i - 1][j] + gain;
                    take = true;
                }
            }
            best[i][j] = value;
            took[i][j] = take;
        }
    }
    // Walk back.
    let mut per_segment = vec![Vec::new(); n];
    let mut extra = Vec::new();
    let (mut i, mut j) = (m, n);
    while i > 0 {
        if j > 0 && took[i][j] {
            per_segment[j - 1].push(i - 1);
            i -= 1;
        } else if j > 0 && best[i][j] == best[i][j - 1] {
            j -= 1;
        } else {
            extra.push(i - 1);
            i -= 1;
        }
    }
    per_segment.iter_mut().for_each(|v| v.reverse());
    extra.reverse();
    Alignment {
        per_segment,
        extra,
        typical_delay_s,
    }
}

fn typical_delay(
    segments: &[Cue],
    cues: &[Cue],
    similarity: &[Vec<Option<f64>>],
    window: Window,
) -> f64 {
    let mut delays: Vec<f64> = cues
        .iter()
        .zip(similarity)
        .filter_map(|(c, row)| {
            let (j, sim) = row
                .iter()
                .enumerate()
                .filter_map(|(j, s)| s.map(|s| (j, s)))
                .max_by(|a, b| a.1.total_cmp(&b.1))?;
            (sim >= 40.0).then(|| c.start_s - segments[j].end_s)
        })
        .collect();
    if delays.is_empty() {
        return 1.0;
    }
    delays.sort_by(|a, b| a.total_cmp(b));
    delays[delays.len() / 2].clamp(0.0, window.max_delay_s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cue(start_s: f64, end_s: f64, text: &str) -> Cue {
        Cue::new(start_s, end_s, text)
    }

    #[test]
    fn text_decides_between_overlapping_windows() {
        let segments = [
            cue(0.0, 2.0, "El tiempo hoy es soleado y cálido."),
            cue(2.5, 4.0, "Me gustaría una taza de café."),
        ];
        // The first translation arrives while the second sentence is spoken.
        let cues = [
            cue(3.0, 4.0, "El tiempo hoy es soleado y tibio."),
            cue(5.0, 6.0, "Quisiera una taza de café."),
        ];
        let a = align(&segments, &cues, Window::default());
        assert_eq!(a.per_segment, vec![vec![0], vec![1]]);
        assert!(a.extra.is_empty());
    }

    #[test]
    fn unrecognisable_text_still_aligns_by_time_in_order() {
        let segments = [cue(0.0, 2.0, "Uno."), cue(5.0, 7.0, "Dos.")];
        let cues = [cue(2.5, 3.0, "xyz"), cue(7.5, 8.0, "qqq")];
        let a = align(&segments, &cues, Window::default());
        assert_eq!(a.per_segment, vec![vec![0], vec![1]]);
    }

    #[test]
    fn text_far_from_any_segment_is_extra_and_a_segment_can_be_missed() {
        let segments = [cue(0.0, 2.0, "Hola."), cue(30.0, 32.0, "Adiós.")];
        let cues = [cue(2.5, 3.0, "Hola."), cue(20.0, 21.0, "Gracias por ver.")];
        let a = align(&segments, &cues, Window::default());
        assert_eq!(a.per_segment, vec![vec![0], vec![]]);
        assert_eq!(a.extra, vec![1]);
    }

    #[test]
    fn text_never_answers_a_segment_that_starts_after_it() {
        let segments = [cue(5.0, 6.0, "Hola.")];
        let cues = [cue(1.0, 2.0, "Hola.")];
        let a = align(&segments, &cues, Window::default());
        assert_eq!(a.per_segment, vec![Vec::<usize>::new()]);
        assert_eq!(a.extra, vec![0]);
    }

    #[test]
    fn pieces_of_one_answer_stay_together() {
        let segments = [
            cue(0.0, 4.0, "El presidente hablará a la nación esta noche."),
            cue(5.0, 6.0, "Gracias."),
        ];
        let cues = [
            cue(4.5, 5.5, "El presidente hablará"),
            cue(5.5, 6.5, "a la nación esta noche."),
            cue(6.6, 7.0, "Gracias."),
        ];
        let a = align(&segments, &cues, Window::default());
        assert_eq!(a.per_segment, vec![vec![0, 1], vec![2]]);
    }
}
