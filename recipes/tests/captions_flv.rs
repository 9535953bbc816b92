//! Recipe b: CEA-608 captions in FLV. The captions are read back out of the written file the way
//! a player would (FLV → H.264 SEI → CEA-608 → text) and compared with the cues and the sound.

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
    let output = dir.path().join("talk.es.flv");
    let mut args = recipe::Args::parse(cli::Args::new([
        video.path.to_str().unwrap(),
        output.to_str().unwrap(),
        "--preset",
        "ultrafast",
    ]))
    .unwrap();
    args.translate = server_options(&server, "es");
    let cues = recipe::run(&args).unwrap();
    let texts: Vec<String> = cues.iter().map(|c| c.text.clone()).collect();
    assert_translations_of(&texts, &video);

    let flv = format!(
        "filesrc location={} ! flvdemux name=demux",
        output.display()
    );
    // Captions, as a player decodes them from the video stream.
    let captions = decode_text(&format!(
        "{flv} demux.video ! h264parse ! ccextractor name=extract extract.src ! fakesink sync=false async=false \
         extract.caption ! ccconverter ! closedcaption/x-cea-608,format=raw,field=0 \
         ! cea608tott ! text/x-raw"
    ));
    let caption_texts: Vec<String> = captions.iter().map(|c| c.text.trim().to_owned()).collect();
    let cue_texts: Vec<String> = texts.iter().map(|t| t.trim().to_owned()).collect();
    assert_eq!(caption_texts, cue_texts);

    // Pop-on captions appear once their characters have been sent (a fraction of a second after
    // the cue starts) and are cleared when it ends.
    for (caption, cue) in captions.iter().zip(&cues) {
        let (cue_start, cue_end) = (cue.start_ns as f64 / 1e9, cue.end_ns as f64 / 1e9);
        let shown = caption.pts.seconds_f64();
        let cleared = shown + caption.duration.seconds_f64();
        assert!(
            shown >= cue_start - 0.05 && shown <= cue_start + 0.6,
            "caption {:?} shown at {shown:.2} s for a cue at {cue_start:.2} s",
            caption.text
        );
        assert!(
            (cleared - cue_end).abs() < 0.3,
            "caption {:?} cleared at {cleared:.2} s for a cue ending at {cue_end:.2} s",
            caption.text
        );
    }

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
