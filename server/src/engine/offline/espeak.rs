//! Speech synthesis with eSpeak NG as a child process (keeps GPL-3 code out of our binary).
//!
//! `espeak-ng -v <voice> --stdout` writes a 22050 Hz mono WAV whose size fields are placeholders
//! (it streams), so the parser reads the `data` chunk to the end of the output.

use std::io::Write;
use std::process::{Command, Stdio};

/// Longest text synthesised at once, to bound the audio of one utterance.
const MAX_CHARS: usize = 2000;

/// Mono PCM16 audio with its rate.
#[derive(Debug, Clone, PartialEq)]
pub struct Pcm {
    pub rate: u32,
    pub samples: Vec<i16>,
}

/// Synthesises `text` with voice `voice` (e.g. `es`, `en-us`). Text goes through stdin so that
/// nothing in it can be taken for an option.
pub fn synthesize(voice: &str, text: &str) -> Result<Pcm, String> {
    let text: String = text.chars().take(MAX_CHARS).collect();
    let mut child = Command::new("espeak-ng")
        .args(["-v", voice, "--stdout"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| {
            format!("cannot start espeak-ng: {e} (install the Debian package espeak-ng)")
        })?;
    let mut stdin = child.stdin.take().ok_or("espeak-ng has no stdin")?;
    // The text is far smaller than a pipe buffer, so writing before reading cannot deadlock.
    let written = stdin
        .write_all(text.as_bytes())
        .and_then(|()| stdin.write_all(b"\n"));
    drop(stdin);
    let out = child
        .wait_with_output()
        .map_err(|e| format!("espeak-ng failed: {e}"))?;
    written.map_err(|e| format!("cannot write to espeak-ng: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "espeak-ng exited with {} (is voice {voice:?} installed?)",
            out.status
        ));
    }
    parse_wav(&out.stdout)
}

/// Parses a PCM16 mono WAV, tolerating streamed (wrong) RIFF and data sizes.
pub fn parse_wav(bytes: &[u8]) -> Result<Pcm, String> {
    if bytes.len() < 12 || &bytes[0..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return Err("not a WAV file".into());
    }
    let mut pos = 12;
    let mut fmt: Option<(u16, u16, u32, u16)> = None;
    while pos + 8 <= bytes.len() {
        let id = &bytes[pos..pos + 4];
        let size = u32::from_le_bytes([
            bytes[pos + 4],
            bytes[pos + 5],
            bytes[pos + 6],
            bytes[pos + 7],
        ]) as usize;
        let body = pos + 8;
        if id == b"fmt " {
            if body + 16 > bytes.len() {
                return Err("truncated WAV fmt chunk".into());
            }
            let b = &bytes[body..body + 16];
            fmt = Some((
                u16::from_le_bytes([b[0], b[1]]),
                u16::from_le_bytes([b[2], b[3]]),
                u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
                u16::from_le_bytes([b[14], b[15]]),
            ));
        } else if id == b"data" {
            let (format, channels, rate, bits) = fmt.ok_or("WAV data before fmt")?;
            if format != 1 || bits != 16 || channels == 0 || rate == 0 {
                return Err(format!(
                    "unsupported WAV: format {format}, {bits} bits, {channels} channels"
                ));
            }
            let end = body.saturating_add(size).min(bytes.len());
            let frame = 2 * channels as usize;
            // Keep the first channel only.
            let samples = bytes[body..end]
                .chunks_exact(frame)
                .map(|f| i16::from_le_bytes([f[0], f[1]]))
                .collect();
            return Ok(Pcm { rate, samples });
        }
        pos = body.saturating_add(size).saturating_add(size & 1);
    }
    Err("WAV has no data chunk".into())
}
