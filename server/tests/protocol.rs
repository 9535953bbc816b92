//! Handshake and event validation against a real socket (`docs/protocol/translation.md`).

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use futures_util::SinkExt;
use realtimetranslate_server::ServerConfig;
use realtimetranslate_server::engine::echo::EchoEngineFactory;
use realtimetranslate_server::engine::{Engine, EngineFactory};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

fn echo() -> Arc<dyn EngineFactory> {
    Arc::new(EchoEngineFactory::new())
}

/// An engine that only translates into Spanish, to test the engine-support check.
struct SpanishOnly;

impl EngineFactory for SpanishOnly {
    fn name(&self) -> &'static str {
        "spanish-only"
    }
    fn supported_languages(&self) -> Vec<&'static str> {
        vec!["es"]
    }
    fn create(&self, lang: &str, transcribe: bool) -> Result<Box<dyn Engine>, String> {
        EchoEngineFactory.create(lang, transcribe)
    }
}

/// An engine whose creation always fails.
struct Broken;

impl EngineFactory for Broken {
    fn name(&self) -> &'static str {
        "broken"
    }
    fn supported_languages(&self) -> Vec<&'static str> {
        vec!["es", "en"]
    }
    fn create(&self, _: &str, _: bool) -> Result<Box<dyn Engine>, String> {
        Err("no models installed".into())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_created_comes_first() {
    let srv = start_with(echo()).await;
    let mut c = connect(&srv.model_url(), &[]).await.unwrap();
    let v = c.expect("session.created").await;
    assert_eq!(v["event_id"], "ev_1");
    let s = &v["session"];
    assert_eq!(s["id"], "sess_1");
    assert_eq!(s["type"], "translation");
    assert_eq!(s["model"], MODEL);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let exp = s["expires_at"].as_u64().unwrap();
    assert!(exp >= now + 3590 && exp <= now + 3610, "{exp} vs {now}");
    assert_eq!(
        s["audio"],
        json!({"input": {"noise_reduction": null, "transcription": null}, "output": {"language": "en"}})
    );
    c.finish().await;
    assert!(
        srv.records
            .wait_for_ended_sessions_async(1, Duration::from_secs(5))
            .await
    );
    let r = &srv.records.sessions()[0];
    assert_eq!(
        r.path_and_query,
        format!("/v1/realtime/translations?model={MODEL}")
    );
    assert_eq!(r.closed_with, Some(1000));
    assert!(r.sent_session_closed && r.ended && r.schema_errors.is_empty());
    assert_eq!(r.events.len(), 1);
    assert_eq!(r.events[0].kind, "session.close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_answers_with_merged_config() {
    let srv = start_with(echo()).await;
    let mut c = connect(&srv.model_url(), &[]).await.unwrap();
    c.expect("session.created").await;
    c.send_json(json!({"type": "session.update", "event_id": "u1", "session": {"audio": {
        "input": {"transcription": {"model": "gpt-realtime-whisper"}, "noise_reduction": {"type": "near_field"}},
        "output": {"language": "es"}}}}))
        .await;
    let v = c.expect("session.updated").await;
    assert_eq!(v["session"]["id"], "sess_1");
    assert_eq!(v["session"]["type"], "translation");
    assert_eq!(
        v["session"]["audio"],
        json!({"input": {"noise_reduction": {"type": "near_field", "strength": 1.0},
                         "transcription": {"model": "gpt-realtime-whisper"}},
               "output": {"language": "es"}})
    );
    // A partial update keeps the rest.
    c.send_json(
        json!({"type": "session.update", "session": {"audio": {"output": {"language": "fr"}}}}),
    )
    .await;
    let v = c.expect("session.updated").await;
    assert_eq!(v["session"]["audio"]["output"]["language"], "fr");
    assert_eq!(
        v["session"]["audio"]["input"]["transcription"]["model"],
        "gpt-realtime-whisper"
    );
    // Explicit nulls disable.
    c.send_json(
        json!({"type": "session.update", "session": {"audio": {"input": {
        "transcription": null, "noise_reduction": {"type": "far_field", "strength": 0.25}}}}}),
    )
    .await;
    let v = c.expect("session.updated").await;
    assert_eq!(
        v["session"]["audio"]["input"],
        json!({"transcription": null, "noise_reduction": {"type": "far_field", "strength": 0.25}})
    );
    c.send_json(json!({"type": "session.update", "session": {}}))
        .await;
    c.expect("session.updated").await;
    c.finish().await;
    assert!(srv.records.sessions()[0].schema_errors.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_language_is_invalid_value_and_config_unchanged() {
    let srv = start_with(echo()).await;
    let mut c = connect(&srv.model_url(), &[]).await.unwrap();
    c.expect("session.created").await;
    c.update("de", false).await;
    c.expect("session.updated").await;
    for bad in ["pt-BR", "zh_CN", "xx"] {
        c.send_json(
            json!({"type": "session.update", "event_id": "bad", "session": {"audio": {
            "input": {"transcription": {"model": "m"}}, "output": {"language": bad}}}}),
        )
        .await;
        let e = c.expect("error").await;
        assert_eq!(e["error"]["type"], "invalid_request_error");
        assert_eq!(e["error"]["code"], "invalid_value");
        assert_eq!(e["error"]["param"], "session.audio.output.language");
        assert_eq!(e["error"]["event_id"], "bad");
        let msg = e["error"]["message"].as_str().unwrap();
        for code in [
            "es", "pt", "fr", "ja", "ru", "zh", "de", "ko", "hi", "id", "vi", "it", "en",
        ] {
            assert!(msg.contains(&format!("'{code}'")), "{msg}");
        }
    }
    c.send_json(json!({"type": "session.update", "session": {}}))
        .await;
    let v = c.expect("session.updated").await;
    assert_eq!(v["session"]["audio"]["output"]["language"], "de");
    assert_eq!(v["session"]["audio"]["input"]["transcription"], Value::Null);
    c.finish().await;
    assert_eq!(srv.records.sessions()[0].schema_errors.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn language_the_engine_lacks_names_its_languages() {
    let srv = start_with(Arc::new(SpanishOnly)).await;
    let mut c = connect(&srv.model_url(), &[]).await.unwrap();
    c.expect("session.created").await;
    c.update("ja", false).await;
    let e = c.expect("error").await;
    assert_eq!(e["error"]["code"], "invalid_value");
    assert_eq!(e["error"]["param"], "session.audio.output.language");
    let msg = e["error"]["message"].as_str().unwrap();
    assert!(msg.contains("spanish-only") && msg.contains("es"), "{msg}");
    c.update("es", false).await;
    let v = c.expect("session.updated").await;
    assert_eq!(v["session"]["audio"]["output"]["language"], "es");
    c.finish().await;
    // A server limitation, not a client schema error.
    assert!(srv.records.sessions()[0].schema_errors.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_creation_failure_is_a_server_error() {
    let srv = start_with(Arc::new(Broken)).await;
    let mut c = connect(&srv.model_url(), &[]).await.unwrap();
    c.expect("session.created").await;
    c.update("es", false).await;
    c.expect("session.updated").await;
    let e = c.expect("error").await;
    assert_eq!(e["error"]["type"], "server_error");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no models installed")
    );
    c.append(&[0; 4800]).await;
    let events = c.finish().await;
    assert_eq!(events.len(), 1, "{events:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_audio_is_invalid_value_and_session_continues() {
    let srv = start_with(echo()).await;
    let mut c = connect(&srv.model_url(), &[]).await.unwrap();
    c.expect("session.created").await;
    c.send_json(json!({"type": "session.input_audio_buffer.append", "event_id": "a1", "audio": "not base64!"}))
        .await;
    let e = c.expect("error").await;
    assert_eq!(e["error"]["code"], "invalid_value");
    assert_eq!(e["error"]["param"], "audio");
    assert_eq!(e["error"]["event_id"], "a1");
    // Three bytes: not PCM16.
    c.send_json(json!({"type": "session.input_audio_buffer.append", "audio": "AAEC"}))
        .await;
    let e = c.expect("error").await;
    assert_eq!(e["error"]["code"], "invalid_value");
    c.append(&[5, -5, 5, -5]).await;
    let v = c.expect("session.output_audio.delta").await;
    assert_eq!(unb64(v["delta"].as_str().unwrap()), vec![5, -5, 5, -5]);
    c.finish().await;
    let r = &srv.records.sessions()[0];
    assert_eq!(r.schema_errors.len(), 2, "{:?}", r.schema_errors);
    assert_eq!(r.events.len(), 4);
    assert_eq!(r.events[2].audio_samples, Some(4));
    assert_eq!(r.events[2].audio_rms, Some(5.0));
    assert_eq!(r.events[2].json["audio"], "<8 bytes>");
    assert_eq!(r.events[0].audio_samples, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_violations_are_invalid_event() {
    let srv = start_with(echo()).await;
    let mut c = connect(&srv.model_url(), &[]).await.unwrap();
    c.expect("session.created").await;
    let cases: Vec<(String, Option<&str>)> = vec![
        (json!({"type": "response.create"}).to_string(), Some("type")),
        (json!({"type": "input_audio_buffer.append", "audio": ""}).to_string(), Some("type")),
        (json!({"type": "session.close", "reason": "x"}).to_string(), Some("reason")),
        (
            json!({"type": "session.update", "session": {"audio": {"output": {"language": "es", "voice": "alloy"}}}})
                .to_string(),
            Some("session.audio.output.voice"),
        ),
        (
            json!({"type": "session.update", "session": {"type": "realtime"}}).to_string(),
            Some("session.type"),
        ),
        (
            json!({"type": "session.update", "session": {"audio": {"input": {"format": "pcm16"}}}}).to_string(),
            Some("session.audio.input.format"),
        ),
        (
            json!({"type": "session.update", "session": {"audio": {"input": {"transcription": {"model": 1}}}}})
                .to_string(),
            Some("session.audio.input.transcription.model"),
        ),
        (
            json!({"type": "session.update", "session": {"audio": {"output": {"language": 7}}}}).to_string(),
            Some("session.audio.output.language"),
        ),
        (json!({"type": "session.close", "event_id": 42}).to_string(), Some("event_id")),
        (json!({"type": "session.close", "event_id": "x".repeat(513)}).to_string(), Some("event_id")),
        (json!({"type": "session.input_audio_buffer.append"}).to_string(), Some("audio")),
        (json!({"type": "session.update"}).to_string(), Some("session")),
        ("{not json".to_string(), None),
        ("[]".to_string(), None),
    ];
    for (text, param) in &cases {
        c.send_text(text).await;
        let e = c.expect("error").await;
        assert_eq!(e["error"]["code"], "invalid_event", "{text}: {e}");
        assert_eq!(e["error"]["type"], "invalid_request_error");
        assert_eq!(e["error"]["param"].as_str(), *param, "{text}: {e}");
    }
    // Still open and well.
    c.update("es", false).await;
    c.expect("session.updated").await;
    c.finish().await;
    let r = &srv.records.sessions()[0];
    assert_eq!(r.schema_errors.len(), cases.len(), "{:?}", r.schema_errors);
    assert_eq!(r.events[0].kind, "response.create");
    assert_eq!(r.events[12].kind, "<not json>");
    assert_eq!(r.events[13].kind, "<no type>");
    assert_eq!(r.events.len(), cases.len() + 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_frames_holding_json_are_accepted() {
    let srv = start_with(echo()).await;
    let mut c = connect(&srv.model_url(), &[]).await.unwrap();
    c.expect("session.created").await;
    let update =
        json!({"type": "session.update", "session": {"audio": {"output": {"language": "es"}}}});
    c.ws.send(Message::binary(update.to_string().into_bytes()))
        .await
        .unwrap();
    c.expect("session.updated").await;
    c.ws.send(Message::binary(vec![0xff, 0xfe, 0x00]))
        .await
        .unwrap();
    let e = c.expect("error").await;
    assert_eq!(e["error"]["code"], "invalid_event");
    c.ws.send(Message::Ping(vec![1, 2].into())).await.unwrap();
    c.finish().await;
    let r = &srv.records.sessions()[0];
    assert_eq!(r.events[0].kind, "session.update");
    assert_eq!(r.events[1].kind, "<binary not utf-8>");
    assert_eq!(r.schema_errors.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_key_is_enforced() {
    let mut config = ServerConfig::new(echo());
    config.required_api_key = Some("sk-test".into());
    let srv = start(config).await;
    let url = srv.model_url();
    assert_eq!(refused_status(&url, &[]).await, 401);
    assert_eq!(
        refused_status(&url, &[("Authorization", "Bearer sk-wrong")]).await,
        401
    );
    assert_eq!(
        refused_status(&url, &[("Authorization", "sk-test")]).await,
        401
    );
    let mut c = connect(
        &url,
        &[
            ("Authorization", "Bearer sk-test"),
            ("OpenAI-Safety-Identifier", "user-hash"),
        ],
    )
    .await
    .unwrap();
    c.expect("session.created").await;
    c.finish().await;
    let sessions = srv.records.sessions();
    assert_eq!(sessions.len(), 1, "refused handshakes make no session");
    assert_eq!(sessions[0].authorization.as_deref(), Some("Bearer sk-test"));
    assert_eq!(sessions[0].safety_identifier.as_deref(), Some("user-hash"));
    assert!(!sessions[0].beta_header);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_url_rules() {
    let srv = start_with(echo()).await;
    let base = srv
        .url
        .trim_end_matches("/v1/realtime/translations")
        .to_owned();
    assert_eq!(
        refused_status(&format!("{base}/v1/realtime/sessions?model={MODEL}"), &[]).await,
        404
    );
    assert_eq!(
        refused_status(&format!("{base}/v1/realtime/translation?model=m"), &[]).await,
        404
    );
    assert_eq!(refused_status(&srv.url, &[]).await, 400);
    assert_eq!(
        refused_status(&format!("{}?foo=bar", srv.url), &[]).await,
        400
    );
    assert_eq!(
        refused_status(&format!("{}?model=", srv.url), &[]).await,
        400
    );
    assert_eq!(
        refused_status(
            &format!("{}?model={MODEL}&intent=transcription", srv.url),
            &[]
        )
        .await,
        400
    );
    let mut c = connect(&format!("{}?foo=1&model=other-model", srv.url), &[])
        .await
        .unwrap();
    let v = c.expect("session.created").await;
    assert_eq!(v["session"]["model"], "other-model");
    c.finish().await;
    assert_eq!(srv.records.sessions().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beta_header_gets_error_and_close_4000() {
    let srv = start_with(echo()).await;
    let mut c = connect(&srv.model_url(), &[("OpenAI-Beta", "realtime=v1")])
        .await
        .unwrap();
    let (frame, events) = c.close_frame().await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["type"], "error");
    assert_eq!(events[0]["error"]["type"], "invalid_request_error");
    assert_eq!(events[0]["error"]["code"], "beta_api_shape_disabled");
    let frame = frame.expect("close frame");
    assert_eq!(u16::from(frame.code), 4000);
    drop(c);
    assert!(
        srv.records
            .wait_for_ended_sessions_async(1, Duration::from_secs(10))
            .await
    );
    let r = &srv.records.sessions()[0];
    assert!(r.beta_header && !r.sent_session_closed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_expires_with_error_then_close() {
    let mut config = ServerConfig::new(echo());
    config.session_lifetime = Duration::from_secs(1);
    let srv = start(config).await;
    let mut c = connect(&srv.model_url(), &[]).await.unwrap();
    c.expect("session.created").await;
    let (frame, events) = c.close_frame().await;
    assert_eq!(events.last().unwrap()["error"]["code"], "session_expired");
    assert_eq!(u16::from(frame.unwrap().code), 1000);
}
