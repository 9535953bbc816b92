//! Running the `realtimetranslate-eval` program the way a user does, and reading what it wrote.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs the program with `args`; panics with its output if it fails; returns its stdout.
pub fn eval(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_realtimetranslate-eval"))
        .args(args)
        .output()
        .expect("the program runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "realtimetranslate-eval {args:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// The first `count` flite sentences as a recording with references, in `dir`; returns the
/// manifest line (recording, Spanish reference, English reference).
pub fn flite_set(dir: &Path, count: usize) -> String {
    eval(&[
        "flite-set",
        "--out",
        dir.to_str().unwrap(),
        "--count",
        &count.to_string(),
    ])
    .trim()
    .to_owned()
}

/// The LibriVox utterances `scripts/setup.sh` fetched (the sdist sha256-checked) into the
/// offline engine's directory (`scripts/setup-offline-models.sh`).
pub fn librivox_audio() -> PathBuf {
    let root = std::env::var_os("REALTIMETRANSLATE_OFFLINE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            std::env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| {
                    PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache")
                })
                .join("realtimetranslate")
        });
    let dir = root.join("librivox");
    assert!(
        dir.join("sense_and_sensibility_01_austen_64kb-0880.wav")
            .exists(),
        "{} has no LibriVox utterances: run scripts/setup.sh",
        dir.display()
    );
    dir
}

/// `eval/sets/…` in the repository.
pub fn reference_set(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("sets")
        .join(name)
}

pub fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("written")).expect("valid JSON")
}
