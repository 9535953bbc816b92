//! Injected faults, seen from a plain WebSocket client: exactly what a client observes (events, close
//! codes and reasons, dropped or silent sockets, HTTP refusals) and what the records say fired.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use common::*;
use futures_util::{SinkExt, StreamExt};
use realtimetranslate_server::engine::echo::EchoEngineFactory;
use realtimetranslate_server::{BackgroundServer, Faults, ServerConfig, SessionRecord};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Message};

/// Runs `test` (the client side) on a runtime of its own against a [`BackgroundServer`], as the
/// element's tests use it.
fn with_server<R>(config: ServerConfig, test: impl AsyncFnOnce(&BackgroundServer) -> R) -> R {
    let server = BackgroundServer::start(config).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(test(&server))
}

/// [`with_server`] with the echo engine (output audio = input audio) and these server-wide faults.
fn with_echo_server<R>(faults: Faults, test: impl AsyncFnOnce(&BackgroundServer) -> R) -> R {
    let mut config = ServerConfig::new(Arc::new(EchoEngineFactory::new()));
    config.faults = faults;
    with_server(config, test)
}

/// The endpoint with fault parameters in front of `model=`, as a client appending `model` makes it.
fn url(server: &BackgroundServer, faults: &str) -> String {
    format!("{}?{faults}&model={MODEL}", server.url())
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Distinct samples, so that a lost, repeated or shifted sample shows.
fn ramp(n: usize) -> Vec<i16> {
    (0..n)
        .map(|i| ((i * 7919) % 65_536) as i64 - 32_768)
        .map(|v| v as i16)
        .collect()
}

/// Output audio of these events, concatenated.
fn audio_of(events: &[Value]) -> Vec<i16> {
    events
        .iter()
        .filter(|e| e["type"] == "session.output_audio.delta")
        .flat_map(|e| unb64(e["delta"].as_str().unwrap()))
        .collect()
}

fn errors_of(events: &[Value]) -> Vec<&Value> {
    events.iter().filter(|e| e["type"] == "error").collect()
}

/// Sends audio, ignoring failure (the server may already have dropped the connection).
async fn try_append(c: &mut Client, pcm: &[i16]) {
    let ev = json!({"type": "session.input_audio_buffer.append", "audio": b64(pcm)});
    let _ = c.ws.send(Message::text(ev.to_string())).await;
}

/// Reads events until the client has `samples` samples of output audio.
async fn receive_audio(c: &mut Client, samples: usize) -> Vec<i16> {
    let mut audio = Vec::new();
    while audio.len() < samples {
        let v = c.recv().await;
        assert_ne!(v["type"], "error", "{v}");
        audio.extend(audio_of(&[v]));
    }
    audio
}

/// Answers the server's close frame and waits for the socket to end.
async fn answer_close(c: &mut Client) {
    while let Ok(Some(Ok(_))) = tokio::time::timeout(Duration::from_secs(5), c.ws.next()).await {}
}

/// The one session of `server`, once ended.
async fn ended_session(server: &BackgroundServer) -> SessionRecord {
    let records = server.records();
    assert!(
        records
            .wait_for_ended_sessions_async(1, Duration::from_secs(10))
            .await
    );
    records.sessions().remove(0)
}

fn assert_close(frame: Option<CloseFrame>, code: u16, reason: &str) {
    let frame = frame.expect("a close frame");
    assert_eq!(u16::from(frame.code), code);
    assert_eq!(frame.reason.as_str(), reason);
}

/// Status and JSON body of a refused handshake.
async fn refusal(url: &str) -> (u16, Value) {
    match connect(url, &[]).await {
        Err(tungstenite::Error::Http(resp)) => {
            let body = resp.body().as_deref().expect("a body");
            (
                resp.status().as_u16(),
                serde_json::from_slice(body).unwrap(),
            )
        }
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("handshake to {url} was accepted"),
    }
}

#[test]
fn expire_after_ms_is_announced_and_counts_input_audio_as_session_time() {
    with_echo_server(Faults::default(), async |srv| {
        let before = unix_now();
        let mut c = connect(&url(srv, "fault_expire_after_ms=1500"), &[])
            .await
            .unwrap();
        let created = c.expect("session.created").await;
        let after = unix_now();
        // Announced: created + ceil(1.5 s).
        let expires_at = created["session"]["expires_at"].as_u64().unwrap();
        assert!(
            (before + 2..=after + 2).contains(&expires_at),
            "{expires_at} not in {}..={}",
            before + 2,
            after + 2
        );

        // 2 s of audio at once: session time reaches 1.5 s through the audio, long before the clock.
        let input = ramp(48_000);
        for chunk in input.chunks(4800) {
            c.append(chunk).await;
        }
        let (frame, events) = c.close_frame().await;
        assert_eq!(
            audio_of(&events),
            input[..36_000],
            "exactly the first 1.5 s is translated"
        );
        let last = events.last().unwrap();
        assert_eq!(last["type"], "error");
        assert_eq!(last["error"]["type"], "invalid_request_error");
        assert_eq!(last["error"]["code"], "session_expired");
        assert_eq!(errors_of(&events).len(), 1);
        assert_close(frame, 1001, "invalid_request_error.session_expired");
        answer_close(&mut c).await;

        let r = ended_session(srv).await;
        assert_eq!(r.fault_fired(), Some("fault_expire_after_ms"));
        let fired = &r.faults_fired[0];
        assert_eq!(fired.audio_ms, 1500);
        assert!(
            fired.session_ms < 1500,
            "fired by the audio, not the clock ({} ms)",
            fired.session_ms
        );
        // The server read all 2 s but discarded what came after the expiry.
        let appends = r
            .events
            .iter()
            .filter(|e| e.kind == "session.input_audio_buffer.append")
            .count();
        assert_eq!(appends, 10);
        assert_eq!(r.closed_with, Some(1001), "the client answered the close");
    });
}

#[test]
fn expire_early_ms_expires_on_the_clock_without_announcing_it() {
    with_echo_server(Faults::default(), async |srv| {
        let before = unix_now();
        let mut c = connect(&url(srv, "fault_expire_early_ms=800"), &[])
            .await
            .unwrap();
        let created = c.expect("session.created").await;
        let created_at = Instant::now();
        let expires_at = created["session"]["expires_at"].as_u64().unwrap();
        assert!(
            expires_at >= before + 3600,
            "announces the usual hour: {expires_at}"
        );

        let input = ramp(4800);
        c.append(&input).await;
        let (frame, events) = c.close_frame().await;
        let waited = created_at.elapsed();
        assert_eq!(audio_of(&events), input);
        let last = events.last().unwrap();
        assert_eq!(last["error"]["type"], "invalid_request_error");
        assert_eq!(last["error"]["code"], "session_expired");
        assert_close(frame, 1001, "invalid_request_error.session_expired");
        // Server-side the clock started before the client saw session.created.
        assert!(
            waited >= Duration::from_millis(750),
            "expired after {waited:?}"
        );
        answer_close(&mut c).await;

        let r = ended_session(srv).await;
        assert_eq!(r.fault_fired(), Some("fault_expire_early_ms"));
        assert!(r.faults_fired[0].session_ms >= 800);
        assert_eq!(r.faults_fired[0].audio_ms, 200);
    });
}

#[test]
fn drop_after_audio_ms_ends_the_socket_without_close_frame() {
    with_echo_server(Faults::default(), async |srv| {
        let mut c = connect(&url(srv, "fault_drop_after_audio_ms=300"), &[])
            .await
            .unwrap();
        c.expect("session.created").await;
        let input = ramp(9600);
        for chunk in input.chunks(4800) {
            try_append(&mut c, chunk).await;
        }
        let mut audio = Vec::new();
        let ending = loop {
            match tokio::time::timeout(Duration::from_secs(10), c.ws.next())
                .await
                .expect("the server neither dropped the socket nor sent anything")
            {
                Some(Ok(Message::Text(t))) => {
                    let v: Value = serde_json::from_str(t.as_str()).unwrap();
                    assert_ne!(v["type"], "error", "{v}");
                    audio.extend(audio_of(&[v]));
                }
                Some(Ok(Message::Close(f))) => panic!("a close frame was sent: {f:?}"),
                Some(Ok(_)) => {}
                Some(Err(e)) => break Some(e),
                None => break None,
            }
        };
        // FIN without a closing handshake, or RST if the server left input unread.
        assert!(
            matches!(
                ending,
                Some(tungstenite::Error::Protocol(
                    tungstenite::error::ProtocolError::ResetWithoutClosingHandshake
                )) | Some(tungstenite::Error::Io(_))
            ),
            "{ending:?}"
        );
        assert_eq!(audio, input[..7200], "the 300 ms before the drop come back");

        let r = ended_session(srv).await;
        assert_eq!(r.fault_fired(), Some("fault_drop_after_audio_ms"));
        assert_eq!(r.faults_fired[0].audio_ms, 300);
        assert_eq!(r.closed_with, None);
        assert!(!r.sent_session_closed);
    });
}

#[test]
fn stall_after_audio_ms_goes_silent_but_keeps_the_socket_open() {
    with_echo_server(Faults::default(), async |srv| {
        let records = srv.records();
        let mut c = connect(&url(srv, "fault_stall_after_audio_ms=300"), &[])
            .await
            .unwrap();
        c.expect("session.created").await;
        let input = ramp(9600);
        for chunk in input.chunks(4800) {
            c.append(chunk).await;
        }
        assert_eq!(receive_audio(&mut c, 7200).await, input[..7200]);

        c.ws.send(Message::Ping(b"still there?".to_vec().into()))
            .await
            .unwrap();
        let answer = tokio::time::timeout(Duration::from_secs(2), c.ws.next()).await;
        assert!(
            answer.is_err(),
            "nothing at all (no pong, no error, no end) within 2 s, got {answer:?}"
        );
        // Still connected: sending works and the server has not ended the session.
        c.append(&input[..4800]).await;
        let r = &records.sessions()[0];
        assert_eq!(r.fault_fired(), Some("fault_stall_after_audio_ms"));
        assert!(!r.ended);
        assert_eq!(r.events.len(), 2, "nothing read after the stall began");

        // Once the client goes, the server notices and ends the session.
        drop(c);
        assert!(
            records
                .wait_for_ended_sessions_async(1, Duration::from_secs(5))
                .await
        );
    });
}

#[test]
fn refuse_status_answers_with_an_openai_error_body() {
    // An API key is required but not sent: the injected status comes first.
    let mut config = ServerConfig::new(Arc::new(EchoEngineFactory::new()));
    config.required_api_key = Some("k".into());
    with_server(config, async |srv| {
        for (status, error_type, code) in [
            (401, "invalid_request_error", "invalid_api_key"),
            (429, "rate_limit_error", "rate_limit_exceeded"),
            (503, "server_error", "server_error"),
            (403, "invalid_request_error", "invalid_request_error"),
        ] {
            let (got, body) = refusal(&url(srv, &format!("fault_refuse_status={status}"))).await;
            assert_eq!(got, status);
            assert_eq!(body["error"]["type"], error_type, "{body}");
            assert_eq!(body["error"]["code"], code, "{body}");
            assert!(body["error"]["message"].as_str().unwrap().contains("fault"));
        }
        let records = srv.records();
        assert_eq!(records.handshakes_refused(), 4);
        let statuses: Vec<u16> = records
            .refused_handshakes()
            .iter()
            .map(|r| r.status)
            .collect();
        assert_eq!(statuses, [401, 429, 503, 403]);
        assert!(records.sessions().is_empty());
    });
}

#[test]
fn rate_limit_first_refuses_the_first_k_handshakes_of_each_fault_set() {
    with_echo_server(Faults::default(), async |srv| {
        let limited = url(srv, "fault_rate_limit_first=2");
        for _ in 0..2 {
            let (status, body) = refusal(&limited).await;
            assert_eq!(status, 429);
            assert_eq!(body["error"]["type"], "rate_limit_error");
            assert_eq!(body["error"]["code"], "rate_limit_exceeded");
        }
        // Another fault set on the same server has its own count.
        let other = url(srv, "fault_rate_limit_first=2&fault_send=unknown_event");
        assert_eq!(refusal(&other).await.0, 429);
        for _ in 0..2 {
            let mut c = connect(&limited, &[]).await.unwrap();
            c.expect("session.created").await;
            c.append(&[5; 480]).await;
            assert_eq!(receive_audio(&mut c, 480).await, [5; 480]);
            c.finish().await;
        }
        let records = srv.records();
        assert_eq!(records.handshakes_refused(), 3);
        assert!(
            records
                .refused_handshakes()
                .iter()
                .all(|r| r.status == 429 && r.code == "rate_limit_exceeded")
        );
        assert!(
            records
                .wait_for_ended_sessions_async(2, Duration::from_secs(5))
                .await
        );
        assert!(records.sessions().iter().all(|s| s.faults_fired.is_empty()));
    });
}

/// Connects with `fault_send=KIND`, returns the frame right after `session.created`, then checks
/// that the session goes on normally.
fn garbage_then_normal_session(kind: &str) -> Message {
    with_echo_server(Faults::default(), async |srv| {
        // Room for the 20 MiB frame (tungstenite's default limit is 16 MiB).
        let config = WebSocketConfig::default()
            .max_frame_size(Some(32 << 20))
            .max_message_size(Some(32 << 20));
        let (ws, _) = tokio_tungstenite::connect_async_with_config(
            url(srv, &format!("fault_send={kind}")),
            Some(config),
            true,
        )
        .await
        .unwrap();
        let mut c = Client { ws };
        c.expect("session.created").await;
        let garbage = tokio::time::timeout(Duration::from_secs(10), c.ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();

        c.update("de", false).await;
        c.expect("session.updated").await;
        let input = ramp(4800);
        c.append(&input).await;
        let events = c.finish().await;
        assert_eq!(audio_of(&events), input);
        assert!(errors_of(&events).is_empty());
        let r = ended_session(srv).await;
        assert_eq!(r.fault_fired(), Some("fault_send"));
        assert!(r.sent_session_closed);
        assert_eq!(r.closed_with, Some(1000));
        garbage
    })
}

#[test]
fn send_malformed_json_then_normal() {
    let Message::Text(t) = garbage_then_normal_session("malformed_json") else {
        panic!("not a text frame");
    };
    assert!(serde_json::from_str::<Value>(t.as_str()).is_err(), "{t}");
}

#[test]
fn send_unknown_event_then_normal() {
    let Message::Text(t) = garbage_then_normal_session("unknown_event") else {
        panic!("not a text frame");
    };
    let v: Value = serde_json::from_str(t.as_str()).unwrap();
    assert_eq!(v["type"], "session.something_new");
    assert_eq!(v["event_id"], "ev_2");
}

#[test]
fn send_invalid_base64_then_normal() {
    let Message::Text(t) = garbage_then_normal_session("invalid_base64") else {
        panic!("not a text frame");
    };
    let v: Value = serde_json::from_str(t.as_str()).unwrap();
    assert_eq!(v["type"], "session.output_audio.delta");
    let delta = v["delta"].as_str().unwrap();
    assert!(
        base64::engine::general_purpose::STANDARD
            .decode(delta)
            .is_err()
    );
}

#[test]
fn send_oversized_then_normal() {
    let Message::Text(t) = garbage_then_normal_session("oversized") else {
        panic!("not a text frame");
    };
    assert_eq!(t.len(), 20 * 1024 * 1024);
    let v: Value = serde_json::from_str(t.as_str()).unwrap();
    assert_eq!(v["type"], "session.output_audio.delta");
    let pcm = unb64(v["delta"].as_str().unwrap());
    assert!(pcm.len() > 7_000_000);
    assert!(pcm.iter().all(|&s| s == 0), "silence");
}

#[test]
fn send_binary_then_normal() {
    let Message::Binary(b) = garbage_then_normal_session("binary") else {
        panic!("not a binary frame");
    };
    assert_eq!(b.len(), 1024);
    assert!(std::str::from_utf8(&b).is_err());
    assert!(
        b.iter().filter(|&&x| x == b[1]).count() < 64,
        "bytes look random"
    );
}

#[test]
fn server_error_after_audio_ms_sends_server_error_and_closes_1011() {
    with_echo_server(Faults::default(), async |srv| {
        let mut c = connect(&url(srv, "fault_server_error_after_audio_ms=300"), &[])
            .await
            .unwrap();
        c.expect("session.created").await;
        let input = ramp(9600);
        for chunk in input.chunks(4800) {
            c.append(chunk).await;
        }
        let (frame, events) = c.close_frame().await;
        assert_eq!(audio_of(&events), input[..7200]);
        let last = events.last().unwrap();
        assert_eq!(last["error"]["type"], "server_error");
        assert_eq!(last["error"]["code"], "server_error");
        assert_close(frame, 1011, "server_error.server_error");
        answer_close(&mut c).await;
        let r = ended_session(srv).await;
        assert_eq!(r.fault_fired(), Some("fault_server_error_after_audio_ms"));
        assert_eq!(r.faults_fired[0].audio_ms, 300);
    });
}

#[test]
fn error_after_audio_ms_sends_the_code_and_closes_3000_like_the_service() {
    with_echo_server(Faults::default(), async |srv| {
        for (code, error_type) in [
            ("insufficient_quota", "insufficient_quota"),
            ("rate_limit_exceeded", "rate_limit_error"),
            ("invalid_api_key", "invalid_request_error"),
        ] {
            let faults = format!("fault_error_after_audio_ms=200&fault_error_code={code}");
            let mut c = connect(&url(srv, &faults), &[]).await.unwrap();
            c.expect("session.created").await;
            let input = ramp(7200);
            c.append(&input).await;
            let (frame, events) = c.close_frame().await;
            assert_eq!(audio_of(&events), input[..4800]);
            let last = events.last().unwrap();
            assert_eq!(last["error"]["type"], error_type);
            assert_eq!(last["error"]["code"], code);
            assert_close(frame, 3000, &format!("{error_type}.{code}"));
            answer_close(&mut c).await;
        }
        let records = srv.records();
        assert!(
            records
                .wait_for_ended_sessions_async(3, Duration::from_secs(5))
                .await
        );
        for r in records.sessions() {
            assert_eq!(r.fault_fired(), Some("fault_error_after_audio_ms"));
            assert_eq!(r.faults_fired[0].audio_ms, 200);
        }
    });
}

#[test]
fn bad_fault_parameters_refuse_the_handshake_with_400() {
    with_echo_server(Faults::default(), async |srv| {
        for (faults, named) in [
            (
                "fault_drop_after_audio_ms=soon",
                "'fault_drop_after_audio_ms'",
            ),
            ("fault_send=bogus", "'fault_send'"),
            ("fault_refuse_status=200", "'fault_refuse_status'"),
            ("fault_typo_ms=5", "'fault_typo_ms'"),
            ("fault_error_after_audio_ms=5", "'fault_error_code'"),
            ("fault_answer_delay_ms=-5", "'fault_answer_delay_ms'"),
        ] {
            let (status, body) = refusal(&url(srv, faults)).await;
            assert_eq!(status, 400, "{faults}");
            assert_eq!(body["error"]["type"], "invalid_request_error");
            assert_eq!(body["error"]["code"], "invalid_fault_parameter");
            let message = body["error"]["message"].as_str().unwrap();
            assert!(message.contains(named), "{faults}: {message}");
        }
        assert_eq!(srv.records().handshakes_refused(), 6);
    });
}

#[test]
fn server_wide_faults_apply_to_every_session_and_query_parameters_override_them() {
    with_echo_server(
        Faults {
            server_error_after_audio_ms: Some(200),
            ..Faults::default()
        },
        async |srv| {
            let input = ramp(14_400);
            let plain = format!("{}?model={MODEL}", srv.url());
            let overridden = url(srv, "fault_server_error_after_audio_ms=400");
            for (u, expected) in [(plain, 4800), (overridden, 9600)] {
                let mut c = connect(&u, &[]).await.unwrap();
                c.expect("session.created").await;
                for chunk in input.chunks(4800) {
                    c.append(chunk).await;
                }
                let (frame, events) = c.close_frame().await;
                assert_eq!(audio_of(&events), input[..expected], "{u}");
                assert_close(frame, 1011, "server_error.server_error");
                answer_close(&mut c).await;
            }
            let records = srv.records();
            assert!(
                records
                    .wait_for_ended_sessions_async(2, Duration::from_secs(5))
                    .await
            );
            let s = records.sessions();
            assert_eq!(s[0].faults.server_error_after_audio_ms, Some(200));
            assert_eq!(s[1].faults.server_error_after_audio_ms, Some(400));
            assert_eq!(s[1].faults_fired[0].audio_ms, 400);
        },
    );
}

/// What a client saw of one echo session: when each append went out, and every event with when
/// it came in.
struct TimedRun {
    appends_sent: Vec<Instant>,
    close_sent: Instant,
    events: Vec<(Instant, Value)>,
}

impl TimedRun {
    /// `(received at, event)` of every `session.output_audio.delta`.
    fn audio(&self) -> Vec<&(Instant, Value)> {
        self.events
            .iter()
            .filter(|(_, e)| e["type"] == "session.output_audio.delta")
            .collect()
    }

    /// Every event after `session.created` without its id or arrival time, the delta as its
    /// length and a hash, for comparing two runs.
    fn content(&self) -> Vec<String> {
        use std::hash::{Hash, Hasher};
        self.events
            .iter()
            .skip(1)
            .map(|(_, e)| {
                let delta = e["delta"].as_str().unwrap_or("");
                let mut h = std::collections::hash_map::DefaultHasher::new();
                delta.hash(&mut h);
                format!(
                    "{} elapsed_ms={} delta={}/{:x}",
                    e["type"],
                    e["elapsed_ms"],
                    delta.len(),
                    h.finish()
                )
            })
            .collect()
    }
}

/// Five 200 ms appends 150 ms apart (the echo engine answers each at once, and "[1 s] " after the
/// fifth), then `session.close`; events are read and timestamped as they come, by a task of their
/// own, until `session.closed`.
async fn timed_echo_session(url: &str) -> TimedRun {
    let c = connect(url, &[]).await.unwrap();
    let (mut tx, mut rx) = c.ws.split();
    let reader = tokio::spawn(async move {
        let mut events = Vec::new();
        loop {
            let msg = tokio::time::timeout(Duration::from_secs(30), rx.next())
                .await
                .expect("timed out waiting for session.closed")
                .expect("socket ended")
                .expect("socket error");
            if let Message::Text(t) = msg {
                let v: Value = serde_json::from_str(t.as_str()).unwrap();
                let closed = v["type"] == "session.closed";
                events.push((Instant::now(), v));
                if closed {
                    return (events, rx);
                }
            }
        }
    });
    let input = ramp(24_000);
    let mut appends_sent = Vec::new();
    for chunk in input.chunks(4800) {
        let ev = json!({"type": "session.input_audio_buffer.append", "audio": b64(chunk)});
        appends_sent.push(Instant::now());
        tx.send(Message::text(ev.to_string())).await.unwrap();
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let close_sent = Instant::now();
    let close = json!({"type": "session.close"});
    tx.send(Message::text(close.to_string())).await.unwrap();
    let (events, rx) = reader.await.unwrap();
    let mut ws = tx.reunite(rx).unwrap();
    ws.close(None).await.unwrap();
    while let Ok(Some(Ok(_))) = tokio::time::timeout(Duration::from_secs(5), ws.next()).await {}
    TimedRun {
        appends_sent,
        close_sent,
        events,
    }
}

fn median_ms(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[test]
fn answer_delay_ms_holds_every_output_back_in_order_while_input_is_still_read() {
    const DELAY_MS: u64 = 1000;
    with_echo_server(Faults::default(), async |srv| {
        let plain = timed_echo_session(&url(srv, "")).await;
        let delayed =
            timed_echo_session(&url(srv, &format!("fault_answer_delay_ms={DELAY_MS}"))).await;

        // The same events, in the same order, with the same elapsed_ms: only their time changed.
        assert_eq!(delayed.content(), plain.content());
        let kinds: Vec<&str> = delayed
            .events
            .iter()
            .map(|(_, e)| e["type"].as_str().unwrap())
            .collect();
        assert_eq!(kinds.first(), Some(&"session.created"));
        assert_eq!(kinds.last(), Some(&"session.closed"));
        assert_eq!(
            kinds
                .iter()
                .filter(|k| **k == "session.output_transcript.delta")
                .count(),
            1
        );

        // Each append's echo: how long after the append went out it came back.
        let latency = |run: &TimedRun| -> Vec<f64> {
            let audio = run.audio();
            assert_eq!(audio.len(), 5);
            audio
                .iter()
                .zip(&run.appends_sent)
                .map(|((at, _), sent)| at.duration_since(*sent).as_secs_f64() * 1000.0)
                .collect()
        };
        let (plain_ms, delayed_ms) = (latency(&plain), latency(&delayed));
        println!("echo latency without the fault: {plain_ms:.1?} ms");
        println!("echo latency with fault_answer_delay_ms={DELAY_MS}: {delayed_ms:.1?} ms");
        let added = median_ms(delayed_ms.clone()) - median_ms(plain_ms);
        assert!(
            added >= DELAY_MS as f64 - 100.0,
            "outputs held back {added:.0} ms more than without the fault"
        );
        for ms in &delayed_ms {
            // Never early; a generous bound above (a shared machine).
            assert!(*ms >= DELAY_MS as f64, "{ms:.1} ms");
            assert!(*ms <= DELAY_MS as f64 + 5000.0, "{ms:.1} ms");
        }
        // The transcript delta is held back too.
        let transcript_at = delayed
            .events
            .iter()
            .find(|(_, e)| e["type"] == "session.output_transcript.delta")
            .unwrap()
            .0;
        assert!(
            transcript_at.duration_since(delayed.appends_sent[4])
                >= Duration::from_millis(DELAY_MS)
        );
        // session.closed only once everything held back has gone out, and itself after the delay.
        let closed_at = delayed.events.last().unwrap().0;
        assert!(closed_at.duration_since(delayed.close_sent) >= Duration::from_millis(DELAY_MS));

        let records = srv.records();
        assert!(
            records
                .wait_for_ended_sessions_async(2, Duration::from_secs(10))
                .await
        );
        let sessions = records.sessions();
        let (r_plain, r) = (&sessions[0], &sessions[1]);
        assert!(r_plain.faults_fired.is_empty());
        assert_eq!(r.faults.answer_delay_ms, Some(DELAY_MS));
        assert_eq!(r.fault_fired(), Some("fault_answer_delay_ms"));
        assert!(r.sent_session_closed);
        // Input kept being read while outputs were held: every append reached the server before
        // the first delayed output reached the client.
        let first_output = delayed.audio()[0].0;
        let appends: Vec<Instant> = r
            .events
            .iter()
            .filter(|e| e.kind == "session.input_audio_buffer.append")
            .map(|e| e.received_at)
            .collect();
        assert_eq!(appends.len(), 5);
        assert!(
            appends.iter().all(|at| *at < first_output),
            "an append was read only after outputs went out"
        );
    });
}
