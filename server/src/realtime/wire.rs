//! The connection side shared by both Realtime dialogues: numbering and naming server events,
//! a schedule for events that go out later (paced response audio, transcripts that finish
//! after a delay), recording and validating every client frame, session expiry, and the close.

use std::collections::VecDeque;
use std::time::Duration;

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use super::events;
use super::handshake::{EventNames, Kind};
use super::validate::{self, ClientEvent};
use crate::protocol::{self, ProtocolError};
use crate::record::{ClientEventRecord, RecordHandle};

/// How long the server waits for the client's close frame after its own last word.
const CLOSE_WAIT: Duration = Duration::from_secs(5);
/// Longest non-JSON text kept in a record.
const MAX_RECORDED_TEXT: usize = 1000;

pub(crate) type Ws = WebSocketStream<TcpStream>;

/// The client is gone (a send failed); the session ends.
pub(crate) struct Gone;

struct Scheduled {
    at: Instant,
    event: Value,
    /// Events of one response share a tag, so cancelling it drops the rest.
    tag: Option<String>,
}

/// The server's half of the socket, plus what it records and has scheduled.
pub(crate) struct Wire {
    sink: SplitSink<Ws, Message>,
    pub record: RecordHandle,
    names: EventNames,
    next_event: u64,
    schedule: VecDeque<Scheduled>,
}

impl Wire {
    pub fn new(sink: SplitSink<Ws, Message>, record: RecordHandle, names: EventNames) -> Self {
        Self {
            sink,
            record,
            names,
            next_event: 0,
            schedule: VecDeque::new(),
        }
    }

    /// Sends an event now, with the next `event_id` (and its beta name in beta mode).
    pub async fn send(&mut self, mut event: Value) -> Result<(), Gone> {
        self.next_event += 1;
        event["event_id"] = Value::String(format!("event_{}", self.next_event));
        if self.names == EventNames::Beta
            && let Some(beta) = event["type"].as_str().and_then(events::beta_name)
        {
            event["type"] = Value::String(beta.to_owned());
        }
        self.sink
            .send(Message::text(event.to_string()))
            .await
            .map_err(|_| Gone)
    }

    /// Queues an event for `at` (after the ones already due then).
    pub fn schedule(&mut self, at: Instant, event: Value, tag: Option<&str>) {
        let index = self.schedule.partition_point(|s| s.at <= at);
        self.schedule.insert(
            index,
            Scheduled {
                at,
                event,
                tag: tag.map(str::to_owned),
            },
        );
    }

    /// Drops the scheduled events of `tag`.
    pub fn unschedule(&mut self, tag: &str) {
        self.schedule.retain(|s| s.tag.as_deref() != Some(tag));
    }

    fn next_due(&self) -> Option<Instant> {
        self.schedule.front().map(|s| s.at)
    }

    pub async fn error(
        &mut self,
        code: &str,
        message: &str,
        param: Option<&str>,
        client_event_id: Option<&str>,
    ) -> Result<(), Gone> {
        self.send(events::error(
            "invalid_request_error",
            code,
            message,
            param,
            client_event_id,
        ))
        .await
    }

    pub async fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), Gone> {
        self.sink
            .send(Message::Close(Some(CloseFrame {
                code,
                reason: reason.to_owned().into(),
            })))
            .await
            .map_err(|_| Gone)
    }
}

/// A session's behaviour: what it does with each valid client event and with its own events
/// once they are sent.
pub(crate) trait Dialogue {
    /// The `session` object for `session.created`.
    fn session(&self) -> &Value;
    /// A schema-valid client event; `client_id` is its `event_id`, for errors.
    async fn on_event(
        &mut self,
        wire: &mut Wire,
        event: ClientEvent,
        client_id: Option<String>,
    ) -> Result<(), Gone>;
    /// A scheduled event just went out (to track when a response ends).
    fn sent(&mut self, event: &Value);
}

/// How the dialogue ended.
enum End {
    /// The server closed the socket (expiry): wait for the client's close reply.
    ServerClosed,
    ClientGone,
}

/// Runs a session to its end: `session.created`, then client frames, scheduled events and the
/// expiry, until either side closes.
pub(crate) async fn run(
    mut wire: Wire,
    mut stream: SplitStream<Ws>,
    dialogue: &mut impl Dialogue,
    kind: Kind,
    lifetime: Duration,
) {
    let created = events::session_created(dialogue.session());
    let end = match wire.send(created).await {
        Err(Gone) => End::ClientGone,
        Ok(()) => main_loop(&mut wire, &mut stream, dialogue, kind, lifetime)
            .await
            .unwrap_or(End::ClientGone),
    };
    if let End::ServerClosed = end {
        await_client_close(&mut wire, &mut stream).await;
    }
}

