//! The WebSocket client of one translation session, running on the shared tokio runtime.
//!
//! The streaming thread hands it 200 ms chunks through a bounded channel and never waits for the
//! network; everything the server says comes back through a callback as [`SessionEvent`]s. Every
//! network step has a time limit, so a dead peer becomes an error instead of a hang.

use crate::protocol::translation::{ClientEvent, ServerEvent, SessionConfig};
use crate::runtime::RUNTIME;
use crate::secret::ApiKey;
use futures_util::{SinkExt, StreamExt};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::{Instant, timeout, timeout_at};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message};

/// Chunks the channel holds: 64 × 200 ms ≈ 13 s of audio while the connection is being set up.
pub const AUDIO_QUEUE_CHUNKS: usize = 64;
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the session connects.
#[derive(Debug, Clone, PartialEq)]
pub enum Endpoint {
    /// A server at this URL (`model` query parameter added when missing).
    Remote { url: String, model: String },
    /// The in-process offline engine.
    Local { model: String },
}

impl Endpoint {
    async fn resolve(&self) -> Result<String, SessionError> {
        match self {
            Endpoint::Remote { url, model } => Ok(url_with_model(url, model)),
            Endpoint::Local { model } => crate::local_engine::url()
                .await
                .map(|url| url_with_model(&url, model))
                .map_err(SessionError::Connection),
        }
    }
}

/// The SDKs take a base endpoint and append `?model=`; a `model` the user already put in the URL
/// wins.
pub fn url_with_model(url: &str, model: &str) -> String {
    let query = url.split_once('?').map(|(_, q)| q).unwrap_or("");
    if query.split('&').any(|pair| pair.starts_with("model=")) || model.is_empty() {
        return url.to_owned();
    }
    let separator = if url.contains('?') { "&" } else { "?" };
    format!("{url}{separator}model={model}")
}

/// What the element needs to open a session.
#[derive(Debug, Clone)]
pub struct SessionParams {
    pub endpoint: Endpoint,
    pub api_key: Option<ApiKey>,
    pub safety_identifier: Option<String>,
    pub config: SessionConfig,
    pub connect_timeout: Duration,
    /// After `session.close`, how long to wait for `session.closed`.
    pub drain_timeout: Duration,
}

/// Why a session ended badly.
#[derive(Debug, Clone, PartialEq)]
pub enum SessionError {
    /// The service refused the key: retrying cannot help.
    Authentication(String),
    /// Billing or permission problem reported by the service: retrying cannot help.
    Refused(String),
    /// Could not connect or the connection broke.
    Connection(String),
    /// The service closed the session.
    Closed(String),
}

impl std::fmt::Display for SessionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SessionError::Authentication(why) => write!(f, "authentication failed: {why}"),
            SessionError::Refused(why) => write!(f, "the service refused the session: {why}"),
            SessionError::Connection(why) => write!(f, "connection failed: {why}"),
            SessionError::Closed(why) => write!(f, "the service closed the session: {why}"),
        }
    }
}

/// What the session reports to the element.
#[derive(Debug, Clone, PartialEq)]
pub enum SessionEvent {
    Connected {
        session_id: String,
        expires_at: Option<i64>,
    },
    InputTranscript(String),
    OutputTranscript(String),
    /// Translated speech as the server sent it.
    OutputAudio {
        samples: Vec<i16>,
        sample_rate: u32,
        channels: u16,
    },
    /// A recoverable problem (service `error` event, unparsable frame).
    Warning(String),
    /// `session.closed` arrived after `session.close` (or the drain time ran out).
    Finished,
    Failed(SessionError),
}

/// Counters for statistics.
#[derive(Debug, Default)]
pub struct SessionCounters {
    pub samples_sent: AtomicU64,
    pub samples_received: AtomicU64,
}

enum Control {
    Update(SessionConfig),
    Close,
}

/// Handle on a running session; dropping it aborts the connection at once.
pub struct Session {
    audio: mpsc::Sender<Vec<i16>>,
    control: mpsc::Sender<Control>,
    task: tokio::task::JoinHandle<()>,
    counters: Arc<SessionCounters>,
}

/// The audio channel is full: the connection is not keeping up.
#[derive(Debug)]
pub struct Backpressure;

type Callback = Arc<dyn Fn(SessionEvent) + Send + Sync>;

