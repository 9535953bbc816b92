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
use crate::session::Session;
use crate::session_types::{
    Backpressure, SessionCounters, SessionError, SessionEvent, SessionParams,
};
use rand::Rng;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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
    lossless: Arc<AtomicBool>,
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
        let (audio_tx, audio_rx) = mpsc::channel(INPUT_CHUNKS);
        let (request_tx, request_rx) = mpsc::unbounded_channel();
        let (lifecycle_tx, lifecycle_rx) = mpsc::unbounded_channel();
        let stats = Arc::new(ConnectionStats::default());
        let lossless = Arc::new(AtomicBool::new(false));
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
            draining: Vec::new(),
            outage: VecDeque::new(),
            backlog: VecDeque::new(),
            position: 0,
            attempt: 0,
            retry_at: None,
            rotate_at: None,
            switch_deadline: None,
            closing: false,
            lossless: lossless.clone(),
            answer_arrived: Arc::new(tokio::sync::Notify::new()),
            last_answer: (Instant::now(), 0),
        };
        let task = RUNTIME.spawn(supervisor.run(audio_rx, request_rx));
        Connection {
            audio: audio_tx,
            requests: request_tx,
            task,
            stats,
            lossless,
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

/// Passes the sessions' output to the element in session order: the oldest session still
/// delivering is live; what later sessions say waits until every session before them is done.
/// Lifecycle events go to the supervisor.
struct Router {
    inner: Mutex<RouterInner>,
    deliver: EventCallback,
    lifecycle: mpsc::UnboundedSender<(u64, SessionEvent)>,
    stats: Arc<ConnectionStats>,
}

/// A session in the delivery order.
struct Place {
    slot: u64,
    held: VecDeque<SessionEvent>,
    /// It will say nothing more: once it is first, its held output goes out and it leaves.
    done: bool,
}

#[derive(Default)]
struct RouterInner {
    order: VecDeque<Place>,
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
                let Some(index) = inner.order.iter().position(|p| p.slot == slot) else {
                    // Not (or no longer) part of the stream.
                    if let SessionEvent::OutputAudio { samples, .. } = &data {
                        self.stats
                            .held_dropped_samples
                            .fetch_add(samples.len() as u64, Ordering::Relaxed);
                    }
                    return;
                };
                if index == 0 {
                    (self.deliver)(ConnectionEvent::Session(data));
                    return;
                }
                if let SessionEvent::OutputAudio { samples, .. } = &data {
                    inner.held_samples += samples.len() as u64;
                }
                inner.order[index].held.push_back(data);
                self.bound_held(&mut inner);
            }
        }
    }

    /// Keeps held output bounded: past the limit the oldest held audio is dropped (counted).
    fn bound_held(&self, inner: &mut RouterInner) {
        while inner.held_samples > MAX_HELD_SAMPLES {
            let Some(place) = inner.order.iter_mut().skip(1).find(|p| !p.held.is_empty()) else {
                inner.held_samples = 0;
                return;
            };
            if let Some(SessionEvent::OutputAudio { samples, .. }) = place.held.pop_front() {
                let length = samples.len() as u64;
                inner.held_samples = inner.held_samples.saturating_sub(length);
                self.stats
                    .held_dropped_samples
                    .fetch_add(length, Ordering::Relaxed);
            }
        }
    }

    /// A new session joins the end of the order.
    fn join(&self, slot: u64) {
        let mut inner = self.inner.lock().unwrap();
        inner.order.push_back(Place {
            slot,
            held: VecDeque::new(),
            done: false,
        });
        self.advance(&mut inner);
    }

    /// `slot` will say nothing more.
    fn finished(&self, slot: u64) {
        let mut inner = self.inner.lock().unwrap();
        if let Some(place) = inner.order.iter_mut().find(|p| p.slot == slot) {
            place.done = true;
        }
        self.advance(&mut inner);
    }

    /// Finished sessions at the front leave; the one that becomes first delivers what it held.
    fn advance(&self, inner: &mut RouterInner) {
        loop {
            let Some(first) = inner.order.front_mut() else {
                return;
            };
            for event in std::mem::take(&mut first.held) {
                if let SessionEvent::OutputAudio { samples, .. } = &event {
                    inner.held_samples = inner.held_samples.saturating_sub(samples.len() as u64);
                }
                (self.deliver)(ConnectionEvent::Session(event));
            }
            let first = inner.order.front().expect("checked");
            if !first.done {
                return;
            }
            inner.order.pop_front();
        }
    }

    /// Audio waiting for earlier sessions to finish.
    fn held_samples(&self) -> u64 {
        self.inner.lock().unwrap().held_samples
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
    /// Input position of the first audio given to it ([`NOT_STARTED`] until then).
    start: Arc<AtomicU64>,
    /// Input position where it stopped taking audio (once replaced).
    ended_at: u64,
    /// Samples of translated audio it sent back (counted by its callback).
    answered: Arc<AtomicU64>,
    /// Its lifetime in samples of audio (from `expires_at` when it connected): a service may
    /// count session time in audio, which runs ahead of the clock when input is faster than
    /// real time, so rotation also happens when this much audio has been sent, less the margin.
    lifetime: Option<u64>,
}

