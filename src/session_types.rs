//! What a translation session is given and what it reports: the types shared by the session
//! handle, the transport, every backend and the connection supervisor. Depends on nothing but the
//! wire protocol's types, so every layer above can use it without a cycle.

use crate::protocol::translation::SessionConfig;
use crate::secret::ApiKey;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;
use tokio::sync::mpsc;

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
    /// The GPT Translator realtime API: Socket.IO events, key in the URL
    /// (`docs/protocol/gpttranslator.md`).
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
    pub control: mpsc::UnboundedReceiver<Control>,
    pub on_event: Callback,
    pub counters: Arc<SessionCounters>,
}

/// The audio channel is full: the connection is not keeping up.
#[derive(Debug)]
pub struct Backpressure;

pub type Callback = Arc<dyn Fn(SessionEvent) + Send + Sync>;

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
