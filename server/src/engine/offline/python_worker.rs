//! The Whisper and Piper child process (`server/python/offline_worker.py` in the set-up venv).
//!
//! One long-lived process per engine factory holds the models (loaded once, ≈ 0.3–0.5 GB) and
//! serves every session, one request at a time: on two cores one request using both is as fast
//! as two sharing them, and the model is in memory once. A process keeps the speech models and
//! their runtimes (CTranslate2, ONNX Runtime) out of the plugin, so cloud users never load them.
//! A request that fails or stalls kills the process; the next request starts a fresh one.

use super::espeak::Pcm;
use super::model_files::{MANIFEST, ModelFiles};
use serde::Deserialize;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::Duration;

const SCRIPT: &str = include_str!("../../../python/offline_worker.py");
/// Loading the models (and checking their hashes) on a busy machine.
const START_TIMEOUT: Duration = Duration::from_secs(120);
/// One request: a 20 s utterance on a loaded 2-core machine takes a few seconds.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// What Whisper made of one utterance.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Transcription {
    /// Spoken language (ISO 639-1), `None` when no speech was found.
    pub language: Option<String>,
    /// Text per task asked: `transcribe` (the spoken language) and `translate` (English).
    #[serde(default)]
    pub texts: HashMap<String, String>,
    /// Milliseconds the worker spent per stage (`vad`, `features`, `encode`, `language`,
    /// `transcribe`, `translate`; `short_window_doubtful` when the fitted window's text was
    /// doubtful and the utterance was decoded again in the full 30 s one).
    #[serde(default)]
    pub timings_ms: HashMap<String, f64>,
    /// The encoder window used, in seconds.
    #[serde(default)]
    pub window_s: Option<f64>,
}

/// Which decodes an utterance needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Task {
    /// Text in the spoken language.
    Transcribe,
    /// English text, whatever was spoken.
    Translate,
}

impl Task {
    fn name(self) -> &'static str {
        match self {
            Task::Transcribe => "transcribe",
            Task::Translate => "translate",
        }
    }
}

/// What a transcription request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// An utterance's answer.
    Answer,
    /// Provisional text of a running utterance.
    Interim,
    /// For measuring a voice: no text dropped as unsure.
    Unfiltered,
}

#[derive(Deserialize)]
struct Answer {
    ok: bool,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    rate: Option<u32>,
    #[serde(default)]
    samples: Option<usize>,
    #[serde(flatten)]
    rest: serde_json::Map<String, serde_json::Value>,
}

/// An answer line and, for speech, its audio.
type Reply = Result<(Answer, Vec<i16>), String>;

struct Process {
    child: Child,
    stdin: ChildStdin,
    replies: Receiver<Reply>,
}

