//! A run that cannot work says why, exits with failure, and never shows the key.

use std::process::Command;

fn eval(args: &[&str], key: Option<&str>) -> (bool, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_realtimetranslate-eval"));
    command.args(args).env_remove("OPENAI_API_KEY");
    if let Some(key) = key {
        command.env("OPENAI_API_KEY", key);
    }
    let output = command.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

/// A short recording and its reference (a tone: the runs below fail before it matters).
fn input(dir: &std::path::Path) -> (String, String) {
    let pcm = rteval::audio::Pcm {
        rate: 16_000,
        origin_s: 0.0,
        samples: (0..16_000)
            .map(|i| ((i as f64 * 0.1).sin() * 8000.0) as i16)
            .collect(),
    };
    let wav = dir.join("talk.wav");
    std::fs::write(&wav, pcm.to_wav()).unwrap();
    let srt = dir.join("talk.es.srt");
    std::fs::write(&srt, "1\n00:00:00,000 --> 00:00:01,000\nHola.\n").unwrap();
    (wav.display().to_string(), srt.display().to_string())
}

#[test]
fn a_cloud_backend_without_a_key_names_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let (wav, srt) = input(dir.path());
    let out = dir.path().join("out");
    let (ok, text) = eval(
        &[
            "--input",
            &wav,
            "--reference",
            &srt,
            "--backend",
            "openai",
            "--fast",
            "--out",
            out.to_str().unwrap(),
        ],
        None,
    );
    assert!(!ok);
    assert!(text.contains("OPENAI_API_KEY"), "{text}");
    assert!(!out.join("report.json").exists());
}

#[test]
fn an_unreachable_engine_fails_after_the_attempts_without_showing_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let (wav, srt) = input(dir.path());
    // A port nothing listens on: bind one, then free it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("ws://127.0.0.1:{port}/v1/realtime/translations");
    let out = dir.path().join("out");
    let key = "sk-eval-test-key-0123456789";
    let (ok, text) = eval(
        &[
            "--input",
            &wav,
            "--reference",
            &srt,
            "--backend",
            "openai",
            "--url",
            &url,
            "--reconnect-attempts",
            "1",
            "--fast",
            "--out",
            out.to_str().unwrap(),
        ],
        Some(key),
    );
    assert!(!ok);
    assert!(
        text.contains("Cannot reach the translation service"),
        "{text}"
    );
    assert!(
        !text.contains(key) && !text.contains("0123456789"),
        "{text}"
    );
}

#[test]
fn a_bad_command_line_shows_the_usage() {
    let (ok, text) = eval(&["--input", "talk.wav"], None);
    assert!(!ok);
    assert!(
        text.contains("usage:") && text.contains("--reference"),
        "{text}"
    );
    let (ok, text) = eval(&["--frobnicate"], None);
    assert!(
        !ok && text.contains("unknown argument --frobnicate"),
        "{text}"
    );
}
