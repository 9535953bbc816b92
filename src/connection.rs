//! One translation stream kept alive across many sessions: a new session is opened ahead of the
//! current one's expiry and takes over at a pause, a dropped session is replaced after a
//! back-off, and the audio of an outage is kept (bounded) and replayed.
//!
//! The element sees one [`Connection`] for the whole stream. Inside, a supervisor task owns the
//! sessions. What a session that takes over says is held back until the session before it has
//! delivered everything (`session.close` → `session.closed`), so translations stay in order and
//! none is lost or repeated at a boundary: every chunk of audio goes to exactly one session.

use crate::protocol::translation::{SAMPLE_RATE, SessionConfig};
use crate::runtime::RUNTIME;
use crate::session::{
    Backpressure, Session, SessionCounters, SessionError, SessionEvent, SessionParams,
};
use rand::Rng;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until};

/// Chunks between the element and the supervisor: the supervisor takes them at once, so this
/// only fills when it is starved of CPU.
const INPUT_CHUNKS: usize = 64;
/// Chunks kept for a connected session whose own queue is full (slow network): ~13 s.
const BACKLOG_CHUNKS: usize = 64;
/// Output of a session waiting for its predecessor to finish, at most (audio samples): the
/// predecessor's drain timeout ends the wait long before this in practice.
const MAX_HELD_SAMPLES: u64 = 120 * SAMPLE_RATE as u64;
/// A session that worked at least this long is replaced at once when it ends; a shorter one
/// counts as a failed attempt (back-off).
const MIN_HEALTHY_SESSION: Duration = Duration::from_secs(2);
/// A 200 ms chunk quieter than this (RMS) is a pause: a good moment to switch sessions.
const QUIET_RMS: f64 = 200.0;

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
    /// Output of a taking-over session dropped because its predecessor never finished.
    pub held_dropped_samples: AtomicU64,
}

pub type EventCallback = Arc<dyn Fn(ConnectionEvent) + Send + Sync>;

enum Request {
    Update(SessionConfig),
    Close,
}

/// Handle on the stream's connection; dropping it aborts every session at once.
pub struct Connection {
    audio: mpsc::Sender<Vec<i16>>,
    requests: mpsc::UnboundedSender<Request>,
    task: tokio::task::JoinHandle<()>,
    stats: Arc<ConnectionStats>,
}

