//! Recipe c: HLS with the original audio and, per language (Spanish and French, from one element),
//! a translated audio rendition and WebVTT subtitles. The test reads the presentation as a player
//! does: master playlist → media playlists → segments, decodes them, and checks each language's
//! subtitles' timing against its translated speech on the MPEG-TS timeline.

mod common;
#[allow(dead_code)]
#[path = "../examples/hls_translated.rs"]
mod recipe;

use common::*;
use recipes::cli;
use recipes::hls::MPEGTS_TIME_OF_RUNNING_TIME_ZERO;
use std::collections::HashMap;
use std::path::Path;

const SEGMENT_SECONDS: f64 = 2.0;

/// `KEY=value,KEY="quoted, value"` → map.
fn attributes(list: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let (mut key, mut value, mut in_value, mut quoted) =
        (String::new(), String::new(), false, false);
    for c in list.chars().chain([',']) {
        match c {
            '"' => quoted = !quoted,
            '=' if !in_value => in_value = true,
            ',' if !quoted => {
                out.insert(std::mem::take(&mut key), std::mem::take(&mut value));
                in_value = false;
            }
            c if in_value => value.push(c),
            c => key.push(c),
        }
    }
    out
}

/// A media playlist's segments (duration, file) and whether it has ended.
fn media_playlist(path: &Path) -> (Vec<(f64, String)>, bool) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.starts_with("#EXTM3U"), "{}", path.display());
    let mut segments = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if let Some(info) = line.strip_prefix("#EXTINF:") {
            let duration = info.trim_end_matches(',').parse().unwrap();
            segments.push((duration, lines.next().unwrap().to_owned()));
        }
    }
    (segments, text.contains("#EXT-X-ENDLIST"))
}

/// Checks a rendition's playlist and its segments, and returns the segments joined in one
/// MPEG-TS (or WebVTT) byte stream list, in order.
fn rendition(dir: &Path, media_duration: f64) -> Vec<Vec<u8>> {
    let (segments, ended) = media_playlist(&dir.join("playlist.m3u8"));
    assert!(ended, "{} has no EXT-X-ENDLIST", dir.display());
    assert!(segments.len() >= 3, "{}: {segments:?}", dir.display());
    let total: f64 = segments.iter().map(|(d, _)| d).sum();
    assert!(
        total >= media_duration - 0.3 && total <= media_duration + 2.0,
        "{}: {total:.2} s of segments for {media_duration:.2} s of media",
        dir.display()
    );
    for (duration, _) in &segments[..segments.len() - 1] {
        assert!(*duration <= SEGMENT_SECONDS + 0.5, "{segments:?}");
    }
    segments
        .iter()
        .map(|(_, name)| std::fs::read(dir.join(name)).unwrap())
        .collect()
}

/// The first PES presentation time (90 kHz) of a video (0xE0–0xEF) or audio (0xC0–0xDF) stream.
fn first_pes_pts(ts: &[u8]) -> u64 {
    for packet in ts.chunks_exact(188) {
        assert_eq!(packet[0], 0x47, "not MPEG-TS");
        let unit_start = packet[1] & 0x40 != 0;
        let adaptation = (packet[3] >> 4) & 3;
        let mut at = 4;
        if adaptation & 2 != 0 {
            at += 1 + packet[4] as usize;
        }
        if !unit_start || adaptation & 1 == 0 || at + 14 > 188 {
            continue;
        }
        let pes = &packet[at..];
        let media = matches!(pes[3], 0xC0..=0xEF);
        if pes[..3] == [0, 0, 1] && media && pes[7] & 0x80 != 0 {
            let b = &pes[9..14];
            return (u64::from(b[0] >> 1) & 7) << 30
                | u64::from(b[1]) << 22
                | u64::from(b[2] >> 1) << 15
                | u64::from(b[3]) << 7
                | u64::from(b[4] >> 1);
        }
    }
    panic!("no PES with a PTS");
}

/// Seconds of running time of a 90 kHz MPEG-TS time written by `mpegtsmux`.
fn running_seconds(pts: u64) -> f64 {
    (pts as f64 - MPEGTS_TIME_OF_RUNNING_TIME_ZERO as f64) / 90_000.0
}

