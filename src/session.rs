//! The WebSocket client of one translation session, running on the shared tokio runtime.
//!
//! The streaming thread hands it 200 ms chunks through a bounded channel and never waits for the
//! network; everything the server says comes back through a callback as [`SessionEvent`]s. Every
//! network step has a time limit, so a dead peer becomes an error instead of a hang.

use crate::protocol::translation::SessionConfig;
use crate::runtime::RUNTIME;
use crate::secret::ApiKey;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self};

/// Chunks the channel holds: 8 × 200 ms. Small on purpose: what waits here is lost if the
/// connection drops, while audio waiting in the connection supervisor is replayed.
pub const AUDIO_QUEUE_CHUNKS: usize = 8;
/// A network write that takes longer than this means the peer is gone.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest frame accepted from a server: audio deltas are tens of kilobytes, so anything near
/// this is a broken peer, and the bound keeps one frame from taking unbounded memory.
pub const MAX_FRAME_BYTES: usize = 8 << 20;

/// Where the session connects.
#[derive(Debug, Clone, PartialEq)]
pub enum Endpoint {
    /// A server at this URL (`model` query parameter added when missing).
    Remote { url: String, model: String },
    /// The in-process offline engine: `model` picks its recogniser, `source_language` fixes
    /// the spoken language (else detected).
    Local {
        model: String,
        source_language: Option<String>,
    },
}

