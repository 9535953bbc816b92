//! One recording's run against its references: alignment, scores, delays, lost terms.

use crate::align::{Window, align};
use crate::audio::Pcm;
use crate::metrics::{bleu::sentence_bleu, chrf::sentence_chrf, wer::WerStats};
use crate::report::{Extra, Segment, milliseconds};
use crate::run::RunOutput;
use crate::subtitles::Cue;
use crate::terms::lost_terms;

#[derive(Debug, Clone, Copy)]
pub struct Criteria {
    pub window: Window,
    /// Segment-level chrF from which a translation counts as answering its segment, so that its
    /// delays mean something.
    pub aligned_chrf: f64,
}

impl Default for Criteria {
    fn default() -> Self {
        Self {
            window: Window::default(),
            aligned_chrf: 30.0,
        }
    }
}

/// The segments of one item, in reference order, and the translated text that answers none.
pub fn evaluate(
    item: &str,
    references: &[Cue],
    source_references: Option<&[Cue]>,
    output: &RunOutput,
    language: &str,
    transcript_expected: bool,
    criteria: Criteria,
) -> (Vec<Segment>, Vec<Extra>) {
    let translation = align(references, &output.captions, criteria.window);
    // The transcript is aligned to the same segments, by the source reference's text when it
    // has one per segment, else by time alone.
    let heard_against: Vec<Cue> = match source_references {
        Some(src) if src.len() == references.len() => src.to_vec(),
        _ => references
            .iter()
            .map(|r| Cue {
                text: String::new(),
                ..r.clone()
            })
            .collect(),
    };
    let heard = align(&heard_against, &output.heard, criteria.window);
    let onsets = output.translated.speech_onsets(0.3);

    let segments = references
        .iter()
        .enumerate()
        .map(|(i, reference)| {
            let captions: Vec<Cue> = translation.per_segment[i]
                .iter()
                .map(|&c| output.captions[c].clone())
                .collect();
            let text = join(&captions);
            let chrf = sentence_chrf(&text, &reference.text);
            let heard_text = join(
                &heard.per_segment[i]
                    .iter()
                    .map(|&c| output.heard[c].clone())
                    .collect::<Vec<_>>(),
            );
            let lost = lost_terms(&reference.text, &text, language);
            let source_reference = source_references
                .filter(|s| s.len() == references.len())
                .map(|s| s[i].text.clone());
            let heard = (transcript_expected || !output.heard.is_empty()).then_some(heard_text);
            let heard_wer = heard
                .as_deref()
                .zip(source_reference.as_deref())
                .and_then(|(h, r)| WerStats::of(h, r).percent());
            Segment {
                item: item.to_owned(),
                index: i + 1,
                start_s: reference.start_s,
                end_s: reference.end_s,
                reference: reference.text.clone(),
                source_reference,
                heard,
                heard_wer,
                bleu: sentence_bleu(&text, &reference.text),
                aligned: !text.is_empty() && chrf >= criteria.aligned_chrf,
                ear_voice_span_s: translated_onset(
                    &output.translated,
                    &onsets,
                    reference,
                    &captions,
                )
                .map(|t| milliseconds(t - reference.start_s)),
                caption_delay_s: captions
                    .first()
                    .map(|c| milliseconds(c.start_s - reference.end_s)),
                translation: text,
                chrf,
                lost_numbers_or_names: !lost.is_empty(),
                lost_terms: lost,
                captions,
            }
        })
        .collect();
    let extra = translation
        .extra
        .iter()
        .map(|&c| {
            let cue = &output.captions[c];
            Extra {
                item: item.to_owned(),
                start_s: cue.start_s,
                end_s: cue.end_s,
                text: cue.text.clone(),
            }
        })
        .collect();
    (segments, extra)
}

