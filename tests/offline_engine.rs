//! `backend=local`: real English speech (flite) through the element and the offline engine,
//! checked on content and timing.

mod common;

use common::*;
use std::process::Command;
use std::time::Duration;

/// Two sentences, one after the other, with the pauses a speaker makes.
fn two_sentences(dir: &std::path::Path) -> (std::path::PathBuf, [(f64, f64); 2]) {
    let (first, first_len) = speech_wav(
        dir,
        "first",
        "The weather today is sunny and warm.",
        0.5,
        1.0,
    );
    let (second, second_len) = speech_wav(dir, "second", "I would like a cup of coffee.", 0.0, 2.5);
    let joined = dir.join("talk.wav");
    assert!(
        Command::new("sox")
            .arg(&first)
            .arg(&second)
            .arg(&joined)
            .status()
            .unwrap()
            .success()
    );
    let first_span = (0.5, 0.5 + first_len);
    let second_start = 0.5 + first_len + 1.0;
    (
        joined,
        [first_span, (second_start, second_start + second_len)],
    )
}

#[test]
fn english_speech_becomes_spanish_speech_and_subtitles_after_it_is_spoken() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let (wav, spans) = two_sentences(dir.path());
    let captured = run(
        &format!(
            "filesrc location={} ! wavparse ! audioconvert ! audioresample ! \
             realtimetranslate name=t backend=local target-language=es transcription-model=local \
             subtitle-mode=cues drain-timeout=60000 \
             t.src ! appsink name=audio sync=false \
             t.subtitle_src ! queue ! appsink name=text sync=false \
             t.source_subtitle_src ! queue ! appsink name=source sync=false",
            wav.display()
        ),
        Duration::from_secs(90),
    );
    assert!(captured.errors.is_empty(), "{:?}", captured.errors);
    assert!(captured.eos);

    let texts: Vec<&str> = captured.cues.iter().map(|c| c.text.as_str()).collect();
    assert_eq!(captured.cues.len(), 2, "{texts:?}");
    assert!(
        texts[0].starts_with("El tiempo hoy es soleado"),
        "{texts:?}"
    );
    assert!(texts[1].contains("taza de café"), "{texts:?}");
    let heard: Vec<&str> = captured
        .source_cues
        .iter()
        .map(|c| c.text.as_str())
        .collect();
    assert!(
        heard[0] == "The weather today is sunny and warm.",
        "{heard:?}"
    );

    let origin = captured.first_pts();
    let samples = captured.samples();
    for (cue, (spoken_start, spoken_end)) in captured.cues.iter().zip(spans) {
        let start = (cue.pts - origin).seconds_f64();
        let end = start + cue.duration.seconds_f64();
        // A file has no deadline: the element waits for the engine and places each translation
        // `latency` (200 ms) after the engine answered, measured in the engine's own progress, so
        // however slow the machine: never before its source, within 1.5 s of its end.
        assert!(
            start >= spoken_start,
            "{:?} at {start:.2} s before its speech started at {spoken_start:.2} s",
            cue.text
        );
        assert!(
            start <= spoken_end + 1.5,
            "{:?} at {start:.2} s, speech ended at {spoken_end:.2} s",
            cue.text
        );
        // The translated speech under the cue is speech: loud, of plausible length.
        let span =
            &samples[(start * 24_000.0) as usize..((end * 24_000.0) as usize).min(samples.len())];
        let (first, last) = audible_span(span).expect("speech under the cue");
        assert!(
            (1.0..5.0).contains(&(last - first)),
            "{:?}: {:.2} s of speech",
            cue.text,
            last - first
        );
        assert!(rms(span) > 800.0, "{:?}: RMS {}", cue.text, rms(span));
    }
    // Silence before the first translation: nothing is made up.
    let quiet_until = ((captured.cues[0].pts - origin).seconds_f64() * 24_000.0) as usize;
    assert!(rms(&samples[..quiet_until]) < 1.0);
}

#[test]
fn a_language_the_offline_engine_lacks_is_an_error_listing_the_ones_it_has() {
    init();
    let captured = run(
        "audiotestsrc num-buffers=50 wave=silence ! realtimetranslate backend=local target-language=de pacing=none ! fakesink",
        Duration::from_secs(30),
    );
    let error = captured.errors.join("\n");
    assert!(
        error.contains("'de'") && error.contains("es, ca, gl, eo, en"),
        "{error}"
    );
}

/// The README's main job: the example writes WAV, SRT and WebVTT and prints the translation.
#[test]
fn translate_file_example_writes_speech_and_subtitle_files() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let (wav, _) = speech_wav(dir.path(), "talk", "Thank you very much.", 0.5, 1.5);
    let example = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples/translate_file");
    let out = dir.path().join("result");
    let output = Command::new(&example)
        .arg(&wav)
        .arg("--out")
        .arg(&out)
        .output()
        .expect("example built by cargo test");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("Muchas gracias."), "{stdout}");
    let srt = std::fs::read_to_string(out.with_extension("srt")).unwrap();
    assert!(
        srt.starts_with("1\n00:00:0") && srt.contains(" --> ") && srt.contains("Muchas gracias."),
        "{srt}"
    );
    let vtt = std::fs::read_to_string(out.with_extension("vtt")).unwrap();
    assert!(
        vtt.starts_with("WEBVTT\n\n") && vtt.contains("Muchas gracias."),
        "{vtt}"
    );
    let wav_out = std::fs::metadata(out.with_extension("wav")).unwrap();
    assert!(wav_out.len() > 24_000 * 2, "{} bytes of WAV", wav_out.len());
}
