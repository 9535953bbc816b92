//! `report.json`: what was measured, in a form other tools can read (documented in the README).

use crate::audio::percentile;
use crate::subtitles::Cue;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub tool: String,
    pub settings: Settings,
    pub summary: Summary,
    pub items: Vec<Item>,
    pub segments: Vec<Segment>,
    /// Translated text that answers no reference segment.
    pub extra: Vec<Extra>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Settings {
    pub backend: String,
    pub language: String,
    pub url: Option<String>,
    pub latency_ms: u32,
    /// `realtime` (as a live broadcast) or `none` (`--fast`).
    pub pacing: String,
    pub transcription_model: Option<String>,
    pub max_delay_s: f64,
    pub aligned_chrf: f64,
}

/// Figures over a set of segments.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Summary {
    /// Reference segments.
    pub segments: usize,
    /// Segments with some translated text.
    pub translated: usize,
    /// Segments with no translated text.
    pub missed: usize,
    /// Translated cues answering no segment.
    pub extra: usize,
    /// Segments whose translation scores chrF ≥ `aligned_chrf`: the ones delays are measured on.
    pub aligned: usize,
    /// Segments whose translation lost a number or name of the reference.
    pub lost_numbers_or_names: usize,
    /// Corpus chrF (sacreBLEU `CHRF()`), missed segments counted as empty translations.
    pub chrf: f64,
    /// Corpus BLEU (sacreBLEU `BLEU()`), likewise.
    pub bleu: f64,
    /// Word error rate (%) of the source transcript over the segments with a source reference
    /// and a transcript (`null` when none).
    pub heard_wer: Option<f64>,
    pub ear_voice_span_s: Spread,
    pub caption_delay_s: Spread,
    /// Seconds of source audio, and of wall time the run took.
    pub audio_s: f64,
    pub wall_s: f64,
}

/// Distribution of a delay over the aligned segments (`null` figures when there are none).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Spread {
    pub count: usize,
    pub p50: Option<f64>,
    pub p90: Option<f64>,
    pub max: Option<f64>,
}

impl Spread {
    pub fn of(values: &[f64]) -> Self {
        Self {
            count: values.len(),
            p50: percentile(values, 50.0).map(milliseconds),
            p90: percentile(values, 90.0).map(milliseconds),
            max: percentile(values, 100.0).map(milliseconds),
        }
    }
}

/// Seconds rounded to the millisecond: finer figures would only show floating-point noise.
pub fn milliseconds(seconds: f64) -> f64 {
    (seconds * 1000.0).round() / 1000.0
}

/// One evaluated recording.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Item {
    pub name: String,
    pub input: String,
    pub reference: String,
    pub source_reference: Option<String>,
    /// Files written into the output directory.
    pub translated_wav: String,
    pub srt: String,
    pub vtt: String,
    /// Where this item starts on the report's concatenated programme (for plots).
    pub programme_offset_s: f64,
    pub summary: Summary,
}

/// One reference segment and what the listener got for it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Segment {
    pub item: String,
    /// 1-based position in its reference file.
    pub index: usize,
    pub start_s: f64,
    pub end_s: f64,
    pub reference: String,
    pub source_reference: Option<String>,
    /// The source transcript aligned to this segment (`null` when the backend gave none).
    pub heard: Option<String>,
    /// Word error rate (%) of `heard` against `source_reference`, when both exist.
    pub heard_wer: Option<f64>,
    /// Translated text aligned to this segment (empty when missed).
    pub translation: String,
    pub captions: Vec<Cue>,
    pub chrf: f64,
    pub bleu: f64,
    /// Translation chrF ≥ `aligned_chrf`: delays are meaningful.
    pub aligned: bool,
    /// Segment start → first translated speech after it (seconds; `null` if none was heard).
    pub ear_voice_span_s: Option<f64>,
    /// Segment end → its first caption (negative: shown before the speaker finished).
    pub caption_delay_s: Option<f64>,
    pub lost_terms: Vec<String>,
    pub lost_numbers_or_names: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Extra {
    pub item: String,
    pub start_s: f64,
    pub end_s: f64,
    pub text: String,
}

impl Summary {
    /// Figures over `segments` (corpus scores from summed statistics).
    pub fn of(segments: &[Segment], extra: usize, audio_s: f64, wall_s: f64) -> Self {
        use crate::metrics::{bleu::corpus_bleu, chrf::corpus_chrf};
        let pairs: Vec<(&str, &str)> = segments
            .iter()
            .map(|s| (s.translation.as_str(), s.reference.as_str()))
            .collect();
        let aligned: Vec<&Segment> = segments.iter().filter(|s| s.aligned).collect();
        let spans: Vec<f64> = aligned.iter().filter_map(|s| s.ear_voice_span_s).collect();
        let delays: Vec<f64> = aligned.iter().filter_map(|s| s.caption_delay_s).collect();
        let translated = segments
            .iter()
            .filter(|s| !s.translation.is_empty())
            .count();
        let mut wer = crate::metrics::wer::WerStats::default();
        for s in segments {
            if let (Some(heard), Some(source)) = (&s.heard, &s.source_reference) {
                wer.add(&crate::metrics::wer::WerStats::of(heard, source));
            }
        }
        Self {
            segments: segments.len(),
            translated,
            missed: segments.len() - translated,
            extra,
            aligned: aligned.len(),
            lost_numbers_or_names: segments.iter().filter(|s| s.lost_numbers_or_names).count(),
            chrf: if pairs.is_empty() {
                0.0
            } else {
                corpus_chrf(&pairs)
            },
            bleu: if pairs.is_empty() {
                0.0
            } else {
                corpus_bleu(&pairs)
            },
            heard_wer: wer.percent(),
            ear_voice_span_s: Spread::of(&spans),
            caption_delay_s: Spread::of(&delays),
            audio_s,
            wall_s,
        }
    }
}
