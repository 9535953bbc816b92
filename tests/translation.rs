//! Real speech through real pipelines against the local server: content, timing, protocol.

mod common;

use common::*;
use gst::prelude::*;
use std::time::Duration;

const F32_STEREO_48K: &str =
    "audioconvert ! audioresample ! audio/x-raw,format=F32LE,rate=48000,channels=2";

/// 48 kHz stereo F32 speech in: the output covers the input, the translation follows the speech,
/// captions are timed after it, and the server saw a faithful protocol exchange.
#[test]
fn speech_is_translated_after_it_is_heard_and_output_covers_the_input() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let (wav, speech) = speech_wav(
        dir.path(),
        "talk",
        "The weather today is sunny and warm.",
        0.5,
        3.5,
    );
    let input_seconds = 0.5 + speech + 3.5;
    let server = utterance_server();
    let captured = run(
        &format!(
            "filesrc location={} ! wavparse ! {F32_STEREO_48K} ! {} transcription-model=gpt-realtime-whisper \
             t.src ! appsink name=audio sync=false \
             t.subtitle_src ! queue ! appsink name=text sync=false \
             t.source_subtitle_src ! queue ! appsink name=source sync=false",
            wav.display(),
            element(&server, "subtitle-mode=cues")
        ),
        Duration::from_secs(60),
    );
    assert!(captured.errors.is_empty(), "{:?}", captured.errors);
    assert!(captured.eos);

    // The output is a continuous stream covering the input's whole span, within one 200 ms chunk.
    let out_seconds = captured.duration_seconds();
    assert!(
        (out_seconds - input_seconds).abs() <= 0.2,
        "output {out_seconds:.3} s for input {input_seconds:.3} s"
    );
    let mut expected_pts = captured.first_pts();
    for (pts, samples) in &captured.audio {
        let drift = pts.nseconds().abs_diff(expected_pts.nseconds());
        assert!(
            drift <= 50_000,
            "discontinuous output at {pts} (expected {expected_pts})"
        );
        expected_pts =
            *pts + gst::ClockTime::from_nseconds(samples.len() as u64 * 1_000_000_000 / 24_000);
    }

    // The stand-in interpreter answers with a 440 Hz tone as long as the utterance, after it ends.
    let samples = captured.samples();
    let (start, end) = audible_span(&samples).expect("translated audio in the output");
    let speech_end = 0.5 + speech - 0.15;
    assert!(
        start >= speech_end,
        "translation at {start:.2} s starts before the speech ends at {speech_end:.2} s"
    );
    assert!(
        start <= speech_end + 1.5,
        "translation at {start:.2} s is too late"
    );
    let tone = end - start;
    assert!(
        (tone - speech).abs() < 0.5,
        "translated audio lasts {tone:.2} s for {speech:.2} s of speech"
    );

    // Subtitles: the two fragments joined as they came, after the speech, never zero-length.
    assert_eq!(captured.cues.len(), 1, "{:?}", captured.cues);
    let cue = &captured.cues[0];
    let spoken_ms: f64 = cue
        .text
        .strip_prefix("Frase 1 de ")
        .and_then(|t| t.strip_suffix(" ms."))
        .unwrap_or_else(|| panic!("unexpected subtitle {:?}", cue.text))
        .parse()
        .unwrap();
    assert!((spoken_ms / 1000.0 - speech).abs() < 0.5);
    let cue_start = (cue.pts - captured.first_pts()).seconds_f64();
    assert!(
        cue_start >= speech_end && (cue_start - start).abs() < 0.1,
        "cue at {cue_start:.2} s, speech at {start:.2} s"
    );
    assert!(
        (cue.duration.seconds_f64() - tone).abs() < 0.1,
        "cue lasts {}",
        cue.duration
    );
    // The ear-voice span, as an operator sees it: one utterance message, from where the speech
    // started (flite's file starts 0.5 s in, its voice a little later) to where its translation
    // and caption start.
    let utterances: Vec<&gst::Structure> = captured
        .messages
        .iter()
        .map(|(_, m)| m)
        .filter(|m| m.name() == "realtimetranslate/utterance")
        .collect();
    assert_eq!(utterances.len(), 1, "{utterances:?}");
    let seconds = |field: &str| {
        (utterances[0].get::<gst::ClockTime>(field).unwrap() - captured.first_pts()).seconds_f64()
    };
    let onset = seconds("source-onset");
    assert!((0.5..0.9).contains(&onset), "speech onset at {onset:.2} s");
    assert!((seconds("translation-onset") - start).abs() < 0.05);
    assert!((seconds("caption-onset") - cue_start).abs() < 0.05);
    let span = utterances[0]
        .get::<gst::ClockTime>("ear-voice-span")
        .unwrap();
    assert!(
        (span.seconds_f64() - (start - onset)).abs() < 0.05,
        "{span}"
    );

    assert_eq!(captured.source_cues.len(), 1);
    assert!(
        captured.source_cues[0].text.starts_with("utterance 1 of "),
        "{:?}",
        captured.source_cues
    );

    // The server saw a faithful exchange.
    assert!(
        server
            .records()
            .wait_for_ended_sessions(1, Duration::from_secs(5))
    );
    let sessions = server.records().sessions();
    assert_eq!(sessions.len(), 1);
    let session = &sessions[0];
    assert!(
        session.schema_errors.is_empty(),
        "{:?}",
        session.schema_errors
    );
    assert!(!session.beta_header);
    assert_eq!(
        session.authorization.as_deref(),
        Some(&*format!("Bearer {KEY}"))
    );
    assert_eq!(
        session.path_and_query,
        "/v1/realtime/translations?model=gpt-realtime-translate"
    );
    let kinds: Vec<&str> = session.events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds.first(), Some(&"session.update"));
    assert_eq!(kinds.last(), Some(&"session.close"));
    let update = &session.events[0].json["session"]["audio"];
    assert_eq!(update["output"]["language"], "es");
    assert_eq!(
        update["input"]["transcription"]["model"],
        "gpt-realtime-whisper"
    );
    let appends: Vec<usize> = session
        .events
        .iter()
        .filter_map(|e| e.audio_samples)
        .collect();
    assert!(
        appends[..appends.len() - 1].iter().all(|&n| n == 4800),
        "{appends:?}"
    );
    let sent = appends.iter().sum::<usize>() as f64 / 24_000.0;
    assert!(
        (sent - input_seconds).abs() < 0.05,
        "sent {sent:.3} s of {input_seconds:.3} s"
    );
    assert_eq!(session.closed_with, Some(1000));
    assert!(session.sent_session_closed);
}

