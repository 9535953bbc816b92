//! `index.html`: one page, no script and nothing external (audio is embedded), to read the
//! figures, look at their distribution and listen to the worst segments first.

use crate::audio::Pcm;
use crate::report::{Report, Segment, Spread};
use crate::svg::{Series, bars, histogram, points};
use base64::Engine as _;
use std::collections::HashMap;

/// Each item's source audio and translated audio, for the players.
pub type ItemAudio = HashMap<String, (Pcm, Pcm)>;

/// Clips last at most this long, so a page stays a reasonable size.
const MAX_CLIP_S: f64 = 30.0;

pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn seconds(v: Option<f64>) -> String {
    v.map_or("—".into(), |v| format!("{v:.2} s"))
}

fn spread(s: &Spread) -> String {
    format!(
        "p50 {} · p90 {} · max {} <small>({} segments)</small>",
        seconds(s.p50),
        seconds(s.p90),
        seconds(s.max),
        s.count
    )
}

fn player(class: &str, label: &str, pcm: Option<Pcm>) -> String {
    match pcm.filter(|p| !p.samples.is_empty()) {
        Some(pcm) => format!(
            "<figure class=\"{class}\"><figcaption>{label}</figcaption>\
             <audio controls preload=\"none\" src=\"data:audio/wav;base64,{}\"></audio></figure>",
            base64::engine::general_purpose::STANDARD.encode(pcm.to_wav())
        ),
        None => {
            format!("<figure class=\"{class}\"><figcaption>{label}: no audio</figcaption></figure>")
        }
    }
}

/// What the listener heard for a segment: from when the speaker started it until its last
/// caption ended (or a few seconds after the segment when nothing was translated).
fn translated_span(s: &Segment) -> (f64, f64) {
    let end = s
        .captions
        .last()
        .map_or(s.end_s + 3.0, |c| c.end_s.max(s.end_s))
        + 0.5;
    let start = s.start_s - 0.2;
    (start, end.min(start + MAX_CLIP_S))
}

fn row(s: &Segment, audio: Option<&(Pcm, Pcm)>) -> String {
    let source_clip = audio
        .map(|(src, _)| src.clip(s.start_s - 0.2, (s.end_s + 0.3).min(s.start_s + MAX_CLIP_S)));
    let (from, to) = translated_span(s);
    let translated_clip = audio.map(|(_, tr)| tr.clip(from, to));
    let flags = if s.lost_numbers_or_names {
        format!(
            "<span class=\"flag\">lost: {}</span>",
            escape(&s.lost_terms.join(", "))
        )
    } else {
        String::new()
    };
    let class = if s.translation.is_empty() {
        "segment missed"
    } else {
        "segment"
    };
    format!(
        "<tr class=\"{class}\"><td class=\"where\">{item}<br>#{index}<br>{start:.1}–{end:.1} s</td>\
         <td class=\"texts\"><div><b>reference</b> {reference}</div>{source}\
         <div><b>heard</b> {heard}{wer}</div><div><b>said</b> {said}</div>{flags}</td>\
         <td class=\"num\">{chrf:.1}</td><td class=\"num\">{bleu:.1}</td>\
         <td class=\"num\">{evs}</td><td class=\"num\">{cap}</td>\
         <td class=\"players\">{p1}{p2}</td></tr>\n",
        item = escape(&s.item),
        index = s.index,
        start = s.start_s,
        end = s.end_s,
        reference = escape(&s.reference),
        source = s
            .source_reference
            .as_ref()
            .map(|t| format!("<div><b>source</b> {}</div>", escape(t)))
            .unwrap_or_default(),
        heard = s
            .heard
            .as_deref()
            .map_or("<i>no transcript</i>".into(), escape),
        wer = s
            .heard_wer
            .map(|w| format!(" <small>(WER {w:.0} %)</small>"))
            .unwrap_or_default(),
        said = if s.translation.is_empty() {
            "<i>nothing</i>".into()
        } else {
            escape(&s.translation)
        },
        chrf = s.chrf,
        bleu = s.bleu,
        evs = seconds(s.ear_voice_span_s),
        cap = seconds(s.caption_delay_s),
        p1 = player("source", "source", source_clip),
        p2 = player("translation", "translation", translated_clip),
    )
}

