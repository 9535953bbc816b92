//! The engine thread of one session: engines are synchronous and may block for hundreds of ms, so
//! each session drives its engine from a std thread fed by a channel, and gets outputs back on a tokio
//! channel. The thread ends when the session drops its sender (client gone) or after `Finish`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;

use tokio::sync::mpsc::UnboundedSender;

use crate::engine::{Engine, EngineFactory, EngineOutput, SessionOptions};

/// What an engine is set up for; a change makes a new engine.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct EngineConfig {
    pub language: String,
    pub transcribe: bool,
    /// Fixed for the connection (from its URL).
    pub options: SessionOptions,
}

/// Session → engine thread.
#[derive(Debug)]
pub(crate) enum Command {
    Configure(EngineConfig),
    Audio(Vec<i16>),
    /// Input ended: flush, report [`WorkerEvent::Finished`], stop.
    Finish,
    /// Report [`WorkerEvent::Synced`] once everything queued before has been processed (its outputs
    /// are then already on the event channel, ahead of it).
    Sync,
}

/// Engine thread → session.
#[derive(Debug)]
pub(crate) enum WorkerEvent {
    /// `elapsed_ms`: input audio received before this output, in ms, floored to 200.
    Output {
        output: EngineOutput,
        elapsed_ms: u64,
    },
    /// The engine could not be created; the text is for the client.
    Error(String),
    Finished,
    /// Answer to [`Command::Sync`].
    Synced,
}

/// Handle on a running engine thread.
/// Dropping it (session task aborted) cancels the thread without waiting for it.
pub(crate) struct Worker {
    tx: Option<mpsc::Sender<Command>>,
    thread: Option<JoinHandle<()>>,
    /// Set when the session is gone: skip queued work.
    cancel: Arc<AtomicBool>,
}

impl Worker {
    pub(crate) fn spawn(
        name: String,
        factory: Arc<dyn EngineFactory>,
        initial: EngineConfig,
        events: UnboundedSender<WorkerEvent>,
    ) -> std::io::Result<Worker> {
        let (tx, rx) = mpsc::channel();
        let cancel = Arc::new(AtomicBool::new(false));
        let c = cancel.clone();
        let thread = std::thread::Builder::new()
            .name(name)
            .spawn(move || run(factory, initial, rx, events, c))?;
        Ok(Worker {
            tx: Some(tx),
            thread: Some(thread),
            cancel,
        })
    }

    /// Queues a command; a stopped thread is not an error here (the session notices by other means).
    pub(crate) fn send(&self, cmd: Command) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(cmd);
        }
    }

    /// Waits for the thread (off the async executor). With `cancel`, queued work is skipped;
    /// without, the thread ends after `Finish` or once it has drained its queue.
    pub(crate) async fn stop(mut self, cancel: bool) {
        if cancel {
            self.cancel.store(true, Ordering::Relaxed);
        }
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.cancel.store(true, Ordering::Relaxed);
    }
}

struct State {
    factory: Arc<dyn EngineFactory>,
    desired: EngineConfig,
    engine: Option<(EngineConfig, Box<dyn Engine>)>,
    /// Config whose creation failed; not retried until the config changes.
    failed: Option<EngineConfig>,
    samples: u64,
    /// Input heard when the latest output went out.
    samples_at_output: u64,
    events: UnboundedSender<WorkerEvent>,
}

/// With nothing to say for this much input (1 s), the engine sends [`KEEPALIVE_SAMPLES`] of
/// digital silence, as the live service does between utterances: clients learn from its
/// `elapsed_ms` how far the engine has listened.
const KEEPALIVE_AFTER: u64 = 24_000;
const KEEPALIVE_SAMPLES: usize = 4_800;

impl State {
    fn elapsed_ms(&self) -> u64 {
        self.samples * 1000 / 24_000 / 200 * 200
    }

    /// Forwards outputs; false when the session is gone.
    fn forward(&mut self, outputs: Vec<EngineOutput>) -> bool {
        if !outputs.is_empty() {
            self.samples_at_output = self.samples;
        }
        let elapsed_ms = self.elapsed_ms();
        outputs.into_iter().all(|output| {
            self.events
                .send(WorkerEvent::Output { output, elapsed_ms })
                .is_ok()
        })
    }

    /// Makes sure an engine for `desired` exists (if the factory supports the language).
    fn ensure_engine(&mut self) -> bool {
        if let Some((cfg, engine)) = &mut self.engine {
            if *cfg == self.desired {
                return true;
            }
            let flushed = engine.finish();
            self.engine = None;
            if !self.forward(flushed) {
                return false;
            }
        }
        if self.failed.as_ref() == Some(&self.desired)
            || !self
                .factory
                .supported_languages()
                .contains(&self.desired.language.as_str())
        {
            return true;
        }
        match self.factory.create_for(
            &self.desired.language,
            self.desired.transcribe,
            &self.desired.options,
        ) {
            Ok(e) => {
                self.engine = Some((self.desired.clone(), e));
                self.failed = None;
                true
            }
            Err(text) => {
                self.failed = Some(self.desired.clone());
                self.events.send(WorkerEvent::Error(text)).is_ok()
            }
        }
    }
}

fn run(
    factory: Arc<dyn EngineFactory>,
    initial: EngineConfig,
    rx: mpsc::Receiver<Command>,
    events: UnboundedSender<WorkerEvent>,
    cancel: Arc<AtomicBool>,
) {
    let mut st = State {
        factory,
        desired: initial,
        engine: None,
        failed: None,
        samples: 0,
        samples_at_output: 0,
        events,
    };
    for cmd in rx {
        if cancel.load(Ordering::Relaxed) {
            return;
        }
        let alive = match cmd {
            Command::Configure(cfg) => {
                st.desired = cfg;
                st.ensure_engine()
            }
            Command::Audio(pcm) => {
                st.samples += pcm.len() as u64;
                if !st.ensure_engine() {
                    return;
                }
                match &mut st.engine {
                    Some((_, e)) => {
                        let mut out = e.push_audio(&pcm);
                        if out.is_empty() && st.samples >= st.samples_at_output + KEEPALIVE_AFTER {
                            out.push(EngineOutput::OutputAudio(vec![0; KEEPALIVE_SAMPLES]));
                        }
                        st.forward(out)
                    }
                    None => true,
                }
            }
            Command::Sync => st.events.send(WorkerEvent::Synced).is_ok(),
            Command::Finish => {
                let out = match &mut st.engine {
                    Some((_, e)) => e.finish(),
                    None => Vec::new(),
                };
                st.engine = None;
                if st.forward(out) {
                    let _ = st.events.send(WorkerEvent::Finished);
                }
                return;
            }
        };
        if !alive {
            return;
        }
    }
}