/// Gaps in the input (a timestamp jump and a GAP event) reach the engine as silence, so its
/// timeline stays the pipeline's.
#[test]
fn input_gaps_are_sent_as_silence() {
    init();
    let server = utterance_server();
    let pipeline = gst::parse::launch(&format!(
        "appsrc name=in format=time caps=audio/x-raw,format=S16LE,rate=48000,channels=1,layout=interleaved \
         ! {} pacing=none t.src ! appsink name=audio sync=false",
        element(&server, "")
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let appsrc = pipeline
        .by_name("in")
        .unwrap()
        .downcast::<gst_app::AppSrc>()
        .unwrap();
    let tone = |seconds: u64| -> gst::Buffer {
        let samples: Vec<u8> = (0..48_000 * seconds)
            .flat_map(|i| ((6000.0 * (i as f64 * 0.05).sin()) as i16).to_le_bytes())
            .collect();
        gst::Buffer::from_mut_slice(samples)
    };
    let mut pushed = false;
    let captured = run_pipeline(&pipeline, Duration::from_secs(30), |_, _| {
        if std::mem::replace(&mut pushed, true) {
            return;
        }
        let at = |s: u64, mut b: gst::Buffer| {
            b.get_mut()
                .unwrap()
                .set_pts(gst::ClockTime::from_seconds(s));
            b
        };
        // 0–1 s tone, 1–2 s nothing (timestamp jump), 2–3 s tone, 3–4 s GAP event, 4–5 s tone.
        appsrc.push_buffer(at(0, tone(1))).unwrap();
        let mut jumped = at(2, tone(1));
        jumped
            .get_mut()
            .unwrap()
            .set_flags(gst::BufferFlags::DISCONT);
        appsrc.push_buffer(jumped).unwrap();
        appsrc.send_event(
            gst::event::Gap::builder(gst::ClockTime::from_seconds(3))
                .duration(gst::ClockTime::SECOND)
                .build(),
        );
        appsrc.push_buffer(at(4, tone(1))).unwrap();
        appsrc.end_of_stream().unwrap();
    });
    assert!(captured.errors.is_empty(), "{:?}", captured.errors);
    assert!(
        server
            .records()
            .wait_for_ended_sessions(1, Duration::from_secs(5))
    );
    let session = &server.records().sessions()[0];
    let audio: Vec<(usize, f64)> = session
        .events
        .iter()
        .filter_map(|e| Some((e.audio_samples?, e.audio_rms?)))
        .collect();
    let total: usize = audio.iter().map(|(n, _)| n).sum();
    assert!(
        total.abs_diff(5 * 24_000) <= 480,
        "sent {total} samples for 5 s"
    );
    // Chunk k covers [k·0.2, (k+1)·0.2) s: chunks wholly inside the two gaps are silent, the
    // others carry the tone.
    for (k, (_, level)) in audio.iter().enumerate().take(25) {
        let t = k as f64 * 0.2;
        let in_gap = (1.0..1.95).contains(&t) || (3.0..3.95).contains(&t);
        if in_gap {
            assert!(
                *level < 10.0,
                "chunk at {t:.1} s should be silence, RMS {level}"
            );
        } else {
            assert!(
                *level > 1000.0,
                "chunk at {t:.1} s should be tone, RMS {level}"
            );
        }
    }
    // The output still covers the whole 5 s.
    assert!(
        captured.duration_seconds() >= 5.0 - 0.01,
        "{}",
        captured.duration_seconds()
    );
}

/// `target-language` changed while playing reaches the service as a new `session.update`, and
/// the output pads are relabelled.
#[test]
fn target_language_change_while_playing_updates_the_session() {
    init();
    let server = utterance_server();
    let pipeline = gst::parse::launch(&format!(
        "audiotestsrc is-live=true wave=silence ! audio/x-raw,rate=16000 ! {} ! fakesink t.subtitle_src ! fakesink async=false",
        element(&server, "")
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let translate = pipeline.by_name("t").unwrap();
    let tags = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    {
        let tags = tags.clone();
        translate.static_pad("src").unwrap().add_probe(
            gst::PadProbeType::EVENT_DOWNSTREAM,
            move |_, info| {
                if let Some(gst::PadProbeData::Event(event)) = &info.data
                    && let gst::EventView::Tag(tag) = event.view()
                    && let Some(code) = tag.tag().get::<gst::tags::LanguageCode>()
                {
                    tags.lock().unwrap().push(code.get().to_string());
                }
                gst::PadProbeReturn::Ok
            },
        );
    }
    let captured = run_changing_language(
        &pipeline,
        Duration::from_secs(3),
        Duration::from_secs(1),
        "fr",
    );
    assert!(captured.errors.is_empty(), "{:?}", captured.errors);
    let session = &server.records().sessions()[0];
    let languages: Vec<String> = session
        .events
        .iter()
        .filter(|e| e.kind == "session.update")
        .map(|e| {
            e.json["session"]["audio"]["output"]["language"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(languages, ["es", "fr"]);
    assert!(session.schema_errors.is_empty());
    assert_eq!(*tags.lock().unwrap(), ["es", "fr"]);
    assert_eq!(translate.property::<String>("target-language"), "fr");
}