impl Session {
    /// Starts connecting in the background; returns at once.
    pub fn start(params: SessionParams, on_event: Callback) -> Session {
        let (audio_tx, audio_rx) = mpsc::channel(AUDIO_QUEUE_CHUNKS);
        let (control_tx, control_rx) = mpsc::channel(16);
        let counters = Arc::new(SessionCounters::default());
        let task = RUNTIME.spawn(run(
            params,
            audio_rx,
            control_rx,
            on_event,
            counters.clone(),
        ));
        Session {
            audio: audio_tx,
            control: control_tx,
            task,
            counters,
        }
    }

    /// Queues a chunk of 24 kHz mono samples without waiting.
    pub fn send_audio(&self, chunk: Vec<i16>) -> Result<(), Backpressure> {
        match self.audio.try_send(chunk) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => Err(Backpressure),
            // The task has ended; it reported why through the callback.
            Err(mpsc::error::TrySendError::Closed(_)) => Ok(()),
        }
    }

    /// Sends a new `session.update` (e.g. the target language changed while playing).
    pub fn update(&self, config: SessionConfig) {
        let _ = self.control.try_send(Control::Update(config));
    }

    /// Flushes the queued audio, then sends `session.close`; `Finished` follows.
    pub fn close(&self) {
        let _ = self.control.try_send(Control::Close);
    }

    pub fn counters(&self) -> &SessionCounters {
        &self.counters
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn run(
    params: SessionParams,
    audio: mpsc::Receiver<Vec<i16>>,
    control: mpsc::Receiver<Control>,
    on_event: Callback,
    counters: Arc<SessionCounters>,
) {
    let result = converse(&params, audio, control, &*on_event, &counters).await;
    match result {
        Ok(()) => on_event(SessionEvent::Finished),
        Err(err) => on_event(SessionEvent::Failed(err)),
    }
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(params: &SessionParams) -> Result<Socket, SessionError> {
    let url = params.endpoint.resolve().await?;
    let mut request = url
        .as_str()
        .into_client_request()
        .map_err(|err| SessionError::Connection(format!("invalid url: {err}")))?;
    let headers = request.headers_mut();
    if let Some(key) = &params.api_key {
        let value = key.bearer().parse().map_err(|_| {
            SessionError::Authentication("the API key has characters a header cannot carry".into())
        })?;
        headers.insert("Authorization", value);
    }
    if let Some(id) = &params.safety_identifier
        && let Ok(value) = id.parse()
    {
        headers.insert("OpenAI-Safety-Identifier", value);
    }
    let connecting = tokio_tungstenite::connect_async_tls_with_config(
        request,
        None,
        true,
        Some(crate::tls::connector()),
    );
    match timeout(params.connect_timeout, connecting).await {
        Err(_) => Err(SessionError::Connection(format!(
            "no answer from the server within {} s",
            params.connect_timeout.as_secs()
        ))),
        Ok(Ok((socket, _response))) => Ok(socket),
        Ok(Err(tungstenite::Error::Http(response))) => {
            let status = response.status();
            let body = response
                .body()
                .as_deref()
                .map(|b| String::from_utf8_lossy(&b[..b.len().min(300)]).into_owned())
                .unwrap_or_default();
            if status == 401 || status == 403 {
                Err(SessionError::Authentication(format!(
                    "the server answered HTTP {status} {body}"
                )))
            } else {
                Err(SessionError::Connection(format!(
                    "the server answered HTTP {status} {body}"
                )))
            }
        }
        Ok(Err(err)) => Err(SessionError::Connection(err.to_string())),
    }
}

/// Classifies a close frame; `<error.type>.<error.code>` reasons are how the service says why.
fn close_error(frame: Option<&CloseFrame>) -> SessionError {
    let Some(frame) = frame else {
        return SessionError::Connection("the server closed the connection".into());
    };
    let reason = frame.reason.as_str();
    let text = format!("close code {} {reason}", u16::from(frame.code));
    if reason.contains("invalid_api_key") || reason.starts_with("authentication") {
        SessionError::Authentication(text)
    } else if reason.contains("insufficient_quota") || reason.starts_with("permission") {
        SessionError::Refused(text)
    } else {
        SessionError::Closed(text)
    }
}

async fn send(socket: &mut Socket, event: &ClientEvent) -> Result<(), SessionError> {
    match timeout(SEND_TIMEOUT, socket.send(Message::text(event.to_json()))).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(err)) => Err(SessionError::Connection(err.to_string())),
        Err(_) => Err(SessionError::Connection("sending stalled for 10 s".into())),
    }
}