impl Endpoint {
    async fn resolve(&self) -> Result<String, SessionError> {
        match self {
            Endpoint::Remote { url, model } => Ok(url_with_model(url, model)),
            Endpoint::Local {
                model,
                source_language,
            } => crate::local_engine::url()
                .await
                .map(|url| {
                    let url = url_with_model(&url, model);
                    match source_language {
                        Some(code) => format!("{url}&source_language={code}"),
                        None => url,
                    }
                })
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

/// Which wire protocol (and so which `backends` module) a session speaks.
#[derive(Debug, Clone, PartialEq)]
pub enum Protocol {
    /// OpenAI realtime translation (`/v1/realtime/translations`), also spoken by the local engine.
    Translation,
    /// The general Realtime model prompted as an interpreter (`/v1/realtime?model=`), speaking
    /// with this voice.
    Interpreter { voice: String },
    /// A Realtime transcription session (`/v1/realtime?intent=transcription`): captions only.
    Transcription,
    /// The GPT Translator realtime API: Socket.IO events, key in the URL (PROTOCOL.md §4).
    GptTranslator,
}

/// What the element needs to open a session.
#[derive(Debug, Clone)]
pub struct SessionParams {
    pub protocol: Protocol,
    pub endpoint: Endpoint,
    pub api_key: Option<ApiKey>,
    pub safety_identifier: Option<String>,
    pub config: SessionConfig,
    pub connect_timeout: Duration,
    /// After `session.close`, how long to wait for `session.closed`.
    pub drain_timeout: Duration,
    /// A connection on which nothing arrives for this long (pings are sent meanwhile) is dead.
    pub keepalive_timeout: Duration,
    /// Extra certificate authorities to trust for `wss://`, as a PEM file.
    pub tls_ca_file: Option<std::path::PathBuf>,
}

/// Why a session ended badly. [`SessionError::is_recoverable`] decides between reconnecting and
/// stopping with an error.
#[derive(Debug, Clone, PartialEq)]
pub enum SessionError {
    /// The service refused the key: retrying cannot help.
    Authentication(String),
    /// Billing, permission or request problem reported by the service: retrying cannot help.
    Refused(String),
    /// The session reached its lifetime (possibly earlier than announced): open a new one at once.
    Expired(String),
    /// Too many requests: retry after a back-off.
    RateLimited(String),
    /// Could not connect, the connection broke or went silent, or the service had an internal
    /// error: retry after a back-off.
    Connection(String),
}

impl SessionError {
    /// Whether a new session may succeed where this one failed.
    pub fn is_recoverable(&self) -> bool {
        !matches!(
            self,
            SessionError::Authentication(_) | SessionError::Refused(_)
        )
    }
}

impl std::fmt::Display for SessionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SessionError::Authentication(why) => write!(f, "authentication failed: {why}"),
            SessionError::Refused(why) => write!(f, "the service refused the session: {why}"),
            SessionError::Expired(why) => write!(f, "the session expired: {why}"),
            SessionError::RateLimited(why) => write!(f, "rate limited: {why}"),
            SessionError::Connection(why) => write!(f, "connection failed: {why}"),
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
    /// The engine had heard this many samples of the input (of this session, from its first
    /// chunk; the connection turns it into a stream position) when it produced the output
    /// events that follow.
    Progress {
        input_samples: u64,
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

/// Requests from the element to a running session.
#[derive(Debug)]
pub enum Control {
    /// Send the new configuration (e.g. the target language changed while playing).
    Update(SessionConfig),
    /// Send what is queued, then end the session politely; `Finished` follows.
    Close,
}

/// The session task's side of the channels: what a backend's dialogue reads and reports to.
pub struct Link {
    /// 24 kHz mono chunks to send, in order.
    pub audio: mpsc::Receiver<Vec<i16>>,
    pub control: mpsc::Receiver<Control>,
    pub on_event: Callback,
    pub counters: Arc<SessionCounters>,
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

pub type Callback = Arc<dyn Fn(SessionEvent) + Send + Sync>;

impl Session {
    /// Starts connecting in the background; returns at once. `counters` may be shared by
    /// several sessions (a connection's successive sessions add up).
    pub fn start(
        params: SessionParams,
        on_event: Callback,
        counters: Arc<SessionCounters>,
    ) -> Session {
        let (audio_tx, audio_rx) = mpsc::channel(AUDIO_QUEUE_CHUNKS);
        let (control_tx, control_rx) = mpsc::channel(16);
        let link = Link {
            audio: audio_rx,
            control: control_rx,
            on_event,
            counters: counters.clone(),
        };
        let task = RUNTIME.spawn(run(params, link));
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

    /// The audio channel itself, for a caller that wants to wait for room asynchronously.
    pub fn audio_sender(&self) -> mpsc::Sender<Vec<i16>> {
        self.audio.clone()
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn run(params: SessionParams, mut link: Link) {
    let result = match params.protocol {
        Protocol::Translation => {
            crate::backends::openai_translation::converse(&params, &mut link).await
        }
        Protocol::Interpreter { ref voice } => {
            crate::backends::openai_realtime::converse(&params, voice, &mut link).await
        }
        Protocol::Transcription => {
            crate::backends::openai_transcription::converse(&params, &mut link).await
        }
        Protocol::GptTranslator => {
            crate::backends::gpttranslator::converse(&params, &mut link).await
        }
    };
    match result {
        Ok(()) => (link.on_event)(SessionEvent::Finished),
        Err(err) => (link.on_event)(SessionEvent::Failed(err)),
    }
}

pub type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens the WebSocket, with the key as a bearer token, and classifies a refusal.
pub async fn connect(params: &SessionParams) -> Result<Socket, SessionError> {
    let url = params.endpoint.resolve().await?;
    connect_url(params, &url, true).await
}

/// Opens the WebSocket at `url`; `bearer` sends the key in an `Authorization` header (some
/// services take it in the URL instead).
pub async fn connect_url(
    params: &SessionParams,
    url: &str,
    bearer: bool,
) -> Result<Socket, SessionError> {
    let mut request = url
        .into_client_request()
        .map_err(|err| SessionError::Connection(format!("invalid url: {err}")))?;
    let headers = request.headers_mut();
    if bearer && let Some(key) = &params.api_key {
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
    let host = request.uri().host().unwrap_or_default().to_owned();
    // Only `wss://` reads `tls-ca-file`: a plain or local connection does not depend on it.
    let connector = if request.uri().scheme_str() == Some("wss") {
        crate::tls::connector(params.tls_ca_file.as_deref())?
    } else {
        tokio_tungstenite::Connector::Plain
    };
    let port = request
        .uri()
        .port_u16()
        .unwrap_or(if request.uri().scheme_str() == Some("wss") {
            443
        } else {
            80
        });
    let connecting = async {
        let stream = open_tcp(&host, port)
            .await
            .map_err(tungstenite::Error::Io)?;
        tokio_tungstenite::client_async_tls_with_config(
            request,
            stream,
            Some(
                WebSocketConfig::default()
                    .max_message_size(Some(MAX_FRAME_BYTES))
                    .max_frame_size(Some(MAX_FRAME_BYTES)),
            ),
            Some(connector),
        )
        .await
    };
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
            let why = format!("the server answered HTTP {status} {body}");
            Err(match status.as_u16() {
                401 | 403 => SessionError::Authentication(why),
                429 => SessionError::RateLimited(why),
                // Another client error (wrong path, unknown model) will not go away by retrying.
                400..=499 => SessionError::Refused(why),
                _ => SessionError::Connection(why),
            })
        }
        Ok(Err(err)) => Err(crate::tls::handshake_refusal(&host, &err)
            .unwrap_or_else(|| SessionError::Connection(err.to_string()))),
    }
}

/// Audio a connection may hold in its socket's send buffer: about 3 s of base64 PCM. The default
/// (auto-tuned to megabytes) would let input that is faster than real time put minutes of audio
/// in flight, all lost if the connection drops; live audio needs only 64 kB/s.
const SEND_BUFFER_BYTES: u32 = 192 * 1024;

/// Connects to the first address of `host` that answers, with a bounded send buffer.
async fn open_tcp(host: &str, port: u16) -> std::io::Result<tokio::net::TcpStream> {
    let mut last_error = None;
    for address in tokio::net::lookup_host((host.trim_matches(['[', ']']), port)).await? {
        let socket = if address.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        socket.set_send_buffer_size(SEND_BUFFER_BYTES)?;
        match socket.connect(address).await {
            Ok(stream) => {
                stream.set_nodelay(true)?;
                return Ok(stream);
            }
            Err(err) => last_error = Some(err),
        }
    }
    Err(last_error.unwrap_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("{host} has no address"),
        )
    }))
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
