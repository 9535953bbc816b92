//! A long-lived Apertium pipeline: one set of child processes per language pair, shared by sessions.
//!
//! `apertium -u eng-spa` costs ~0.15 s per call (process start-up and dictionary loading); keeping
//! the stages of `/usr/share/apertium/modes/<pair>.mode` running with `-z` (flush on NUL) costs a
//! few ms per sentence. `lt-proc` stages run under `stdbuf -o0` because some of its modes do not
//! flush on NUL. Running Apertium as a child process also keeps GPL code out of our binary.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Mutex;
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::thread;
use std::time::Duration;

/// Where Debian's Apertium pair packages install their mode files.
const MODES_DIR: &str = "/usr/share/apertium/modes";
/// A translation taking longer than this means the pipeline is stuck: restart it.
const TIMEOUT: Duration = Duration::from_secs(5);
/// A new pipeline that does not answer "hello" within this never will (a stage that ignores
/// `-z`); longer than any start-up seen on a busy machine, and if not, per-call mode still works.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);
/// Longest text sent in one request (the engine translates single utterances).
const MAX_CHARS: usize = 4000;

/// One running pipeline.
struct Pipeline {
    children: Vec<Child>,
    stdin: ChildStdin,
    /// NUL-terminated outputs, read by a thread so that a stuck pipeline can be timed out.
    results: Receiver<Vec<u8>>,
}

impl Pipeline {
    fn spawn(stages: &[Vec<String>]) -> Result<Self, String> {
        let mut children: Vec<Child> = Vec::new();
        let mut prev_out: Option<Stdio> = None;
        let mut stdin = None;
        let mut last_out = None;
        for (i, stage) in stages.iter().enumerate() {
            let spawned = Command::new(&stage[0])
                .args(&stage[1..])
                .stdin(prev_out.take().unwrap_or_else(Stdio::piped))
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn();
            let mut child = match spawned {
                Ok(c) => c,
                Err(e) => {
                    kill_all(&mut children);
                    return Err(format!(
                        "cannot start {}: {e} (install the Debian package apertium)",
                        stage[0]
                    ));
                }
            };
            if i == 0 {
                stdin = child.stdin.take();
            }
            if i + 1 == stages.len() {
                last_out = child.stdout.take();
            } else {
                prev_out = child.stdout.take().map(Stdio::from);
            }
            children.push(child);
        }
        let (Some(stdin), Some(out)) = (stdin, last_out) else {
            kill_all(&mut children);
            return Err("apertium mode file has no stages".into());
        };
        let (tx, results) = channel();
        thread::Builder::new()
            .name("apertium-reader".into())
            .spawn(move || {
                let mut reader = BufReader::new(out);
                loop {
                    let mut chunk = Vec::new();
                    match reader.read_until(0, &mut chunk) {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {
                            if chunk.last() == Some(&0) {
                                chunk.pop();
                            }
                            if tx.send(chunk).is_err() {
                                break;
                            }
                        }
                    }
                }
            })
            .map_err(|e| format!("cannot start apertium reader thread: {e}"))?;
        Ok(Pipeline {
            children,
            stdin,
            results,
        })
    }

    fn translate(&mut self, escaped: &str) -> Result<String, String> {
        self.translate_within(escaped, TIMEOUT)
    }

    fn translate_within(&mut self, escaped: &str, timeout: Duration) -> Result<String, String> {
        // Writing into a dead pipeline would raise SIGPIPE in hosts that do not ignore it.
        if self
            .children
            .iter_mut()
            .any(|c| !matches!(c.try_wait(), Ok(None)))
        {
            return Err("apertium pipeline exited".into());
        }
        let mut msg = Vec::with_capacity(escaped.len() + 1);
        msg.extend_from_slice(escaped.as_bytes());
        msg.push(0);
        self.stdin
            .write_all(&msg)
            .and_then(|()| self.stdin.flush())
            .map_err(|e| format!("apertium pipeline closed: {e}"))?;
        match self.results.recv_timeout(timeout) {
            Ok(out) => Ok(unescape(&String::from_utf8_lossy(&out))),
            Err(RecvTimeoutError::Timeout) => Err("apertium pipeline timed out".into()),
            Err(RecvTimeoutError::Disconnected) => Err("apertium pipeline exited".into()),
        }
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        kill_all(&mut self.children);
    }
}

fn kill_all(children: &mut [Child]) {
    for c in children.iter_mut() {
        let _ = c.kill();
        let _ = c.wait();
    }
}

