//! Server settings shared by every connection.

use std::sync::Arc;
use std::time::Duration;

use crate::engine::EngineFactory;
use crate::faults::Faults;

/// Receives one line per connection event; the library itself never prints.
pub type LogFn = Arc<dyn Fn(&str) + Send + Sync>;

/// How a [`crate::Server`] behaves.
#[derive(Clone)]
pub struct ServerConfig {
    /// Makes one engine per session (and per language change).
    pub engine: Arc<dyn EngineFactory>,
    /// When `Some`, the handshake must carry `Authorization: Bearer <key>` with this key, else HTTP 401.
    pub required_api_key: Option<String>,
    /// Lifetime advertised in `session.expires_at` (unix seconds = now + this). When it runs out the
    /// server sends `error` (code `session_expired`) and closes, like the live service.
    pub session_lifetime: Duration,
    /// Optional logger (the binary passes `eprintln!`); `None` keeps tests quiet.
    pub log: Option<LogFn>,
    /// Client events kept per session in [`crate::Records`]; a server that runs for days keeps
    /// few (the binary and the in-process engine use 1000), tests keep all.
    pub event_record_limit: usize,
    /// Faults injected into every connection; a connection's `fault_*` query parameters override
    /// them one by one (see [`crate::faults`]). Empty by default.
    pub faults: Faults,
}

impl ServerConfig {
    /// No API key required, 3600 s sessions, no logging.
    pub fn new(engine: Arc<dyn EngineFactory>) -> Self {
        Self {
            engine,
            required_api_key: None,
            session_lifetime: Duration::from_secs(3600),
            log: None,
            event_record_limit: usize::MAX,
            faults: Faults::default(),
        }
    }

    pub(crate) fn log(&self, line: impl FnOnce() -> String) {
        if let Some(log) = &self.log {
            log(&line());
        }
    }
}

impl std::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerConfig")
            .field("engine", &self.engine.name())
            .field(
                "required_api_key",
                &self.required_api_key.as_ref().map(|_| "<set>"),
            )
            .field("session_lifetime", &self.session_lifetime)
            .field("log", &self.log.is_some())
            .field("event_record_limit", &self.event_record_limit)
            .field("faults", &self.faults.to_query())
            .finish()
    }
}
