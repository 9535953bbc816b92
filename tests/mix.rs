//! The original audio under the translation on `src`: ducked while translated speech plays, back
//! up after it, absent by default.

mod common;

use common::*;
use std::time::Duration;

/// 1 kHz "original" in 3 s cycles: 1 s loud (an utterance for the test engine), then 2 s quiet
/// (RMS 212, below the engine's voice threshold) during which its 440 Hz answer plays.
fn original(cycles: usize) -> Vec<i16> {
    (0..cycles * 72_000)
        .map(|i| {
            let amplitude = if i % 72_000 < 24_000 { 4000.0 } else { 300.0 };
            let phase = 2.0 * std::f64::consts::PI * 1000.0 * i as f64 / 24_000.0;
            (amplitude * phase.sin()) as i16
        })
        .collect()
}

fn translate(extra: &str) -> Captured {
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("original.wav");
    write_wav(&wav, 24_000, &original(2));
    let server = utterance_server();
    let captured = run(
        &format!(
            "filesrc location={} ! wavparse ! {} ! appsink name=audio sync=false",
            wav.display(),
            element(&server, extra)
        ),
        Duration::from_secs(30),
    );
    assert!(captured.errors.is_empty(), "{:?}", captured.errors);
    assert!(captured.eos);
    captured
}

/// 20 ms windows of the first cycle's quiet part where the 440 Hz answer plays: (start, end) s.
fn answer_span(samples: &[i16]) -> (f64, f64) {
    let windows: Vec<bool> = samples[..72_000]
        .chunks(480)
        .map(|w| tone_amplitude(w, 440.0) > 4000.0)
        .collect();
    let first = windows.iter().position(|&v| v).expect("translated tone");
    let last = windows.iter().rposition(|&v| v).unwrap();
    (first as f64 * 0.02, (last + 1) as f64 * 0.02)
}

fn level_1k(samples: &[i16], from: f64, to: f64) -> f64 {
    tone_amplitude(
        &samples[(from * 24_000.0) as usize..(to * 24_000.0) as usize],
        1000.0,
    )
}

#[test]
fn original_is_ducked_under_the_translation_and_comes_back() {
    init();
    let captured = translate("original-volume=0.8 duck-level=0.25");
    let samples = captured.samples();
    let (start, end) = answer_span(&samples);
    // The answer to the 1 s utterance: 1 s of tone in the quiet part, after the utterance ends.
    assert!(start > 1.0 && end < 3.0, "answer at {start:.2}–{end:.2} s");
    assert!(
        (end - start - 1.0).abs() < 0.1,
        "answer {start:.2}–{end:.2} s"
    );

    let quiet = 300.0;
    let before = level_1k(&samples, 1.02, start - 0.02);
    let during = level_1k(&samples, start + 0.1, end - 0.1);
    let after = level_1k(&samples, end + 0.3, 2.98);
    let loud = level_1k(&samples, 3.1, 3.9);
    assert!((before / quiet - 0.8).abs() < 0.05, "before: {before:.0}");
    assert!((during / quiet - 0.2).abs() < 0.04, "ducked: {during:.0}");
    assert!((after / quiet - 0.8).abs() < 0.05, "after: {after:.0}");
    assert!(
        (loud / 4000.0 - 0.8).abs() < 0.05,
        "loud original: {loud:.0}"
    );
    // Attack ~50 ms: well down 50–100 ms into the answer; release ~200 ms: most of the way
    // back 200–250 ms after it.
    // (50 ms windows hold whole periods of both the 1 kHz original and the 440 Hz answer, so the
    // answer does not leak into the measured level.)
    let attack = level_1k(&samples, start + 0.05, start + 0.1);
    assert!(attack / quiet < 0.35, "50 ms into the answer: {attack:.0}");
    let release = level_1k(&samples, end + 0.2, end + 0.25);
    assert!(
        release / quiet > 0.65,
        "200 ms after the answer: {release:.0}"
    );
    // The translation itself is not touched by the mix.
    let tone = tone_amplitude(
        &samples[(start * 24_000.0) as usize + 2400..(end * 24_000.0) as usize - 2400],
        440.0,
    );
    assert!((tone - 8000.0).abs() < 200.0, "translated tone {tone:.0}");
}

#[test]
fn default_output_is_translation_only() {
    init();
    let captured = translate("");
    let samples = captured.samples();
    let (start, end) = answer_span(&samples);
    assert!(end > start);
    for (from, to) in [(0.1, 0.9), (1.02, start - 0.02), (3.1, 3.9)] {
        let level = level_1k(&samples, from, to);
        assert!(level < 5.0, "original audible at {from}–{to} s: {level:.1}");
    }
}
