//! The engine thread of one session: engines are synchronous and may block for hundreds of ms, so
//! each session drives its engine from a std thread fed by a channel, and gets outputs back on a tokio
//! channel. The thread ends when the session drops its sender (client gone) or after `Finish`.
//! An engine that never blocks ([`EngineFactory::answers_at_once`]) runs on the session's own
//! task instead: the same commands and outputs, without two thread hand-overs per chunk.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
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

/// Handle on a running engine.
/// Dropping it (session task aborted) cancels the thread without waiting for it.
pub(crate) struct Worker {
    runner: Runner,
    /// Set when the session is gone: the thread skips queued work.
    cancel: Arc<AtomicBool>,
}

/// Where the engine runs.
enum Runner {
    /// On a thread of its own, fed through a channel; both taken when it is stopped.
    Thread {
        tx: Option<mpsc::Sender<Command>>,
        thread: Option<JoinHandle<()>>,
    },
    /// On the caller's task, by [`Worker::send`]; `None` once the engine has ended.
    Inline(Box<Mutex<Option<State>>>),
}

impl Worker {
    pub(crate) fn spawn(
        name: String,
        factory: Arc<dyn EngineFactory>,
        initial: EngineConfig,
        events: UnboundedSender<WorkerEvent>,
    ) -> std::io::Result<Worker> {
        let cancel = Arc::new(AtomicBool::new(false));
        let runner = if factory.answers_at_once() {
            Runner::Inline(Box::new(Mutex::new(Some(State::new(
                factory, initial, events,
            )))))
        } else {
            let (tx, rx) = mpsc::channel();
            let c = cancel.clone();
            let thread = std::thread::Builder::new()
                .name(name)
                .spawn(move || run(factory, initial, rx, events, c))?;
            Runner::Thread {
                tx: Some(tx),
                thread: Some(thread),
            }
        };
        Ok(Worker { runner, cancel })
    }

    /// Queues a command (inline: carries it out); a stopped engine is not an error here (the
    /// session notices by other means).
    pub(crate) fn send(&self, cmd: Command) {
        match &self.runner {
            Runner::Inline(state) => {
                let mut state = state.lock().unwrap();
                if let Some(st) = state.as_mut()
                    && !st.handle(cmd)
                {
                    *state = None;
                }
            }
            Runner::Thread { tx: Some(tx), .. } => {
                let _ = tx.send(cmd);
            }
            Runner::Thread { tx: None, .. } => {}
        }
    }

    /// Waits for the thread (off the async executor). With `cancel`, queued work is skipped;
    /// without, the thread ends after `Finish` or once it has drained its queue. An inline
    /// engine has nothing queued: it is dropped.
    pub(crate) async fn stop(mut self, cancel: bool) {
        if cancel {
            self.cancel.store(true, Ordering::Relaxed);
        }
        match &mut self.runner {
            Runner::Inline(state) => {
                state.get_mut().unwrap().take();
            }
            Runner::Thread { tx, thread } => {
                tx.take();
                if let Some(t) = thread.take() {
                    let _ = tokio::task::spawn_blocking(move || t.join()).await;
                }
            }
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
    fn new(
        factory: Arc<dyn EngineFactory>,
        initial: EngineConfig,
        events: UnboundedSender<WorkerEvent>,
    ) -> Self {
        State {
            factory,
            desired: initial,
            engine: None,
            failed: None,
            samples: 0,
            samples_at_output: 0,
            events,
        }
    }

    /// Carries out one command; false once the engine has ended (after `Finish`, or the session
    /// is gone).
    fn handle(&mut self, cmd: Command) -> bool {
        match cmd {
            Command::Configure(cfg) => {
                self.desired = cfg;
                self.ensure_engine()
            }
            Command::Audio(pcm) => {
                self.samples += pcm.len() as u64;
                if !self.ensure_engine() {
                    return false;
                }
                match &mut self.engine {
                    Some((_, e)) => {
                        let mut out = e.push_audio(&pcm);
                        if out.is_empty()
                            && self.samples >= self.samples_at_output + KEEPALIVE_AFTER
                        {
                            out.push(EngineOutput::OutputAudio(vec![0; KEEPALIVE_SAMPLES]));
                        }
                        self.forward(out)
                    }
                    None => true,
                }
            }
            Command::Sync => self.events.send(WorkerEvent::Synced).is_ok(),
            Command::Finish => {
                let out = match &mut self.engine {
                    Some((_, e)) => e.finish(),
                    None => Vec::new(),
                };
                self.engine = None;
                if self.forward(out) {
                    let _ = self.events.send(WorkerEvent::Finished);
                }
                false
            }
        }
    }

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
    let mut st = State::new(factory, initial, events);
    for cmd in rx {
        if cancel.load(Ordering::Relaxed) || !st.handle(cmd) {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::echo::EchoEngineFactory;

    /// The echo engine, run on a thread of its own as a blocking engine would be.
    struct Threaded(EchoEngineFactory);

    impl EngineFactory for Threaded {
        fn name(&self) -> &'static str {
            "threaded echo"
        }
        fn supported_languages(&self) -> Vec<&'static str> {
            self.0.supported_languages()
        }
        fn create(&self, language: &str, transcribe: bool) -> Result<Box<dyn Engine>, String> {
            self.0.create(language, transcribe)
        }
    }

    fn config(language: &str) -> EngineConfig {
        EngineConfig {
            language: language.into(),
            transcribe: true,
            options: SessionOptions::default(),
        }
    }

    /// Every event a worker sends for the same commands, in order, until it finishes.
    async fn events_of(factory: Arc<dyn EngineFactory>) -> Vec<String> {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let worker = Worker::spawn("test".into(), factory, config("es"), tx).unwrap();
        worker.send(Command::Configure(config("es")));
        for n in [1, 4800, 4800, 24_000, 7] {
            worker.send(Command::Audio((0..n).map(|i| i as i16).collect()));
        }
        worker.send(Command::Sync);
        // A language the engine does not take: no engine, no output, the input still counted.
        worker.send(Command::Configure(config("xx")));
        worker.send(Command::Audio(vec![1; 4800]));
        worker.send(Command::Configure(config("fr")));
        worker.send(Command::Audio(vec![2; 30_000]));
        worker.send(Command::Finish);
        worker.send(Command::Audio(vec![3; 4800]));
        let mut events = Vec::new();
        while let Some(event) = rx.recv().await {
            let finished = matches!(event, WorkerEvent::Finished);
            events.push(format!("{event:?}"));
            if finished {
                break;
            }
        }
        worker.stop(false).await;
        assert!(rx.recv().await.is_none(), "nothing after Finished");
        events
    }

    #[tokio::test]
    async fn an_inline_engine_sends_what_the_same_engine_on_a_thread_sends() {
        assert!(EchoEngineFactory::new().answers_at_once());
        let inline = events_of(Arc::new(EchoEngineFactory::new())).await;
        let threaded = events_of(Arc::new(Threaded(EchoEngineFactory::new()))).await;
        assert_eq!(inline, threaded);
        let texts = inline.iter().filter(|e| e.contains("Transcript")).count();
        assert_eq!(
            texts, 4,
            "a text each second of input, both ways: {inline:#?}"
        );
        assert!(inline.iter().any(|e| e == "Synced"));
    }
}
