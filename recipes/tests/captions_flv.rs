//! Recipe b: CEA-608 captions in FLV, Spanish on CC1 and French on CC3 from one element. The
//! captions are read back out of the written file the way a player would (FLV → H.264 SEI →
//! CEA-608 field 1 or 2 → text) and compared with each language's cues and the sound.

mod common;
#[allow(dead_code)]
#[path = "../examples/captions_flv.rs"]
mod recipe;

use common::*;
use recipes::cli;

#[test]
fn translation_is_captioned_in_the_video_and_spoken_in_the_sound() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let video = speech_video(dir.path(), "talk.mp4", 15);
    let server = utterance_server();
    let output = dir.path().join("talk.flv");
    let mut args = recipe::Args::parse(cli::Args::new([
        video.path.to_str().unwrap(),
        output.to_str().unwrap(),
        "--preset",
        "ultrafast",
        "--languages",
        "es,fr",
    ]))
    .unwrap();
    args.translate = server_options(&server, "es");
    args.translate.language = None;
    assert_eq!(
        recipe::pipeline_description(&args)
            .matches("realtimetranslate")
            .count(),
        1
    );
    let results = recipe::run(&args).unwrap();
    assert_eq!(
        results.iter().map(|(l, _)| l.as_str()).collect::<Vec<_>>(),
        ["es", "fr"]
    );
    let sessions = session_languages(&server);
    assert_eq!(sessions, ["es", "fr"], "one session per language");

    let flv = format!(
        "filesrc location={} ! flvdemux name=demux",
        output.display()
    );
    // CC1 is in the first field, CC3 in the second.
    for ((language, cues), field) in results.iter().zip([0, 1]) {
        let texts: Vec<String> = cues.iter().map(|c| c.text.clone()).collect();
        assert_translations_of(&texts, &video);
        // Captions, as a player decodes them from the video stream.
        let captions = decode_text(&format!(
            "{flv} demux.video ! h264parse ! ccextractor name=extract extract.src ! fakesink sync=false async=false \
             extract.caption ! ccconverter ! closedcaption/x-cea-608,format=raw,field={field} \
             ! cea608tott ! text/x-raw"
        ));
        let caption_texts: Vec<String> =
            captions.iter().map(|c| c.text.trim().to_owned()).collect();
        let cue_texts: Vec<String> = texts.iter().map(|t| t.trim().to_owned()).collect();
        assert_eq!(caption_texts, cue_texts, "{language}");

        // Pop-on captions appear once their characters have been sent (a fraction of a second
        // after the cue starts) and are cleared when it ends.
        for (caption, cue) in captions.iter().zip(cues) {
            let (cue_start, cue_end) = (cue.start_ns as f64 / 1e9, cue.end_ns as f64 / 1e9);
            let shown = caption.pts.seconds_f64();
            let cleared = shown + caption.duration.seconds_f64();
            assert!(
                shown >= cue_start - 0.05 && shown <= cue_start + 0.6,
                "{language}: caption {:?} shown at {shown:.2} s for a cue at {cue_start:.2} s",
                caption.text
            );
            assert!(
                (cleared - cue_end).abs() < 0.3,
                "{language}: caption {:?} cleared at {cleared:.2} s for a cue ending at {cue_end:.2} s",
                caption.text
            );
        }
    }
    let cues = &results[0].1;

    // The sound is the translated speech, heard while each cue is on.
    let (audio_start, samples) = decode_audio(&format!("{flv} demux.audio ! aacparse ! avdec_aac"));
    let spans: Vec<(f64, f64)> = cues
        .iter()
        .map(|c| (c.start_ns as f64 / 1e9, c.end_ns as f64 / 1e9))
        .collect();
    assert_tones_match_cues(&samples, audio_start, &spans, 0.12);

    // The video was converted to the caption frame rate and keeps its length.
    let frames = decode_frames(&format!("{flv} demux.video ! h264parse ! avdec_h264"), None);
    let expected = video.duration * 30.0;
    assert!(
        (frames.len() as f64 - expected).abs() <= 30.0,
        "{} frames for {:.2} s at 30 fps",
        frames.len(),
        video.duration
    );
}