impl Process {
    fn spawn(files: &ModelFiles, preload: &[&str], threads: usize) -> Result<Self, String> {
        let mut child = Command::new(files.python())
            .arg("-c")
            .arg(SCRIPT)
            .arg("--models")
            .arg(files.models())
            .arg("--manifest-text")
            .arg(MANIFEST)
            .arg("--threads")
            .arg(threads.to_string())
            .arg("--preload")
            .arg(preload.join(","))
            // Nothing is fetched at run time: the models are local files.
            .env("HF_HUB_OFFLINE", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                format!(
                    "cannot start {}: {e} (run {})",
                    files.python().display(),
                    super::model_files::SETUP_COMMAND
                )
            })?;
        let stderr = child.stderr.take().ok_or("worker has no stderr")?;
        let last_error = Arc::new(Mutex::new(String::new()));
        let kept = last_error.clone();
        // Drained all along (a full pipe would block the worker); its last line explains a
        // worker that dies (a Python traceback ends with the exception).
        thread::Builder::new()
            .name("offline-worker-stderr".into())
            .spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    if !line.trim().is_empty() {
                        *kept.lock().unwrap_or_else(|p| p.into_inner()) = line;
                    }
                }
            })
            .map_err(|e| format!("cannot start the worker's stderr reader: {e}"))?;
        let stdin = child.stdin.take().ok_or("worker has no stdin")?;
        let stdout = child.stdout.take().ok_or("worker has no stdout")?;
        let (tx, replies) = channel();
        thread::Builder::new()
            .name("offline-worker-reader".into())
            .spawn(move || {
                let mut reader = BufReader::new(stdout);
                loop {
                    let reply = read_reply(&mut reader);
                    let stop = reply.is_err();
                    if tx.send(reply).is_err() || stop {
                        break;
                    }
                }
            })
            .map_err(|e| format!("cannot start the worker's reader: {e}"))?;
        let mut process = Process {
            child,
            stdin,
            replies,
        };
        if let Err(e) = process.wait(START_TIMEOUT) {
            // Let the stderr reader take the traceback's last line.
            thread::sleep(Duration::from_millis(200));
            let last = last_error.lock().unwrap_or_else(|p| p.into_inner()).clone();
            return Err(if last.is_empty() {
                e
            } else {
                format!("{e}: {last}")
            });
        }
        Ok(process)
    }

    fn wait(&mut self, timeout: Duration) -> Result<(Answer, Vec<i16>), String> {
        let (answer, audio) = match self.replies.recv_timeout(timeout) {
            Ok(reply) => reply?,
            Err(RecvTimeoutError::Timeout) => {
                return Err(format!("no answer within {} s", timeout.as_secs()));
            }
            Err(RecvTimeoutError::Disconnected) => return Err("the worker exited".into()),
        };
        if !answer.ok {
            return Err(answer.error.unwrap_or_else(|| "unknown error".into()));
        }
        Ok((answer, audio))
    }

    fn request(&mut self, header: &serde_json::Value, payload: &[u8]) -> Result<(), String> {
        let mut line = serde_json::to_vec(header).map_err(|e| e.to_string())?;
        line.push(b'\n');
        self.stdin
            .write_all(&line)
            .and_then(|()| self.stdin.write_all(payload))
            .and_then(|()| self.stdin.flush())
            .map_err(|e| format!("cannot write to the worker: {e}"))
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read_reply(reader: &mut impl BufRead) -> Reply {
    let mut line = Vec::new();
    match reader.read_until(b'\n', &mut line) {
        Ok(0) => return Err("the worker exited".into()),
        Ok(_) => {}
        Err(e) => return Err(format!("cannot read from the worker: {e}")),
    }
    let answer: Answer =
        serde_json::from_slice(&line).map_err(|e| format!("bad answer from the worker: {e}"))?;
    let mut audio = Vec::new();
    if let (Some(_), Some(samples)) = (answer.rate, answer.samples) {
        let mut bytes = vec![0u8; samples * 2];
        reader
            .read_exact(&mut bytes)
            .map_err(|e| format!("cannot read speech from the worker: {e}"))?;
        audio = bytes
            .chunks_exact(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]]))
            .collect();
    }
    Ok((answer, audio))
}

/// The shared worker; requests are serialised.
pub struct PythonWorker {
    files: ModelFiles,
    preload: Vec<&'static str>,
    threads: usize,
    process: Mutex<Option<Process>>,
}

impl PythonWorker {
    /// Starts the worker with `preload` loaded (e.g. `whisper-base`, `piper`), so that a missing
    /// or corrupt model is an error now rather than in the first session.
    pub fn start(
        files: ModelFiles,
        preload: Vec<&'static str>,
        threads: usize,
    ) -> Result<Self, String> {
        for model in &preload {
            files.check(model)?;
        }
        let process = Process::spawn(&files, &preload, threads)
            .map_err(|e| format!("the offline engine's Whisper worker did not start: {e}"))?;
        Ok(PythonWorker {
            files,
            preload,
            threads,
            process: Mutex::new(Some(process)),
        })
    }

    /// Whether a request is in progress (another session's, as sessions are synchronous): work
    /// that can be skipped (interim and tentative decodes) is, rather than delay it.
    pub fn is_busy(&self) -> bool {
        self.process.try_lock().is_err()
    }

    /// Process id of the running worker (for memory figures), if any.
    pub fn pid(&self) -> Option<u32> {
        self.lock().as_ref().map(|p| p.child.id())
    }