/// Splits a mode file's shell pipeline into stages of arguments (single-quoted paths, `$1`/`$2`
/// placeholders), adding `-z` to every stage and `stdbuf -o0` in front of `lt-proc`.
fn parse_mode(text: &str) -> Result<Vec<Vec<String>>, String> {
    let mut stages = Vec::new();
    for part in text.split('|') {
        let mut words = Vec::new();
        let mut cur = String::new();
        let mut quoted = false;
        let mut any = false;
        for ch in part.chars() {
            match ch {
                '\'' => {
                    quoted = !quoted;
                    any = true;
                }
                c if c.is_whitespace() && !quoted => {
                    if any {
                        words.push(std::mem::take(&mut cur));
                        any = false;
                    }
                }
                c => {
                    cur.push(c);
                    any = true;
                }
            }
        }
        if any {
            words.push(cur);
        }
        // `$1` is the generator's unknown-word mode (`-g` marks them, like plain `apertium`);
        // `$2` holds optional tagger flags.
        let mut words: Vec<String> = words
            .into_iter()
            .filter(|w| w != "$2")
            .map(|w| if w == "$1" { "-g".into() } else { w })
            .collect();
        if words.is_empty() {
            continue;
        }
        if words.iter().any(|w| w.starts_with('$')) {
            return Err(format!("unsupported apertium mode stage: {}", part.trim()));
        }
        words.insert(1, "-z".into());
        if words[0] == "lt-proc" {
            words.splice(0..0, ["stdbuf".to_string(), "-o0".to_string()]);
        }
        stages.push(words);
    }
    if stages.is_empty() {
        return Err("empty apertium mode file".into());
    }
    Ok(stages)
}

/// Escapes Apertium's stream-format characters so user text passes through as text.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for ch in text.chars() {
        match ch {
            '\\' | '[' | ']' | '^' | '$' | '@' | '/' | '<' | '>' | '{' | '}' => {
                out.push('\\');
                out.push(ch);
            }
            // NUL ends a request; line breaks would only split sentences.
            '\0' | '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// Undoes the backslash escapes Apertium keeps in its output.
pub fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(ch) = chars.next() {
        if ch == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(ch);
        }
    }
    out
}

/// Removes the marks Apertium puts on words it could not analyse (`*`), transfer (`@`) or
/// generate (`#`); they would otherwise be spoken or shown.
pub fn strip_marks(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut prev: Option<char> = None;
    let mut chars = text.chars().peekable();
    while let Some(ch) = chars.next() {
        let at_word_start = prev.is_none_or(|p| !p.is_alphanumeric());
        let before_word = chars.peek().is_some_and(|n| n.is_alphanumeric());
        if matches!(ch, '*' | '#' | '@') && at_word_start && before_word {
            continue;
        }
        out.push(ch);
        prev = Some(ch);
    }
    out
}

/// A translator for one language pair, e.g. `eng-spa`; safe to share between sessions.
pub struct Apertium {
    pair: String,
    stages: Vec<Vec<String>>,
    pipeline: Mutex<Option<Pipeline>>,
    /// The pair's stages do not all flush on NUL (eng-cat's tagger): one `apertium` process
    /// per request instead (≈ 0.15 s each).
    per_call: bool,
}

impl Apertium {
    /// Reads the pair's mode file and starts its pipeline.
    pub fn new(pair: &str) -> Result<Self, String> {
        let path = Path::new(MODES_DIR).join(format!("{pair}.mode"));
        let text = std::fs::read_to_string(&path).map_err(|e| {
            format!(
                "cannot read {}: {e} (install the Debian package apertium-{pair})",
                path.display()
            )
        })?;
        let stages = parse_mode(&text)?;
        let mut pipeline = Pipeline::spawn(&stages)?;
        let per_call = pipeline.translate_within("hello", PROBE_TIMEOUT).is_err();
        Ok(Apertium {
            pair: pair.to_string(),
            stages,
            pipeline: Mutex::new((!per_call).then_some(pipeline)),
            per_call,
        })
    }

    /// One `apertium -u PAIR` run for pairs whose pipeline cannot stay up.
    fn translate_once(&self, text: &str) -> Result<String, String> {
        let mut child = Command::new("apertium")
            .args(["-u", &self.pair])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start apertium: {e}"))?;
        let mut stdin = child.stdin.take().ok_or("apertium has no stdin")?;
        // One utterance is far smaller than a pipe buffer: writing first cannot deadlock.
        let written = stdin.write_all(text.as_bytes());
        drop(stdin);
        let out = child
            .wait_with_output()
            .map_err(|e| format!("apertium failed: {e}"))?;
        written.map_err(|e| format!("cannot write to apertium: {e}"))?;
        if !out.status.success() {
            return Err(format!("apertium {} exited with {}", self.pair, out.status));
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// The language pair, e.g. `eng-spa`.
    pub fn pair(&self) -> &str {
        &self.pair
    }

    /// Translates one piece of plain text; restarts the pipeline once if it died or hung.
    pub fn translate(&self, text: &str) -> Result<String, String> {
        let text: String = text.chars().take(MAX_CHARS).collect();
        if text.trim().is_empty() {
            return Ok(String::new());
        }
        if self.per_call {
            return self.translate_once(&text);
        }
        let escaped = escape(&text);
        let mut guard = self.pipeline.lock().unwrap_or_else(|p| p.into_inner());
        let mut last_err = String::new();
        for _ in 0..2 {
            if guard.is_none() {
                *guard = Some(Pipeline::spawn(&self.stages)?);
            }
            let Some(p) = guard.as_mut() else { continue };
            match p.translate(&escaped) {
                Ok(out) => return Ok(out.trim().to_string()),
                Err(e) => {
                    last_err = e;
                    *guard = None;
                }
            }
        }
        Err(last_err)
    }
}
