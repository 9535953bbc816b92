//! One accepted connection: sends `session.created`, validates and records every client frame, feeds
//! the engine thread, relays its outputs as events, and runs the `session.close` → `session.closed` →
//! client close sequence. Every client mistake is answered with an `error` event; the session stays open.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::engine::EngineOutput;
use crate::handshake::Accepted;
use crate::protocol::{self, ClientEvent, MAX_DELTA_SAMPLES, ProtocolError, SessionConfig, server};
use crate::record::{ClientEventRecord, RecordHandle};
use crate::server::Shared;
use crate::worker::{Command, EngineConfig, Worker, WorkerEvent};

/// How long the server waits for the client's close frame after its last event.
const CLOSE_WAIT: Duration = Duration::from_secs(5);
/// Longest non-JSON text kept in a record.
const MAX_RECORDED_TEXT: usize = 1000;

type Ws = WebSocketStream<TcpStream>;

/// The client is gone (a send failed); the session ends.
struct Gone;

/// How the main loop ended.
enum End {
    /// `session.closed` was sent: wait for the client's close frame.
    Closed,
    /// The server closed the socket (expiry, engine failure): wait for the close reply.
    ServerClosed,
    /// The client closed or vanished.
    ClientGone,
}

struct Session {
    sink: SplitSink<Ws, Message>,
    shared: Arc<Shared>,
    record: RecordHandle,
    config: SessionConfig,
    next_event: u64,
    /// `session.close` received; input is over.
    closing: bool,
    worker: Option<Worker>,
}

/// Runs one connection to its end; the record is marked ended when `record` drops.
pub(crate) async fn run(
    ws: Ws,
    peer: SocketAddr,
    accepted: Accepted,
    shared: Arc<Shared>,
    record: RecordHandle,
) {
    let n = shared.sessions.fetch_add(1, Ordering::Relaxed) + 1;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let lifetime = shared.config.session_lifetime;
    let config = SessionConfig::new(
        format!("sess_{n}"),
        accepted.model.clone(),
        now + lifetime.as_secs(),
    );
    let (sink, mut stream) = ws.split();
    let mut s = Session {
        sink,
        shared: shared.clone(),
        record,
        config,
        next_event: 0,
        closing: false,
        worker: None,
    };
    shared.config.log(|| {
        format!(
            "{peer}: sess_{n} opened ({}, model {})",
            accepted.path_and_query, accepted.model
        )
    });

    if accepted.beta_header {
        s.reject_beta(&mut stream).await;
        shared
            .config
            .log(|| format!("{peer}: sess_{n} refused: OpenAI-Beta header"));
        return;
    }

    let (events_tx, mut events_rx) = mpsc::unbounded_channel();
    let initial = EngineConfig {
        language: s.config.language.clone(),
        transcribe: s.config.transcribe(),
    };
    match Worker::spawn(
        format!("engine-sess_{n}"),
        shared.config.engine.clone(),
        initial,
        events_tx,
    ) {
        Ok(w) => s.worker = Some(w),
        Err(e) => {
            let _ = s
                .send_error(
                    "server_error",
                    "server_error",
                    &format!("cannot start engine: {e}"),
                    None,
                    None,
                )
                .await;
            let _ = s.close(CloseCode::Error, "server_error.server_error").await;
            s.await_client_close(&mut stream).await;
            return;
        }
    }

    let created = server::session_created(&s.event_id(), &s.config);
    let end = match s.send(created).await {
        Err(Gone) => End::ClientGone,
        Ok(()) => s
            .main_loop(&mut stream, &mut events_rx, lifetime)
            .await
            .unwrap_or(End::ClientGone),
    };
    let worker = s.worker.take();
    match end {
        End::Closed | End::ServerClosed => s.await_client_close(&mut stream).await,
        End::ClientGone => {}
    }
    if let Some(w) = worker {
        w.stop(true).await;
    }
    shared.config.log(|| {
        let r = &s.record;
        let mut code = None;
        r.update(|r| code = r.closed_with);
        format!("{peer}: sess_{n} ended (client close code {code:?})")
    });
}

impl Session {
    fn event_id(&mut self) -> String {
        self.next_event += 1;
        format!("ev_{}", self.next_event)
    }

    async fn send(&mut self, v: Value) -> Result<(), Gone> {
        self.sink
            .send(Message::text(v.to_string()))
            .await
            .map_err(|_| Gone)
    }

    async fn send_error(
        &mut self,
        error_type: &str,
        code: &str,
        message: &str,
        param: Option<&str>,
        client_event_id: Option<&str>,
    ) -> Result<(), Gone> {
        let id = self.event_id();
        self.send(server::error(
            &id,
            error_type,
            code,
            message,
            param,
            client_event_id,
        ))
        .await
    }

