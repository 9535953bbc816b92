//! One session as the supervisor tracks it, and what its event callback records on the way to
//! the router: where its audio started, how far it has answered, whether it is still answering.

use super::ledger::Ledger;
use super::limits::{NOT_STARTED, REPLAY_OVERLAP, is_quiet};
use super::router::Router;
use crate::protocol::translation::SAMPLE_RATE;
use crate::session_types::{Callback, SessionEvent};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;

/// What the session's callback (on the session's task) and the supervisor both see.
#[derive(Debug)]
pub(super) struct Answers {
    /// Input position of the first audio given to the session ([`NOT_STARTED`] until then).
    pub(super) start: AtomicU64,
    /// Samples of translated audio it sent back, at the engine's rate.
    pub(super) output_samples: AtomicU64,
    /// Input position up to which it has answered: its progress (`elapsed_ms`) when it last said
    /// something (audible speech or translated text), or — for an engine that does not report
    /// progress — how much audio it had been given by then.
    pub(super) answered_until: AtomicU64,
    /// Input position of the end of the audio given to it.
    pub(super) sent_until: AtomicU64,
    /// Its latest progress, as an input position, and whether it reports progress at all.
    progress: AtomicU64,
    reports_progress: AtomicBool,
    /// Milliseconds (since the supervisor's epoch, plus one) when audio it must answer (see
    /// [`Slot::answers_all_audio`]) was first given to it after the last event it sent; 0 when
    /// it has said something since. Any event clears it.
    pub(super) unanswered_since: AtomicU64,
}

impl Answers {
    fn new() -> Answers {
        Answers {
            start: AtomicU64::new(NOT_STARTED),
            output_samples: AtomicU64::new(0),
            answered_until: AtomicU64::new(0),
            sent_until: AtomicU64::new(0),
            progress: AtomicU64::new(0),
            reports_progress: AtomicBool::new(false),
            unanswered_since: AtomicU64::new(0),
        }
    }

    /// What an event says about the session; `false` for an event to drop (progress before any
    /// audio means nothing). Progress is turned from session-relative into a stream position.
    fn observe(&self, event: &mut SessionEvent) -> bool {
        self.unanswered_since.store(0, Ordering::Relaxed);
        match event {
            SessionEvent::Progress { input_samples } => {
                let start = self.start.load(Ordering::Relaxed);
                if start == NOT_STARTED {
                    return false;
                }
                *input_samples += start;
                self.progress.store(*input_samples, Ordering::Relaxed);
                self.reports_progress.store(true, Ordering::Relaxed);
            }
            SessionEvent::OutputAudio {
                samples,
                sample_rate,
                channels,
            } => {
                let frames = samples.len() as u64 / u64::from((*channels).max(1));
                let at_engine_rate =
                    frames * u64::from(SAMPLE_RATE) / u64::from((*sample_rate).max(1));
                self.output_samples
                    .fetch_add(at_engine_rate, Ordering::Relaxed);
                // Digital silence (a keep-alive, the pause between utterances) answers nothing.
                if !is_quiet(samples) {
                    self.mark_answered();
                }
            }
            SessionEvent::OutputTranscript(text) if !text.trim().is_empty() => self.mark_answered(),
            _ => {}
        }
        true
    }

    fn mark_answered(&self) {
        let until = if self.reports_progress.load(Ordering::Relaxed) {
            self.progress.load(Ordering::Relaxed)
        } else {
            self.sent_until.load(Ordering::Relaxed)
        };
        self.answered_until.fetch_max(until, Ordering::Relaxed);
    }
}

/// One session and what is known about it.
pub(super) struct Slot<H> {
    pub(super) id: u64,
    pub(super) session: H,
    pub(super) audio: mpsc::Sender<Vec<i16>>,
    /// `session.created` arrived: audio may go to it.
    pub(super) connected: bool,
    pub(super) connected_at: Option<Instant>,
    pub(super) session_id: String,
    /// Samples of audio given to it.
    pub(super) sent: u64,
    /// Input position where it stopped taking audio (once replaced).
    pub(super) ended_at: u64,
    pub(super) answers: Arc<Answers>,
    /// The audio it has not answered yet, to send again if it is lost.
    pub(super) ledger: Ledger,
    /// Its engine says something (if only digital silence) for every stretch of input, speech
    /// or not, as the translation protocol's engines do: then any audio left without a word
    /// counts towards a stall, not only speech (a turn-based engine is silent in a pause).
    pub(super) answers_all_audio: bool,
    /// Its lifetime in samples of audio (from `expires_at` when it connected): a service may
    /// count session time in audio, which runs ahead of the clock when input is faster than
    /// real time, so rotation also happens when this much audio has been sent, less the margin.
    pub(super) lifetime: Option<u64>,
}

impl<H> Slot<H> {
    /// A slot for a session about to open, and the callback its events must go through.
    pub(super) fn prepare(
        id: u64,
        router: Arc<Router>,
        output_arrived: Arc<Notify>,
    ) -> (Arc<Answers>, Callback) {
        let answers = Arc::new(Answers::new());
        let seen = answers.clone();
        let callback: Callback = Arc::new(move |mut event: SessionEvent| {
            if !seen.observe(&mut event) {
                return;
            }
            if matches!(event, SessionEvent::OutputAudio { .. }) {
                output_arrived.notify_one();
            }
            router.on_session_event(id, event)
        });
        (answers, callback)
    }

    pub(super) fn new(
        id: u64,
        session: H,
        audio: mpsc::Sender<Vec<i16>>,
        answers: Arc<Answers>,
        answers_all_audio: bool,
    ) -> Slot<H> {
        Slot {
            id,
            session,
            audio,
            connected: false,
            connected_at: None,
            session_id: String::new(),
            sent: 0,
            ended_at: 0,
            answers,
            ledger: Ledger::default(),
            answers_all_audio,
            lifetime: None,
        }
    }

    /// The session took `chunk`, input from `position` on, at `now_ms` (supervisor epoch + 1);
    /// its ledger keeps at most `ledger_limit` samples.
    pub(super) fn took(&mut self, position: u64, chunk: &[i16], now_ms: u64, ledger_limit: u64) {
        if self.sent == 0 {
            self.answers.start.store(position, Ordering::Relaxed);
        }
        let length = chunk.len() as u64;
        self.sent += length;
        self.answers
            .sent_until
            .store(position + length, Ordering::Relaxed);
        // Kept from a little before the last answer: what a replay would start with.
        self.ledger.forget_before(
            self.answers
                .answered_until
                .load(Ordering::Relaxed)
                .saturating_sub(REPLAY_OVERLAP),
        );
        self.ledger.record(position, chunk, ledger_limit);
        if self.answers_all_audio || !is_quiet(chunk) {
            let _ = self.answers.unanswered_since.compare_exchange(
                0,
                now_ms,
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
        }
    }

    /// Samples of translated audio it sent back.
    pub(super) fn output_samples(&self) -> u64 {
        self.answers.output_samples.load(Ordering::Relaxed)
    }

    pub(super) fn answered_until(&self) -> u64 {
        self.answers.answered_until.load(Ordering::Relaxed)
    }
}