async fn main_loop(
    wire: &mut Wire,
    stream: &mut SplitStream<Ws>,
    dialogue: &mut impl Dialogue,
    kind: Kind,
    lifetime: Duration,
) -> Result<End, Gone> {
    let expiry = tokio::time::sleep(lifetime);
    tokio::pin!(expiry);
    loop {
        let due = wire.next_due();
        tokio::select! {
            msg = stream.next() => match msg {
                Some(Ok(Message::Text(t))) => on_frame(wire, dialogue, kind, t.as_str()).await?,
                Some(Ok(Message::Binary(b))) => match std::str::from_utf8(&b) {
                    Ok(t) => on_frame(wire, dialogue, kind, t).await?,
                    Err(_) => {
                        let rec = record_of("<binary not utf-8>", Value::String(format!("<{} bytes>", b.len())));
                        let err = ProtocolError {
                            code: "invalid_event",
                            message: "Binary frames must hold UTF-8 JSON.".into(),
                            param: None,
                        };
                        reject(wire, rec, err, None).await?;
                    }
                },
                Some(Ok(Message::Close(frame))) => {
                    wire.record.update(|r| r.closed_with = frame.map(|f| u16::from(f.code)));
                    // Let tungstenite flush its close reply.
                    let _ = tokio::time::timeout(Duration::from_millis(500), stream.next()).await;
                    return Ok(End::ClientGone);
                }
                Some(Ok(_)) => {} // ping/pong: tungstenite answers pings itself
                Some(Err(_)) | None => return Ok(End::ClientGone),
            },
            _ = tokio::time::sleep_until(due.unwrap_or_else(Instant::now)), if due.is_some() => {
                if let Some(next) = wire.schedule.pop_front() {
                    wire.send(next.event.clone()).await?;
                    dialogue.sent(&next.event);
                }
            }
            _ = &mut expiry => {
                wire.send(events::error(
                    "invalid_request_error",
                    "session_expired",
                    "Your session hit the maximum duration of 60 minutes.",
                    None,
                    None,
                ))
                .await?;
                wire.close(CloseCode::Normal, "invalid_request_error.session_expired").await?;
                return Ok(End::ServerClosed);
            }
        }
    }
}

fn record_of(kind: &str, json: Value) -> ClientEventRecord {
    ClientEventRecord {
        kind: kind.to_owned(),
        received_at: std::time::Instant::now(),
        audio_samples: None,
        audio_rms: None,
        json,
    }
}

/// Records a refused event as a schema error and answers with an `error`.
async fn reject(
    wire: &mut Wire,
    rec: ClientEventRecord,
    err: ProtocolError,
    client_id: Option<&str>,
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
    wire.record.push_event(rec, |r| r.schema_errors.push(note));
    wire.error(err.code, &err.message, err.param.as_deref(), client_id)
        .await
}

async fn on_frame(
    wire: &mut Wire,
    dialogue: &mut impl Dialogue,
    kind: Kind,
    text: &str,
) -> Result<(), Gone> {
    let value = match protocol::parse_json(text) {
        Ok(v) => v,
        Err(err) => {
            let rec = record_of(
                "<not json>",
                Value::String(text.chars().take(MAX_RECORDED_TEXT).collect()),
            );
            return reject(wire, rec, err, None).await;
        }
    };
    let ty = match value.get("type") {
        Some(Value::String(t)) => t.clone(),
        _ => "<no type>".into(),
    };
    let mut json = value.clone();
    if let Some(Value::String(a)) = json.get("audio") {
        let label = format!("<{} base64 chars>", a.len());
        json["audio"] = Value::String(label);
    }
    let mut rec = record_of(&ty, json);
    let client_id = protocol::client_event_id(&value);
    let event = match validate::client_event(&value, kind) {
        Ok(event) => event,
        Err(err) => return reject(wire, rec, err, client_id.as_deref()).await,
    };
    if let ClientEvent::Append(pcm) = &event {
        rec.audio_samples = Some(pcm.len());
        rec.audio_rms = Some(rms(pcm));
        rec.json["audio"] = Value::String(format!("<{} bytes>", pcm.len() * 2));
    }
    wire.record.push_event(rec, |_| {});
    dialogue.on_event(wire, event, client_id).await
}

/// After the server's last word: wait (bounded) for the client's close frame and record it.
pub(crate) async fn await_client_close(wire: &mut Wire, stream: &mut SplitStream<Ws>) {
    let record = &wire.record;
    let wait = async {
        while let Some(msg) = stream.next().await {
            match msg {
                Ok(Message::Close(frame)) => {
                    record.update(|r| r.closed_with = frame.map(|f| u16::from(f.code)));
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
    };
    if tokio::time::timeout(CLOSE_WAIT, wait).await.is_err() {
        let _ = wire.close(CloseCode::Normal, "").await;
    }
}

/// Root mean square in int16 units; 0 for no samples.
fn rms(pcm: &[i16]) -> f64 {
    if pcm.is_empty() {
        return 0.0;
    }
    let sum: f64 = pcm.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    (sum / pcm.len() as f64).sqrt()
}