/// The page for `report`; `audio` supplies the players' clips (a segment whose item has none
/// gets no player).
pub fn render(report: &Report, audio: &ItemAudio) -> String {
    let s = &report.summary;
    let offsets: HashMap<&str, f64> = report
        .items
        .iter()
        .map(|i| (i.name.as_str(), i.programme_offset_s))
        .collect();
    let aligned: Vec<&Segment> = report.segments.iter().filter(|s| s.aligned).collect();
    let on_programme =
        |s: &Segment| offsets.get(s.item.as_str()).copied().unwrap_or(0.0) + s.start_s;
    let evs = |s: &&Segment| s.ear_voice_span_s.map(|v| (on_programme(s), v));
    let cap = |s: &&Segment| s.caption_delay_s.map(|v| (on_programme(s), v));
    let series = || {
        [
            Series {
                name: "ear-voice span",
                colour: "#2e86c1",
                values: aligned.iter().filter_map(evs).collect(),
            },
            Series {
                name: "caption delay",
                colour: "#e67e22",
                values: aligned.iter().filter_map(cap).collect(),
            },
        ]
    };
    let delay_histogram = histogram(
        "delay-histogram",
        "Delay (aligned segments)",
        &series(),
        0.5,
    );
    let delay_over_time = points(
        "delay-over-programme",
        "Delay over the programme (aligned segments)",
        "programme time (s)",
        "delay (s)",
        &series(),
    );
    let scores: Vec<(String, f64)> = report
        .segments
        .iter()
        .map(|s| (format!("{} #{}", escape(&s.item), s.index), s.chrf))
        .collect();
    let score_bars = bars(
        "score-per-segment",
        "chrF per segment (programme order; red: below the alignment threshold)",
        "chrF",
        &scores,
        report.settings.aligned_chrf,
    );

    let mut worst_first: Vec<&Segment> = report.segments.iter().collect();
    worst_first.sort_by(|a, b| {
        a.chrf.total_cmp(&b.chrf).then(
            b.ear_voice_span_s
                .unwrap_or(f64::MAX)
                .total_cmp(&a.ear_voice_span_s.unwrap_or(f64::MAX)),
        )
    });
    let rows: String = worst_first
        .iter()
        .map(|s| row(s, audio.get(&s.item)))
        .collect();
    let extra: String = report
        .extra
        .iter()
        .map(|e| {
            format!(
                "<li>{} {:.1}–{:.1} s: {}</li>",
                escape(&e.item),
                e.start_s,
                e.end_s,
                escape(&e.text)
            )
        })
        .collect();
    let extra = if extra.is_empty() {
        "<li>none</li>".to_owned()
    } else {
        extra
    };
    let settings = &report.settings;
    format!(
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>realtimetranslate-eval: {backend} → {language}</title>
<style>
body {{ font-family: sans-serif; margin: 1.5em; color: #222; }}
table {{ border-collapse: collapse; }}
td, th {{ border-bottom: 1px solid #ddd; padding: 4px 8px; vertical-align: top; text-align: left; }}
td.num {{ text-align: right; white-space: nowrap; }}
td.where {{ max-width: 11em; overflow-wrap: anywhere; font-size: 12px; }}
td.texts {{ min-width: 26em; }}
tr.missed {{ background: #fdecea; }}
.flag {{ color: #c0392b; font-weight: bold; }}
.players {{ display: flex; gap: 8px; }}
figure {{ margin: 0; }} figcaption {{ font-size: 11px; color: #666; }}
audio {{ width: 210px; }}
.plots {{ display: flex; flex-wrap: wrap; gap: 12px; }}
</style></head><body>
<h1>Translation as the listener gets it</h1>
<p>Backend <b>{backend}</b>, into <b>{language}</b>, latency {latency} ms, pacing {pacing}, {items} recording(s), {audio:.1} s of audio.</p>
<table id="summary">
<tr><th>segments</th><td>{segments} (translated {translated}, missed {missed}; extra text {extra_n})</td></tr>
<tr><th>chrF / BLEU (corpus)</th><td>{chrf:.1} / {bleu:.1}</td></tr>
<tr><th>heard: word error rate</th><td>{wer}</td></tr>
<tr><th>ear-voice span</th><td>{evs}</td></tr>
<tr><th>caption delay</th><td>{cap}</td></tr>
<tr><th>aligned (chrF ≥ {threshold})</th><td>{aligned} segments; delays are measured on these only</td></tr>
<tr><th>lost numbers or names</th><td>{lost} segments</td></tr>
</table>
<h2>Plots</h2>
<div class="plots">{delay_histogram}{delay_over_time}{score_bars}</div>
<h2>Segments, worst first</h2>
<table id="segments">
<thead><tr><th>where</th><th>text</th><th>chrF</th><th>BLEU</th><th>ear-voice span</th><th>caption delay</th><th>listen</th></tr></thead>
<tbody>
{rows}</tbody></table>
<h2>Translated text with no reference</h2>
<ul id="extra">{extra}</ul>
</body></html>
"#,
        backend = escape(&settings.backend),
        language = escape(&settings.language),
        latency = settings.latency_ms,
        pacing = settings.pacing,
        items = report.items.len(),
        audio = s.audio_s,
        segments = s.segments,
        translated = s.translated,
        missed = s.missed,
        extra_n = s.extra,
        chrf = s.chrf,
        bleu = s.bleu,
        wer = s
            .heard_wer
            .map_or("— (no source reference or transcript)".into(), |w| format!(
                "{w:.1} %"
            )),
        evs = spread(&s.ear_voice_span_s),
        cap = spread(&s.caption_delay_s),
        threshold = settings.aligned_chrf,
        aligned = s.aligned,
        lost = s.lost_numbers_or_names,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Item, Settings, Summary};
    use crate::subtitles::Cue;

    fn segment(index: usize, chrf: f64, reference: &str, translation: &str) -> Segment {
        Segment {
            item: "talk".into(),
            index,
            start_s: index as f64 * 3.0,
            end_s: index as f64 * 3.0 + 2.0,
            reference: reference.into(),
            source_reference: None,
            heard: Some("heard <b>".into()),
            heard_wer: None,
            translation: translation.into(),
            captions: vec![Cue {
                start_s: index as f64 * 3.0 + 2.2,
                end_s: index as f64 * 3.0 + 3.0,
                text: translation.into(),
            }],
            chrf,
            bleu: chrf / 2.0,
            aligned: chrf >= 30.0,
            ear_voice_span_s: Some(2.0),
            caption_delay_s: Some(0.2),
            lost_terms: vec![],
            lost_numbers_or_names: false,
        }
    }

    #[test]
    fn rows_worst_first_text_escaped_players_embedded() {
        let segments = vec![
            segment(1, 80.0, "Bien.", "Bien."),
            segment(2, 10.0, "<script>alert(1)</script> & co", "Mal."),
            segment(3, 0.0, "Nada.", ""),
        ];
        let report = Report {
            tool: "test".into(),
            settings: Settings {
                backend: "local".into(),
                language: "es".into(),
                url: None,
                latency_ms: 200,
                pacing: "none".into(),
                transcription_model: None,
                max_delay_s: 10.0,
                aligned_chrf: 30.0,
            },
            summary: Summary::of(&segments, 0, 12.0, 1.0),
            items: vec![Item {
                name: "talk".into(),
                input: "talk.wav".into(),
                reference: "talk.es.srt".into(),
                source_reference: None,
                translated_wav: "talk.es.wav".into(),
                srt: "talk.es.srt".into(),
                vtt: "talk.es.vtt".into(),
                programme_offset_s: 0.0,
                summary: Summary::default(),
            }],
            segments,
            extra: vec![],
        };
        let pcm = |rate| Pcm {
            rate,
            origin_s: 0.0,
            samples: vec![100; rate as usize * 12],
        };
        let audio = ItemAudio::from([("talk".to_owned(), (pcm(16_000), pcm(24_000)))]);
        let html = render(&report, &audio);
        assert!(!html.contains("<script"));
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; co"));
        assert!(html.contains("heard &lt;b&gt;"));
        let rows: Vec<&str> = html.split("<tr class=\"segment").skip(1).collect();
        assert_eq!(rows.len(), 3);
        assert!(
            rows[0].contains("#3")
                && rows[0].starts_with(" missed")
                && rows[1].contains("#2")
                && rows[2].contains("#1")
        );
        assert_eq!(html.matches("data:audio/wav;base64,").count(), 6);
        for id in [
            "delay-histogram",
            "delay-over-programme",
            "score-per-segment",
        ] {
            assert!(html.contains(&format!("id=\"{id}\"")), "{id}");
        }
    }
}