    fn lock(&self) -> MutexGuard<'_, Option<Process>> {
        self.process.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// One request on a live process (restarted if the last one died); a failure kills it.
    fn call(
        &self,
        header: serde_json::Value,
        payload: &[u8],
    ) -> Result<(Answer, Vec<i16>), String> {
        let mut guard = self.lock();
        if guard.is_none() {
            *guard = Some(Process::spawn(&self.files, &self.preload, self.threads)?);
        }
        let process = guard.as_mut().expect("just started");
        let result = process
            .request(&header, payload)
            .and_then(|()| process.wait(REQUEST_TIMEOUT));
        if result.is_err() {
            *guard = None;
        }
        result
    }

    /// Decodes one utterance (16 kHz mono) with `model` for each of `tasks`. `language`: the
    /// spoken language when known, else Whisper detects it.
    pub fn transcribe(
        &self,
        model: &str,
        pcm16k: &[i16],
        language: Option<&str>,
        tasks: &[Task],
    ) -> Result<Transcription, String> {
        self.transcribe_with(model, pcm16k, language, tasks, Mode::Answer)
    }

    /// [`PythonWorker::transcribe`] of a running utterance's audio so far, for provisional
    /// text: in a shorter encoder window, and never decoded twice (text the filters drop is
    /// just dropped).
    pub fn transcribe_interim(
        &self,
        model: &str,
        pcm16k: &[i16],
        language: Option<&str>,
    ) -> Result<Transcription, String> {
        self.transcribe_with(model, pcm16k, language, &[Task::Transcribe], Mode::Interim)
    }

    /// [`PythonWorker::transcribe`] without the checks that drop unsure text (the voice-activity
    /// gate stays): for measuring how well a voice is understood.
    pub fn transcribe_unfiltered(
        &self,
        model: &str,
        pcm16k: &[i16],
        language: Option<&str>,
        tasks: &[Task],
    ) -> Result<Transcription, String> {
        self.transcribe_with(model, pcm16k, language, tasks, Mode::Unfiltered)
    }

    fn transcribe_with(
        &self,
        model: &str,
        pcm16k: &[i16],
        language: Option<&str>,
        tasks: &[Task],
        mode: Mode,
    ) -> Result<Transcription, String> {
        let header = serde_json::json!({
            "op": "transcribe",
            "model": model,
            "samples": pcm16k.len(),
            "language": language,
            "tasks": tasks.iter().map(|t| t.name()).collect::<Vec<_>>(),
            "unfiltered": mode == Mode::Unfiltered,
            "interim": mode == Mode::Interim,
        });
        let payload: Vec<u8> = pcm16k.iter().flat_map(|s| s.to_le_bytes()).collect();
        let (answer, _) = self.call(header, &payload)?;
        serde_json::from_value(serde_json::Value::Object(answer.rest))
            .map_err(|e| format!("bad transcription from the worker: {e}"))
    }

    /// English speech from the Piper voice.
    pub fn speak(&self, text: &str) -> Result<Pcm, String> {
        let header = serde_json::json!({"op": "speak", "text": text});
        let (answer, samples) = self.call(header, &[])?;
        Ok(Pcm {
            rate: answer.rate.unwrap_or(22_050),
            samples,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// A venv whose interpreter dies the way a broken install does: the start error says why.
    #[test]
    fn a_worker_that_dies_at_start_is_reported_with_its_last_words() {
        let root = std::env::temp_dir().join(format!("rt-worker-test-{}", std::process::id()));
        let bin = root.join("venv/bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::create_dir_all(root.join("models/whisper-base")).unwrap();
        std::fs::write(root.join("models/whisper-base/model.bin"), b"x").unwrap();
        let python = bin.join("python3");
        std::fs::write(
            &python,
            "#!/bin/sh\necho 'Traceback (most recent call last):' >&2\n\
             echo \"ModuleNotFoundError: No module named 'faster_whisper'\" >&2\nexit 1\n",
        )
        .unwrap();
        std::fs::set_permissions(&python, std::fs::Permissions::from_mode(0o755)).unwrap();
        let err = PythonWorker::start(ModelFiles::at(&root), vec!["whisper-base"], 1)
            .err()
            .unwrap();
        let _ = std::fs::remove_dir_all(&root);
        assert!(
            err.contains("did not start") && err.contains("No module named 'faster_whisper'"),
            "{err}"
        );
    }
}
