//! The API key stays secret: never in debug logs at the highest level, messages or errors; and a
//! missing key is reported before any connection, naming both ways to give one. These run the
//! test binary again as a child with its own environment (GST_DEBUG, OPENAI_API_KEY).

mod common;

use common::*;
use gst::prelude::*;
use std::process::Command;
use std::time::Duration;

const SECRET: &str = "sk-proj-THIS1SAVERYSECRETKEYdonotleak42";

fn run_child(
    test: &str,
    envs: &[(&str, &str)],
    remove: &[&str],
    log: &std::path::Path,
) -> std::process::ExitStatus {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args([
            "--exact",
            test,
            "--nocapture",
            "--include-ignored",
            "--test-threads=1",
        ])
        .env("RT_CHILD", "1");
    for (key, value) in envs {
        command.env(key, value);
    }
    for key in remove {
        command.env_remove(key);
    }
    command
        .stderr(std::fs::File::create(log).unwrap())
        .stdout(std::process::Stdio::null());
    command.status().unwrap()
}

fn is_child() -> bool {
    std::env::var_os("RT_CHILD").is_some()
}

#[test]
#[ignore = "run by key_never_appears_in_the_most_verbose_debug_output"]
fn child_translates_with_a_secret_key() {
    if !is_child() {
        return;
    }
    init();
    let mut config = realtimetranslate_server::ServerConfig::new(std::sync::Arc::new(
        realtimetranslate_server::engine::utterance::UtteranceEngineFactory::new(),
    ));
    config.required_api_key = Some(SECRET.into());
    let server = realtimetranslate_server::BackgroundServer::start(config).unwrap();
    // Once from OPENAI_API_KEY, once from the property, once wrong (an authentication error).
    for key in [None, Some(SECRET), Some("sk-wrong-but-also-secret")] {
        let pipeline = gst::parse::launch(&format!(
            "audiotestsrc num-buffers=20 ! realtimetranslate name=t pacing=none url={} ! fakesink",
            server.url()
        ))
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
        if let Some(key) = key {
            pipeline.by_name("t").unwrap().set_property("api-key", key);
        }
        let captured = run_pipeline(&pipeline, Duration::from_secs(10), |_, _| {});
        eprintln!(
            "child result: errors {:?} warnings {:?}",
            captured.errors, captured.warnings
        );
        assert_eq!(
            captured.errors.is_empty(),
            key != Some("sk-wrong-but-also-secret")
        );
    }
    assert_eq!(server.records().sessions().len(), 2);
}

#[test]
fn key_never_appears_in_the_most_verbose_debug_output() {
    if is_child() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("debug.log");
    let status = run_child(
        "child_translates_with_a_secret_key",
        &[
            ("OPENAI_API_KEY", SECRET),
            ("GST_DEBUG", "*:9"),
            ("GST_DEBUG_NO_COLOR", "1"),
        ],
        &[],
        &log,
    );
    let output = std::fs::read(&log).unwrap();
    let text = String::from_utf8_lossy(&output);
    assert!(
        status.success(),
        "child failed: {}",
        &text[text.len().saturating_sub(3000)..]
    );
    // The log is real and verbose: our element and the authentication failure are in it.
    assert!(
        text.contains("realtimetranslate"),
        "no debug output captured"
    );
    assert!(text.contains("Authentication failed"));
    assert!(
        output.len() > 1_000_000,
        "only {} bytes of debug output",
        output.len()
    );
    assert!(
        !text.contains("THIS1SAVERYSECRETKEY"),
        "the key leaked into the debug output"
    );
    assert!(
        !text.contains("sk-wrong-but-also-secret"),
        "the wrong key leaked into the debug output"
    );
}

#[test]
#[ignore = "run by missing_key_is_reported_before_any_connection"]
fn child_runs_without_a_key() {
    if !is_child() {
        return;
    }
    init();
    let server = utterance_server();
    let captured = run(
        &format!(
            "audiotestsrc num-buffers=20 ! realtimetranslate url={} ! fakesink",
            server.url()
        ),
        Duration::from_secs(5),
    );
    eprintln!("child result: {:?}", captured.errors);
    assert_eq!(captured.errors.len(), 1);
    let error = &captured.errors[0];
    assert!(
        error.contains("api-key") && error.contains("OPENAI_API_KEY"),
        "{error}"
    );
    assert!(server.records().sessions().is_empty());
}

#[test]
fn missing_key_is_reported_before_any_connection() {
    if is_child() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("child.log");
    let status = run_child("child_runs_without_a_key", &[], &["OPENAI_API_KEY"], &log);
    assert!(
        status.success(),
        "{}",
        std::fs::read_to_string(&log).unwrap()
    );
}
