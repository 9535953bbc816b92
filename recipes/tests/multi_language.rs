//! Recipe e: several target languages at once, from one element with request pads. Each language
//! must have had its own session with the service (with its own output language) and written its
//! own speech and subtitles.

mod common;
#[allow(dead_code)]
#[path = "../examples/multi_language.rs"]
mod recipe;

use common::*;
use gstrealtimetranslate::subtitle_file::{to_srt, to_webvtt};
use recipes::cli;
use std::time::Duration;

#[test]
fn each_language_has_its_own_session_speech_and_subtitles() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let video = speech_video(dir.path(), "talk.mp4", 15);
    let server = utterance_server();
    let prefix = dir.path().join("talk");
    let mut args = recipe::Args::parse(cli::Args::new([
        video.path.to_str().unwrap(),
        "--languages",
        "es,fr",
        "--out",
        prefix.to_str().unwrap(),
    ]))
    .unwrap();
    args.translate = server_options(&server, "es");
    args.translate.language = None;
    // One element, its request pads for French: no tee, no second conversion.
    let description = recipe::pipeline_description(&args);
    assert_eq!(description.matches("realtimetranslate").count(), 1);
    assert!(!description.contains("tee"), "{description}");
    assert!(description.contains("translate.src_fr"), "{description}");
    let results = recipe::run(&args).unwrap();

    // The service saw one session per language, each asking for its language and hearing the
    // whole recording.
    assert!(
        server
            .records()
            .wait_for_ended_sessions(2, Duration::from_secs(5))
    );
    let sessions = server.records().sessions();
    assert_eq!(sessions.len(), 2);
    let mut languages: Vec<String> = Vec::new();
    for session in &sessions {
        assert!(
            session.schema_errors.is_empty(),
            "{:?}",
            session.schema_errors
        );
        let kinds: Vec<&str> = session.events.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(kinds.first(), Some(&"session.update"));
        assert_eq!(kinds.last(), Some(&"session.close"));
        let language = session.events[0].json["session"]["audio"]["output"]["language"]
            .as_str()
            .unwrap()
            .to_owned();
        let heard: usize = session.events.iter().filter_map(|e| e.audio_samples).sum();
        let heard = heard as f64 / 24_000.0;
        assert!(
            (heard - video.duration).abs() < 0.3,
            "the {language} session heard {heard:.2} s of {:.2} s",
            video.duration
        );
        languages.push(language);
    }
    languages.sort();
    assert_eq!(languages, ["es", "fr"]);

    // Each language wrote its own translated speech and subtitles.
    assert_eq!(
        results.iter().map(|(l, _)| l.as_str()).collect::<Vec<_>>(),
        ["es", "fr"]
    );
    for (language, cues) in &results {
        let texts: Vec<String> = cues.iter().map(|c| c.text.clone()).collect();
        assert_translations_of(&texts, &video);
        let srt = std::fs::read_to_string(args.output(language, "srt")).unwrap();
        let vtt = std::fs::read_to_string(args.output(language, "vtt")).unwrap();
        assert_eq!(srt, to_srt(cues));
        assert_eq!(vtt, to_webvtt(cues));
        let (start, samples) = decode_audio(&format!(
            "filesrc location={} ! wavparse",
            args.output(language, "wav")
        ));
        let spans: Vec<(f64, f64)> = cues
            .iter()
            .map(|c| (c.start_ns as f64 / 1e9, c.end_ns as f64 / 1e9))
            .collect();
        assert_tones_match_cues(&samples, start, &spans, 0.05);
        let seconds = samples.len() as f64 / 24_000.0;
        assert!(
            (seconds - video.duration).abs() < 0.3,
            "{language}: {seconds:.2} s of speech for {:.2} s of input",
            video.duration
        );
    }
}
