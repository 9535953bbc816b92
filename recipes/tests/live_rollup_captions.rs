//! A live chain with no latency set by hand anywhere: a live picture and live speech fed in real
//! time → `realtimetranslate` (live text, the default) → `tttocea608` in roll-up mode →
//! `cccombiner` → `x264enc` → `flvmux` → a file. The pipeline's latency is only what its elements
//! report. Read back from the file, each translation's caption is on the frames where its
//! translated speech is heard: within 1 s of it.

mod common;

use common::*;
use gst::prelude::*;
use std::time::{Duration, Instant};

/// Bursts of 1 kHz (an utterance each for the test engine), then silence: (burst, pause) ms.
const BURSTS: [(u64, u64); 3] = [(1000, 1500), (1400, 1500), (800, 2500)];

fn speech() -> Vec<i16> {
    let mut samples = vec![0i16; 24 * 800];
    for (burst, pause) in BURSTS {
        samples.extend((0..burst * 24).map(|i| {
            (4000.0 * (2.0 * std::f64::consts::PI * 1000.0 * i as f64 / 24_000.0).sin()) as i16
        }));
        samples.extend(std::iter::repeat_n(0, (pause * 24) as usize));
    }
    samples
}

#[test]
fn roll_up_captions_in_a_live_chain_land_with_their_speech() {
    init();
    let server = utterance_server();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("live.flv");
    let pipeline = launch(&format!(
        "videotestsrc is-live=true pattern=black \
           ! video/x-raw,format=I420,width=320,height=240,framerate=30/1 \
           ! cccombiner name=captions ! x264enc tune=zerolatency speed-preset=ultrafast \
           key-int-max=30 ! h264parse ! queue ! flvmux name=mux ! filesink location={} \
         appsrc name=speech is-live=true format=time \
           caps=audio/x-raw,format=S16LE,rate=24000,channels=1,layout=interleaved \
           ! realtimetranslate name=t url={} api-key={KEY} \
         t.src ! audioconvert ! audioresample ! audio/x-raw,rate=48000,channels=2 \
           ! avenc_aac ! aacparse ! queue ! mux. \
         t.subtitle_src ! tttocea608 mode=roll-up2 ! closedcaption/x-cea-608,framerate=30/1 \
           ! ccconverter ! closedcaption/x-cea-708,format=cc_data,framerate=30/1 \
           ! captions.caption",
        file.display(),
        server.url(),
    ));
    let appsrc = pipeline
        .by_name("speech")
        .unwrap()
        .downcast::<gst_app::AppSrc>()
        .unwrap();
    appsrc.set_latency(gst::ClockTime::from_mseconds(20), gst::ClockTime::NONE);
    pipeline.set_state(gst::State::Playing).unwrap();
    let started = Instant::now();
    while appsrc.current_state() != gst::State::Playing {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "appsrc never plays"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    let clock = pipeline.clock().unwrap();
    let base = pipeline.base_time().unwrap();

    // Speech in real time, 20 ms at a time, each buffer pushed when its last sample is heard.
    let samples = speech();
    for (index, chunk) in samples.chunks(480).enumerate() {
        let start = gst::ClockTime::from_mseconds(index as u64 * 20);
        let end = start + gst::ClockTime::from_mseconds(20);
        let _ = clock.new_single_shot_id(base + end).wait();
        let mut buffer = gst::Buffer::from_mut_slice(
            chunk
                .iter()
                .flat_map(|s| s.to_le_bytes())
                .collect::<Vec<_>>(),
        );
        {
            let buffer = buffer.get_mut().unwrap();
            buffer.set_pts(start);
            buffer.set_duration(end - start);
        }
        appsrc.push_buffer(buffer).unwrap();
    }
    // Live sources end together: EOS to the pipeline reaches both.
    pipeline.send_event(gst::event::Eos::new());
    let bus = pipeline.bus().unwrap();
    let message = bus
        .timed_pop_filtered(
            gst::ClockTime::from_seconds(30),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        )
        .expect("the chain ends");
    assert_eq!(message.type_(), gst::MessageType::Eos, "{message:?}");
    pipeline.set_state(gst::State::Null).unwrap();
    if let Ok(keep) = std::env::var("KEEP_FLV") {
        std::fs::copy(&file, keep).unwrap();
    }

    let flv = format!("filesrc location={} ! flvdemux name=demux", file.display());
    let (audio_start, audio) = decode_audio(&format!("{flv} demux.audio ! aacparse ! avdec_aac"));
    let tones = translated_speech_spans(&audio, audio_start, BURSTS.len());
    let shown = caption_characters(&format!(
        "{flv} demux.video ! h264parse ! avdec_h264 ! ccextractor name=extract \
         extract.src ! fakesink sync=false async=false \
         extract.caption ! ccconverter ! closedcaption/x-cea-608,format=raw,field=0 \
         ! appsink name=audio sync=false async=false"
    ));
    let text: String = shown.iter().map(|(_, c)| *c).collect();
    println!("translated speech in the file: {tones:.2?}");
    println!("caption characters: {text:?}");
    for (index, (start, _)) in tones.iter().enumerate() {
        // Roll-up captions show each character as it is sent: the caption appears with the
        // first character of its words.
        let words = format!("Frase {}", index + 1);
        let at = text
            .find(&words)
            .unwrap_or_else(|| panic!("no caption shows {words:?}: {text:?}"));
        let at = text[..at].chars().count();
        let shown = shown[at].0;
        println!("{words:?} appears at {shown:.2} s, its speech starts at {start:.2} s");
        assert!(
            shown >= start - 0.2 && shown <= start + 1.0,
            "{words:?} appears at {shown:.2} s, its speech starts at {start:.2} s"
        );
    }
}

/// The printable characters of CEA-608 field 1 as they are sent, each with its frame's time,
/// control codes left out. (The captions are taken from decoded frames: FLV keeps times in whole
/// ms, and h264parse leaves frames whose PTS it cannot reconcile with that untimestamped, which
/// players accept but the caption converter does not.) The byte pairs are collected by the
/// shared runner's "audio" sink as 16-bit words.
fn caption_characters(description: &str) -> Vec<(f64, char)> {
    let captured = run(description, Duration::from_secs(60));
    assert!(captured.errors.is_empty(), "{:?}", captured.errors);
    let mut characters = Vec::new();
    for (pts, words) in &captured.audio {
        for word in words {
            let [a, b] = word.to_le_bytes().map(|byte| byte & 0x7f);
            if (0x10..0x20).contains(&a) {
                continue; // a control code (a pair)
            }
            for byte in [a, b] {
                if (0x20..0x7f).contains(&byte) {
                    characters.push((pts.seconds_f64(), byte as char));
                }
            }
        }
    }
    characters
}
