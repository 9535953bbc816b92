//! The flite reference set: English sentences spoken by flite, joined with a speaker's pauses into
//! one recording, with references timed to where each sentence's speech actually is.

use crate::audio::Pcm;
use crate::set::Triple;
use gstrealtimetranslate::subtitle_file::{TimedCue, to_srt};
use std::path::Path;
use std::process::Command;

/// The sentences and their Spanish references (`eval/sets/flite/sentences.tsv`).
pub const SENTENCES: &str = include_str!("../sets/flite/sentences.tsv");

const LEAD_S: f64 = 0.8;
const PAUSE_S: f64 = 1.5;

/// (English, Spanish) pairs of a sentences file.
pub fn pairs(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| l.split_once('\t'))
        .map(|(en, es)| (en.trim().to_owned(), es.trim().to_owned()))
        .collect()
}

/// Writes `flite.wav`, `flite.es.srt` and `flite.en.srt` into `out` for the first `count`
/// sentences, spoken by flite's `voice`.
pub fn make(out: &Path, count: usize, voice: &str) -> Result<Triple, String> {
    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let mut programme = Pcm::default();
    let (mut es, mut en) = (Vec::new(), Vec::new());
    for (i, (english, spanish)) in pairs(SENTENCES).into_iter().take(count).enumerate() {
        let wav = out.join(format!(".sentence-{i}.wav"));
        let status = Command::new("flite")
            .args(["-voice", voice, "-t", &english, "-o"])
            .arg(&wav)
            .status()
            .map_err(|e| format!("cannot run flite (apt-get install flite): {e}"))?;
        if !status.success() {
            return Err(format!("flite failed on {english:?}"));
        }
        let speech = Pcm::read_wav(&wav)?;
        let _ = std::fs::remove_file(&wav);
        if programme.rate == 0 {
            programme.rate = speech.rate;
            programme.samples = vec![0; (LEAD_S * speech.rate as f64) as usize];
        } else if programme.rate != speech.rate {
            return Err("flite changed its sample rate between sentences".into());
        }
        let offset = programme.duration_s();
        let (a, b) = speech
            .audible_extent()
            .ok_or(format!("flite made no audible speech for {english:?}"))?;
        let cue = |text: &str| TimedCue {
            start_ns: ((offset + a) * 1e9) as u64,
            end_ns: ((offset + b) * 1e9) as u64,
            text: text.to_owned(),
        };
        es.push(cue(&spanish));
        en.push(cue(&english));
        programme.samples.extend(&speech.samples);
        programme.samples.extend(std::iter::repeat_n(
            0,
            (PAUSE_S * speech.rate as f64) as usize,
        ));
    }
    if es.is_empty() {
        return Err("no sentences".into());
    }
    let input = out.join("flite.wav");
    let write = |path: &Path, bytes: &[u8]| {
        std::fs::write(path, bytes).map_err(|e| format!("{}: {e}", path.display()))
    };
    write(&input, &programme.to_wav())?;
    write(&out.join("flite.es.srt"), to_srt(&es).as_bytes())?;
    write(&out.join("flite.en.srt"), to_srt(&en).as_bytes())?;
    Ok(Triple {
        name: "flite".into(),
        input,
        reference: out.join("flite.es.srt"),
        source_reference: Some(out.join("flite.en.srt")),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_set_has_at_least_twenty_pairs_with_text_on_both_sides() {
        let pairs = super::pairs(super::SENTENCES);
        assert!(pairs.len() >= 20, "{}", pairs.len());
        assert!(
            pairs
                .iter()
                .all(|(en, es)| !en.is_empty() && !es.is_empty() && en != es)
        );
    }
}
