//! Captions caption tools accept: cue size and display time as configured, never zero-length,
//! an end-of-line event after each cue.

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
             t.src ! fakesink sync=false async=false \
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
    let captured = captions("subtitle-line-chars=10 subtitle-lines=1");
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
    let captured = captions("");
    let texts: Vec<&str> = captured.cues.iter().map(|c| c.text.as_str()).collect();
    assert_eq!(texts, ["Frase 1 de 600 ms.", "Frase 2 de 1000 ms."]);
    // Two lines of 12 characters: the sentence wraps at a space.
    let captured = captions("subtitle-line-chars=12");
    let texts: Vec<&str> = captured.cues.iter().map(|c| c.text.as_str()).collect();
    assert_eq!(texts, ["Frase 1 de\n600 ms.", "Frase 2 de\n1000 ms."]);
    // A cue lasts as long as its speech (the answer's tone), at least 1 s, not past the
    // display timeout after it.
    let second = &captured.cues[1];
    let seconds = second.duration.nseconds() as f64 / 1e9;
    assert!((1.0..=1.0 + 1.2 + 0.1).contains(&seconds), "{second:?}");
}
