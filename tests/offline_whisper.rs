//! `backend=local` with its default recogniser, Whisper, on real voices: a LibriVox recording
//! (from the pocketsphinx sdist `scripts/setup.sh` unpacks) into Spanish, French from eSpeak NG
//! into English speech, and noise that must give no cue. Checked on content and on the
//! element's own timing rules (files: placed by the engine's progress, not the machine's speed).

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// How long the element waits at end of stream for the last translation: only a bound for a
/// hang. Sessions share one Whisper worker, and on a 2-core machine running other builds a
/// decode takes seconds, so the default 10 s can pass while other tests' decodes are queued.
const DRAIN_MS: u32 = 60_000;

fn librivox(id: &str) -> PathBuf {
    let root = std::env::var_os("REALTIMETRANSLATE_OFFLINE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache/realtimetranslate")
        });
    let wav = root.join(format!(
        "librivox/sense_and_sensibility_01_austen_64kb-{id}.wav"
    ));
    assert!(wav.exists(), "{} (run scripts/setup.sh)", wav.display());
    wav
}

/// `input` with `lead` and `trail` seconds of silence; returns the file and the speech's length.
fn padded(dir: &Path, input: &Path, lead: f64, trail: f64) -> (PathBuf, f64) {
    let out = dir.join("padded.wav");
    let status = Command::new("sox")
        .arg(input)
        .args(["-r", "24000"])
        .arg(&out)
        .args(["pad", &lead.to_string(), &trail.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let output = Command::new("soxi").arg("-D").arg(input).output().unwrap();
    let length = String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .unwrap();
    (out, length)
}

fn pipeline(wav: &Path, properties: &str) -> String {
    format!(
        "filesrc location={} ! wavparse ! audioconvert ! audioresample ! \
         realtimetranslate name=t backend=local transcription-model=local subtitle-mode=cues \
         drain-timeout={DRAIN_MS} {properties} \
         t.src ! appsink name=audio sync=false \
         t.subtitle_src ! queue ! appsink name=text sync=false \
         t.source_subtitle_src ! queue ! appsink name=source sync=false",
        wav.display()
    )
}

/// LibriVox utterance 0880 (0.5 s of silence before, 2 s after) into `target`, without error;
/// also the utterance's length.
fn translate_librivox_0880(target: &str) -> (Captured, f64) {
    init();
    let dir = tempfile::tempdir().unwrap();
    let (wav, length) = padded(dir.path(), &librivox("0880"), 0.5, 2.0);
    let captured = run(
        &pipeline(&wav, &format!("target-language={target}")),
        Duration::from_secs(90),
    );
    assert!(captured.errors.is_empty(), "{:?}", captured.errors);
    (captured, length)
}

#[test]
fn a_real_recording_becomes_spanish_words_after_it_is_spoken() {
    let (captured, length) = translate_librivox_0880("es");
    let said: Vec<&str> = captured.cues.iter().map(|c| c.text.as_str()).collect();
    let heard: Vec<&str> = captured
        .source_cues
        .iter()
        .map(|c| c.text.as_str())
        .collect();
    eprintln!(
        "heard {heard:?}; said {said:?}; warnings {:?}",
        captured.warnings
    );
    // "he was not an ill disposed young man"
    assert!(heard.concat().starts_with("He was not an ill"), "{heard:?}");
    assert_eq!(said.len(), 1, "{said:?}");
    assert!(
        said[0].starts_with("No") && said[0].contains("hombre joven"),
        "{said:?}"
    );
    let origin = captured.first_pts();
    let start = (captured.cues[0].pts - origin).seconds_f64();
    assert!(
        (0.5..=0.5 + length + 1.5).contains(&start),
        "cue at {start:.2} s for speech from 0.5 to {:.2} s",
        0.5 + length
    );
    let samples = captured.samples();
    let from = (start * 24_000.0) as usize;
    let (first, last) = audible_span(&samples[from..]).expect("Spanish speech");
    assert!(
        (1.0..5.0).contains(&(last - first)),
        "{:.2} s",
        last - first
    );
}

/// Catalan is no target of the cloud protocol: the local engine's own list is what counts.
#[test]
fn a_real_recording_becomes_catalan() {
    let (captured, _) = translate_librivox_0880("ca");
    assert!(captured.warnings.is_empty(), "{:?}", captured.warnings);
    let said: String = captured.cues.iter().map(|c| c.text.as_str()).collect();
    assert!(said.contains("home jove"), "{said:?}");
}

#[test]
fn french_becomes_english_text_and_speech() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("french.wav");
    let status = Command::new("espeak-ng")
        .args(["-v", "fr", "-s", "130", "-w"])
        .arg(&raw)
        .arg("Je voudrais un café, s'il vous plaît.")
        .status()
        .unwrap();
    assert!(status.success());
    let (wav, _) = padded(dir.path(), &raw, 0.5, 2.0);
    let captured = run(
        &pipeline(&wav, "target-language=en source-language=fr"),
        Duration::from_secs(90),
    );
    assert!(captured.errors.is_empty(), "{:?}", captured.errors);
    let said: String = captured.cues.iter().map(|c| c.text.as_str()).collect();
    let heard: String = captured
        .source_cues
        .iter()
        .map(|c| c.text.as_str())
        .collect();
    eprintln!(
        "heard {heard:?}; said {said:?}; warnings {:?}",
        captured.warnings
    );
    assert!(heard.contains("voudrais"), "{heard:?}");
    assert!(said.to_lowercase().contains("coffee"), "{said:?}");
    let origin = captured.first_pts();
    let start = (captured.cues[0].pts - origin).seconds_f64();
    let samples = captured.samples();
    let spoken = &samples[(start * 24_000.0) as usize..];
    let (first, last) = audible_span(spoken).expect("English speech");
    assert!(
        (0.8..5.0).contains(&(last - first)),
        "{:.2} s",
        last - first
    );
    assert!(rms(spoken) > 300.0, "RMS {}", rms(spoken));
}

#[test]
fn noise_and_tones_give_no_cue() {
    init();
    let captured = run(
        "audiotestsrc wave=white-noise volume=0.3 num-buffers=400 samplesperbuffer=1200 ! \
         audio/x-raw,rate=24000 ! c.sink_0 \
         audiotestsrc wave=sine freq=1000 volume=0.3 num-buffers=400 samplesperbuffer=1200 ! \
         audio/x-raw,rate=24000 ! c.sink_1 \
         concat name=c ! audioconvert ! \
         realtimetranslate name=t backend=local transcription-model=local pacing=none drain-timeout=60000 \
         t.src ! fakesink t.subtitle_src ! queue ! appsink name=text sync=false \
         t.source_subtitle_src ! queue ! appsink name=source sync=false",
        Duration::from_secs(90),
    );
    assert!(captured.errors.is_empty(), "{:?}", captured.errors);
    assert!(captured.eos);
    assert!(captured.cues.is_empty(), "{:?}", captured.cues);
    assert!(
        captured.source_cues.is_empty(),
        "{:?}",
        captured.source_cues
    );
}
