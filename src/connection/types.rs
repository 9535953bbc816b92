//! What the element and the connection say to each other: how it behaves, its states, its
//! events and its figures.

use crate::protocol::translation::SessionConfig;
use crate::session_types::{SessionCounters, SessionError, SessionEvent, SessionParams};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

/// How the connection behaves.
#[derive(Debug, Clone)]
pub struct ConnectionParams {
    pub session: SessionParams,
    /// While no session can take audio, the most recent this many samples are kept and replayed
    /// when one can; older audio is not translated.
    pub outage_buffer_samples: u64,
    /// A new session is opened this long before the current one's `expires_at`.
    pub rotation_margin: Duration,
    /// First reconnection delay; it doubles per failed attempt up to `backoff_max`.
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    /// Failed attempts in a row after which the connection gives up; `None`: never.
    pub max_retries: Option<u32>,
}

/// What an operator sees of the connection.
#[derive(Debug, Clone, PartialEq)]
pub enum ConnectionState {
    /// Opening a session (attempt 0 is the first).
    Connecting { attempt: u32 },
    /// A session is taking audio.
    Connected {
        session_id: String,
        expires_at: Option<i64>,
    },
    /// The current session nears its expiry: the next one is being opened.
    Rotating { session_id: String },
    /// No session takes audio; the next attempt starts after `delay`.
    Reconnecting {
        attempt: u32,
        delay: Duration,
        reason: String,
    },
    /// A recovery session (opened for what a replaced session, lost while finishing, had not
    /// answered) failed too: that audio, from the message's input position on, is not
    /// translated (and is counted). Nothing else changes.
    Lost { session_id: String, reason: String },
    /// Gave up: the element stops with an error.
    Failed { reason: String },
}

impl ConnectionState {
    pub fn name(&self) -> &'static str {
        match self {
            ConnectionState::Connecting { .. } => "connecting",
            ConnectionState::Connected { .. } => "connected",
            ConnectionState::Rotating { .. } => "rotating",
            ConnectionState::Reconnecting { .. } => "reconnecting",
            ConnectionState::Lost { .. } => "lost",
            ConnectionState::Failed { .. } => "failed",
        }
    }
}

/// What the connection reports to the element.
#[derive(Debug, Clone, PartialEq)]
pub enum ConnectionEvent {
    /// The state changed when the input had reached `position` samples.
    State {
        state: ConnectionState,
        position: u64,
    },
    /// Transcripts, translated audio and warnings, in the order the sessions delivered them.
    Session(SessionEvent),
    /// After [`Connection::close`]: everything that could be translated was delivered.
    Finished,
    /// Retrying cannot help (authentication, quota, invalid request).
    Failed(SessionError),
}

/// Figures for the `stats` property; all sessions of the stream add up.
#[derive(Debug, Default)]
pub struct ConnectionStats {
    pub session: Arc<SessionCounters>,
    pub sessions_opened: AtomicU64,
    pub rotations: AtomicU64,
    pub reconnects: AtomicU64,
    /// Samples waiting in the supervisor (outage buffer and backlog).
    pub buffered_samples: AtomicU64,
    /// Input samples no session will translate (outage longer than the buffer, or the stream
    /// ended while disconnected).
    pub untranslated_samples: AtomicU64,
    /// Translated audio dropped: held too long behind a session that did not finish, or sent by
    /// a session no longer part of the stream.
    pub held_dropped_samples: AtomicU64,
}

pub type EventCallback = Arc<dyn Fn(ConnectionEvent) + Send + Sync>;

pub(super) enum Request {
    Update(SessionConfig),
    Close,
    /// The element stops waiting: count what is still untranslated, then end (replies when the
    /// count is in the statistics).
    Abandon(tokio::sync::oneshot::Sender<()>),
}
