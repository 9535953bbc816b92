//! The converter inside the real element: F32 input in the small, odd-sized buffers of JACK and
//! pro-audio periods, with a format change in the middle, reaches the engine as exactly the
//! input's duration at 24 kHz (the converter's own cases are in tests/convert_matrix.rs).

mod common;

use common::*;
use gst::prelude::*;
use std::time::Duration;

/// Buffer sizes in frames, in turn: odd, smaller and larger than the resampler's latency.
const SIZES: [usize; 12] = [1, 7, 33, 64, 127, 2, 480, 4801, 1, 3, 5, 32];
const TONE_HZ: f64 = 440.0;

fn caps(rate: u32, channels: u32) -> gst::Caps {
    gst_audio::AudioCapsBuilder::new_interleaved()
        .format(gst_audio::AudioFormat::F32le)
        .rate(rate as i32)
        .channels(channels as i32)
        .build()
}

/// Pushes `seconds` of a 0.5 full-scale tone at `rate` in buffers cycling through [`SIZES`],
/// timestamped from `start`; returns the frames pushed.
fn push_tone(
    appsrc: &gst_app::AppSrc,
    start: gst::ClockTime,
    rate: u32,
    channels: u32,
    seconds: f64,
) -> usize {
    let total = (seconds * f64::from(rate)) as usize;
    let mut n = 0;
    for size in SIZES.into_iter().cycle() {
        if n >= total {
            break;
        }
        let frames = size.min(total - n);
        let bytes: Vec<u8> = (n..n + frames)
            .flat_map(|i| {
                let t = i as f64 / f64::from(rate);
                let v = (0.5 * (2.0 * std::f64::consts::PI * TONE_HZ * t).sin()) as f32;
                std::iter::repeat_n(v.to_le_bytes(), channels as usize).flatten()
            })
            .collect();
        let at = |frame: usize| {
            start
                + gst::ClockTime::SECOND
                    .mul_div_floor(frame as u64, u64::from(rate))
                    .unwrap()
        };
        let mut buffer = gst::Buffer::from_mut_slice(bytes);
        {
            let buffer = buffer.get_mut().unwrap();
            buffer.set_pts(at(n));
            buffer.set_duration(at(n + frames) - at(n));
        }
        appsrc.push_buffer(buffer).unwrap();
        n += frames;
    }
    total
}

#[test]
fn odd_sized_f32_buffers_and_a_format_change_reach_the_engine_to_the_sample() {
    init();
    let server = echo_server();
    let pipeline = launch(&format!(
        "appsrc name=in format=time ! {} pacing=none t.src ! appsink name=audio sync=false",
        element(&server, "")
    ));
    let appsrc = pipeline
        .by_name("in")
        .unwrap()
        .downcast::<gst_app::AppSrc>()
        .unwrap();
    let mut frames = Vec::new();
    let captured = run_pipeline(&pipeline, Duration::from_secs(20), |_, _| {
        if !frames.is_empty() {
            return;
        }
        // 1 s of 44.1 kHz stereo, then new caps: 1 s of 8 kHz mono.
        appsrc.set_caps(Some(&caps(44_100, 2)));
        frames.push((
            44_100,
            push_tone(&appsrc, gst::ClockTime::ZERO, 44_100, 2, 1.0),
        ));
        appsrc.set_caps(Some(&caps(8_000, 1)));
        frames.push((
            8_000,
            push_tone(&appsrc, gst::ClockTime::SECOND, 8_000, 1, 1.0),
        ));
        appsrc.end_of_stream().unwrap();
    });
    assert!(captured.errors.is_empty(), "{:?}", captured.errors);
    assert!(captured.eos);
    assert!(
        server
            .records()
            .wait_for_ended_sessions(1, Duration::from_secs(5))
    );
    let session = &server.records().sessions()[0];
    let chunks: Vec<(usize, f64)> = session
        .events
        .iter()
        .filter_map(|e| Some((e.audio_samples?, e.audio_rms?)))
        .collect();
    // Each format's converter is drained before the next: ceil(frames × 24000 / rate) each.
    let expected: usize = frames
        .iter()
        .map(|&(rate, n)| (n * 24_000).div_ceil(rate))
        .sum();
    let sent: usize = chunks.iter().map(|(n, _)| n).sum();
    assert_eq!(sent, expected, "samples sent for 2 s of input");
    // The tone all through (RMS of a 0.5 full-scale sine ≈ 11,600), the format change included.
    for (k, (_, rms)) in chunks.iter().enumerate() {
        assert!(
            (10_000.0..13_000.0).contains(rms),
            "chunk {k} of {}: RMS {rms}",
            chunks.len()
        );
    }
    // The echo comes back on `src` over the input's whole timeline.
    assert!(
        captured.duration_seconds() >= 2.0 - 0.01,
        "{}",
        captured.duration_seconds()
    );
}
