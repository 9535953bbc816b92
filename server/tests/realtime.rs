//! The `/v1/realtime` test servers against a raw WebSocket client
//! (`docs/protocol/realtime-interpreter.md` and `docs/protocol/realtime-transcription.md`):
//! handshake rules, strict GA validation, server VAD turn taking, responses, transcription.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use realtimetranslate_server::ServerConfig;
use realtimetranslate_server::engine::echo::EchoEngineFactory;
use serde_json::{Value, json};

async fn server() -> TestServer {
    let mut config = ServerConfig::new(Arc::new(EchoEngineFactory::new()));
    config.required_api_key = Some("k".into());
    start(config).await
}

const AUTH: [(&str, &str); 1] = [("Authorization", "Bearer k")];

fn realtime_url(srv: &TestServer, query: &str) -> String {
    format!(
        "{}?{query}",
        srv.url
            .replace("/v1/realtime/translations", realtime_server_path())
    )
}

fn realtime_server_path() -> &'static str {
    realtimetranslate_server::realtime::PATH
}

async fn conversation(srv: &TestServer, extra_query: &str) -> Client {
    let mut c = connect(
        &realtime_url(srv, &format!("model=gpt-realtime-2{extra_query}")),
        &AUTH,
    )
    .await
    .unwrap();
    let created = c.expect("session.created").await;
    assert_eq!(created["session"]["type"], "realtime");
    assert_eq!(created["session"]["model"], "gpt-realtime-2");
    c
}

/// The interpreter's `session.update`, as `docs/protocol/realtime-interpreter.md` gives it.
fn interpreter_update(interrupt_response: bool) -> Value {
    json!({"type":"session.update","session":{"type":"realtime","instructions":"Translate into Spanish.",
        "output_modalities":["audio"],"audio":{"input":{"format":{"type":"audio/pcm","rate":24000},
        "transcription":{"model":"gpt-realtime-whisper"},"noise_reduction":null,
        "turn_detection":{"type":"server_vad","threshold":0.5,"prefix_padding_ms":300,
        "silence_duration_ms":500,"create_response":true,"interrupt_response":interrupt_response}},
        "output":{"format":{"type":"audio/pcm","rate":24000},"voice":"marin"}}}})
}

async fn send_audio(c: &mut Client, pcm: &[i16]) {
    for chunk in pcm.chunks(2400) {
        c.send_json(json!({"type": "input_audio_buffer.append", "audio": b64(chunk)}))
            .await;
    }
}

fn silence(ms: usize) -> Vec<i16> {
    vec![0; ms * 24]
}

fn types(events: &[Value]) -> Vec<&str> {
    events.iter().filter_map(|e| e["type"].as_str()).collect()
}

fn joined(events: &[Value], ty: &str) -> String {
    events
        .iter()
        .filter(|e| e["type"] == ty)
        .map(|e| e["delta"].as_str().unwrap())
        .collect()
}

fn audio(events: &[Value], ty: &str) -> Vec<i16> {
    events
        .iter()
        .filter(|e| e["type"] == ty)
        .flat_map(|e| unb64(e["delta"].as_str().unwrap()))
        .collect()
}

