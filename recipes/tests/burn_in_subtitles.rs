//! Recipe a: burned-in subtitles. The output video is compared, frame by frame at chosen times,
//! with the input video and with the input plus the expected text drawn by `textoverlay`.

mod common;
#[allow(dead_code)]
#[path = "../examples/burn_in_subtitles.rs"]
mod recipe;

use common::*;
use gstrealtimetranslate::subtitle_file::to_srt;
use recipes::cli;

/// Rows from here down hold the bottom-aligned subtitles (the lower third of 240 rows).
const SUBTITLE_ROWS_FROM: usize = 160;

#[test]
fn translation_is_drawn_while_its_speech_plays_and_nowhere_else() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let video = speech_video(dir.path(), "talk.mp4", 15);
    let server = utterance_server();
    let output = dir.path().join("talk.es.mp4");
    let srt = dir.path().join("talk.es.srt");
    let mut args = recipe::Args::parse(cli::Args::new([
        video.path.to_str().unwrap(),
        output.to_str().unwrap(),
        "--srt",
        srt.to_str().unwrap(),
        "--preset",
        "ultrafast",
    ]))
    .unwrap();
    args.translate = server_options(&server, "es");
    let cues = recipe::run(&args).unwrap();

    // One cue per sentence, written to the SRT as well.
    let texts: Vec<String> = cues.iter().map(|c| c.text.clone()).collect();
    assert_translations_of(&texts, &video);
    assert_eq!(std::fs::read_to_string(&srt).unwrap(), to_srt(&cues));
    let spans: Vec<(f64, f64)> = cues
        .iter()
        .map(|c| (c.start_ns as f64 / 1e9, c.end_ns as f64 / 1e9))
        .collect();
    for (&(start, _), sentence) in spans.iter().zip(&video.sentences) {
        assert!(
            start > sentence.end() - 0.3 && start < sentence.end() + 1.5,
            "cue at {start:.2} s for a sentence ending at {:.2} s",
            sentence.end()
        );
    }

    // The output's sound is the translated speech, heard while each cue is shown.
    let demux = |path: &std::path::Path, pad: &str| {
        format!(
            "filesrc location={} ! qtdemux name=demux demux.{pad}",
            path.display()
        )
    };
    let (audio_start, samples) = decode_audio(&format!(
        "{} ! aacparse ! avdec_aac",
        demux(&output, "audio_0")
    ));
    assert_tones_match_cues(&samples, audio_start, &spans, 0.12);

    // Pictures: the input's, the output's, and the input's with each expected text drawn on it.
    let video_of =
        |path: &std::path::Path| format!("{} ! h264parse ! avdec_h264", demux(path, "video_0"));
    let drawn = |text: &str| {
        decode_frames(
            &format!(
                "{} ! videoconvert ! textoverlay name=overlay {}",
                video_of(&video.path),
                recipe::OVERLAY_PROPERTIES
            ),
            Some(text),
        )
    };
    let source = decode_frames(&video_of(&video.path), None);
    let burned = decode_frames(&video_of(&output), None);
    let expected = [drawn(&texts[0]), drawn(&texts[1])];
    assert!(
        (burned.len() as f64 - source.len() as f64).abs() <= 1.0,
        "{} frames out, {} in",
        burned.len(),
        source.len()
    );

    let difference = |frames: &[Frame], time: f64| {
        frame_at(&burned, time).pixels_changed_below(frame_at(frames, time), SUBTITLE_ROWS_FROM)
    };
    for (i, &(start, end)) in spans.iter().enumerate() {
        let middle = (start + end) / 2.0;
        let from_input = difference(&source, middle);
        let from_expected = difference(&expected[i], middle);
        let from_other_text = difference(&expected[1 - i], middle);
        assert!(
            from_input > 150,
            "cue {i} at {middle:.2} s: the picture is the input's ({from_input} pixels differ)"
        );
        assert!(
            from_expected <= 10 && from_expected * 3 < from_other_text,
            "cue {i} at {middle:.2} s: {from_expected} pixels differ from the expected text, \
             {from_other_text} from the other cue's text"
        );
    }
    // Before the first cue and between the cues, the picture is the input's.
    let quiet = [spans[0].0 / 2.0, (spans[0].1 + spans[1].0) / 2.0];
    for time in quiet {
        let from_input = difference(&source, time);
        assert!(
            from_input <= 10,
            "at {time:.2} s, with no cue, {from_input} pixels differ from the input"
        );
    }
}
