//! Connection lifecycle: clients vanishing, engine threads ending, the background server.
//! One test function only, so that counting engine threads is not disturbed by parallel tests.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use realtimetranslate_server::engine::utterance::UtteranceEngineFactory;
use realtimetranslate_server::{BackgroundServer, ServerConfig};

/// Engine threads alive in this process (they are named `engine-sess_N`).
fn engine_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|c| c.starts_with("engine-sess"))
        .count()
}

fn wait_for_no_engine_threads() -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if engine_threads() == 0 {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

#[test]
fn lifecycle() {
    let server =
        BackgroundServer::start(ServerConfig::new(Arc::new(UtteranceEngineFactory::new())))
            .unwrap();
    assert!(server.url().starts_with("ws://127.0.0.1:"));
    assert!(server.url().ends_with("/v1/realtime/translations"));
    let url = format!("{}?model={MODEL}", server.url());
    let records = server.records();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();

    // 1. A client that vanishes mid-session (no close frame) ends the session and its engine thread.
    rt.block_on(async {
        let mut c = connect(&url, &[]).await.unwrap();
        c.expect("session.created").await;
        c.update("es", true).await;
        c.expect("session.updated").await;
        c.append(&tone(500, 200.0, 6000.0)).await;
        c.append(&[0; 2400]).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(engine_threads(), 1);
        drop(c);
    });
    assert!(records.wait_for_ended_sessions(1, Duration::from_secs(5)));
    let r = &records.sessions()[0];
    assert!(r.ended && !r.sent_session_closed);
    assert_eq!(r.closed_with, None);
    assert_eq!(r.events.len(), 3);
    assert_eq!(r.events[1].audio_samples, Some(12_000));
    assert!(r.events[1].audio_rms.unwrap() > 4000.0);
    assert_eq!(
        engine_threads(),
        0,
        "engine thread must be joined before `ended`"
    );

    // 2. A client that closes (1001) without session.close.
    rt.block_on(async {
        let mut c = connect(&url, &[]).await.unwrap();
        c.expect("session.created").await;
        c.append(&[0; 4800]).await;
        c.ws.close(Some(tokio_tungstenite::tungstenite::protocol::CloseFrame {
            code: tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode::Away,
            reason: "".into(),
        }))
        .await
        .unwrap();
    });
    assert!(records.wait_for_ended_sessions(2, Duration::from_secs(5)));
    assert_eq!(records.sessions()[1].closed_with, Some(1001));

    // 3. Several sessions at once, each with its own engine, all complete.
    rt.block_on(async {
        let mut tasks = Vec::new();
        for lang in ["es", "fr", "de"] {
            let url = url.clone();
            tasks.push(tokio::spawn(async move {
                let mut c = connect(&url, &[]).await.unwrap();
                c.expect("session.created").await;
                c.update(lang, false).await;
                c.expect("session.updated").await;
                let mut pcm = tone(200, 200.0, 6000.0);
                pcm.extend(vec![0; 24 * 500]);
                for chunk in pcm.chunks(4800) {
                    c.append(chunk).await;
                }
                let events = c.finish().await;
                events
                    .iter()
                    .filter(|e| e["type"] == "session.output_transcript.delta")
                    .map(|e| e["delta"].as_str().unwrap().to_owned())
                    .collect::<String>()
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap(), "Frase 1 de 200 ms. ");
        }
    });
    assert!(records.wait_for_ended_sessions(5, Duration::from_secs(5)));
    assert!(
        records.sessions()[2..]
            .iter()
            .all(|r| r.closed_with == Some(1000))
    );
    assert!(wait_for_no_engine_threads());

    // 4. Dropping the background server stops sessions still open.
    rt.block_on(async {
        let mut c = connect(&url, &[]).await.unwrap();
        c.expect("session.created").await;
        c.append(&[0; 4800]).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        drop(server);
        tokio::time::timeout(Duration::from_secs(5), async {
            use futures_util::StreamExt;
            while let Some(Ok(_)) = c.ws.next().await {}
        })
        .await
        .expect("socket must end when the server is dropped");
    });
    assert!(records.wait_for_ended_sessions(6, Duration::from_secs(5)));
    assert!(wait_for_no_engine_threads());
}
