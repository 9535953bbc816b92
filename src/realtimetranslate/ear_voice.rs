//! The ear-voice span: how far behind its source the translation is heard and shown, per
//! utterance. It is the figure interpreters are judged by, and what an operator watches.

use std::collections::VecDeque;

use crate::timeline::Utterance;

/// Spans kept for the percentiles (the most recent ones).
const KEPT: usize = 1000;

/// Recent spans in samples: source onset → translated speech onset, and → first caption.
#[derive(Debug, Default)]
pub struct EarVoiceSpans {
    speech: VecDeque<u64>,
    caption: VecDeque<u64>,
}

/// p50, p90 and max of a set of spans, in samples.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub p50: u64,
    pub p90: u64,
    pub max: u64,
    pub count: usize,
}

impl EarVoiceSpans {
    pub fn record(&mut self, utterance: &Utterance) {
        let keep = |spans: &mut VecDeque<u64>, at: Option<u64>| {
            if let Some(at) = at {
                if spans.len() == KEPT {
                    spans.pop_front();
                }
                spans.push_back(at.saturating_sub(utterance.source_onset));
            }
        };
        keep(&mut self.speech, utterance.speech);
        keep(&mut self.caption, utterance.caption);
    }

    pub fn speech(&self) -> Summary {
        summary(&self.speech)
    }

    pub fn caption(&self) -> Summary {
        summary(&self.caption)
    }
}

fn summary(spans: &VecDeque<u64>) -> Summary {
    let mut sorted: Vec<u64> = spans.iter().copied().collect();
    sorted.sort_unstable();
    let at = |p: f64| {
        sorted
            .get(((sorted.len().saturating_sub(1)) as f64 * p).round() as usize)
            .copied()
            .unwrap_or(0)
    };
    Summary {
        p50: at(0.5),
        p90: at(0.9),
        max: sorted.last().copied().unwrap_or(0),
        count: sorted.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_speech_and_caption_spans() {
        let mut spans = EarVoiceSpans::default();
        for i in 1..=10 {
            spans.record(&Utterance {
                source_onset: 1000,
                speech: Some(1000 + i * 100),
                caption: (i % 2 == 0).then_some(1000 + i * 10),
                arrival: None,
            });
        }
        let speech = spans.speech();
        assert_eq!(
            (speech.p50, speech.p90, speech.max, speech.count),
            (600, 900, 1000, 10)
        );
        let caption = spans.caption();
        assert_eq!((caption.max, caption.count), (100, 5));
        assert_eq!(EarVoiceSpans::default().speech(), Summary::default());
    }
}