fn position(events: &[Value], ty: &str) -> usize {
    events
        .iter()
        .position(|e| e["type"] == ty)
        .unwrap_or_else(|| panic!("no {ty} in {:?}", types(events)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_turn_is_answered_after_its_pause_with_a_tone_as_long_as_the_speech() {
    let srv = server().await;
    let mut c = conversation(&srv, "").await;
    c.send_json(interpreter_update(false)).await;
    let updated = c.expect("session.updated").await;
    let session = &updated["session"];
    assert_eq!(session["audio"]["output"]["voice"], "marin");
    assert_eq!(
        session["audio"]["input"]["turn_detection"]["interrupt_response"],
        false
    );
    assert_eq!(session["instructions"], "Translate into Spanish.");

    let mut pcm = silence(400);
    pcm.extend(tone(1000, 200.0, 6000.0));
    pcm.extend(silence(480));
    send_audio(&mut c, &pcm).await;
    // 480 ms of silence is not a pause yet: nothing but the start of speech.
    let started = c.expect("input_audio_buffer.speech_started").await;
    assert_eq!(
        started["audio_start_ms"], 100,
        "400 ms minus 300 ms padding"
    );
    send_audio(&mut c, &silence(300)).await;
    let events = c.until("response.done").await;
    let kinds = types(&events);
    assert_eq!(
        kinds[..4],
        [
            "input_audio_buffer.speech_stopped",
            "input_audio_buffer.committed",
            "conversation.item.added",
            "response.created"
        ],
        "{kinds:?}"
    );
    assert_eq!(events[0]["audio_end_ms"], 1900);
    assert_eq!(events[0]["item_id"], started["item_id"]);
    assert_eq!(events[1]["item_id"], started["item_id"]);
    assert_eq!(events[2]["item"]["role"], "user");

    // The answer: the transcript in two fragments and 1 s of 440 Hz at twice real time.
    assert_eq!(
        joined(&events, "response.output_audio_transcript.delta"),
        "Traducción 1 de 1000 ms."
    );
    let answer = audio(&events, "response.output_audio.delta");
    assert_eq!(answer.len(), 24_000);
    let crossings = answer
        .windows(2)
        .filter(|w| (w[0] < 0) != (w[1] < 0))
        .count();
    assert!(
        (870..=890).contains(&crossings),
        "{crossings} zero crossings"
    );
    assert_eq!(answer.iter().map(|s| s.abs()).max(), Some(8000));
    let done = events.last().unwrap();
    assert_eq!(done["response"]["status"], "completed");
    assert_eq!(
        done["response"]["output"][0]["content"][0]["transcript"],
        "Traducción 1 de 1000 ms."
    );
    assert!(position(&events, "response.output_audio.done") < position(&events, "response.done"));

    // The input transcript arrives alongside (or after) the response.
    let mut all = events.clone();
    if !all
        .iter()
        .any(|e| e["type"] == "conversation.item.input_audio_transcription.completed")
    {
        all.extend(
            c.until("conversation.item.input_audio_transcription.completed")
                .await,
        );
    }
    assert_eq!(
        joined(&all, "conversation.item.input_audio_transcription.delta"),
        "utterance 1 of 1000 ms."
    );
    let completed = all
        .iter()
        .find(|e| e["type"] == "conversation.item.input_audio_transcription.completed")
        .unwrap();
    assert_eq!(completed["transcript"], "utterance 1 of 1000 ms.");
    assert_eq!(completed["item_id"], started["item_id"]);
    drop(c);

    assert!(
        srv.records
            .wait_for_ended_sessions_async(1, Duration::from_secs(5))
            .await
    );
    let record = &srv.records.sessions()[0];
    assert!(
        record.schema_errors.is_empty(),
        "{:?}",
        record.schema_errors
    );
    assert_eq!(record.path_and_query, "/v1/realtime?model=gpt-realtime-2");
    assert_eq!(record.events[0].kind, "session.update");
    assert!(
        record.events[1..]
            .iter()
            .all(|e| e.kind == "input_audio_buffer.append")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn response_audio_is_paced_at_twice_real_time() {
    let srv = server().await;
    let mut c = conversation(&srv, "").await;
    c.send_json(interpreter_update(false)).await;
    c.expect("session.updated").await;
    let mut pcm = tone(2000, 200.0, 6000.0);
    pcm.extend(silence(600));
    send_audio(&mut c, &pcm).await;
    c.until("response.created").await;
    let started = Instant::now();
    let events = c.until("response.done").await;
    let took = started.elapsed();
    assert_eq!(audio(&events, "response.output_audio.delta").len(), 48_000);
    // Ten 200 ms deltas, one every 100 ms: the last one about 0.9 s after the first.
    assert!(took >= Duration::from_millis(850), "{took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_turn_ending_during_a_response_is_refused_then_answered_on_request() {
    let srv = server().await;
    let mut c = conversation(&srv, "").await;
    c.send_json(interpreter_update(false)).await;
    c.expect("session.updated").await;
    let mut pcm = tone(2000, 200.0, 6000.0);
    pcm.extend(silence(600));
    send_audio(&mut c, &pcm).await;
    c.until("response.created").await;
    // A short second turn ends while the first answer (1 s long) is still streaming.
    let mut second = tone(300, 200.0, 6000.0);
    second.extend(silence(600));
    send_audio(&mut c, &second).await;
    let events = c.until("response.done").await;
    let refusal = events
        .iter()
        .find(|e| e["type"] == "error")
        .unwrap_or_else(|| panic!("no refusal in {:?}", types(&events)));
    assert_eq!(
        refusal["error"]["code"],
        "conversation_already_has_active_response"
    );
    assert!(
        position(&events, "input_audio_buffer.speech_started") < position(&events, "error"),
        "interrupt_response false: speech does not cancel"
    );
    let done = events.last().unwrap();
    assert_eq!(done["response"]["status"], "completed");
    assert_eq!(audio(&events, "response.output_audio.delta").len(), 48_000);

    c.send_json(json!({"type": "response.create"})).await;
    let events = c.until("response.done").await;
    assert_eq!(
        joined(&events, "response.output_audio_transcript.delta"),
        "Traducción 2 de 300 ms."
    );
    assert_eq!(
        audio(&events, "response.output_audio.delta").len(),
        300 * 24
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_interrupt_response_new_speech_cancels_the_answer() {
    let srv = server().await;
    let mut c = conversation(&srv, "").await;
    // The session's default turn detection interrupts.
    let mut pcm = tone(2000, 200.0, 6000.0);
    pcm.extend(silence(600));
    send_audio(&mut c, &pcm).await;
    c.until("response.created").await;
    send_audio(&mut c, &tone(200, 200.0, 6000.0)).await;
    let events = c.until("response.done").await;
    let done = events.last().unwrap();
    assert_eq!(done["response"]["status"], "cancelled");
    assert_eq!(
        done["response"]["status_details"]["reason"],
        "turn_detected"
    );
    assert!(audio(&events, "response.output_audio.delta").len() < 48_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_turns_commit_create_and_cancel() {
    let srv = server().await;
    let mut c = conversation(&srv, "").await;
    c.send_json(json!({"type":"session.update","session":{"type":"realtime",
        "audio":{"input":{"turn_detection":null}}}}))
        .await;
    c.expect("session.updated").await;
    send_audio(&mut c, &tone(50, 200.0, 6000.0)).await;
    c.send_json(json!({"type": "input_audio_buffer.commit", "event_id": "c1"}))
        .await;
    let err = c.expect("error").await;
    assert_eq!(err["error"]["code"], "input_audio_buffer_commit_empty");
    assert_eq!(err["error"]["event_id"], "c1");

    send_audio(&mut c, &tone(500, 200.0, 6000.0)).await;
    c.send_json(json!({"type": "input_audio_buffer.commit"}))
        .await;
    let committed = c.expect("input_audio_buffer.committed").await;
    assert_eq!(committed["previous_item_id"], Value::Null);
    c.expect("conversation.item.added").await;
    c.send_json(json!({"type": "response.create"})).await;
    c.expect("response.created").await;
    c.send_json(json!({"type": "response.create"})).await;
    let events = c.until("error").await;
    assert_eq!(
        events.last().unwrap()["error"]["code"],
        "conversation_already_has_active_response"
    );
    c.send_json(json!({"type": "response.cancel"})).await;
    let events = c.until("response.done").await;
    assert_eq!(events.last().unwrap()["response"]["status"], "cancelled");
    c.send_json(json!({"type": "response.cancel"})).await;
    let err = c.until("error").await;
    assert_eq!(
        err.last().unwrap()["error"]["code"],
        "response_cancel_not_active"
    );
    // No speech events without turn detection.
    assert!(!types(&err).contains(&"input_audio_buffer.speech_started"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beta_shapes_are_refused_and_the_beta_header_closes_with_4000() {
    let srv = server().await;
    let mut c = conversation(&srv, "").await;
    c.send_json(
        json!({"type":"session.update","session":{"modalities":["audio","text"],
        "voice":"alloy","input_audio_format":"pcm16"}}),
    )
    .await;
    let err = c.expect("error").await;
    assert_eq!(err["error"]["code"], "beta_api_shape_disabled");
    c.send_json(json!({"type": "session.input_audio_buffer.append", "audio": ""}))
        .await;
    assert_eq!(c.expect("error").await["error"]["code"], "invalid_event");
    c.send_json(json!({"type":"session.update","session":{"type":"transcription"}}))
        .await;
    assert_eq!(c.expect("error").await["error"]["code"], "invalid_value");
    // The session stays usable.
    c.send_json(interpreter_update(false)).await;
    c.expect("session.updated").await;
    drop(c);

    let mut beta = connect(
        &realtime_url(&srv, "model=gpt-realtime-2"),
        &[AUTH[0], ("OpenAI-Beta", "realtime=v1")],
    )
    .await
    .unwrap();
    let (frame, events) = beta.close_frame().await;
    assert_eq!(events[0]["error"]["code"], "beta_api_shape_disabled");
    let frame = frame.unwrap();
    assert_eq!(u16::from(frame.code), 4000);
    assert_eq!(
        frame.reason.as_str(),
        "invalid_request_error.beta_api_shape_disabled"
    );
    // Hang up: until then the server waits (5 s at most) for the client's close frame, and the
    // session would end just as the wait below runs out.
    drop(beta);
    assert!(
        srv.records
            .wait_for_ended_sessions_async(2, Duration::from_secs(5))
            .await
    );
    let records = srv.records.sessions();
    assert_eq!(
        records[0].schema_errors.len(),
        3,
        "{:?}",
        records[0].schema_errors
    );
    assert!(records[1].beta_header);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beta_event_names_mode_sends_the_retired_names() {
    let srv = server().await;
    let mut c = conversation(&srv, "&test_event_names=beta").await;
    c.send_json(interpreter_update(false)).await;
    c.expect("session.updated").await;
    let mut pcm = tone(400, 200.0, 6000.0);
    pcm.extend(silence(600));
    send_audio(&mut c, &pcm).await;
    let events = c.until("response.done").await;
    let kinds = types(&events);
    assert!(kinds.contains(&"conversation.item.created"), "{kinds:?}");
    assert_eq!(
        joined(&events, "response.audio_transcript.delta"),
        "Traducción 1 de 400 ms."
    );
    assert_eq!(audio(&events, "response.audio.delta").len(), 400 * 24);
    for ga in [
        "response.output_audio.delta",
        "response.output_audio_transcript.delta",
        "conversation.item.added",
    ] {
        assert!(!kinds.contains(&ga), "{ga} in beta mode");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_picks_the_session_kind_and_checks_the_key() {
    let srv = server().await;
    assert_eq!(refused_status(&realtime_url(&srv, ""), &AUTH).await, 400);
    assert_eq!(
        refused_status(&realtime_url(&srv, "intent=transcription&model=m"), &AUTH).await,
        400
    );
    assert_eq!(
        refused_status(&realtime_url(&srv, "intent=chat"), &AUTH).await,
        400
    );
    assert_eq!(
        refused_status(
            &realtime_url(&srv, "model=m"),
            &[("Authorization", "Bearer wrong")]
        )
        .await,
        401
    );
    assert_eq!(
        refused_status(&realtime_url(&srv, "model=m"), &[]).await,
        401
    );
    let mut c = connect(&realtime_url(&srv, "intent=transcription"), &AUTH)
        .await
        .unwrap();
    let created = c.expect("session.created").await;
    assert_eq!(created["session"]["type"], "transcription");
    assert!(created["session"].get("model").is_none());
    // The translation endpoint is untouched.
    let mut t = connect(&format!("{}?model=gpt-realtime-translate", srv.url), &AUTH)
        .await
        .unwrap();
    assert_eq!(
        t.expect("session.created").await["session"]["type"],
        "translation"
    );
}

async fn transcription_session(srv: &TestServer, input: Value) -> Client {
    let mut c = connect(&realtime_url(srv, "intent=transcription"), &AUTH)
        .await
        .unwrap();
    c.expect("session.created").await;
    c.send_json(
        json!({"type":"session.update","session":{"type":"transcription",
        "audio":{"input": input}}}),
    )
    .await;
    c.expect("session.updated").await;
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_transcription_speaks_while_hearing_and_completes_on_commit() {
    let srv = server().await;
    let mut c = transcription_session(
        &srv,
        json!({"format":{"type":"audio/pcm","rate":24000},
            "transcription":{"model":"gpt-realtime-whisper"},"noise_reduction":null,
            "turn_detection":null}),
    )
    .await;
    let mut pcm = silence(300);
    pcm.extend(tone(800, 200.0, 6000.0));
    send_audio(&mut c, &pcm).await;
    // The first words come while the speech goes on, before any commit.
    let first = c
        .expect("conversation.item.input_audio_transcription.delta")
        .await;
    assert_eq!(first["delta"], "utterance 1 ");
    send_audio(&mut c, &silence(600)).await;
    c.send_json(json!({"type": "input_audio_buffer.commit"}))
        .await;
    let events = c
        .until("conversation.item.input_audio_transcription.completed")
        .await;
    assert_eq!(
        types(&events),
        [
            "input_audio_buffer.committed",
            "conversation.item.added",
            "conversation.item.input_audio_transcription.delta",
            "conversation.item.input_audio_transcription.completed"
        ]
    );
    assert_eq!(events[2]["delta"], "of 800 ms.");
    assert_eq!(events[3]["transcript"], "utterance 1 of 800 ms.");
    assert_eq!(events[3]["item_id"], first["item_id"]);

    // Silence committed: an item with an empty transcript; clear drops the buffer.
    send_audio(&mut c, &silence(300)).await;
    c.send_json(json!({"type": "input_audio_buffer.commit"}))
        .await;
    let events = c
        .until("conversation.item.input_audio_transcription.completed")
        .await;
    assert_eq!(events.last().unwrap()["transcript"], "");
    send_audio(&mut c, &silence(300)).await;
    c.send_json(json!({"type": "input_audio_buffer.clear"}))
        .await;
    c.expect("input_audio_buffer.cleared").await;

    // gpt-realtime-whisper takes no VAD.
    c.send_json(
        json!({"type":"session.update","session":{"type":"transcription",
        "audio":{"input":{"turn_detection":{"type":"server_vad"}}}}}),
    )
    .await;
    let err = c.expect("error").await;
    assert_eq!(err["error"]["code"], "invalid_value");
    assert_eq!(err["error"]["param"], "session.audio.input.turn_detection");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transcription_with_server_vad_commits_each_turn_itself() {
    let srv = server().await;
    let mut c = transcription_session(
        &srv,
        json!({"transcription":{"model":"gpt-4o-transcribe"},
            "turn_detection":{"type":"server_vad","silence_duration_ms":500}}),
    )
    .await;
    let mut pcm = tone(600, 200.0, 6000.0);
    pcm.extend(silence(600));
    pcm.extend(tone(400, 200.0, 6000.0));
    pcm.extend(silence(600));
    send_audio(&mut c, &pcm).await;
    let mut events = c
        .until("conversation.item.input_audio_transcription.completed")
        .await;
    events.extend(
        c.until("conversation.item.input_audio_transcription.completed")
            .await,
    );
    let transcripts: Vec<&str> = events
        .iter()
        .filter(|e| e["type"] == "conversation.item.input_audio_transcription.completed")
        .map(|e| e["transcript"].as_str().unwrap())
        .collect();
    assert_eq!(
        transcripts,
        ["utterance 1 of 600 ms.", "utterance 2 of 400 ms."]
    );
    assert_eq!(
        types(&events)
            .iter()
            .filter(|t| **t == "input_audio_buffer.speech_stopped")
            .count(),
        2
    );
    assert!(!types(&events).iter().any(|t| t.starts_with("response.")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_end_with_session_expired_at_their_lifetime() {
    let mut config = ServerConfig::new(Arc::new(EchoEngineFactory::new()));
    config.session_lifetime = Duration::from_millis(300);
    let srv = start(config).await;
    for query in ["model=gpt-realtime-2", "intent=transcription"] {
        let mut c = connect(&realtime_url(&srv, query), &[]).await.unwrap();
        let created = c.expect("session.created").await;
        assert!(created["session"]["expires_at"].as_u64().is_some());
        let (frame, events) = c.close_frame().await;
        assert_eq!(events[0]["error"]["code"], "session_expired");
        assert_eq!(
            frame.unwrap().reason.as_str(),
            "invalid_request_error.session_expired"
        );
    }
}