/// Caption texts as one line.
fn join(cues: &[Cue]) -> String {
    cues.iter()
        .map(|c| c.text.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|t| !t.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// When the translated speech answering a segment starts: the first speech onset in the
/// translated audio from 0.5 s before its first caption up to the end of its last (captions go
/// with their speech), not before the segment itself starts; if speech is already running at the
/// first caption (translations back to back), the caption's start.
fn translated_onset(
    translated: &Pcm,
    onsets: &[f64],
    segment: &Cue,
    captions: &[Cue],
) -> Option<f64> {
    let (first, last) = (captions.first()?, captions.last()?);
    let from = (first.start_s - 0.5).max(segment.start_s - 0.2);
    if let Some(&onset) = onsets.iter().find(|&&t| t >= from && t <= last.end_s) {
        return Some(onset);
    }
    let around = translated.clip(first.start_s, first.start_s + 0.1);
    around.audible_extent().map(|_| first.start_s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cue(start_s: f64, end_s: f64, text: &str) -> Cue {
        Cue::new(start_s, end_s, text)
    }

    /// 24 kHz audio, loud between the given spans.
    fn speech(spans: &[(f64, f64)], total_s: f64) -> Pcm {
        let rate = 24_000;
        Pcm {
            rate,
            origin_s: 0.0,
            samples: (0..(total_s * rate as f64) as usize)
                .map(|i| {
                    let t = i as f64 / rate as f64;
                    let on = spans.iter().any(|&(a, b)| t >= a && t < b);
                    if on {
                        ((t * 2000.0).sin() * 6000.0) as i16
                    } else {
                        0
                    }
                })
                .collect(),
        }
    }

    #[test]
    fn delays_scores_misses_and_extras_of_one_run() {
        let references = [
            cue(1.0, 3.0, "El tiempo hoy es soleado y cálido."),
            cue(5.0, 7.0, "Me gustaría una taza de café."),
            cue(9.0, 10.0, "María vive en Madrid."),
        ];
        let output = RunOutput {
            source: Pcm::default(),
            // Translated speech 3.4–5.0 s (answering the first sentence) and 7.5–9.0 s; the
            // third sentence gets no answer, and 30 s in comes text nobody said.
            translated: speech(&[(3.4, 5.0), (7.5, 9.0)], 40.0),
            captions: vec![
                cue(3.4, 5.0, "El tiempo hoy es soleado y tibio."),
                cue(7.5, 9.0, "Quisiera una taza de café."),
                cue(30.0, 31.0, "Gracias por vernos."),
            ],
            heard: vec![cue(3.3, 4.0, "The weather today is sunny and warm.")],
            wall_s: 1.0,
        };
        let (segments, extra) = evaluate(
            "talk",
            &references,
            None,
            &output,
            "es",
            true,
            Criteria::default(),
        );
        assert_eq!(segments.len(), 3);
        assert_eq!(segments[0].translation, "El tiempo hoy es soleado y tibio.");
        assert_eq!(
            segments[0].heard.as_deref(),
            Some("The weather today is sunny and warm.")
        );
        assert_eq!(segments[0].ear_voice_span_s, Some(2.4));
        assert_eq!(segments[0].caption_delay_s, Some(0.4));
        assert!(segments[0].aligned && segments[1].aligned);
        assert_eq!(segments[1].ear_voice_span_s, Some(2.5));
        assert_eq!(segments[1].heard.as_deref(), Some(""));
        assert!(segments[2].translation.is_empty() && !segments[2].aligned);
        assert_eq!(segments[2].ear_voice_span_s, None);
        assert_eq!(segments[2].lost_terms, ["Madrid"]);
        assert_eq!(segments[2].chrf, 0.0);
        assert_eq!(extra.len(), 1);
        assert_eq!(extra[0].text, "Gracias por vernos.");
    }

    #[test]
    fn translated_speech_already_running_starts_at_its_caption() {
        let references = [cue(0.0, 2.0, "Hola a todos."), cue(2.2, 3.0, "Adiós.")];
        let output = RunOutput {
            source: Pcm::default(),
            // One burst of speech carries both answers back to back.
            translated: speech(&[(2.5, 6.0)], 8.0),
            captions: vec![cue(2.5, 4.0, "Hola a todos."), cue(4.0, 6.0, "Adiós.")],
            heard: vec![],
            wall_s: 1.0,
        };
        let (segments, _) = evaluate(
            "talk",
            &references,
            None,
            &output,
            "es",
            false,
            Criteria::default(),
        );
        assert_eq!(segments[0].ear_voice_span_s, Some(2.5));
        assert_eq!(segments[1].ear_voice_span_s, Some(1.8));
        assert_eq!(segments[1].heard, None);
    }
}