    async fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), Gone> {
        self.sink
            .send(Message::Close(Some(CloseFrame {
                code,
                reason: reason.to_owned().into(),
            })))
            .await
            .map_err(|_| Gone)
    }

    /// The live service refuses beta shapes on this endpoint: error event, then close 4000.
    async fn reject_beta(&mut self, stream: &mut SplitStream<Ws>) {
        let sent = self
            .send_error(
                "invalid_request_error",
                "beta_api_shape_disabled",
                "The OpenAI-Beta header is not supported on the realtime translation endpoint; \
                 remove it.",
                None,
                None,
            )
            .await;
        if sent.is_ok()
            && self
                .close(
                    CloseCode::from(4000),
                    "invalid_request_error.beta_api_shape_disabled",
                )
                .await
                .is_ok()
        {
            self.await_client_close(stream).await;
        }
    }

    async fn main_loop(
        &mut self,
        stream: &mut SplitStream<Ws>,
        events: &mut mpsc::UnboundedReceiver<WorkerEvent>,
        lifetime: Duration,
    ) -> Result<End, Gone> {
        let expiry = tokio::time::sleep(lifetime);
        tokio::pin!(expiry);
        loop {
            tokio::select! {
                msg = stream.next() => match msg {
                    Some(Ok(Message::Text(t))) => self.on_frame(t.as_str()).await?,
                    Some(Ok(Message::Binary(b))) => match std::str::from_utf8(&b) {
                        Ok(t) => self.on_frame(t).await?,
                        Err(_) => self.on_binary_garbage(b.len()).await?,
                    },
                    Some(Ok(Message::Close(frame))) => {
                        self.record.update(|r| r.closed_with = frame.map(|f| u16::from(f.code)));
                        // Let tungstenite flush its close reply.
                        let _ = tokio::time::timeout(Duration::from_millis(500), stream.next()).await;
                        return Ok(End::ClientGone);
                    }
                    Some(Ok(_)) => {} // ping/pong: tungstenite answers pings itself
                    Some(Err(_)) | None => return Ok(End::ClientGone),
                },
                ev = events.recv() => match ev {
                    Some(WorkerEvent::Output { output, elapsed_ms }) => {
                        self.on_output(output, elapsed_ms).await?
                    }
                    Some(WorkerEvent::Error(text)) => {
                        self.send_error("server_error", "server_error", &text, None, None).await?
                    }
                    Some(WorkerEvent::Finished) => {
                        let id = self.event_id();
                        self.send(server::session_closed(&id)).await?;
                        self.record.update(|r| r.sent_session_closed = true);
                        return Ok(End::Closed);
                    }
                    None => {
                        // The engine thread died (panicked) without finishing.
                        self.send_error(
                            "server_error",
                            "server_error",
                            "The translation engine stopped unexpectedly.",
                            None,
                            None,
                        )
                        .await?;
                        self.close(CloseCode::Error, "server_error.server_error").await?;
                        return Ok(End::ServerClosed);
                    }
                },
                _ = &mut expiry => {
                    self.send_error(
                        "invalid_request_error",
                        "session_expired",
                        "Your session hit the maximum duration.",
                        None,
                        None,
                    )
                    .await?;
                    self.close(CloseCode::Normal, "invalid_request_error.session_expired").await?;
                    return Ok(End::ServerClosed);
                }
            }
        }
    }

    /// After the last server event: wait (bounded) for the client's close frame and record it.
    async fn await_client_close(&mut self, stream: &mut SplitStream<Ws>) {
        let wait = async {
            while let Some(msg) = stream.next().await {
                match msg {
                    Ok(Message::Close(frame)) => {
                        self.record
                            .update(|r| r.closed_with = frame.map(|f| u16::from(f.code)));
                    }
                    Ok(Message::Text(t)) => self.record_late(t.as_str()),
                    Ok(Message::Binary(b)) => {
                        self.record_late(&String::from_utf8_lossy(&b));
                    }
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
        };
        if tokio::time::timeout(CLOSE_WAIT, wait).await.is_err() {
            let _ = self.close(CloseCode::Normal, "").await;
        }
    }

    /// A frame after the session ended: recorded, not answered.
    fn record_late(&mut self, text: &str) {
        let (rec, _) = initial_record(text);
        self.record.push_event(rec, |_| {});
    }

    async fn on_binary_garbage(&mut self, len: usize) -> Result<(), Gone> {
        let rec = ClientEventRecord {
            kind: "<binary not utf-8>".into(),
            received_at: Instant::now(),
            audio_samples: None,
            audio_rms: None,
            json: Value::String(format!("<{len} bytes>")),
        };
        let err = ProtocolError {
            code: "invalid_event",
            message: "Binary frames must hold UTF-8 JSON.".into(),
            param: None,
        };
        self.reject(rec, err, None, true).await
    }

    /// Records the event and answers with an `error`.
    async fn reject(
        &mut self,
        rec: ClientEventRecord,
        err: ProtocolError,
        client_id: Option<String>,
        schema_error: bool,
    ) -> Result<(), Gone> {
        let note = format!(
            "{} ({}{}): {}",
            rec.kind,
            err.code,
            err.param
                .as_deref()
                .map(|p| format!(", {p}"))
                .unwrap_or_default(),
            err.message
        );
        self.record.push_event(rec, |r| {
            if schema_error {
                r.schema_errors.push(note);
            }
        });
        self.send_error(
            "invalid_request_error",
            err.code,
            &err.message,
            err.param.as_deref(),
            client_id.as_deref(),
        )
        .await
    }

    async fn on_frame(&mut self, text: &str) -> Result<(), Gone> {
        let (mut rec, value) = initial_record(text);
        let value = match value {
            Ok(v) => v,
            Err(e) => return self.reject(rec, e, None, true).await,
        };
        let client_id = protocol::client_event_id(&value);
        let event = match protocol::validate_client_event(&value) {
            Ok(ev) => ev,
            Err(e) => return self.reject(rec, e, client_id, true).await,
        };
        match event {
            ClientEvent::Append(b64) => match protocol::decode_audio(&b64) {
                Ok(pcm) => {
                    rec.audio_samples = Some(pcm.len());
                    rec.audio_rms = Some(rms(&pcm));
                    rec.json["audio"] = Value::String(format!("<{} bytes>", pcm.len() * 2));
                    self.record.push_event(rec, |_| {});
                    if !self.closing
                        && let Some(w) = &self.worker
                    {
                        w.send(Command::Audio(pcm));
                    }
                    Ok(())
                }
                Err(e) => self.reject(rec, e, client_id, true).await,
            },
            ClientEvent::Update(patch) => {
                if let Some(lang) = &patch.language {
                    let supported = self.shared.config.engine.supported_languages();
                    if !supported.contains(&lang.as_str()) {
                        let err = ProtocolError {
                            code: "invalid_value",
                            message: format!(
                                "Invalid value: '{lang}'. This server's '{}' engine translates \
                                 only into: {}.",
                                self.shared.config.engine.name(),
                                supported.join(", ")
                            ),
                            param: Some("session.audio.output.language".into()),
                        };
                        return self.reject(rec, err, client_id, false).await;
                    }
                }
                self.record.push_event(rec, |_| {});
                self.config.merge(&patch);
                let id = self.event_id();
                self.send(server::session_updated(&id, &self.config))
                    .await?;
                if let Some(w) = &self.worker {
                    w.send(Command::Configure(EngineConfig {
                        language: self.config.language.clone(),
                        transcribe: self.config.transcribe(),
                    }));
                }
                Ok(())
            }
            ClientEvent::Close => {
                self.record.push_event(rec, |_| {});
                if !self.closing {
                    self.closing = true;
                    if let Some(w) = &self.worker {
                        w.send(Command::Finish);
                    }
                }
                Ok(())
            }
        }
    }

    async fn on_output(&mut self, output: EngineOutput, elapsed_ms: u64) -> Result<(), Gone> {
        match output {
            EngineOutput::InputTranscript(t) => {
                if self.config.transcribe() && !t.is_empty() {
                    let id = self.event_id();
                    self.send(server::input_transcript_delta(&id, &t, elapsed_ms))
                        .await?;
                }
            }
            EngineOutput::OutputTranscript(t) => {
                if !t.is_empty() {
                    let id = self.event_id();
                    self.send(server::output_transcript_delta(&id, &t, elapsed_ms))
                        .await?;
                }
            }
            EngineOutput::OutputAudio(pcm) => {
                for chunk in pcm.chunks(MAX_DELTA_SAMPLES) {
                    let id = self.event_id();
                    self.send(server::output_audio_delta(&id, chunk, elapsed_ms))
                        .await?;
                }
            }
        }
        Ok(())
    }
}

/// The record of a frame before validation, and its JSON (or why it is not JSON).
fn initial_record(text: &str) -> (ClientEventRecord, Result<Value, ProtocolError>) {
    let parsed = protocol::parse_json(text);
    let (kind, json) = match &parsed {
        Ok(v) => {
            let kind = match v.get("type") {
                Some(Value::String(t)) => t.clone(),
                _ => "<no type>".into(),
            };
            let mut json = v.clone();
            if let Some(Value::String(a)) = json.get("audio") {
                // Replaced by the decoded size once the audio has been decoded.
                let label = format!("<{} base64 chars>", a.len());
                json["audio"] = Value::String(label);
            }
            (kind, json)
        }
        Err(_) => (
            "<not json>".into(),
            Value::String(text.chars().take(MAX_RECORDED_TEXT).collect()),
        ),
    };
    let rec = ClientEventRecord {
        kind,
        received_at: Instant::now(),
        audio_samples: None,
        audio_rms: None,
        json,
    };
    (rec, parsed)
}

/// Root mean square in int16 units; 0 for no samples.
fn rms(pcm: &[i16]) -> f64 {
    if pcm.is_empty() {
        return 0.0;
    }
    let sum: f64 = pcm.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    (sum / pcm.len() as f64).sqrt()
}
