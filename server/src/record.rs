//! What the server saw, per connection, for tests to inspect (headers, every client event, schema
//! errors, injected faults, how the connection ended), and which handshakes it refused.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::faults::Faults;

/// Refused handshakes kept in full; later ones are only counted.
const REFUSALS_KEPT: usize = 1000;

/// One accepted WebSocket connection.
#[derive(Clone, Debug, Default)]
pub struct SessionRecord {
    pub path_and_query: String,
    /// The raw `Authorization` header value.
    pub authorization: Option<String>,
    /// An `OpenAI-Beta` header was sent (a client bug: the translation endpoint rejects it).
    pub beta_header: bool,
    /// `OpenAI-Safety-Identifier` header.
    pub safety_identifier: Option<String>,
    /// Every client frame, in order.
    pub events: Vec<ClientEventRecord>,
    /// Anything the client sent that is not schema-valid, one message each.
    pub schema_errors: Vec<String>,
    /// Close code the client sent, if any.
    pub closed_with: Option<u16>,
    /// The connection finished (any way) and its engine thread has stopped.
    pub ended: bool,
    pub sent_session_closed: bool,
    /// Events not kept because the record limit was reached (a long-running server stays bounded).
    pub events_not_recorded: u64,
    /// The faults this connection asked for (query parameters over server-wide ones).
    pub faults: Faults,
    /// Faults that took effect, in order (`fault_send` first, `fault_answer_delay_ms` from the start,
    /// then at most one session-ending one).
    pub faults_fired: Vec<FiredFault>,
}

impl SessionRecord {
    /// Query parameter name of the last fault that fired (the session-ending one if one fired).
    pub fn fault_fired(&self) -> Option<&str> {
        self.faults_fired.last().map(|f| f.parameter.as_str())
    }
}

/// An injected fault taking effect.
#[derive(Clone, Debug, PartialEq)]
pub struct FiredFault {
    /// Its query parameter, e.g. `fault_drop_after_audio_ms`.
    pub parameter: String,
    pub at: Instant,
    /// Input audio received (and translated) when it fired, in ms.
    pub audio_ms: u64,
    /// Wall time since `session.created` when it fired, in ms.
    pub session_ms: u64,
}

/// A WebSocket upgrade the server answered with an HTTP error (any reason: path, API key, faults).
#[derive(Clone, Debug, PartialEq)]
pub struct RefusedHandshake {
    pub path_and_query: String,
    pub status: u16,
    /// `error.code` of the JSON body.
    pub code: String,
    pub at: Instant,
}

/// One client frame.
#[derive(Clone, Debug)]
pub struct ClientEventRecord {
    /// The event `type`, or `<not json>`, `<no type>`, `<binary not utf-8>`.
    pub kind: String,
    pub received_at: Instant,
    /// For appends: decoded sample count.
    pub audio_samples: Option<usize>,
    /// For appends: RMS of the samples, int16 units.
    pub audio_rms: Option<f64>,
    /// The event, with the `audio` string replaced by `"<N bytes>"` (decoded size).
    pub json: serde_json::Value,
}

/// Cheap clone handle on the sessions a server saw.
#[derive(Clone, Debug)]
pub struct Records {
    sessions: Arc<Mutex<Vec<SessionRecord>>>,
    refusals: Arc<Mutex<Refusals>>,
    /// Events kept per session; later ones are only counted.
    event_limit: usize,
}

impl Default for Records {
    fn default() -> Self {
        Self::with_event_limit(usize::MAX)
    }
}

impl Records {
    pub(crate) fn with_event_limit(event_limit: usize) -> Self {
        Self {
            sessions: Arc::default(),
            refusals: Arc::default(),
            event_limit,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<SessionRecord>> {
        // A panic while holding the lock cannot leave a record half-written in a harmful way.
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Snapshot, in connection order.
    pub fn sessions(&self) -> Vec<SessionRecord> {
        self.lock().clone()
    }

    fn lock_refusals(&self) -> MutexGuard<'_, Refusals> {
        self.refusals.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How many handshakes were refused with an HTTP error so far.
    pub fn handshakes_refused(&self) -> u64 {
        self.lock_refusals().count
    }

    /// The refused handshakes, in order (the first 1000 of them).
    pub fn refused_handshakes(&self) -> Vec<RefusedHandshake> {
        self.lock_refusals().kept.clone()
    }

    pub(crate) fn push_refused(&self, refused: RefusedHandshake) {
        let mut r = self.lock_refusals();
        r.count += 1;
        if r.kept.len() < REFUSALS_KEPT {
            r.kept.push(refused);
        }
    }

    fn ended_count(&self) -> usize {
        self.lock().iter().filter(|r| r.ended).count()
    }

    /// Blocks (polling, up to `timeout`) until `n` sessions have ended; returns whether they did.
    /// Do not call it from a single-threaded runtime that also runs the server (use
    /// [`Records::wait_for_ended_sessions_async`]).
    pub fn wait_for_ended_sessions(&self, n: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.ended_count() >= n {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Async version of [`Records::wait_for_ended_sessions`].
    pub async fn wait_for_ended_sessions_async(&self, n: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.ended_count() >= n {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Adds a session and returns the handle its connection writes through.
    pub(crate) fn open(&self, record: SessionRecord) -> RecordHandle {
        let mut v = self.lock();
        v.push(record);
        RecordHandle {
            records: self.clone(),
            index: v.len() - 1,
        }
    }
}

#[derive(Debug, Default)]
struct Refusals {
    count: u64,
    kept: Vec<RefusedHandshake>,
}

/// One connection's write access to its record; marks it ended when dropped (also on task abort).
#[derive(Debug)]
pub(crate) struct RecordHandle {
    records: Records,
    index: usize,
}

impl RecordHandle {
    pub(crate) fn update(&self, f: impl FnOnce(&mut SessionRecord)) {
        if let Some(r) = self.records.lock().get_mut(self.index) {
            f(r);
        }
    }
}

impl RecordHandle {
    /// Keeps a client event, within the record limit.
    pub(crate) fn push_event(
        &self,
        event: ClientEventRecord,
        also: impl FnOnce(&mut SessionRecord),
    ) {
        let limit = self.records.event_limit;
        self.update(|r| {
            if r.events.len() < limit {
                r.events.push(event);
            } else {
                r.events_not_recorded += 1;
            }
            also(r);
        });
    }
}

impl Drop for RecordHandle {
    fn drop(&mut self) {
        self.update(|r| r.ended = true);
    }
}
