//! The supervisor: one task that owns the stream's sessions and decides, from their lifecycle
//! events and the clock, when to open, rotate, replace and close them, where audio goes, what is
//! kept through an outage and what is sent again after a loss.

use super::limits::{
    ANSWER_GRACE, BACKLOG_CHUNKS, IN_FLIGHT_WINDOW, LOSSLESS_LEDGER_SAMPLES, MAX_HELD_SAMPLES,
    MIN_ENGINE_SILENCE, MIN_HEALTHY_SESSION, REPLAY_OVERLAP, is_quiet,
};
use super::router::Router;
use super::sessions::{SessionHandle, SessionOpener};
use super::slot::Slot;
use super::types::{ConnectionEvent, ConnectionParams, ConnectionState, ConnectionStats, Request};
use crate::protocol::translation::SAMPLE_RATE;
use crate::session_types::{Protocol, SessionCounters, SessionError, SessionEvent};
use rand::Rng;
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::{Notify, mpsc};
use tokio::time::{Instant, sleep_until};

pub(super) struct Supervisor<O: SessionOpener> {
    params: ConnectionParams,
    opener: O,
    /// Origin of the millisecond stamps in [`super::slot::Answers`].
    epoch: Instant,
    router: Arc<Router>,
    stats: Arc<ConnectionStats>,
    lifecycle: mpsc::UnboundedReceiver<(u64, SessionEvent)>,
    next_slot: u64,
    /// The session audio goes to (or will, once connected).
    current: Option<Slot<O::Handle>>,
    /// Opened ahead of the current session's expiry; takes over at a pause.
    rotating: Option<Slot<O::Handle>>,
    /// Replaced by a rotation, delivering its last output.
    draining: Vec<Slot<O::Handle>>,
    /// Opened for replaced sessions lost while finishing (see [`Recovery`]).
    recovering: Vec<Recovery<O::Handle>>,
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
    answer_arrived: Arc<Notify>,
    /// When the current session's answers last made progress, and how far they had got.
    last_answer: (Instant, u64),
}

/// A session opened to translate what a replaced session, lost while finishing, had not
/// answered: it is given that audio, then closed, and what it says is delivered in the lost
/// session's place (before its successor's output, which the router holds back meanwhile).
struct Recovery<H> {
    slot: Slot<H>,
    pending: VecDeque<(u64, Vec<i16>)>,
    closed: bool,
}

async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => sleep_until(at).await,
        None => std::future::pending().await,
    }
}

impl<O: SessionOpener> Supervisor<O> {
    pub(super) fn new(
        params: ConnectionParams,
        opener: O,
        router: Arc<Router>,
        stats: Arc<ConnectionStats>,
        lifecycle: mpsc::UnboundedReceiver<(u64, SessionEvent)>,
        lossless: Arc<AtomicBool>,
    ) -> Self {
        Supervisor {
            params,
            opener,
            epoch: Instant::now(),
            router,
            stats,
            lifecycle,
            next_slot: 0,
            current: None,
            rotating: None,
            draining: Vec::new(),
            recovering: Vec::new(),
            outage: VecDeque::new(),
            backlog: VecDeque::new(),
            position: 0,
            attempt: 0,
            retry_at: None,
            rotate_at: None,
            switch_deadline: None,
            closing: false,
            lossless,
            answer_arrived: Arc::new(Notify::new()),
            last_answer: (Instant::now(), 0),
        }
    }

