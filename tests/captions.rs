//! Captions caption tools accept: live pieces (the default) at their speech, whole words, at most
//! a line each; cues (`subtitle-mode=cues`) with size and display time as configured, never
//! zero-length.

mod common;

use common::*;
use std::time::Duration;

fn captions(extra: &str) -> Captured {
    init();
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("bursts.wav");
    write_wav(&wav, 24_000, &bursts(&[600, 1000]));
    let server = utterance_server();
    let captured = run(
        &format!(
            "filesrc location={} ! wavparse ! {} \
             t.src ! appsink name=audio sync=false \
             t.subtitle_src ! appsink name=text sync=false",
            wav.display(),
            element(&server, extra)
        ),
        Duration::from_secs(30),
    );
    assert!(captured.errors.is_empty(), "{:?}", captured.errors);
    assert!(captured.eos);
    captured
}

#[test]
fn cues_follow_the_configured_line_length_and_count() {
    // "Frase 1 de 600 ms." is 18 characters: on one line of at most 10 it takes several cues
    // (cut where the text fragments arrived), and none of the text is lost.
    let captured = captions("subtitle-mode=cues subtitle-line-chars=10 subtitle-lines=1");
    let texts: Vec<&str> = captured.cues.iter().map(|c| c.text.as_str()).collect();
    assert!(texts.len() >= 4, "{texts:?}");
    for text in &texts {
        assert!(
            !text.contains('\n') && text.chars().count() <= 10,
            "{texts:?}"
        );
    }
    assert_eq!(texts.join(" "), "Frase 1 de 600 ms. Frase 2 de 1000 ms.");
    for cue in &captured.cues {
        assert!(cue.duration >= gst::ClockTime::from_seconds(1), "{cue:?}");
    }
    // Cues never overlap.
    for pair in captured.cues.windows(2) {
        assert!(pair[0].pts + pair[0].duration <= pair[1].pts, "{pair:?}");
    }
}

#[test]
fn default_cues_hold_a_sentence_on_up_to_two_lines() {
    let captured = captions("subtitle-mode=cues");
    let texts: Vec<&str> = captured.cues.iter().map(|c| c.text.as_str()).collect();
    assert_eq!(texts, ["Frase 1 de 600 ms.", "Frase 2 de 1000 ms."]);
    // Two lines of 12 characters: the sentence wraps at a space.
    let captured = captions("subtitle-mode=cues subtitle-line-chars=12");
    let texts: Vec<&str> = captured.cues.iter().map(|c| c.text.as_str()).collect();
    assert_eq!(texts, ["Frase 1 de\n600 ms.", "Frase 2 de\n1000 ms."]);
    // A cue lasts as long as its speech (the answer's tone), at least 1 s, not past the
    // display timeout after it.
    let second = &captured.cues[1];
    let seconds = second.duration.nseconds() as f64 / 1e9;
    assert!((1.0..=1.0 + 1.2 + 0.1).contains(&seconds), "{second:?}");
}

#[test]
fn live_text_is_whole_words_at_the_translated_speech() {
    let captured = captions("");
    let texts: Vec<&str> = captured.cues.iter().map(|c| c.text.as_str()).collect();
    // Each fragment the engine sent, as whole words, no longer than a line.
    assert_eq!(texts, ["Frase 1", "de 600 ms.", "Frase 2", "de 1000 ms."]);
    // Both pieces of an answer sit where its translated speech starts.
    let samples = captured.samples();
    let first_pts = captured.first_pts();
    for (index, pair) in captured.cues.chunks(2).enumerate() {
        assert_eq!(pair[0].pts, pair[1].pts, "{pair:?}");
        let at = (pair[0].pts - first_pts).nseconds() as usize * 24_000 / 1_000_000_000;
        let speech = samples[at..]
            .iter()
            .take(2400)
            .filter(|s| s.unsigned_abs() > 1000)
            .count();
        assert!(
            speech > 1000,
            "answer {index}: no speech at its caption {pair:?}"
        );
        let before = samples[at.saturating_sub(2400)..at]
            .iter()
            .filter(|s| s.unsigned_abs() > 1000)
            .count();
        assert!(
            before < 100,
            "answer {index}: the caption comes after its speech started"
        );
    }
    let captured = captions("subtitle-line-chars=10");
    assert!(
        captured.cues.iter().all(|c| c.text.chars().count() <= 10),
        "{:?}",
        captured.cues
    );
    let words: Vec<&str> = captured
        .cues
        .iter()
        .flat_map(|c| c.text.split_whitespace())
        .collect();
    assert_eq!(words.join(" "), "Frase 1 de 600 ms. Frase 2 de 1000 ms.");
}
