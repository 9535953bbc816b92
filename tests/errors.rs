//! Errors a user must understand: bad key, bad language, unreachable or refusing service.

mod common;

use common::*;
use futures_util::{SinkExt, StreamExt};
use gst::prelude::*;
use std::time::{Duration, Instant};

/// Exactly one error, containing every one of `needles`; returns it.
fn single_error<'a>(captured: &'a Captured, needles: &[&str]) -> &'a str {
    assert_eq!(captured.errors.len(), 1, "{:?}", captured.errors);
    let error = &captured.errors[0];
    for needle in needles {
        assert!(error.contains(needle), "{needle:?} missing from {error}");
    }
    error
}

fn tone_pipeline(element: &str) -> String {
    format!("audiotestsrc is-live=true ! audio/x-raw,rate=48000,channels=2 ! {element} ! fakesink")
}

#[test]
fn wrong_key_is_an_authentication_error() {
    init();
    let server = utterance_server();
    let started = Instant::now();
    let captured = run(
        &tone_pipeline(&format!(
            "realtimetranslate url={} api-key=wrong-key",
            server.url()
        )),
        Duration::from_secs(10),
    );
    let error = single_error(&captured, &["Authentication failed", "401"]);
    assert!(!error.contains("wrong-key"));
    assert!(started.elapsed() < Duration::from_secs(5));
}

/// A service that accepts the connection, then reports `invalid_api_key` and closes with
/// `invalid_request_error.invalid_api_key`, as `/v1/realtime` does.
#[test]
fn invalid_api_key_event_is_fatal_and_not_retried() {
    init();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    listener.set_nonblocking(true).unwrap();
    let connections = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = connections.clone();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.spawn(async move {
        let listener = tokio::net::TcpListener::from_std(listener).unwrap();
        while let Ok((stream, _)) = listener.accept().await {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::spawn(async move {
                let mut ws = tokio_tungstenite::accept_async(stream).await.unwrap();
                let error = r#"{"type":"error","event_id":"ev_1","error":{"type":"invalid_request_error","code":"invalid_api_key","message":"Incorrect API key provided."}}"#;
                let _ = ws.send(tokio_tungstenite::tungstenite::Message::text(error)).await;
                let _ = ws.next().await;
            });
        }
    });
    let captured = run(
        &tone_pipeline(&format!(
            "realtimetranslate url=ws://{address}/v1/realtime/translations api-key=sk-abc"
        )),
        Duration::from_secs(10),
    );
    single_error(&captured, &["Authentication failed", "invalid_api_key"]);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        connections.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "no retry after an auth failure"
    );
}

#[test]
fn invalid_target_language_fails_before_connecting_and_lists_valid_codes() {
    init();
    let server = utterance_server();
    let captured = run(
        &tone_pipeline(&element(&server, "target-language=pt-BR")),
        Duration::from_secs(5),
    );
    let error = single_error(&captured, &["pt-BR"]);
    for code in [
        "es", "pt", "fr", "ja", "ru", "zh", "de", "ko", "hi", "id", "vi", "it", "en",
    ] {
        assert!(
            error.contains(&format!(" {code}")),
            "{code} missing from {error}"
        );
    }
    assert!(
        server.records().sessions().is_empty(),
        "no connection for bad settings"
    );
}

#[test]
fn invalid_language_while_playing_is_refused_with_a_warning() {
    init();
    let server = utterance_server();
    let pipeline = gst::parse::launch(&tone_pipeline(&element(&server, "")))
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
    let captured = run_changing_language(
        &pipeline,
        Duration::from_secs(2),
        Duration::from_millis(500),
        "klingon",
    );
    assert!(captured.errors.is_empty(), "{:?}", captured.errors);
    assert!(
        captured
            .warnings
            .iter()
            .any(|w| w.contains("klingon") && w.contains(" es,")),
        "{:?}",
        captured.warnings
    );
    assert_eq!(
        pipeline
            .by_name("t")
            .unwrap()
            .property::<String>("target-language"),
        "es"
    );
}

/// With a limit on attempts, an unreachable service ends in one clear error after the retries
/// (each announced on the bus); without one (the default) the element keeps trying.
#[test]
fn unreachable_server_is_a_clear_error_after_the_allowed_retries() {
    init();
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let started = Instant::now();
    let captured = run(
        &tone_pipeline(&format!(
            "realtimetranslate url=ws://127.0.0.1:{port}/v1/realtime/translations api-key=k \
             reconnect-attempts=2"
        )),
        Duration::from_secs(10),
    );
    single_error(
        &captured,
        &["Cannot reach the translation service", "refused"],
    );
    let attempts: Vec<u32> = captured
        .connection_messages("reconnecting")
        .iter()
        .map(|m| m.get::<u32>("attempt").unwrap())
        .collect();
    assert_eq!(attempts, [1, 2]);
    // Back-off: 0.25–0.5 s, then 0.5–1 s.
    assert!(started.elapsed() >= Duration::from_millis(750));
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn a_url_that_is_not_a_websocket_is_refused_up_front() {
    init();
    let captured = run(
        &tone_pipeline("realtimetranslate url=https://example.invalid api-key=k"),
        Duration::from_secs(5),
    );
    single_error(&captured, &["wss://"]);
}
