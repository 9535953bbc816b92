//! One translation stream kept alive across many sessions: a new session is opened ahead of the
//! current one's expiry and takes over at a pause, a dropped session is replaced after a
//! back-off, and the audio of an outage is kept (bounded) and replayed.
//!
//! The element sees one [`Connection`] for the whole stream. Inside, a supervisor task owns the
//! sessions. What a session that takes over says is held back until the session before it has
//! delivered everything (`session.close` → `session.closed`), so translations stay in order and
//! none is lost or repeated at a boundary: every chunk of audio goes to exactly one session.

mod ledger;
mod limits;
mod router;
pub mod sessions;
mod slot;
mod supervisor;
#[cfg(test)]
mod tests;
mod types;

pub use types::{
    ConnectionEvent, ConnectionParams, ConnectionState, ConnectionStats, EventCallback,
};

use crate::protocol::translation::SessionConfig;
use crate::runtime::RUNTIME;
use crate::session_types::Backpressure;
use limits::INPUT_CHUNKS;
use router::Router;
use sessions::{NetworkSessions, SessionOpener};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use supervisor::Supervisor;
use tokio::sync::{Notify, mpsc};
use types::Request;

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

    /// The element gives up waiting (end of stream took too long): whatever is still buffered
    /// or unanswered is counted as untranslated before this returns (within 1 s), so that the
    /// final statistics say what was lost. Blocks the calling (streaming) thread.
    pub fn abandon(&self) {
        let (reply, done) = tokio::sync::oneshot::channel();
        if self.requests.send(Request::Abandon(reply)).is_ok() {
            // The timer is made inside the runtime (a timer made outside has no reactor).
            let _ = RUNTIME
                .block_on(async { tokio::time::timeout(Duration::from_secs(1), done).await });
        }
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
