//! The deterministic engines end to end: what a client receives and how it is framed.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use realtimetranslate_server::engine::echo::EchoEngineFactory;
use realtimetranslate_server::engine::utterance::UtteranceEngineFactory;
use serde_json::Value;

/// 0.5 s silence + 1.0 s of 200 Hz (amplitude 6000) + 0.6 s silence.
fn one_utterance() -> Vec<i16> {
    let mut pcm = vec![0i16; 12_000];
    pcm.extend(tone(1000, 200.0, 6000.0));
    pcm.extend(vec![0i16; 14_400]);
    pcm
}

fn of_type<'a>(events: &'a [Value], ty: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["type"] == ty).collect()
}

fn deltas(events: &[Value], ty: &str) -> Vec<String> {
    of_type(events, ty)
        .iter()
        .map(|e| e["delta"].as_str().unwrap().to_owned())
        .collect()
}

async fn run_utterance(transcribe: bool) -> Vec<Value> {
    let srv = start_with(Arc::new(UtteranceEngineFactory::new())).await;
    let mut c = connect(&srv.model_url(), &[]).await.unwrap();
    c.expect("session.created").await;
    c.update("es", transcribe).await;
    c.expect("session.updated").await;
    for chunk in one_utterance().chunks(4800) {
        c.append(chunk).await;
    }
    let events = c.finish().await;
    assert!(
        srv.records
            .wait_for_ended_sessions_async(1, Duration::from_secs(5))
            .await
    );
    let r = &srv.records.sessions()[0];
    assert_eq!(r.closed_with, Some(1000));
    assert!(r.sent_session_closed);
    assert!(r.schema_errors.is_empty());
    let samples: usize = r.events.iter().filter_map(|e| e.audio_samples).sum();
    assert_eq!(samples, 50_400);
    events
}

fn check_utterance_output(events: &[Value]) {
    assert_eq!(events.last().unwrap()["type"], "session.closed");
    assert_eq!(
        deltas(events, "session.output_transcript.delta"),
        ["Frase 1 ", "de 1000 ms. "]
    );
    let audio = of_type(events, "session.output_audio.delta");
    let mut pcm = Vec::new();
    let mut keepalives = Vec::new();
    for a in &audio {
        assert_eq!(a["sample_rate"], 24000);
        assert_eq!(a["channels"], 1);
        assert_eq!(a["format"], "pcm16");
        let chunk = unb64(a["delta"].as_str().unwrap());
        assert!(chunk.len() <= 4800);
        if chunk.iter().all(|&s| s == 0) {
            // A keep-alive: 200 ms of digital silence after 1 s of input with nothing to say.
            assert_eq!(chunk.len(), 4800);
            keepalives.push(a["elapsed_ms"].as_u64().unwrap());
        } else {
            pcm.extend(chunk);
        }
    }
    assert_eq!(pcm.len(), 24_000);
    assert_eq!(pcm.iter().map(|s| s.abs()).max(), Some(8000));
    // The tone starts at 0.5 s: one keep-alive when 1 s of input has gone unanswered.
    assert_eq!(keepalives, [1000]);
    let mut ids = std::collections::HashSet::new();
    for e in events {
        let id = e["event_id"].as_str().unwrap();
        assert!(id.starts_with("ev_"));
        assert!(ids.insert(id.to_owned()), "duplicate {id}");
        let keepalive = e["delta"].as_str().is_some_and(|d| {
            e["type"] == "session.output_audio.delta" && unb64(d).iter().all(|&s| s == 0)
        });
        if e["type"] != "session.closed" && !keepalive {
            let ms = e["elapsed_ms"].as_u64().unwrap();
            assert_eq!(ms % 200, 0);
            // The utterance ends 400 ms after the tone (at 1.9 s), inside the 200 ms chunk ending at 2.0 s.
            assert_eq!(ms, 2000, "{e}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn utterance_with_transcription() {
    let events = run_utterance(true).await;
    check_utterance_output(&events);
    assert_eq!(
        deltas(&events, "session.input_transcript.delta"),
        ["utterance 1 of 1000 ms. "]
    );
    // After the keep-alive: input transcript, then text, then audio.
    assert_eq!(events[0]["type"], "session.output_audio.delta");
    assert_eq!(events[1]["type"], "session.input_transcript.delta");
    assert_eq!(events[2]["type"], "session.output_transcript.delta");
    assert_eq!(events[4]["type"], "session.output_audio.delta");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn utterance_without_transcription() {
    let events = run_utterance(false).await;
    check_utterance_output(&events);
    assert!(of_type(&events, "session.input_transcript.delta").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn utterance_pending_at_close_is_flushed() {
    let srv = start_with(Arc::new(UtteranceEngineFactory::new())).await;
    let mut c = connect(&srv.model_url(), &[]).await.unwrap();
    c.expect("session.created").await;
    c.update("fr", true).await;
    c.expect("session.updated").await;
    c.append(&tone(300, 200.0, 6000.0)).await;
    let events = c.finish().await;
    assert_eq!(
        deltas(&events, "session.input_transcript.delta"),
        ["utterance 1 of 300 ms. "]
    );
    assert_eq!(events.last().unwrap()["type"], "session.closed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_round_trip_is_sample_exact() {
    let srv = start_with(Arc::new(EchoEngineFactory::new())).await;
    let mut c = connect(&srv.model_url(), &[]).await.unwrap();
    c.expect("session.created").await;
    c.update("it", true).await;
    c.expect("session.updated").await;
    let input: Vec<i16> = (0..60_000)
        .map(|i| ((i * 7919) % 65_536 - 32_768) as i16)
        .collect();
    let mut sent = 0;
    for (k, size) in [1usize, 480, 4800, 7000, 12_000].iter().cycle().enumerate() {
        if sent == input.len() {
            break;
        }
        let end = (sent + size + k % 3).min(input.len());
        c.append(&input[sent..end]).await;
        sent = end;
    }
    let events = c.finish().await;
    let mut output = Vec::new();
    for a in of_type(&events, "session.output_audio.delta") {
        let chunk = unb64(a["delta"].as_str().unwrap());
        assert!(chunk.len() <= 4800);
        output.extend(chunk);
    }
    assert_eq!(output, input);
    assert_eq!(
        deltas(&events, "session.output_transcript.delta"),
        ["[1 s] ", "[2 s] "]
    );
    assert_eq!(
        deltas(&events, "session.input_transcript.delta"),
        ["[1 s] ", "[2 s] "]
    );
    let t = of_type(&events, "session.output_transcript.delta");
    assert_eq!(t[0]["elapsed_ms"].as_u64().unwrap() / 1000, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audio_before_update_uses_english_and_language_change_keeps_going() {
    let srv = start_with(Arc::new(EchoEngineFactory::new())).await;
    let mut c = connect(&srv.model_url(), &[]).await.unwrap();
    c.expect("session.created").await;
    c.append(&[1; 100]).await;
    let v = c.expect("session.output_audio.delta").await;
    assert_eq!(unb64(v["delta"].as_str().unwrap()), vec![1; 100]);
    c.update("ja", false).await;
    c.expect("session.updated").await;
    c.append(&[2; 100]).await;
    let v = c.expect("session.output_audio.delta").await;
    assert_eq!(unb64(v["delta"].as_str().unwrap()), vec![2; 100]);
    let events = c.finish().await;
    assert_eq!(events.len(), 1);
}
