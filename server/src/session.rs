//! One accepted connection: sends `session.created`, validates and records every client frame, feeds
//! the engine thread, relays its outputs as events, and runs the `session.close` → `session.closed` →
//! client close sequence. Every client mistake is answered with an `error` event; the session stays open.
//! Injected faults (see [`crate::faults`]) fire from here.

use std::collections::VecDeque;
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

use crate::engine::{EngineOutput, SessionOptions};
use crate::faults::{self, AudioAction, AudioTrigger, FaultSend, Faults, wire};
use crate::handshake::Accepted;
use crate::protocol::{self, ClientEvent, MAX_DELTA_SAMPLES, ProtocolError, SessionConfig, server};
use crate::record::{ClientEventRecord, FiredFault, RecordHandle};
use crate::shared::Shared;
use crate::worker::{Command, EngineConfig, Worker, WorkerEvent};

/// How long the server waits for the client's close frame after its last event.
const CLOSE_WAIT: Duration = Duration::from_secs(5);
/// Longest non-JSON text kept in a record.
const MAX_RECORDED_TEXT: usize = 1000;
/// Longest wait for the engine's output of the audio before a fault fires.
const FAULT_FLUSH_TIMEOUT: Duration = Duration::from_secs(2);

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
    /// `fault_drop_after_audio_ms`: drop the TCP connection without a close frame.
    Dropped,
    /// `fault_stall_after_audio_ms`: hold the connection silently until the client goes.
    Stalled,
    /// `fault_mute_after_audio_ms`: read (and answer pings) but say nothing until the client goes.
    Muted,
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
    /// When `session.created` was sent: session time starts here.
    created_at: Instant,
    /// Input audio passed to the engine, in samples.
    audio_samples: u64,
    /// Audio-triggered faults not yet fired, earliest first.
    triggers: Vec<AudioTrigger>,
    /// A trigger reached by the last append; fired by the main loop.
    pending_fault: Option<AudioAction>,
    /// `fault_answer_delay_ms`: how long engine events are held back (zero without it).
    answer_delay: Duration,
    /// `fault_huge_text_after_audio_ms`, in samples, and its two frames (made up front, so that
    /// making them does not hold up the reading of the client's audio), until it fires.
    huge_text: Option<(u64, [Message; 2])>,
    /// `fault_audio_repeat`: times each audio delta is sent (1 without it).
    audio_repeat: u32,
    /// The recogniser and source language the URL asked for.
    engine_options: SessionOptions,
    /// `fault_language`: audio-triggered faults fire only while translating into it.
    fault_language: Option<String>,
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
    let faults = accepted.faults.clone();
    let expires_at = match faults.expiry() {
        Some((ms, _, true)) => now + ms.div_ceil(1000),
        _ => now + lifetime.as_secs(),
    };
    let config = SessionConfig::new(format!("sess_{n}"), accepted.model.clone(), expires_at);
    let (sink, mut stream) = ws.split();
    let mut s = Session {
        sink,
        shared: shared.clone(),
        record,
        config,
        next_event: 0,
        closing: false,
        worker: None,
        created_at: Instant::now(),
        audio_samples: 0,
        triggers: faults.audio_triggers(),
        pending_fault: None,
        answer_delay: faults.answer_delay().unwrap_or_default(),
        huge_text: faults.huge_text_after_audio_ms.map(huge_text_frames),
        audio_repeat: faults.audio_repeat.unwrap_or(1),
        engine_options: SessionOptions {
            model: accepted.model.clone(),
            source_language: accepted.source_language.clone(),
        },
        fault_language: faults.language.clone(),
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
    // Aborted when the session ends, whichever way.
    let mut _delay_stage = None;
    if let Some(delay) = faults.answer_delay() {
        let (delayed, stage) = delay_events(events_rx, delay);
        events_rx = delayed;
        _delay_stage = Some(stage);
    }
    let initial = EngineConfig {
        language: s.config.language.clone(),
        transcribe: s.config.transcribe(),
        options: s.engine_options.clone(),
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
    s.created_at = Instant::now();
    let mut sent = s.send(created).await;
    if sent.is_ok()
        && let Some(kind) = faults.send
    {
        sent = s.send_garbage(kind, n).await;
    }
    if faults.answer_delay_ms.is_some() {
        // In effect from the start: the engine's first output is already held back.
        s.record_fired("fault_answer_delay_ms");
    }
    if faults.audio_repeat.is_some() {
        s.record_fired("fault_audio_repeat");
    }
    let end = match sent {
        Err(Gone) => End::ClientGone,
        Ok(()) => s
            .main_loop(&mut stream, &mut events_rx, lifetime, &faults)
            .await
            .unwrap_or(End::ClientGone),
    };
    let mut worker = s.worker.take();
    match end {
        End::Closed | End::ServerClosed => s.await_client_close(&mut stream).await,
        End::ClientGone => {}
        End::Dropped => {
            // Both halves gone: the socket closes with no close frame (FIN, or RST if unread data).
            drop(stream);
            drop(s.sink);
            shared
                .config
                .log(|| format!("{peer}: sess_{n} dropped (fault)"));
        }
        End::Stalled => {
            if let Some(w) = worker.take() {
                w.stop(true).await;
            }
            shared
                .config
                .log(|| format!("{peer}: sess_{n} stalled (fault)"));
            stall(s.sink, stream).await;
        }
        End::Muted => {
            if let Some(w) = worker.take() {
                w.stop(true).await;
            }
            shared
                .config
                .log(|| format!("{peer}: sess_{n} muted (fault)"));
            // Reading answers pings; everything the client sends is dropped.
            while let Some(Ok(frame)) = stream.next().await {
                if matches!(frame, Message::Close(_)) {
                    break;
                }
            }
        }
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
        self.send_text(v.to_string()).await
    }

    async fn send_text(&mut self, text: String) -> Result<(), Gone> {
        self.sink.send(Message::text(text)).await.map_err(|_| Gone)
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
        faults: &Faults,
    ) -> Result<End, Gone> {
        // The earlier of the configured lifetime and an injected expiry.
        let (expire_after, expiry_fault) = match faults.expiry() {
            Some((ms, name, _)) if Duration::from_millis(ms) <= lifetime => {
                (Duration::from_millis(ms), Some(name))
            }
            _ => (lifetime, None),
        };
        let expiry = tokio::time::sleep_until(tokio::time::Instant::from_std(
            self.created_at + expire_after,
        ));
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
                ev = events.recv() => {
                    if let Some(end) = self.on_worker_event(ev).await? {
                        return Ok(end);
                    }
                }
                _ = &mut expiry => {
                    if let Some(name) = expiry_fault {
                        return self.fire(AudioAction::Expire(name), events).await;
                    }
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
            if let Some(action) = self.pending_fault.take() {
                return self.fire(action, events).await;
            }
        }
    }

    /// Relays one engine-thread event; `Some` when it ends the session.
    async fn on_worker_event(&mut self, ev: Option<WorkerEvent>) -> Result<Option<End>, Gone> {
        match ev {
            Some(WorkerEvent::Output { output, elapsed_ms }) => {
                self.on_output(output, elapsed_ms).await?
            }
            Some(WorkerEvent::Error(text)) => {
                self.send_error("server_error", "server_error", &text, None, None)
                    .await?
            }
            Some(WorkerEvent::Synced) => {} // a fault flush that timed out; nothing to do
            Some(WorkerEvent::Finished) => {
                let id = self.event_id();
                self.send(server::session_closed(&id)).await?;
                self.record.update(|r| r.sent_session_closed = true);
                return Ok(Some(End::Closed));
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
                self.close(CloseCode::Error, "server_error.server_error")
                    .await?;
                return Ok(Some(End::ServerClosed));
            }
        }
        Ok(None)
    }

    /// Relays the engine's outputs until it has processed all audio sent so far (bounded), so that
    /// a fault lands after the translation of the audio before it. `Some` if the session ended.
    async fn flush_engine(
        &mut self,
        events: &mut mpsc::UnboundedReceiver<WorkerEvent>,
    ) -> Result<Option<End>, Gone> {
        let Some(w) = &self.worker else {
            return Ok(None);
        };
        w.send(Command::Sync);
        // Delayed outputs (and the Synced after them) come that much later.
        let timeout = tokio::time::sleep(FAULT_FLUSH_TIMEOUT + self.answer_delay);
        tokio::pin!(timeout);
        loop {
            tokio::select! {
                ev = events.recv() => {
                    if matches!(ev, Some(WorkerEvent::Synced)) {
                        return Ok(None);
                    }
                    if let Some(end) = self.on_worker_event(ev).await? {
                        return Ok(Some(end));
                    }
                }
                _ = &mut timeout => return Ok(None),
            }
        }
    }

    fn record_fired(&mut self, parameter: &str) {
        let fired = FiredFault {
            parameter: parameter.to_owned(),
            at: Instant::now(),
            audio_ms: self.audio_samples / 24,
            session_ms: self.created_at.elapsed().as_millis() as u64,
        };
        self.record.update(|r| r.faults_fired.push(fired));
    }

    /// Fires a session-ending fault, after the output of the audio received before it.
    async fn fire(
        &mut self,
        action: AudioAction,
        events: &mut mpsc::UnboundedReceiver<WorkerEvent>,
    ) -> Result<End, Gone> {
        if let Some(end) = self.flush_engine(events).await? {
            return Ok(end);
        }
        self.record_fired(action.parameter());
        let audio_ms = self.audio_samples / 24;
        match action {
            AudioAction::Expire(name) => {
                let message = format!(
                    "Your session hit the maximum duration (injected fault: {name}, after \
                     {} ms of session time).",
                    self.created_at
                        .elapsed()
                        .as_millis()
                        .max(u128::from(audio_ms))
                );
                self.send_error(
                    "invalid_request_error",
                    "session_expired",
                    &message,
                    None,
                    None,
                )
                .await?;
                self.close(CloseCode::Away, "invalid_request_error.session_expired")
                    .await?;
                Ok(End::ServerClosed)
            }
            AudioAction::ServerError => {
                let message = format!(
                    "The server had an error while processing your request (injected fault: \
                     fault_server_error_after_audio_ms, after {audio_ms} ms of input audio)."
                );
                self.send_error("server_error", "server_error", &message, None, None)
                    .await?;
                self.close(CloseCode::Error, "server_error.server_error")
                    .await?;
                Ok(End::ServerClosed)
            }
            AudioAction::Error(code) => {
                let error_type = faults::error_type_for(&code);
                let message = format!(
                    "Injected fault: error '{code}' after {audio_ms} ms of input audio \
                     (fault_error_after_audio_ms)."
                );
                self.send_error(error_type, &code, &message, None, None)
                    .await?;
                self.close(CloseCode::from(3000), &format!("{error_type}.{code}"))
                    .await?;
                Ok(End::ServerClosed)
            }
            AudioAction::Drop => Ok(End::Dropped),
            AudioAction::Stall => Ok(End::Stalled),
            AudioAction::Mute => Ok(End::Muted),
        }
    }

    /// `fault_send`: one garbage frame right after `session.created`.
    async fn send_garbage(&mut self, kind: FaultSend, session_number: u64) -> Result<(), Gone> {
        let id = self.event_id();
        let frame = wire::garbage_frame(kind, &id, session_number);
        self.record_fired("fault_send");
        self.sink.send(frame).await.map_err(|_| Gone)
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
                    if !self.closing && self.pending_fault.is_none() {
                        self.translate(pcm);
                    }
                    self.send_huge_text_when_due().await
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
                        options: self.engine_options.clone(),
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

    /// Passes input audio to the engine, up to the next audio-triggered fault (the rest is
    /// discarded and the fault made pending).
    fn translate(&mut self, mut pcm: Vec<i16>) {
        let reached = self.audio_samples + pcm.len() as u64;
        let faults_apply = self
            .fault_language
            .as_ref()
            .is_none_or(|language| *language == self.config.language);
        if faults_apply
            && let Some(next) = self.triggers.first()
            && reached >= next.samples
        {
            let head = next.samples.saturating_sub(self.audio_samples);
            pcm.truncate(head as usize);
            self.pending_fault = Some(self.triggers.remove(0).action);
        }
        self.audio_samples += pcm.len() as u64;
        if !pcm.is_empty()
            && let Some(w) = &self.worker
        {
            w.send(Command::Audio(pcm));
        }
    }

    /// `fault_huge_text_after_audio_ms`: once the input audio has reached it, one oversized delta
    /// of translated text and one of source text, at the engine's current position.
    async fn send_huge_text_when_due(&mut self) -> Result<(), Gone> {
        if self
            .huge_text
            .as_ref()
            .is_none_or(|(at, _)| self.audio_samples < *at)
        {
            return Ok(());
        }
        let Some((_, frames)) = self.huge_text.take() else {
            return Ok(());
        };
        self.record_fired("fault_huge_text_after_audio_ms");
        for frame in frames {
            self.sink.send(frame).await.map_err(|_| Gone)?;
        }
        Ok(())
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
                for _ in 0..self.audio_repeat {
                    for chunk in pcm.chunks(MAX_DELTA_SAMPLES) {
                        let id = self.event_id();
                        self.send_text(server::output_audio_delta(&id, chunk, elapsed_ms))
                            .await?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// `fault_answer_delay_ms`: a stage between the engine thread and the session loop that hands on
/// every event `delay` after it came out of the engine, in order. It takes events as soon as they
/// come (so their production time is known), holds them, and ends once the engine's channel has
/// closed and everything held has gone out. The session loop keeps reading input meanwhile.
fn delay_events(
    mut from_engine: mpsc::UnboundedReceiver<WorkerEvent>,
    delay: Duration,
) -> (mpsc::UnboundedReceiver<WorkerEvent>, AbortOnDrop) {
    let (tx, delayed) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        let mut held: VecDeque<(tokio::time::Instant, WorkerEvent)> = VecDeque::new();
        let mut engine_open = true;
        loop {
            let due = held.front().map(|(at, _)| *at);
            tokio::select! {
                ev = from_engine.recv(), if engine_open => match ev {
                    Some(ev) => held.push_back((tokio::time::Instant::now() + delay, ev)),
                    None => engine_open = false,
                },
                _ = tokio::time::sleep_until(due.unwrap_or_else(tokio::time::Instant::now)),
                    if due.is_some() =>
                {
                    if let Some((_, ev)) = held.pop_front()
                        && tx.send(ev).is_err()
                    {
                        return; // the session is gone
                    }
                }
                // Engine finished (or died) and nothing is held: closing `tx` tells the session.
                else => return,
            }
        }
    });
    (delayed, AbortOnDrop(task))
}

/// `fault_huge_text_after_audio_ms=ms`: when it fires (in samples of input), and its frames: one
/// oversized delta of translated text, one of source text, at the engine position `ms`.
fn huge_text_frames(ms: u64) -> (u64, [Message; 2]) {
    let text = wire::huge_text();
    let elapsed_ms = ms / 200 * 200;
    let frames = [
        server::output_transcript_delta("ev_huge_1", &text, elapsed_ms),
        server::input_transcript_delta("ev_huge_2", &text, elapsed_ms),
    ]
    .map(|v| Message::text(v.to_string()));
    (ms * 24, frames)
}

/// `fault_stall_after_audio_ms`: the connection is held, silent, until the client goes.
async fn stall(sink: SplitSink<Ws, Message>, stream: SplitStream<Ws>) {
    if let Ok(ws) = sink.reunite(stream) {
        wire::stall(ws.get_ref()).await;
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
