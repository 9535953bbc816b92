//! The handle on one translation session, running on the shared tokio runtime.
//!
//! The streaming thread hands it 200 ms chunks through a bounded channel and never waits for the
//! network; everything the server says comes back through a callback as [`SessionEvent`]s. Every
//! network step has a time limit, so a dead peer becomes an error instead of a hang. The dialogue
//! itself is the chosen backend's.

use crate::protocol::translation::SessionConfig;
use crate::runtime::RUNTIME;
use crate::session_types::{
    Backpressure, Callback, Control, Link, Protocol, SessionCounters, SessionEvent, SessionParams,
};
use std::sync::Arc;
use tokio::sync::mpsc;

/// Chunks the channel holds: 8 × 200 ms. Small on purpose: what waits here is lost if the
/// connection drops, while audio waiting in the connection supervisor is replayed.
pub const AUDIO_QUEUE_CHUNKS: usize = 8;
/// Handle on a running session; dropping it aborts the connection at once.
pub struct Session {
    audio: mpsc::Sender<Vec<i16>>,
    /// Unbounded: a close or a language change must never be dropped for want of room.
    control: mpsc::UnboundedSender<Control>,
    task: tokio::task::JoinHandle<()>,
    counters: Arc<SessionCounters>,
}

impl Session {
    /// Starts connecting in the background; returns at once. `counters` may be shared by
    /// several sessions (a connection's successive sessions add up).
    pub fn start(
        params: SessionParams,
        on_event: Callback,
        counters: Arc<SessionCounters>,
    ) -> Session {
        let (audio_tx, audio_rx) = mpsc::channel(AUDIO_QUEUE_CHUNKS);
        let (control_tx, control_rx) = mpsc::unbounded_channel();
        let link = Link {
            audio: audio_rx,
            control: control_rx,
            on_event,
            counters: counters.clone(),
        };
        let task = RUNTIME.spawn(run(params, link));
        Session {
            audio: audio_tx,
            control: control_tx,
            task,
            counters,
        }
    }

    /// Queues a chunk of 24 kHz mono samples without waiting.
    pub fn send_audio(&self, chunk: Vec<i16>) -> Result<(), Backpressure> {
        match self.audio.try_send(chunk) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => Err(Backpressure),
            // The task has ended; it reported why through the callback.
            Err(mpsc::error::TrySendError::Closed(_)) => Ok(()),
        }
    }

    /// Sends a new `session.update` (e.g. the target language changed while playing).
    pub fn update(&self, config: SessionConfig) {
        let _ = self.control.send(Control::Update(config));
    }

    /// Flushes the queued audio, then sends `session.close`; `Finished` follows.
    pub fn close(&self) {
        let _ = self.control.send(Control::Close);
    }

    pub fn counters(&self) -> &SessionCounters {
        &self.counters
    }

    /// The audio channel itself, for a caller that wants to wait for room asynchronously.
    pub fn audio_sender(&self) -> mpsc::Sender<Vec<i16>> {
        self.audio.clone()
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn run(params: SessionParams, mut link: Link) {
    let result = match params.protocol {
        Protocol::Translation => {
            crate::backends::openai_translation::converse(&params, &mut link).await
        }
        Protocol::Interpreter { ref voice } => {
            crate::backends::openai_realtime::converse(&params, voice, &mut link).await
        }
        Protocol::Transcription => {
            crate::backends::openai_transcription::converse(&params, &mut link).await
        }
        Protocol::GptTranslator => {
            crate::backends::gpttranslator::converse(&params, &mut link).await
        }
    };
    match result {
        Ok(()) => (link.on_event)(SessionEvent::Finished),
        Err(err) => (link.on_event)(SessionEvent::Failed(err)),
    }
}
