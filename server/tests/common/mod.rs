//! Test client helpers: a real tokio-tungstenite client against a server on 127.0.0.1.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use futures_util::{SinkExt, StreamExt};
use realtimetranslate_server::engine::EngineFactory;
use realtimetranslate_server::{Records, Server, ServerConfig};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub const MODEL: &str = "gpt-realtime-translate";
const RECV_TIMEOUT: Duration = Duration::from_secs(10);

/// A server serving on a tokio task of the test's runtime.
pub struct TestServer {
    pub url: String,
    pub records: Records,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestServer {
    /// The URL with `?model=…`.
    pub fn model_url(&self) -> String {
        format!("{}?model={MODEL}", self.url)
    }
}

pub async fn start(config: ServerConfig) -> TestServer {
    let server = Server::bind("127.0.0.1:0".parse().unwrap(), config)
        .await
        .unwrap();
    let (url, records) = (server.url(), server.records());
    TestServer {
        url,
        records,
        task: tokio::spawn(server.serve()),
    }
}

pub async fn start_with(engine: Arc<dyn EngineFactory>) -> TestServer {
    start(ServerConfig::new(engine)).await
}

pub struct Client {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

pub async fn connect(url: &str, headers: &[(&str, &str)]) -> Result<Client, tungstenite::Error> {
    let mut req = url.into_client_request()?;
    for (k, v) in headers {
        req.headers_mut().insert(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    let (ws, _) = tokio_tungstenite::connect_async(req).await?;
    Ok(Client { ws })
}

/// HTTP status of a refused handshake.
pub async fn refused_status(url: &str, headers: &[(&str, &str)]) -> u16 {
    match connect(url, headers).await {
        Err(tungstenite::Error::Http(resp)) => resp.status().as_u16(),
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("handshake to {url} was accepted"),
    }
}

pub fn b64(pcm: &[i16]) -> String {
    let bytes: Vec<u8> = pcm.iter().flat_map(|s| s.to_le_bytes()).collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

pub fn unb64(s: &str) -> Vec<i16> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(s).unwrap();
    assert_eq!(bytes.len() % 2, 0);
    bytes
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect()
}

pub fn tone(ms: usize, hz: f64, amp: f64) -> Vec<i16> {
    (0..ms * 24)
        .map(|i| (amp * (2.0 * std::f64::consts::PI * hz * i as f64 / 24000.0).sin()) as i16)
        .collect()
}

impl Client {
    pub async fn send_json(&mut self, v: Value) {
        self.ws.send(Message::text(v.to_string())).await.unwrap();
    }

    pub async fn send_text(&mut self, t: &str) {
        self.ws.send(Message::text(t.to_owned())).await.unwrap();
    }

    pub async fn append(&mut self, pcm: &[i16]) {
        self.send_json(json!({"type": "session.input_audio_buffer.append", "audio": b64(pcm)}))
            .await;
    }

    pub async fn update(&mut self, language: &str, transcribe: bool) {
        let transcription = if transcribe {
            json!({"model": "gpt-realtime-whisper"})
        } else {
            Value::Null
        };
        self.send_json(json!({"type": "session.update", "session": {"audio": {
            "input": {"transcription": transcription, "noise_reduction": null},
            "output": {"language": language}}}}))
            .await;
    }

    /// Next JSON event; panics on close or timeout.
    pub async fn recv(&mut self) -> Value {
        loop {
            let msg = tokio::time::timeout(RECV_TIMEOUT, self.ws.next())
                .await
                .expect("timed out waiting for a server event")
                .expect("socket ended")
                .expect("socket error");
            match msg {
                Message::Text(t) => return serde_json::from_str(t.as_str()).unwrap(),
                Message::Close(f) => panic!("server closed: {f:?}"),
                _ => {}
            }
        }
    }

    /// Next event, which must have type `ty`.
    pub async fn expect(&mut self, ty: &str) -> Value {
        let v = self.recv().await;
        assert_eq!(v["type"], ty, "unexpected event {v}");
        v
    }

    /// Events up to and including the first of type `ty`.
    pub async fn until(&mut self, ty: &str) -> Vec<Value> {
        let mut out = Vec::new();
        loop {
            let v = self.recv().await;
            let done = v["type"] == ty;
            out.push(v);
            if done {
                return out;
            }
        }
    }

    /// The close frame the server sends next (skipping events, which are returned).
    pub async fn close_frame(&mut self) -> (Option<CloseFrame>, Vec<Value>) {
        let mut events = Vec::new();
        loop {
            let msg = tokio::time::timeout(RECV_TIMEOUT, self.ws.next())
                .await
                .expect("timed out waiting for close")
                .expect("socket ended without close frame")
                .expect("socket error");
            match msg {
                Message::Text(t) => events.push(serde_json::from_str(t.as_str()).unwrap()),
                Message::Close(f) => return (f, events),
                _ => {}
            }
        }
    }

    /// `session.close` → events up to `session.closed` → close 1000.
    pub async fn finish(&mut self) -> Vec<Value> {
        self.send_json(json!({"type": "session.close"})).await;
        let events = self.until("session.closed").await;
        self.ws
            .close(Some(CloseFrame {
                code: CloseCode::Normal,
                reason: "".into(),
            }))
            .await
            .unwrap();
        // Drain until the server's close reply.
        while let Ok(Some(Ok(_))) = tokio::time::timeout(RECV_TIMEOUT, self.ws.next()).await {}
        events
    }
}