/// "HH:MM:SS.mmm" → seconds.
fn vtt_time(text: &str) -> f64 {
    let parts: Vec<f64> = text.split(':').map(|p| p.parse().unwrap()).collect();
    parts[0] * 3600.0 + parts[1] * 60.0 + parts[2]
}

/// A WebVTT segment's timestamp map and cues (start, end, text).
fn vtt_cues(text: &str) -> (String, Vec<(f64, f64, String)>) {
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("WEBVTT"));
    let map = lines.next().unwrap().to_owned();
    let mut cues = Vec::new();
    while let Some(line) = lines.next() {
        if let Some((start, end)) = line.split_once(" --> ") {
            let text: Vec<&str> = lines.by_ref().take_while(|l| !l.is_empty()).collect();
            cues.push((vtt_time(start), vtt_time(end), text.join("\n")));
        }
    }
    (map, cues)
}

fn write_joined(dir: &Path, name: &str, parts: &[Vec<u8>]) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, parts.concat()).unwrap();
    path
}

#[test]
fn renditions_are_labelled_playable_and_subtitles_follow_the_translated_speech() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let video = speech_video(dir.path(), "talk.mp4", 15);
    let server = utterance_server();
    let out = dir.path().join("hls");
    let mut args = recipe::Args::parse(cli::Args::new([
        video.path.to_str().unwrap(),
        out.to_str().unwrap(),
        "--segment-duration",
        "2",
        "--source-language",
        "en",
        "--preset",
        "ultrafast",
        "--languages",
        "es,fr",
    ]))
    .unwrap();
    args.translate = server_options(&server, "es");
    args.translate.language = None;
    let description = recipe::pipeline_description(&args);
    assert_eq!(description.matches("realtimetranslate").count(), 1);
    let results = recipe::run(&args).unwrap();
    assert_eq!(
        results.iter().map(|(l, _)| l.as_str()).collect::<Vec<_>>(),
        ["es", "fr"]
    );
    for (_, cues) in &results {
        let texts: Vec<String> = cues.iter().map(|c| c.text.clone()).collect();
        assert_translations_of(&texts, &video);
    }
    // One session per language, each asked for its language.
    let languages = session_languages(&server);
    assert_eq!(languages, ["es", "fr"]);

    // The master playlist: two labelled audio renditions, the subtitles, and the video variant.
    let master = std::fs::read_to_string(out.join("master.m3u8")).unwrap();
    let media: Vec<HashMap<String, String>> = master
        .lines()
        .filter_map(|l| l.strip_prefix("#EXT-X-MEDIA:"))
        .map(attributes)
        .collect();
    let find = |kind: &str, language: &str| {
        media
            .iter()
            .find(|m| m["TYPE"] == kind && m["LANGUAGE"] == language)
            .unwrap_or_else(|| panic!("no {kind} rendition in {language}:\n{master}"))
    };
    let original = find("AUDIO", "en");
    assert_eq!(media.len(), 5, "{master}");
    assert_eq!(original["NAME"], "English (original)");
    assert_eq!(original["DEFAULT"], "YES");
    for (language, name) in [("es", "Español"), ("fr", "Français")] {
        let translated = find("AUDIO", language);
        assert_eq!(translated["NAME"], format!("{name} (translation)"));
        assert_eq!(translated["GROUP-ID"], original["GROUP-ID"]);
        assert_eq!(translated["DEFAULT"], "NO");
        assert_eq!(find("SUBTITLES", language)["NAME"], name);
    }
    let subtitles = find("SUBTITLES", "es");
    assert_eq!(find("SUBTITLES", "fr")["GROUP-ID"], subtitles["GROUP-ID"]);
    let lines: Vec<&str> = master.lines().collect();
    let stream = lines
        .iter()
        .position(|l| l.starts_with("#EXT-X-STREAM-INF:"))
        .unwrap();
    let variant = attributes(lines[stream].strip_prefix("#EXT-X-STREAM-INF:").unwrap());
    assert_eq!(variant["AUDIO"], original["GROUP-ID"]);
    assert_eq!(variant["SUBTITLES"], subtitles["GROUP-ID"]);
    assert_eq!(variant["RESOLUTION"], "320x240");
    // H.264 in a profile every HLS player decodes (baseline, main or high: 4:2:0, 8 bits).
    let codecs = &variant["CODECS"];
    assert!(
        ["avc1.42", "avc1.4d", "avc1.64"]
            .iter()
            .any(|p| codecs.starts_with(p))
            && codecs.ends_with(",mp4a.40.2"),
        "{master}"
    );
    assert!(variant["BANDWIDTH"].parse::<u64>().unwrap() > 0);

    // Every playlist is complete and its segments decode.
    let playlist_dir = |uri: &str| out.join(uri).parent().unwrap().to_owned();
    let video_ts = rendition(&playlist_dir(lines[stream + 1]), video.duration);
    let original_ts = rendition(&playlist_dir(&original["URI"]), video.duration);

    let frames = decode_frames(
        &format!(
            "filesrc location={} ! tsdemux ! h264parse ! avdec_h264",
            write_joined(dir.path(), "video.ts", &video_ts).display()
        ),
        None,
    );
    let expected_frames = video.duration * 15.0;
    assert!(
        (frames.len() as f64 - expected_frames).abs() <= 2.0,
        "{} frames decoded, {expected_frames:.0} expected",
        frames.len()
    );
    // The video starts at running time 0: the subtitles' timestamp map refers to it.
    assert!(running_seconds(first_pes_pts(&video_ts[0])).abs() < 0.07);

    // The original rendition is the speech: heard during the sentences, not in the pause.
    let (_, speech) = decode_audio(&format!(
        "filesrc location={} ! tsdemux ! aacparse ! avdec_aac",
        write_joined(dir.path(), "original.ts", &original_ts).display()
    ));
    let speech_start = running_seconds(first_pes_pts(&original_ts[0]));
    let level = |from: f64, to: f64| {
        let at = |t: f64| (((t - speech_start) * 24_000.0) as usize).min(speech.len());
        rms(&speech[at(from)..at(to)])
    };
    let [first, second] = video.sentences;
    assert!(level(first.start + 0.2, first.end() - 0.2) > 300.0);
    assert!(level(second.start + 0.2, second.end() - 0.2) > 300.0);
    assert!(level(first.end() + 0.3, second.start - 0.3) < 100.0);

    // Per language: WebVTT segments on the MPEG-TS timeline, each with every cue it overlaps,
    // and each subtitle on screen while its translated speech is heard in that language's
    // rendition.
    for (language, cues) in &results {
        let translated_ts = rendition(
            &playlist_dir(&find("AUDIO", language)["URI"]),
            video.duration,
        );
        let vtt = rendition(
            &playlist_dir(&find("SUBTITLES", language)["URI"]),
            video.duration,
        );
        let mut vtt_seen = Vec::new();
        for (index, segment) in vtt.iter().enumerate() {
            let (map, cues_in_segment) = vtt_cues(std::str::from_utf8(segment).unwrap());
            assert_eq!(
                map,
                format!(
                    "X-TIMESTAMP-MAP=MPEGTS:{MPEGTS_TIME_OF_RUNNING_TIME_ZERO},LOCAL:00:00:00.000"
                )
            );
            let (from, to) = (
                index as f64 * SEGMENT_SECONDS,
                (index + 1) as f64 * SEGMENT_SECONDS,
            );
            for cue in cues {
                let (start, end) = (cue.start_ns as f64 / 1e9, cue.end_ns as f64 / 1e9);
                let present = cues_in_segment
                    .iter()
                    .any(|c| c.2 == cue.text.trim() && (c.0 - start).abs() < 0.001);
                assert_eq!(
                    present,
                    start < to && end > from,
                    "segment {index} ({from}–{to} s) and cue {start:.3}–{end:.3} s"
                );
            }
            for cue in cues_in_segment {
                if !vtt_seen.contains(&cue) {
                    vtt_seen.push(cue);
                }
            }
        }
        assert_eq!(vtt_seen.len(), 2, "{language}: {vtt_seen:?}");

        let (_, translation) = decode_audio(&format!(
            "filesrc location={} ! tsdemux ! aacparse ! avdec_aac",
            write_joined(
                dir.path(),
                &format!("translated-{language}.ts"),
                &translated_ts
            )
            .display()
        ));
        let translation_start = running_seconds(first_pes_pts(&translated_ts[0]));
        let spans: Vec<(f64, f64)> = vtt_seen.iter().map(|c| (c.0, c.1)).collect();
        assert_tones_match_cues(&translation, translation_start, &spans, 0.12);
    }
}