    pub(super) async fn run(
        mut self,
        mut audio: mpsc::Receiver<Vec<i16>>,
        mut requests: mpsc::UnboundedReceiver<Request>,
    ) {
        self.open_current();
        loop {
            if self.closing
                && self.current.is_none()
                && self.draining.is_empty()
                && self.recovering.is_empty()
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
            let stall_check = self.stall_deadline();
            let recovery_sender = self
                .recovering
                .iter()
                .find(|r| r.slot.connected && !r.pending.is_empty())
                .map(|r| (r.slot.id, r.slot.audio.clone()));
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
                    Some(Request::Abandon(reply)) => {
                        self.abandon();
                        let _ = reply.send(());
                        self.router.report(ConnectionEvent::Finished);
                        return;
                    }
                    None => return,
                },
                permit = async { backlog_sender.as_ref().expect("checked").reserve().await }, if backlog_sender.is_some() => {
                    match permit {
                        Ok(permit) => {
                            if let Some((position, chunk)) = self.backlog.pop_front() {
                                self.account_buffer(-(chunk.len() as i64));
                                let (now_ms, limit) = (self.now_ms(), self.ledger_limit());
                                if let Some(slot) = self.current.as_mut() {
                                    slot.took(position, &chunk, now_ms, limit);
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
                permit = async { recovery_sender.as_ref().expect("checked").1.reserve().await }, if recovery_sender.is_some() => {
                    match permit {
                        Ok(permit) => {
                            let id = recovery_sender.as_ref().expect("checked").0;
                            self.feed_recovery(id, permit);
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
                _ = sleep_until_some(stall_check) => {
                    if let Err(err) = self.check_stall() {
                        self.router.report(ConnectionEvent::State {
                            state: ConnectionState::Failed { reason: err.to_string() },
                            position: self.position,
                        });
                        self.router.report(ConnectionEvent::Failed(err));
                        return;
                    }
                }
            }
        }
    }

    /// When the current session will have been given audio (speech, for a turn-based engine)
    /// for `keepalive_timeout` without saying anything, if it stays silent.
    fn stall_deadline(&self) -> Option<Instant> {
        let slot = self.current.as_ref()?;
        let since = slot.answers.unanswered_since.load(Ordering::Relaxed);
        (since != 0).then(|| self.epoch + Duration::from_millis(since - 1) + self.engine_silence())
    }

    /// How long a session may say nothing after it was given audio to answer.
    fn engine_silence(&self) -> Duration {
        self.params
            .session
            .keepalive_timeout
            .max(MIN_ENGINE_SILENCE)
    }

    /// A session whose connection is open (pings answered) but whose engine has said nothing
    /// for `keepalive_timeout` since it was given audio to answer has stopped working: it is dropped and
    /// replaced, and what it had not answered goes to the next session.
    fn check_stall(&mut self) -> Result<(), SessionError> {
        let Some(deadline) = self.stall_deadline() else {
            return Ok(());
        };
        if Instant::now() < deadline {
            return Ok(());
        }
        let Some(stalled) = self.current.take() else {
            return Ok(());
        };
        self.router.finished(stalled.id);
        let err = SessionError::Connection(format!(
            "the engine said nothing for {} ms after it was given audio to answer",
            self.engine_silence().as_millis()
        ));
        self.lost_current(err, Some(stalled))
    }

    fn state(&self, state: ConnectionState) {
        self.router.report(ConnectionEvent::State {
            state,
            position: self.position,
        });
    }

    /// Opens a session; its output is delivered after every earlier session's, or right after
    /// session `after`'s.
    fn start_session_after(&mut self, after: Option<u64>) -> Slot<O::Handle> {
        self.next_slot += 1;
        let id = self.next_slot;
        let (answers, callback) =
            Slot::<O::Handle>::prepare(id, self.router.clone(), self.answer_arrived.clone());
        match after {
            Some(earlier) => self.router.join_after(earlier, id),
            None => self.router.join(id),
        }
        let session = self.opener.open(
            &self.params.session,
            callback,
            Arc::<SessionCounters>::clone(&self.stats.session),
        );
        self.stats.sessions_opened.fetch_add(1, Ordering::Relaxed);
        let audio = session.audio_sender();
        Slot::new(
            id,
            session,
            audio,
            answers,
            self.params.session.protocol == Protocol::Translation,
        )
    }

    fn start_session(&mut self) -> Slot<O::Handle> {
        self.start_session_after(None)
    }

    /// Gives the recovery session `id` its next pending chunk; closes it after the last.
    fn feed_recovery(&mut self, id: u64, permit: mpsc::Permit<'_, Vec<i16>>) {
        let (now_ms, limit) = (self.now_ms(), self.ledger_limit());
        let Some(recovery) = self.recovering.iter_mut().find(|r| r.slot.id == id) else {
            return;
        };
        if let Some((position, chunk)) = recovery.pending.pop_front() {
            recovery.slot.took(position, &chunk, now_ms, limit);
            permit.send(chunk);
        }
        if recovery.pending.is_empty() && !recovery.closed {
            recovery.closed = true;
            recovery.slot.session.close();
        }
    }

    /// A replaced session was lost while finishing: a new session is given what it had not
    /// answered, in its place in the delivery order.
    fn recover(&mut self, mut lost: Slot<O::Handle>, err: &SessionError) {
        let from = lost
            .answered_until()
            .saturating_sub(REPLAY_OVERLAP)
            .max(lost.answers.start.load(Ordering::Relaxed));
        let unkept = lost.ledger.overflowed_speech();
        if unkept > 0 {
            self.count_untranslated(
                unkept,
                "the replaced session was lost before answering them",
            );
        }
        let pending: VecDeque<_> = lost.ledger.take_from(from).into();
        if pending.iter().all(|(_, chunk)| is_quiet(chunk)) {
            self.warn(format!(
                "the replaced session ended badly ({err}); it had answered everything"
            ));
            return;
        }
        let seconds =
            pending.iter().map(|(_, c)| c.len()).sum::<usize>() as f64 / f64::from(SAMPLE_RATE);
        self.warn(format!(
            "the replaced session ended badly ({err}); a new session translates the {seconds:.1} s it had not answered"
        ));
        let slot = self.start_session_after(Some(lost.id));
        self.recovering.push(Recovery {
            slot,
            pending,
            closed: false,
        });
    }

    /// Unanswered audio kept per session to send again. Input that can wait runs ahead of the
    /// answers (its in-flight window opens again when an engine is silent a while): far more of
    /// it is kept, in memory bounded all the same; live input keeps what the outage buffer would.
    /// Read as audio is given: the element says whether its input can wait once it knows.
    fn ledger_limit(&self) -> u64 {
        if self.lossless.load(Ordering::Relaxed) {
            self.params
                .outage_buffer_samples
                .max(LOSSLESS_LEDGER_SAMPLES)
        } else {
            self.params.outage_buffer_samples
        }
    }

    /// Milliseconds since the supervisor started, plus one (0 means "none" in the stamps).
    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64 + 1
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
                let kept = chunk.clone();
                match slot.audio.try_send(chunk) {
                    Ok(()) => {
                        let (now_ms, limit) = (self.now_ms(), self.ledger_limit());
                        if let Some(slot) = self.current.as_mut() {
                            slot.took(position, &kept, now_ms, limit);
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
        let answered = slot.output_samples();
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
        let is = |s: &Option<Slot<O::Handle>>| s.as_ref().is_some_and(|s| s.id == slot);
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
                } else if let Some(recovery) =
                    self.recovering.iter_mut().find(|r| r.slot.id == slot)
                {
                    recovery.slot.connected = true;
                    recovery.slot.connected_at = Some(Instant::now());
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
                self.recovering.retain(|r| r.slot.id != slot);
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
                let draining = self.draining.iter().position(|s| s.id == slot);
                if let Some(index) = draining
                    && err.is_recoverable()
                {
                    // Its successor joins the delivery order before it leaves.
                    let lost = self.draining.remove(index);
                    self.recover(lost, &err);
                    self.router.finished(slot);
                    return Ok(());
                }
                self.router.finished(slot);
                if let Some(index) = self.recovering.iter().position(|r| r.slot.id == slot) {
                    // No second recovery: what it had not answered is counted.
                    let mut recovery = self.recovering.remove(index);
                    self.warn(format!("the recovery session ended badly: {err}"));
                    let pending: u64 = recovery
                        .pending
                        .iter()
                        .filter(|(_, chunk)| !is_quiet(chunk))
                        .map(|(_, chunk)| chunk.len() as u64)
                        .sum();
                    if pending > 0 {
                        self.count_untranslated(
                            pending,
                            "the recovery session was lost before it could take them",
                        );
                    }
                    self.count_unanswered(&mut recovery.slot);
                    self.router.report(ConnectionEvent::State {
                        state: ConnectionState::Lost {
                            session_id: recovery.slot.session_id,
                            reason: err.to_string(),
                        },
                        position: recovery.slot.answers.start.load(Ordering::Relaxed),
                    });
                    return if err.is_recoverable() {
                        Ok(())
                    } else {
                        Err(err)
                    };
                }
                if !(is(&self.current) || is(&self.rotating)) {
                    return Ok(());
                }
                if !err.is_recoverable() {
                    return Err(err);
                }
                if is(&self.rotating) {
                    self.rotating = None;
                    self.warn(format!("could not open the next session ({err}); retrying"));
                    self.rotate_at = Some(Instant::now() + self.backoff(1));
                } else {
                    // Also while finishing: the replacement gets what this one had not answered
                    // (within the element's end-of-stream time limit).
                    let lost = self.current.take();
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
    fn lost_current(
        &mut self,
        err: SessionError,
        lost: Option<Slot<O::Handle>>,
    ) -> Result<(), SessionError> {
        let connected_at = lost.as_ref().and_then(|slot| slot.connected_at);
        let audio_taken = lost.as_ref().map_or(0, |slot| slot.sent);
        let reason = err.to_string();
        // What it had not answered goes to the next session first, then the unsent audio, in
        // input order.
        if let Some(slot) = lost {
            self.take_unanswered(slot);
        }
        self.outage.extend(std::mem::take(&mut self.backlog));
        self.outage
            .make_contiguous()
            .sort_by_key(|(position, _)| *position);
        if self.closing && self.outage.is_empty() {
            // Finishing, and it had answered everything: nothing to replace it for.
            if let Some(slot) = self.rotating.take() {
                self.router.finished(slot.id);
            }
            self.retry_at = None;
            return Ok(());
        }
        if self.rotating.as_ref().is_some_and(|slot| slot.connected) {
            self.warn(format!(
                "the session ended early ({reason}); the next one takes over and is given again what it had not answered"
            ));
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

    /// Moves the audio a lost session had not answered (from its last answer, less
    /// [`REPLAY_OVERLAP`]) into the outage buffer, to be sent again to the next session. Speech
    /// it was given that is no longer kept is counted as untranslated.
    fn take_unanswered(&mut self, mut slot: Slot<O::Handle>) {
        let Some(start) = slot.ledger.first_position() else {
            return;
        };
        let answered = slot.answered_until();
        let from = answered
            .saturating_sub(REPLAY_OVERLAP)
            .max(slot.answers.start.load(Ordering::Relaxed).min(start));
        let unkept = slot.ledger.overflowed_speech();
        let replay = slot.ledger.take_from(from);
        let replayed: u64 = replay.iter().map(|(_, chunk)| chunk.len() as u64).sum();
        self.account_buffer(replayed as i64);
        self.outage.extend(replay);
        if unkept > 0 {
            self.count_untranslated(unkept, "the lost session was given them and never answered");
        }
    }

    /// Speech a session was given and had not answered when it was lost, counted as
    /// untranslated (a replaced session finishing: its audio cannot go to a later session,
    /// which already has newer audio).
    fn count_unanswered(&self, slot: &mut Slot<O::Handle>) {
        let answered = slot.answered_until();
        let speech: u64 = slot
            .ledger
            .take_from(answered)
            .iter()
            .filter(|(_, chunk)| !is_quiet(chunk))
            .map(|(_, chunk)| chunk.len() as u64)
            .sum::<u64>()
            + slot.ledger.overflowed_speech();
        if speech > 0 {
            self.count_untranslated(
                speech,
                "the replaced session was lost before answering them",
            );
        }
    }

    /// Counts the speech no session will translate now: buffered for a session, or given to
    /// one that has not answered it.
    fn abandon(&mut self) {
        let speech = |chunks: &mut dyn Iterator<Item = &(u64, Vec<i16>)>| -> u64 {
            chunks
                .filter(|(_, chunk)| !is_quiet(chunk))
                .map(|(_, chunk)| chunk.len() as u64)
                .sum()
        };
        let mut lost = speech(&mut self.outage.iter().chain(self.backlog.iter()));
        let mut slots: Vec<&mut Slot<O::Handle>> = self
            .current
            .iter_mut()
            .chain(self.rotating.iter_mut())
            .chain(self.draining.iter_mut())
            .collect();
        for recovery in &mut self.recovering {
            lost += speech(&mut recovery.pending.iter());
            slots.push(&mut recovery.slot);
        }
        for slot in slots {
            let answered = slot.answered_until();
            lost += speech(&mut slot.ledger.take_from(answered).iter())
                + slot.ledger.overflowed_speech();
        }
        self.outage.clear();
        self.backlog.clear();
        self.stats.buffered_samples.store(0, Ordering::Relaxed);
        if lost > 0 {
            self.count_untranslated(
                lost,
                "the stream ended before a session could translate them",
            );
        }
    }

    fn count_untranslated(&self, samples: u64, why: &str) {
        self.stats
            .untranslated_samples
            .fetch_add(samples, Ordering::Relaxed);
        self.warn(format!(
            "{:.1} s of speech were not translated: {why}",
            samples as f64 / f64::from(SAMPLE_RATE)
        ));
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
        // A pending reconnection stays while audio waits for it: what is buffered still gets
        // translated (within the element's end-of-stream time limit).
        if self.outage.is_empty() && self.backlog.is_empty() {
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
