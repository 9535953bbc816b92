//! A recipe run exactly as a user with no account runs it: no translator options at all, so the
//! offline engine (English → Spanish) translates in this process.

mod common;
#[allow(dead_code)]
#[path = "../examples/burn_in_subtitles.rs"]
mod recipe;

use common::*;
use recipes::cli;

#[test]
fn with_no_options_the_offline_engine_burns_in_spanish_subtitles() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let video = speech_video(dir.path(), "talk.mp4", 15);
    let output = dir.path().join("talk.es.mp4");
    let args = recipe::Args::parse(cli::Args::new([
        video.path.to_str().unwrap(),
        output.to_str().unwrap(),
        "--preset",
        "ultrafast",
    ]))
    .unwrap();
    let cues = recipe::run(&args).unwrap();

    // "Good morning everyone." and "Thank you very much." in Spanish (as the offline engine
    // hears and translates them: "everyone" → "todo el mundo", "thank you" → "gracias"), each
    // after it is spoken.
    assert_eq!(cues.len(), 2, "{cues:?}");
    let text = cues
        .iter()
        .map(|c| c.text.to_lowercase())
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        text.contains("todo el mundo") && text.contains("gracias"),
        "not the Spanish of the two sentences: {text:?}"
    );
    for (cue, sentence) in cues.iter().zip(&video.sentences) {
        let start = cue.start_ns as f64 / 1e9;
        assert!(
            start > sentence.end() - 0.3 && start < sentence.end() + 2.0,
            "cue {:?} at {start:.2} s for a sentence ending at {:.2} s",
            cue.text,
            sentence.end()
        );
    }

    // The subtitles are in the picture while shown, and only then.
    let video_of = |path: &std::path::Path| {
        format!(
            "filesrc location={} ! qtdemux name=demux demux.video_0 ! h264parse ! avdec_h264",
            path.display()
        )
    };
    let source = decode_frames(&video_of(&video.path), None);
    let burned = decode_frames(&video_of(&output), None);
    let changed =
        |time: f64| frame_at(&burned, time).pixels_changed_below(frame_at(&source, time), 160);
    for cue in &cues {
        let middle = (cue.start_ns + cue.end_ns) as f64 / 2e9;
        assert!(changed(middle) > 150, "no subtitle at {middle:.2} s");
    }
    assert!(changed(cues[0].start_ns as f64 / 2e9) <= 10);
}