impl Slot {
    /// The session took `length` samples of input from `position` on.
    fn took(&mut self, position: u64, length: u64) {
        if self.sent == 0 {
            self.start.store(position, Ordering::Relaxed);
        }
        self.sent += length;
    }
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
    draining: Vec<Slot>,
    /// Audio no session could take yet, with its input position; bounded.
    outage: VecDeque<(u64, Vec<i16>)>,
    /// Audio for the connected current session whose own queue was full.
    backlog: VecDeque<(u64, Vec<i16>)>,
    /// Input samples received so far.
    position: u64,
    attempt: u32,
    retry_at: Option<Instant>,
    rotate_at: Option<Instant>,
    /// After this the rotating session takes over even without a pause.
    switch_deadline: Option<Instant>,
    closing: bool,
    /// Input that can wait (not live): audio is never dropped, the element waits instead.
    lossless: Arc<AtomicBool>,
    /// Signalled when a session sends translated audio back.
    answer_arrived: Arc<tokio::sync::Notify>,
    /// When the current session's answers last made progress, and how far they had got.
    last_answer: (Instant, u64),
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
            if self.closing
                && self.current.is_none()
                && self.draining.is_empty()
                && self.retry_at.is_none()
            {
                self.router.report(ConnectionEvent::Finished);
                return;
            }
            let window_open = self.window_open();
            let backlog_sender = self
                .current
                .as_ref()
                .filter(|slot| slot.connected && !self.backlog.is_empty() && window_open)
                .map(|slot| slot.audio.clone());
            let window_reopens = (!window_open).then(|| self.last_answer.0 + ANSWER_GRACE);
            let answer_arrived = self.answer_arrived.clone();
            let switch_ready = self.current.is_some();
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
                            if let Some((position, chunk)) = self.backlog.pop_front() {
                                self.account_buffer(-(chunk.len() as i64));
                                if let Some(slot) = self.current.as_mut() {
                                    slot.took(position, chunk.len() as u64);
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
                chunk = audio.recv(), if self.takes_audio() => match chunk {
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
                // The in-flight window may have opened: look again.
                _ = answer_arrived.notified(), if !window_open => {}
                _ = sleep_until_some(window_reopens), if !window_open => {}
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
        let answered = Arc::new(AtomicU64::new(0));
        let counted = answered.clone();
        let arrived = self.answer_arrived.clone();
        let start = Arc::new(AtomicU64::new(NOT_STARTED));
        let started_at = start.clone();
        let callback = Arc::new(move |mut event: SessionEvent| {
            if let SessionEvent::Progress { input_samples } = &mut event {
                // Session-relative → stream position; before any audio it means nothing.
                let start = started_at.load(Ordering::Relaxed);
                if start == NOT_STARTED {
                    return;
                }
                *input_samples += start;
            }
            if let SessionEvent::OutputAudio {
                samples,
                sample_rate,
                channels,
            } = &event
            {
                let frames = samples.len() as u64 / u64::from((*channels).max(1));
                let at_engine_rate =
                    frames * u64::from(SAMPLE_RATE) / u64::from((*sample_rate).max(1));
                counted.fetch_add(at_engine_rate, Ordering::Relaxed);
                arrived.notify_one();
            }
            router.on_session_event(id, event)
        });
        self.router.join(id);
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
            start,
            ended_at: 0,
            answered,
            lifetime: None,
        }
    }

    fn open_current(&mut self) {
        let slot = self.start_session();
        self.current = Some(slot);
        self.state(ConnectionState::Connecting {
            attempt: self.attempt,
        });
    }

    fn open_rotating(&mut self) {
        let Some(current) = &self.current else { return };
        let session_id = current.session_id.clone();
        let slot = self.start_session();
        self.rotating = Some(slot);
        // The old session stops taking audio at half the margin before its expiry, whether or
        // not the new one is open by then (the audio then waits for it).
        // (A retry after a failed attempt keeps the first deadline.)
        self.switch_deadline
            .get_or_insert(Instant::now() + self.params.rotation_margin / 2);
        self.state(ConnectionState::Rotating { session_id });
    }

    /// The rotating session takes the audio from now on; the old one finishes what it has.
    fn switch(&mut self) {
        let Some(next) = self.rotating.take() else {
            // The next session could not be opened in time: the current one still stops taking
            // audio before it expires, and a new one is opened the usual way (the audio waits).
            if let Some(mut old) = self.current.take() {
                old.session.close();
                old.ended_at = self.position;
                self.draining.push(old);
                self.switch_deadline = None;
                self.stats.rotations.fetch_add(1, Ordering::Relaxed);
                self.open_current();
            }
            return;
        };
        self.switch_deadline = None;
        if let Some(mut old) = self.current.take() {
            old.session.close();
            old.ended_at = self.position;
            self.draining.push(old);
        }
        self.stats.rotations.fetch_add(1, Ordering::Relaxed);
        if next.connected {
            self.state(ConnectionState::Connected {
                session_id: next.session_id.clone(),
                expires_at: None,
            });
        } else {
            // Not open yet: audio waits in the outage buffer until it is.
            self.state(ConnectionState::Connecting { attempt: 0 });
        }
        self.current = Some(next);
    }

    fn on_chunk(&mut self, chunk: Vec<i16>) {
        self.position += chunk.len() as u64;
        if self.rotating.as_ref().is_some_and(|slot| slot.connected) && is_quiet(&chunk) {
            self.switch();
        }
        let window_open = self.window_open();
        match &self.current {
            Some(slot) if slot.connected => {
                let position = self.position - chunk.len() as u64;
                if !self.backlog.is_empty() || !window_open {
                    self.account_buffer(chunk.len() as i64);
                    self.backlog.push_back((position, chunk));
                    return;
                }
                let length = chunk.len() as u64;
                match slot.audio.try_send(chunk) {
                    Ok(()) => {
                        if let Some(slot) = self.current.as_mut() {
                            slot.took(position, length);
                        }
                        self.rotate_by_audio();
                    }
                    Err(mpsc::error::TrySendError::Full(chunk)) => {
                        self.account_buffer(chunk.len() as i64);
                        self.backlog.push_back((position, chunk));
                    }
                    Err(mpsc::error::TrySendError::Closed(chunk)) => {
                        // Ending: its lifecycle event is on the way; keep the audio.
                        self.buffer_outage(position, chunk);
                    }
                }
            }
            _ => self.buffer_outage(self.position - chunk.len() as u64, chunk),
        }
    }

    /// Whether more audio may go to the current session now: always for live input; for input
    /// that can wait, while less than [`IN_FLIGHT_WINDOW`] is unanswered, or when answers have
    /// not moved for [`ANSWER_GRACE`] (an engine that waits for a pause).
    fn window_open(&mut self) -> bool {
        if !self.lossless.load(Ordering::Relaxed) {
            return true;
        }
        // A replaced session that takes long to finish holds back everything after it: input
        // that can wait waits too, rather than the held output growing past its bound.
        if self.router.held_samples() >= MAX_HELD_SAMPLES / 2 {
            return false;
        }
        let Some(slot) = &self.current else {
            return true;
        };
        let answered = slot.answered.load(Ordering::Relaxed);
        if answered != self.last_answer.1 {
            self.last_answer = (Instant::now(), answered);
        }
        slot.sent.saturating_sub(answered) <= IN_FLIGHT_WINDOW
            || self.last_answer.0.elapsed() >= ANSWER_GRACE
    }

    /// Whether to take the next chunk from the element: not when closing, not when a slow
    /// connection's backlog is full, and for lossless input not when the outage buffer is full
    /// (the element then waits instead of losing audio).
    fn takes_audio(&self) -> bool {
        !self.closing
            && self.backlog.len() < BACKLOG_CHUNKS
            && !(self.lossless.load(Ordering::Relaxed)
                && self.outage_samples() >= self.params.outage_buffer_samples)
    }

    fn outage_samples(&self) -> u64 {
        self.outage
            .iter()
            .map(|(_, chunk)| chunk.len() as u64)
            .sum()
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

    /// A session takes audio again: the outage's audio goes first, in input order.
    fn replay_outage(&mut self) {
        self.backlog.extend(self.outage.drain(..));
        self.backlog
            .make_contiguous()
            .sort_by_key(|(position, _)| *position);
    }

    /// Keeps audio for a later session, dropping what has become too old to be worth replaying.
    fn buffer_outage(&mut self, position: u64, chunk: Vec<i16>) {
        self.account_buffer(chunk.len() as i64);
        self.outage.push_back((position, chunk));
        if self.lossless.load(Ordering::Relaxed) {
            return;
        }
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
                    self.replay_outage();
                    if self.closing && self.backlog.is_empty() {
                        self.current.as_ref().expect("checked").session.close();
                    }
                } else if is(&self.rotating) {
                    let rotating = self.rotating.as_mut().expect("checked");
                    rotating.connected = true;
                    rotating.connected_at = Some(Instant::now());
                    rotating.lifetime = lifetime_samples(expires_at);
                    rotating.session_id = session_id;
                    // Its own rotation; the timer runs only once it has taken over.
                    self.rotate_at = self.rotation_time(expires_at);
                }
            }
            SessionEvent::Finished => {
                self.router.finished(slot);
                if let Some(index) = self.draining.iter().position(|s| s.id == slot) {
                    self.draining.remove(index);
                } else if is(&self.current) {
                    let lost = self.current.take();
                    if !self.closing {
                        // The service ended the session without being asked: replace it.
                        let err = SessionError::Connection("the service closed the session".into());
                        self.lost_current(err, lost)?;
                    }
                } else if is(&self.rotating) {
                    self.rotating = None;
                }
            }
            SessionEvent::Failed(err) => {
                self.router.finished(slot);
                let draining = self.draining.iter().position(|s| s.id == slot);
                if !(is(&self.current) || is(&self.rotating) || draining.is_some()) {
                    return Ok(());
                }
                if !err.is_recoverable() {
                    return Err(err);
                }
                if let Some(index) = draining {
                    let slot = self.draining.remove(index);
                    self.warn(format!("the replaced session ended badly: {err}"));
                    self.router.report(ConnectionEvent::State {
                        state: ConnectionState::Lost {
                            session_id: slot.session_id,
                            reason: err.to_string(),
                        },
                        position: slot.ended_at,
                    });
                } else if is(&self.rotating) {
                    self.rotating = None;
                    self.warn(format!("could not open the next session ({err}); retrying"));
                    self.rotate_at = Some(Instant::now() + self.backoff(1));
                } else {
                    let lost = self.current.take();
                    if self.closing && !self.lossless.load(Ordering::Relaxed) {
                        self.warn(format!(
                            "the session ended badly while finishing ({err}); its last translations are lost"
                        ));
                        self.drop_buffers();
                        return Ok(());
                    }
                    self.lost_current(err, lost)?;
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
    fn lost_current(&mut self, err: SessionError, lost: Option<Slot>) -> Result<(), SessionError> {
        let connected_at = lost.as_ref().and_then(|slot| slot.connected_at);
        let audio_taken = lost.as_ref().map_or(0, |slot| slot.sent);
        let lost_session_id = lost.map(|slot| slot.session_id).unwrap_or_default();
        let reason = err.to_string();
        // Unsent audio waits for the next session, in input order.
        self.outage.extend(std::mem::take(&mut self.backlog));
        self.outage
            .make_contiguous()
            .sort_by_key(|(position, _)| *position);
        if self.rotating.as_ref().is_some_and(|slot| slot.connected) {
            self.warn(format!(
                "the session ended early ({reason}); the next one takes over"
            ));
            // What it had not answered is gone; no outage, so no reconnecting.
            self.router.report(ConnectionEvent::State {
                state: ConnectionState::Lost {
                    session_id: lost_session_id.clone(),
                    reason: reason.clone(),
                },
                position: self.position,
            });
            self.switch();
            self.replay_outage();
            return Ok(());
        }
        if let Some(slot) = self.rotating.take() {
            self.router.finished(slot.id);
        }
        self.rotate_at = None;
        self.switch_deadline = None;
        // A session that dies as soon as it opens must not make a tight loop. Working is judged
        // by time or by audio (input ahead of real time gives a session much audio quickly).
        let worked = connected_at.is_some_and(|at| at.elapsed() >= MIN_HEALTHY_SESSION)
            || audio_taken >= MIN_HEALTHY_SESSION.as_secs() * u64::from(SAMPLE_RATE);
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
        } else if current.sent >= lifetime - margin / 2 {
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
        self.switch_deadline = None;
        // Input that can wait keeps its pending reconnection: what is buffered still gets
        // translated (within the element's end-of-stream time limit).
        if !self.lossless.load(Ordering::Relaxed) {
            self.retry_at = None;
        }
        if let Some(slot) = self.rotating.take() {
            // It had no audio yet: nothing to wait for.
            self.router.finished(slot.id);
        }
        match &self.current {
            Some(slot) if slot.connected => {
                if self.backlog.is_empty() {
                    slot.session.close();
                }
            }
            // Still connecting: it closes once connected (after the replay), or fails.
            Some(_) => {}
            None if self.retry_at.is_some() => {}
            None => self.drop_buffers(),
        }
    }

    fn drop_buffers(&mut self) {
        let lost: u64 = self.outage.iter().map(|(_, c)| c.len() as u64).sum::<u64>()
            + self
                .backlog
                .iter()
                .map(|(_, c)| c.len() as u64)
                .sum::<u64>();
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
