//! One translation stream kept alive across many sessions: a new session is opened ahead of the
//! current one's expiry and takes over at a pause, a dropped session is replaced after a
//! back-off, and the audio of an outage is kept (bounded) and replayed.
//!
//! The element sees one [`Connection`] for the whole stream. Inside, a supervisor task owns the
//! sessions. What a session that takes over says is held back until the session before it has
//! delivered everything (`session.close` → `session.closed`), so translations stay in order and
//! none is lost or repeated at a boundary: every chunk of audio goes to exactly one session.

mod ledger;
mod router;
pub mod sessions;
mod slot;
mod supervisor;
#[cfg(test)]
mod tests;

use crate::protocol::translation::{SAMPLE_RATE, SessionConfig};
use crate::runtime::RUNTIME;
use crate::session_types::{
    Backpressure, SessionCounters, SessionError, SessionEvent, SessionParams,
};
use router::Router;
use sessions::{NetworkSessions, SessionOpener};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use supervisor::Supervisor;
use tokio::sync::{Notify, mpsc};

/// Chunks between the element and the supervisor: the supervisor takes them at once, so this
/// only fills when it is starved of CPU.
const INPUT_CHUNKS: usize = 64;
/// Chunks kept for a connected session whose own queue is full (slow network): ~13 s.
const BACKLOG_CHUNKS: usize = 64;
/// Output of a session waiting for its predecessor to finish, at most (audio samples): the
/// predecessor's drain timeout ends the wait long before this in practice.
const MAX_HELD_SAMPLES: u64 = 120 * SAMPLE_RATE as u64;
/// A session that worked at least this long (or took this much audio) is replaced at once when
/// it ends; a shorter one counts as a failed attempt (back-off).
const MIN_HEALTHY_SESSION: Duration = Duration::from_secs(2);
/// Input that can wait keeps at most this much audio unanswered by the session (5 s): what is
/// in flight is lost if the connection drops, so input faster than real time must not run far
/// ahead of the answers.
const IN_FLIGHT_WINDOW: u64 = 5 * SAMPLE_RATE as u64;
/// An engine that answers only after a pause (turn-based) may keep silent longer than the window
/// lasts: with no answer for this long, audio flows again regardless.
const ANSWER_GRACE: Duration = Duration::from_secs(2);
/// A session's start position before it has had any audio.
const NOT_STARTED: u64 = u64::MAX;
/// A 200 ms chunk quieter than this (RMS) is a pause: a good moment to switch sessions.
const QUIET_RMS: f64 = 200.0;
/// A lost session's unanswered audio is sent again from this far (300 ms, in samples) before
/// its last answer: its `elapsed_ms` is floored to 200 ms, and an engine may have heard the
/// first syllable of the next words when it answered. At most 0.5 s is translated twice.
const REPLAY_OVERLAP: u64 = 3 * SAMPLE_RATE as u64 / 10;

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
    /// A replaced session lost its connection while finishing: what it had not answered yet
    /// (audio up to the input position of the message) is not translated. Nothing else changes.
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

pub(crate) enum Request {
    Update(SessionConfig),
    Close,
}

/// Handle on the stream's connection; dropping it aborts every session at once.
pub struct Connection {
    audio: mpsc::Sender<Vec<i16>>,
    requests: mpsc::UnboundedSender<Request>,
    task: tokio::task::JoinHandle<()>,
    stats: Arc<ConnectionStats>,
    lossless: Arc<AtomicBool>,
    /// Wakes a streaming thread waiting for room (see [`Connection::interrupt`]).
    wake: Arc<Notify>,
}

impl Connection {
    /// Input that can wait (a file, not a live source): while no session takes audio, the
    /// element is held back once the outage buffer is full, instead of the oldest audio being
    /// dropped.
    pub fn set_lossless(&self, lossless: bool) {
        self.lossless.store(lossless, Ordering::Relaxed);
    }

    /// Starts connecting in the background; returns at once.
    pub fn start(params: ConnectionParams, on_event: EventCallback) -> Connection {
        Connection::start_with(params, NetworkSessions, on_event)
    }

    /// As [`Connection::start`], with sessions from `opener`.
    pub fn start_with(
        params: ConnectionParams,
        opener: impl SessionOpener,
        on_event: EventCallback,
    ) -> Connection {
        let (audio_tx, audio_rx) = mpsc::channel(INPUT_CHUNKS);
        let (request_tx, request_rx) = mpsc::unbounded_channel();
        let (lifecycle_tx, lifecycle_rx) = mpsc::unbounded_channel();
        let stats = Arc::new(ConnectionStats::default());
        let lossless = Arc::new(AtomicBool::new(false));
        let router = Arc::new(Router::new(on_event, lifecycle_tx, stats.clone()));
        let supervisor = Supervisor::new(
            params,
            opener,
            router,
            stats.clone(),
            lifecycle_rx,
            lossless.clone(),
        );
        let task = RUNTIME.spawn(supervisor.run(audio_rx, request_rx));
        Connection {
            audio: audio_tx,
            requests: request_tx,
            task,
            stats,
            lossless,
            wake: Arc::new(Notify::new()),
        }
    }

    /// Queues a chunk of 24 kHz mono samples without waiting.
    pub fn send_audio(&self, chunk: Vec<i16>) -> Result<(), Backpressure> {
        match self.audio.try_send(chunk) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => Err(Backpressure),
            // The supervisor has ended; it reported why.
            Err(mpsc::error::TrySendError::Closed(_)) => Ok(()),
        }
    }

    /// Queues a chunk, blocking the calling (streaming) thread while the queue is full: input
    /// faster than real time slows down rather than loses audio. Returns without sending when
    /// `cancelled` says so; the thread is woken to look again by [`Connection::interrupt`].
    pub fn send_audio_waiting(&self, chunk: Vec<i16>, cancelled: impl Fn() -> bool) {
        let mut chunk = Some(chunk);
        while chunk.is_some() {
            let interrupted = self.wake.notified();
            tokio::pin!(interrupted);
            // Registered before looking, so an interrupt from now on is not missed.
            interrupted.as_mut().enable();
            if cancelled() {
                return;
            }
            RUNTIME.block_on(async {
                tokio::select! {
                    permit = self.audio.reserve() => match permit {
                        Ok(permit) => permit.send(chunk.take().expect("still to send")),
                        // The supervisor has ended; it reported why.
                        Err(_) => chunk = None,
                    },
                    _ = interrupted => {}
                }
            });
        }
    }

    /// Wakes a thread blocked in [`Connection::send_audio_waiting`] to check its cancellation.
    pub fn interrupt(&self) {
        self.wake.notify_waiters();
    }

    /// A new configuration for this and every later session.
    pub fn update(&self, config: SessionConfig) {
        let _ = self.requests.send(Request::Update(config));
    }

    /// Sends what is queued, ends the sessions politely; `Finished` follows.
    pub fn close(&self) {
        let _ = self.requests.send(Request::Close);
    }

    pub fn stats(&self) -> &ConnectionStats {
        &self.stats
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Whether a chunk is a pause (or digital silence).
fn is_quiet(chunk: &[i16]) -> bool {
    if chunk.is_empty() {
        return true;
    }
    let energy: f64 = chunk.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    (energy / chunk.len() as f64).sqrt() < QUIET_RMS
}
