//! Runs a set of recordings through the element into one report: per recording the translated
//! WAV, SRT and WebVTT; for the set `report.json` and `index.html`.

use crate::evaluate::{Criteria, evaluate};
use crate::html::{ItemAudio, render};
use crate::report::{Item, Report, Settings, Summary};
use crate::run::{RunConfig, translate};
use crate::set::Triple;
use crate::subtitles;
use gstrealtimetranslate::subtitle_file::{TimedCue, to_srt, to_webvtt};
use std::path::Path;

/// Evaluates every triple in order (one element run each) and writes everything into `out`.
pub fn run_set(
    triples: &[Triple],
    config: &RunConfig,
    criteria: Criteria,
    out: &Path,
) -> Result<Report, String> {
    std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let write = |name: &str, bytes: &[u8]| {
        let path = out.join(name);
        std::fs::write(&path, bytes).map_err(|e| format!("{}: {e}", path.display()))
    };
    let (mut items, mut segments, mut extra) = (Vec::new(), Vec::new(), Vec::new());
    let mut audio = ItemAudio::new();
    let mut offset = 0.0;
    for triple in triples {
        let references = subtitles::read(&triple.reference)?;
        let source_references = triple
            .source_reference
            .as_deref()
            .map(subtitles::read)
            .transpose()?;
        eprintln!("{}: translating {}", triple.name, triple.input.display());
        let output = translate(&triple.input, config)
            .map_err(|e| format!("{}: {e}", triple.input.display()))?;
        let (item_segments, item_extra) = evaluate(
            &triple.name,
            &references,
            source_references.as_deref(),
            &output,
            &config.language,
            config.transcription_model.is_some(),
            criteria,
        );
        let stem = format!("{}.{}", triple.name, config.language);
        let timed: Vec<TimedCue> = output
            .captions
            .iter()
            .map(|c| TimedCue {
                start_ns: (c.start_s * 1e9) as u64,
                end_ns: (c.end_s * 1e9) as u64,
                text: c.text.clone(),
            })
            .collect();
        write(&format!("{stem}.wav"), &output.translated.to_wav())?;
        write(&format!("{stem}.srt"), to_srt(&timed).as_bytes())?;
        write(&format!("{stem}.vtt"), to_webvtt(&timed).as_bytes())?;
        let duration = output.source.duration_s();
        items.push(Item {
            name: triple.name.clone(),
            input: triple.input.display().to_string(),
            reference: triple.reference.display().to_string(),
            source_reference: triple
                .source_reference
                .as_ref()
                .map(|p| p.display().to_string()),
            translated_wav: format!("{stem}.wav"),
            srt: format!("{stem}.srt"),
            vtt: format!("{stem}.vtt"),
            programme_offset_s: offset,
            summary: Summary::of(&item_segments, item_extra.len(), duration, output.wall_s),
        });
        offset += duration;
        segments.extend(item_segments);
        extra.extend(item_extra);
        audio.insert(triple.name.clone(), (output.source, output.translated));
    }
    let audio_s = items.iter().map(|i| i.summary.audio_s).sum();
    let wall_s = items.iter().map(|i| i.summary.wall_s).sum();
    let report = Report {
        tool: format!("realtimetranslate-eval {}", env!("CARGO_PKG_VERSION")),
        settings: Settings {
            backend: config.backend.clone(),
            language: config.language.clone(),
            url: config.url.clone(),
            latency_ms: config.latency_ms,
            pacing: if config.fast { "none" } else { "realtime" }.into(),
            transcription_model: config.transcription_model.clone(),
            max_delay_s: criteria.window.max_delay_s,
            aligned_chrf: criteria.aligned_chrf,
        },
        summary: Summary::of(&segments, extra.len(), audio_s, wall_s),
        items,
        segments,
        extra,
    };
    let json = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
    write("report.json", json.as_bytes())?;
    write("index.html", render(&report, &audio).as_bytes())?;
    Ok(report)
}