async fn converse(
    params: &SessionParams,
    mut audio: mpsc::Receiver<Vec<i16>>,
    mut control: mpsc::Receiver<Control>,
    on_event: &(dyn Fn(SessionEvent) + Send + Sync),
    counters: &SessionCounters,
) -> Result<(), SessionError> {
    let mut socket = connect(params).await?;
    send(&mut socket, &ClientEvent::Update(params.config.clone())).await?;
    let mut drain_deadline: Option<Instant> = None;
    let mut control_open = true;
    let mut audio_open = true;
    loop {
        let deadline = drain_deadline;
        tokio::select! {
            biased;
            frame = socket.next() => {
                let frame = match frame {
                    None => return Err(SessionError::Connection("the connection ended".into())),
                    Some(Err(err)) => return Err(SessionError::Connection(err.to_string())),
                    Some(Ok(frame)) => frame,
                };
                let text = match &frame {
                    Message::Text(text) => text.as_str().to_owned(),
                    Message::Binary(bytes) => match std::str::from_utf8(bytes) {
                        Ok(text) => text.to_owned(),
                        Err(_) => {
                            on_event(SessionEvent::Warning("binary frame that is not UTF-8 JSON ignored".into()));
                            continue;
                        }
                    },
                    Message::Close(close) => return Err(close_error(close.as_ref())),
                    _ => continue,
                };
                match ServerEvent::parse(&text) {
                    Err(err) => on_event(SessionEvent::Warning(err.to_string())),
                    Ok(ServerEvent::Created(info)) => on_event(SessionEvent::Connected {
                        session_id: info.id,
                        expires_at: info.expires_at,
                    }),
                    Ok(ServerEvent::Updated(_) | ServerEvent::Unknown(_)) => {}
                    Ok(ServerEvent::InputTranscript { delta }) => on_event(SessionEvent::InputTranscript(delta)),
                    Ok(ServerEvent::OutputTranscript { delta }) => on_event(SessionEvent::OutputTranscript(delta)),
                    Ok(ServerEvent::OutputAudio { samples, sample_rate, channels }) => {
                        counters.samples_received.fetch_add(samples.len() as u64 / channels as u64, Ordering::Relaxed);
                        on_event(SessionEvent::OutputAudio { samples, sample_rate, channels });
                    }
                    Ok(ServerEvent::Error(err)) if err.is_fatal() => {
                        let _ = socket.close(None).await;
                        return Err(if err.code.as_deref() == Some("invalid_api_key") || err.kind == "authentication_error" {
                            SessionError::Authentication(err.to_string())
                        } else {
                            SessionError::Refused(err.to_string())
                        });
                    }
                    Ok(ServerEvent::Error(err)) => on_event(SessionEvent::Warning(format!("service error: {err}"))),
                    Ok(ServerEvent::Closed) => {
                        let goodbye = CloseFrame { code: CloseCode::Normal, reason: "".into() };
                        let _ = timeout(Duration::from_secs(1), socket.close(Some(goodbye))).await;
                        return Ok(());
                    }
                }
            }
            command = control.recv(), if control_open => match command {
                None => control_open = false,
                Some(Control::Update(config)) => send(&mut socket, &ClientEvent::Update(config)).await?,
                Some(Control::Close) => {
                    // Everything queued before the close goes out first.
                    while let Ok(chunk) = audio.try_recv() {
                        counters.samples_sent.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                        send(&mut socket, &ClientEvent::Append(chunk)).await?;
                    }
                    audio.close();
                    send(&mut socket, &ClientEvent::Close).await?;
                    drain_deadline = Some(Instant::now() + params.drain_timeout);
                    control_open = false;
                }
            },
            chunk = audio.recv(), if audio_open && drain_deadline.is_none() => match chunk {
                None => audio_open = false,
                Some(chunk) => {
                    counters.samples_sent.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                    send(&mut socket, &ClientEvent::Append(chunk)).await?;
                }
            },
            _ = async { timeout_at(deadline.unwrap_or_else(Instant::now), std::future::pending::<()>()).await }, if deadline.is_some() => {
                on_event(SessionEvent::Warning(format!(
                    "no session.closed within {} ms of session.close; ending the session",
                    params.drain_timeout.as_millis()
                )));
                let _ = timeout(Duration::from_secs(1), socket.close(None)).await;
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_is_appended_unless_the_url_has_one() {
        assert_eq!(
            url_with_model("wss://h/v1/realtime/translations", "m"),
            "wss://h/v1/realtime/translations?model=m"
        );
        assert_eq!(url_with_model("ws://h/p?x=1", "m"), "ws://h/p?x=1&model=m");
        assert_eq!(
            url_with_model("ws://h/p?model=mine", "m"),
            "ws://h/p?model=mine"
        );
    }
}