impl Connection {
    /// Starts connecting in the background; returns at once.
    pub fn start(params: ConnectionParams, on_event: EventCallback) -> Connection {
        let (audio_tx, audio_rx) = mpsc::channel(INPUT_CHUNKS);
        let (request_tx, request_rx) = mpsc::unbounded_channel();
        let (lifecycle_tx, lifecycle_rx) = mpsc::unbounded_channel();
        let stats = Arc::new(ConnectionStats::default());
        let router = Arc::new(Router {
            inner: Mutex::new(RouterInner::default()),
            deliver: on_event,
            lifecycle: lifecycle_tx,
            stats: stats.clone(),
        });
        let supervisor = Supervisor {
            params,
            router,
            stats: stats.clone(),
            lifecycle: lifecycle_rx,
            next_slot: 0,
            current: None,
            rotating: None,
            draining: None,
            outage: VecDeque::new(),
            backlog: VecDeque::new(),
            position: 0,
            attempt: 0,
            retry_at: None,
            rotate_at: None,
            switch_deadline: None,
            closing: false,
        };
        let task = RUNTIME.spawn(supervisor.run(audio_rx, request_rx));
        Connection {
            audio: audio_tx,
            requests: request_tx,
            task,
            stats,
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

    /// Queues a chunk, waiting while the queue is full (input faster than real time must slow
    /// down rather than lose audio). Gives up when `cancelled` says so.
    pub fn send_audio_waiting(&self, mut chunk: Vec<i16>, cancelled: impl Fn() -> bool) {
        loop {
            match self.audio.try_send(chunk) {
                Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => return,
                Err(mpsc::error::TrySendError::Full(back)) => {
                    if cancelled() {
                        return;
                    }
                    chunk = back;
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        }
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

/// Passes each session's output to the element, holding back a taking-over session's output
/// until its predecessor is done. Lifecycle events go to the supervisor.
struct Router {
    inner: Mutex<RouterInner>,
    deliver: EventCallback,
    lifecycle: mpsc::UnboundedSender<(u64, SessionEvent)>,
    stats: Arc<ConnectionStats>,
}

#[derive(Default)]
struct RouterInner {
    /// The session whose output goes straight to the element.
    live: Option<u64>,
    /// The session whose output waits.
    next: Option<u64>,
    held: VecDeque<SessionEvent>,
    held_samples: u64,
}

impl Router {
    fn on_session_event(&self, slot: u64, event: SessionEvent) {
        match event {
            SessionEvent::Connected { .. } | SessionEvent::Finished | SessionEvent::Failed(_) => {
                let _ = self.lifecycle.send((slot, event));
            }
            data => {
                let mut inner = self.inner.lock().unwrap();
                if inner.live == Some(slot) {
                    (self.deliver)(ConnectionEvent::Session(data));
                } else if inner.next == Some(slot) {
                    if let SessionEvent::OutputAudio { samples, .. } = &data {
                        inner.held_samples += samples.len() as u64;
                    }
                    inner.held.push_back(data);
                    while inner.held_samples > MAX_HELD_SAMPLES {
                        match inner.held.pop_front() {
                            Some(SessionEvent::OutputAudio { samples, .. }) => {
                                inner.held_samples -= samples.len() as u64;
                                self.stats
                                    .held_dropped_samples
                                    .fetch_add(samples.len() as u64, Ordering::Relaxed);
                            }
                            Some(_) => {}
                            None => inner.held_samples = 0,
                        }
                    }
                }
                // Otherwise a replaced session: nothing it says belongs to the stream now.
            }
        }
    }

    /// `slot`'s output now goes straight through, after what it said while waiting.
    fn set_live(&self, slot: Option<u64>) {
        let mut inner = self.inner.lock().unwrap();
        inner.live = slot;
        let held = std::mem::take(&mut inner.held);
        inner.held_samples = 0;
        if inner.next == slot && slot.is_some() {
            inner.next = None;
            for event in held {
                (self.deliver)(ConnectionEvent::Session(event));
            }
        }
    }

    fn set_next(&self, slot: Option<u64>) {
        let mut inner = self.inner.lock().unwrap();
        inner.next = slot;
        inner.held.clear();
        inner.held_samples = 0;
    }

    fn report(&self, event: ConnectionEvent) {
        // Under the lock: in order with the session output it delivers.
        let _inner = self.inner.lock().unwrap();
        (self.deliver)(event);
    }
}

/// One session and what is known about it.
struct Slot {
    id: u64,
    session: Session,
    audio: mpsc::Sender<Vec<i16>>,
    /// `session.created` arrived: audio may go to it.
    connected: bool,
    connected_at: Option<Instant>,
    session_id: String,
    /// Samples of audio given to it.
    sent: u64,
    /// Its lifetime in samples of audio (from `expires_at` when it connected): a service may
    /// count session time in audio, which runs ahead of the clock when input is faster than
    /// real time, so rotation also happens when this much audio has been sent, less the margin.
    lifetime: Option<u64>,
}

struct Supervisor {
    params: ConnectionParams,
    router: Arc<Router>,
    stats: Arc<ConnectionStats>,
    lifecycle: mpsc::UnboundedReceiver<(u64, SessionEvent)>,
    next_slot: u64,
    /// The session audio goes to (or will, once connected).
    current: Option<Slot>,
    /// Opened ahead of the current session's expiry; takes over at a pause.
    rotating: Option<Slot>,
    /// Replaced by a rotation, delivering its last output.
    draining: Option<Slot>,
    /// Audio no session could take yet, with its input position; bounded.
    outage: VecDeque<(u64, Vec<i16>)>,
    /// Audio for the connected current session whose own queue was full.
    backlog: VecDeque<Vec<i16>>,
    /// Input samples received so far.
    position: u64,
    attempt: u32,
    retry_at: Option<Instant>,
    rotate_at: Option<Instant>,
    /// After this the rotating session takes over even without a pause.
    switch_deadline: Option<Instant>,
    closing: bool,
}

async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => sleep_until(at).await,
        None => std::future::pending().await,
    }
}

impl Supervisor {
    async fn run(
        mut self,
        mut audio: mpsc::Receiver<Vec<i16>>,
        mut requests: mpsc::UnboundedReceiver<Request>,
    ) {
        self.open_current();
        loop {
            if self.closing && self.current.is_none() && self.draining.is_none() {
                self.router.report(ConnectionEvent::Finished);
                return;
            }
            let backlog_sender = self
                .current
                .as_ref()
                .filter(|slot| slot.connected && !self.backlog.is_empty())
                .map(|slot| slot.audio.clone());
            let switch_ready = self.rotating.as_ref().is_some_and(|slot| slot.connected);
            tokio::select! {
                biased;
                Some((slot, event)) = self.lifecycle.recv() => {
                    if let Err(err) = self.on_lifecycle(slot, event) {
                        self.router.report(ConnectionEvent::State {
                            state: ConnectionState::Failed { reason: err.to_string() },
                            position: self.position,
                        });
                        self.router.report(ConnectionEvent::Failed(err));
                        return;
                    }
                }
                request = requests.recv() => match request {
                    Some(Request::Update(config)) => {
                        self.params.session.config = config.clone();
                        for slot in [&self.current, &self.rotating].into_iter().flatten() {
                            slot.session.update(config.clone());
                        }
                    }
                    Some(Request::Close) => {
                        // Audio queued before the close belongs to the stream.
                        while let Ok(chunk) = audio.try_recv() {
                            self.on_chunk(chunk);
                        }
                        self.start_close();
                    }
                    None => return,
                },
                permit = async { backlog_sender.as_ref().expect("checked").reserve().await }, if backlog_sender.is_some() => {
                    match permit {
                        Ok(permit) => {
                            if let Some(chunk) = self.backlog.pop_front() {
                                self.account_buffer(-(chunk.len() as i64));
                                if let Some(slot) = self.current.as_mut() {
                                    slot.sent += chunk.len() as u64;
                                }
                                permit.send(chunk);
                                self.rotate_by_audio();
                            }
                            if self.closing && self.backlog.is_empty() && let Some(slot) = &self.current {
                                slot.session.close();
                            }
                        }
                        // The session ended; its lifecycle event says how.
                        Err(_) => tokio::task::yield_now().await,
                    }
                }
                chunk = audio.recv(), if !self.closing && self.backlog.len() < BACKLOG_CHUNKS => match chunk {
                    Some(chunk) => self.on_chunk(chunk),
                    None => return,
                },
                _ = sleep_until_some(self.retry_at) => {
                    self.retry_at = None;
                    self.stats.reconnects.fetch_add(1, Ordering::Relaxed);
                    self.open_current();
                }
                _ = sleep_until_some(self.rotate_at), if self.rotating.is_none() && !self.closing => {
                    self.rotate_at = None;
                    self.open_rotating();
                }
                _ = sleep_until_some(self.switch_deadline), if switch_ready => self.switch(),
            }
        }
    }

    fn state(&self, state: ConnectionState) {
        self.router.report(ConnectionEvent::State {
            state,
            position: self.position,
        });
    }

    fn start_session(&mut self) -> Slot {
        self.next_slot += 1;
        let id = self.next_slot;
        let router = self.router.clone();
        let callback = Arc::new(move |event| router.on_session_event(id, event));
        let session = Session::start(
            self.params.session.clone(),
            callback,
            self.stats.session.clone(),
        );
        self.stats.sessions_opened.fetch_add(1, Ordering::Relaxed);
        Slot {
            id,
            audio: session.audio_sender(),
            session,
            connected: false,
            connected_at: None,
            session_id: String::new(),
            sent: 0,
            lifetime: None,
        }
    }

    fn open_current(&mut self) {
        let slot = self.start_session();
        if self.draining.is_some() {
            // A replaced session is still delivering: this one's output waits for it.
            self.router.set_next(Some(slot.id));
        } else {
            self.router.set_live(Some(slot.id));
        }
        self.current = Some(slot);
        self.state(ConnectionState::Connecting {
            attempt: self.attempt,
        });
    }

    fn open_rotating(&mut self) {
        let Some(current) = &self.current else { return };
        let session_id = current.session_id.clone();
        let slot = self.start_session();
        self.router.set_next(Some(slot.id));
        self.rotating = Some(slot);
        self.state(ConnectionState::Rotating { session_id });
    }

    /// The rotating session takes the audio from now on; the old one finishes what it has.
    fn switch(&mut self) {
        let Some(next) = self.rotating.take() else {
            return;
        };
        self.switch_deadline = None;
        if let Some(old) = self.current.take() {
            old.session.close();
            // Output of an earlier drain that never finished is given up on.
            self.draining = Some(old);
        } else {
            self.router.set_live(Some(next.id));
        }
        self.stats.rotations.fetch_add(1, Ordering::Relaxed);
        self.state(ConnectionState::Connected {
            session_id: next.session_id.clone(),
            expires_at: None,
        });
        self.current = Some(next);
    }

    fn on_chunk(&mut self, chunk: Vec<i16>) {
        self.position += chunk.len() as u64;
        if self.rotating.as_ref().is_some_and(|slot| slot.connected) && is_quiet(&chunk) {
            self.switch();
        }
        match &self.current {
            Some(slot) if slot.connected => {
                if !self.backlog.is_empty() {
                    self.account_buffer(chunk.len() as i64);
                    self.backlog.push_back(chunk);
                    return;
                }
                let length = chunk.len() as u64;
                match slot.audio.try_send(chunk) {
                    Ok(()) => {
                        if let Some(slot) = self.current.as_mut() {
                            slot.sent += length;
                        }
                        self.rotate_by_audio();
                    }
                    Err(mpsc::error::TrySendError::Full(chunk)) => {
                        self.account_buffer(chunk.len() as i64);
                        self.backlog.push_back(chunk);
                    }
                    Err(mpsc::error::TrySendError::Closed(chunk)) => {
                        // Ending: its lifecycle event is on the way; keep the audio.
                        self.buffer_outage(self.position - chunk.len() as u64, chunk);
                    }
                }
            }
            _ => self.buffer_outage(self.position - chunk.len() as u64, chunk),
        }
    }

    fn account_buffer(&self, delta: i64) {
        if delta >= 0 {
            self.stats
                .buffered_samples
                .fetch_add(delta as u64, Ordering::Relaxed);
        } else {
            self.stats
                .buffered_samples
                .fetch_sub(delta.unsigned_abs(), Ordering::Relaxed);
        }
    }

    /// Keeps audio for a later session, dropping what has become too old to be worth replaying.
    fn buffer_outage(&mut self, position: u64, chunk: Vec<i16>) {
        self.account_buffer(chunk.len() as i64);
        self.outage.push_back((position, chunk));
        let oldest_kept = self
            .position
            .saturating_sub(self.params.outage_buffer_samples);
        while let Some((position, chunk)) = self.outage.front() {
            if position + chunk.len() as u64 > oldest_kept {
                break;
            }
            let length = chunk.len() as u64;
            self.outage.pop_front();
            self.account_buffer(-(length as i64));
            self.stats
                .untranslated_samples
                .fetch_add(length, Ordering::Relaxed);
        }
    }

    fn on_lifecycle(&mut self, slot: u64, event: SessionEvent) -> Result<(), SessionError> {
        let is = |s: &Option<Slot>| s.as_ref().is_some_and(|s| s.id == slot);
        match event {
            SessionEvent::Connected {
                session_id,
                expires_at,
            } => {
                if is(&self.current) {
                    self.attempt = 0;
                    self.rotate_at = self.rotation_time(expires_at);
                    let current = self.current.as_mut().expect("checked");
                    current.connected = true;
                    current.connected_at = Some(Instant::now());
                    current.lifetime = lifetime_samples(expires_at);
                    current.session_id = session_id.clone();
                    self.state(ConnectionState::Connected {
                        session_id,
                        expires_at,
                    });
                    // The outage's audio goes first, in order, then what arrives next.
                    let replay: Vec<_> = self.outage.drain(..).map(|(_, chunk)| chunk).collect();
                    for chunk in replay.into_iter().rev() {
                        self.backlog.push_front(chunk);
                    }
                    if self.closing && self.backlog.is_empty() {
                        self.current.as_ref().expect("checked").session.close();
                    }
                } else if is(&self.rotating) {
                    let rotating = self.rotating.as_mut().expect("checked");
                    rotating.connected = true;
                    rotating.connected_at = Some(Instant::now());
                    rotating.lifetime = lifetime_samples(expires_at);
                    rotating.session_id = session_id;
                    let margin = self.params.rotation_margin;
                    // Wait for a pause, but not past half the margin.
                    let hard = self
                        .rotation_time(expires_at)
                        .map(|at| at + margin / 2)
                        .unwrap_or_else(|| Instant::now() + margin / 2);
                    self.switch_deadline = Some(hard.max(Instant::now()));
                    self.rotate_at = self.rotation_time(expires_at);
                }
            }
            SessionEvent::Finished => {
                if is(&self.draining) {
                    self.draining = None;
                    self.router.set_live(self.current.as_ref().map(|s| s.id));
                } else if is(&self.current) {
                    let lived = self.current.take().and_then(|s| s.connected_at);
                    if !self.closing {
                        // The service ended the session without being asked: replace it.
                        let err = SessionError::Connection("the service closed the session".into());
                        self.lost_current(err, lived)?;
                    }
                } else if is(&self.rotating) {
                    self.rotating = None;
                }
            }
            SessionEvent::Failed(err) => {
                let counts = is(&self.current) || is(&self.rotating) || is(&self.draining);
                if !counts {
                    return Ok(());
                }
                if !err.is_recoverable() {
                    return Err(err);
                }
                if is(&self.draining) {
                    self.warn(format!("the replaced session ended badly: {err}"));
                    self.draining = None;
                    self.router.set_live(self.current.as_ref().map(|s| s.id));
                } else if is(&self.rotating) {
                    self.rotating = None;
                    self.router.set_next(None);
                    self.warn(format!("could not open the next session ({err}); retrying"));
                    self.rotate_at = Some(Instant::now() + self.backoff(1));
                } else {
                    let lived = self.current.take().and_then(|s| s.connected_at);
                    if self.closing {
                        self.warn(format!(
                            "the session ended badly while finishing ({err}); its last translations are lost"
                        ));
                        self.drop_buffers();
                        return Ok(());
                    }
                    self.lost_current(err, lived)?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// The current session (connected since `connected_at`, if it got that far) is gone: a
    /// waiting successor takes over, or a new one is opened: at once after an expiry or a close
    /// that ended a session which had worked for a while, else after a back-off. Unsent audio
    /// waits for it. Gives up with `err` after too many failed attempts in a row.
    fn lost_current(
        &mut self,
        err: SessionError,
        connected_at: Option<Instant>,
    ) -> Result<(), SessionError> {
        let reason = err.to_string();
        for chunk in std::mem::take(&mut self.backlog).into_iter().rev() {
            let position = self.outage.front().map_or(self.position, |(p, _)| *p);
            self.outage
                .push_front((position.saturating_sub(chunk.len() as u64), chunk));
        }
        if self.rotating.as_ref().is_some_and(|slot| slot.connected) {
            self.warn(format!(
                "the session ended early ({reason}); the next one takes over"
            ));
            self.switch();
            let replay: Vec<_> = self.outage.drain(..).map(|(_, chunk)| chunk).collect();
            self.backlog.extend(replay);
            return Ok(());
        }
        self.rotating = None;
        self.router.set_next(None);
        self.rotate_at = None;
        self.switch_deadline = None;
        // A session that dies as soon as it opens must not make a tight loop.
        let worked = connected_at.is_some_and(|at| at.elapsed() >= MIN_HEALTHY_SESSION);
        let delay = if worked && !matches!(err, SessionError::RateLimited(_)) {
            Duration::ZERO
        } else {
            self.attempt += 1;
            if self
                .params
                .max_retries
                .is_some_and(|max| self.attempt > max)
            {
                return Err(err);
            }
            self.backoff(self.attempt)
        };
        self.warn(format!(
            "the session was lost ({reason}); reconnecting in {} ms",
            delay.as_millis()
        ));
        // The outage starts with the first audio no session took (at the start of the stream,
        // that is its first sample).
        let position = self.outage.front().map_or(self.position, |(p, _)| *p);
        self.router.report(ConnectionEvent::State {
            state: ConnectionState::Reconnecting {
                attempt: self.attempt,
                delay,
                reason,
            },
            position,
        });
        self.retry_at = Some(Instant::now() + delay);
        Ok(())
    }

    /// Exponential back-off with jitter, so many elements do not reconnect in lockstep.
    fn backoff(&self, attempt: u32) -> Duration {
        let base = self
            .params
            .backoff_initial
            .saturating_mul(1 << attempt.saturating_sub(1).min(16))
            .min(self.params.backoff_max);
        base.mul_f64(rand::rng().random_range(0.5..=1.0))
    }

    /// Rotation by audio sent (see [`Slot::lifetime`]): open the next session once the current
    /// one has had its lifetime less the margin, switch at half the margin.
    fn rotate_by_audio(&mut self) {
        let Some(current) = &self.current else { return };
        let Some(lifetime) = current.lifetime else {
            return;
        };
        let margin = (self.params.rotation_margin.as_millis() as u64 * SAMPLE_RATE as u64 / 1000)
            .min(lifetime / 2);
        if self.closing {
            return;
        }
        if self.rotating.is_none() && current.sent >= lifetime - margin {
            self.rotate_at = None;
            self.open_rotating();
        } else if self.rotating.as_ref().is_some_and(|slot| slot.connected)
            && current.sent >= lifetime - margin / 2
        {
            self.switch();
        }
    }

    /// When to open the next session for one that expires at `expires_at` (Unix seconds).
    fn rotation_time(&self, expires_at: Option<i64>) -> Option<Instant> {
        let expires_at = expires_at?;
        let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?;
        let left = Duration::from_secs(u64::try_from(expires_at).ok()?).checked_sub(now)?;
        // A session shorter than two margins rotates halfway through instead.
        let margin = self.params.rotation_margin.min(left / 2);
        Some(Instant::now() + (left - margin))
    }

    fn start_close(&mut self) {
        self.closing = true;
        self.rotate_at = None;
        self.retry_at = None;
        if let Some(slot) = self.rotating.take() {
            // It had no audio yet: nothing to wait for.
            drop(slot);
            self.router.set_next(None);
        }
        match &self.current {
            Some(slot) if slot.connected => {
                if self.backlog.is_empty() {
                    slot.session.close();
                }
            }
            // Still connecting: it closes once connected (after the replay), or fails.
            Some(_) => {}
            None => self.drop_buffers(),
        }
    }

    fn drop_buffers(&mut self) {
        let lost: u64 = self.outage.iter().map(|(_, c)| c.len() as u64).sum::<u64>()
            + self.backlog.iter().map(|c| c.len() as u64).sum::<u64>();
        self.outage.clear();
        self.backlog.clear();
        self.stats.buffered_samples.store(0, Ordering::Relaxed);
        if lost > 0 {
            self.stats
                .untranslated_samples
                .fetch_add(lost, Ordering::Relaxed);
            self.warn(format!(
                "{:.1} s of audio were not translated: no session could take them",
                lost as f64 / SAMPLE_RATE as f64
            ));
        }
    }

    fn warn(&self, text: String) {
        self.router
            .report(ConnectionEvent::Session(SessionEvent::Warning(text)));
    }
}

/// Time left until `expires_at` (Unix seconds), as samples of audio.
fn lifetime_samples(expires_at: Option<i64>) -> Option<u64> {
    let expires_at = u64::try_from(expires_at?).ok()?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?;
    let left = Duration::from_secs(expires_at).checked_sub(now)?;
    Some(left.as_millis() as u64 * SAMPLE_RATE as u64 / 1000)
}

fn is_quiet(chunk: &[i16]) -> bool {
    if chunk.is_empty() {
        return true;
    }
    let energy: f64 = chunk.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    (energy / chunk.len() as f64).sqrt() < QUIET_RMS
}
