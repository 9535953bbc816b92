//! How many concurrent real-time sessions the standalone offline server sustains on this
//! machine, with what delay, and its memory: `cargo bench -p realtimetranslate-server --bench
//! offline_capacity` (a few minutes; `BENCH_QUICK=1`: 1 and 2 sessions, 20 s each).
//!
//! Starts the server binary on 127.0.0.1, then for each recogniser (Whisper base, the default;
//! tiny.en; PocketSphinx) and N = 1, 2, 3, 4, 6, 8, 10, 12, 16 sessions at once (until one
//! falls behind) streams real speech in real time into each for 30 s (the five LibriVox
//! utterances of the pocketsphinx sdist, looped, 1.5 s of silence after each; target Spanish;
//! sessions start 0.37 s apart so that utterances do not all end together). Delay: from the
//! moment an utterance's speech ended in real time (its last sample above 300) to the first
//! translated audio of it (the first audio delta after its translated text); negative when the
//! engine's voice detection ended the utterance before trailing room noise did. A level keeps up when every utterance is
//! answered and the delay does not grow during the run, and is sustained when its p95 delay is
//! also ≤ 1.5 s. Levels go up until one falls behind. Baseline in the same run: N = 1.

use base64::Engine as _;
use futures_util::{SinkExt, StreamExt};
use realtimetranslate_server::engine::offline::espeak::parse_wav;
use realtimetranslate_server::engine::offline::model_files::ModelFiles;
use realtimetranslate_server::engine::offline::resample::resample;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

#[path = "common/process_stats.rs"]
mod process_stats;
use process_stats::{cpu_seconds, percentile, rss_mb};

const RATE: usize = 24_000;
const CHUNK: usize = 4_800;
const PAUSE: f64 = 1.5;
/// A sustained level answers 95 % of utterances within this.
const P95_TARGET: f64 = 1.5;
/// Delay growth (s) from a session's first two utterances to its last two that counts as falling
/// behind: utterances differ in length, so their delays differ by up to ≈ 0.7 s even when the
/// engine keeps up.
const MAX_GROWTH: f64 = 1.0;

/// The utterances, each followed by its pause, at 24 kHz; and where each one's speech ends.
fn speech_loop() -> (Vec<i16>, Vec<usize>) {
    let dir = ModelFiles::locate().librivox();
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .expect("LibriVox utterances (run scripts/setup.sh)")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "wav"))
        .collect();
    names.sort();
    let (mut pcm, mut ends) = (Vec::new(), Vec::new());
    for path in names {
        let wav = parse_wav(&std::fs::read(path).unwrap()).unwrap();
        let clip = resample(&wav.samples, wav.rate, RATE as u32);
        let last = clip.iter().rposition(|s| s.unsigned_abs() > 300).unwrap();
        pcm.extend_from_slice(&clip[..=last]);
        ends.push(pcm.len());
        pcm.extend(vec![0i16; (PAUSE * RATE as f64) as usize]);
    }
    (pcm, ends)
}

/// Delays (s) of one session's utterances, in order, and how many were expected.
async fn session(
    url: String,
    audio: Vec<i16>,
    ends: Vec<usize>,
    seconds: f64,
) -> (Vec<f64>, usize) {
    let (mut ws, _) = tokio_tungstenite::connect_async(&url)
        .await
        .expect("connect");
    let update = json!({"type": "session.update", "session": {"audio": {
        "input": {"transcription": null, "noise_reduction": null},
        "output": {"language": "es"}}}});
    ws.send(Message::text(update.to_string())).await.unwrap();
    let (mut tx, mut rx) = ws.split();
    let total = (seconds * RATE as f64) as usize;
    // Chunk k leaves at start + (k + 1) × 200 ms, when its last sample would have been captured,
    // so the instant each utterance's speech ends in real time is known before it is sent. An
    // answer may come before that instant: the mark is the last sample above the threshold, and
    // a recording's breath or room noise can outlast what the engine's voice detection calls
    // speech. Such an answer counts with a negative delay; it must not shift later matches.
    let start = Instant::now();
    let period = audio.len();
    let end_times: Vec<Instant> = (0..total.div_ceil(period))
        .flat_map(|n| ends.iter().map(move |&end| n * period + end))
        .filter(|&abs| abs <= total)
        .map(|abs| start + Duration::from_secs_f64(abs as f64 / RATE as f64))
        .collect();
    let expected = end_times.len();
    let sender = tokio::spawn(async move {
        for (k, pos) in (0..total).step_by(CHUNK).enumerate() {
            let chunk: Vec<i16> = (pos..(pos + CHUNK).min(total))
                .map(|i| audio[i % audio.len()])
                .collect();
            let due = start + Duration::from_millis(200 * (k as u64 + 1));
            tokio::time::sleep_until(due.into()).await;
            let bytes: Vec<u8> = chunk.iter().flat_map(|s| s.to_le_bytes()).collect();
            let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
            let msg = json!({"type": "session.input_audio_buffer.append", "audio": b64});
            if tx.send(Message::text(msg.to_string())).await.is_err() {
                break;
            }
        }
        let _ = tx.send(Message::text(r#"{"type":"session.close"}"#)).await;
    });
    let mut delays = Vec::new();
    let mut awaiting_audio = false;
    while let Ok(Some(Ok(msg))) = tokio::time::timeout(Duration::from_secs(60), rx.next()).await {
        let Message::Text(text) = msg else { continue };
        let v: Value = serde_json::from_str(&text).unwrap_or_default();
        let now = Instant::now();
        match v["type"].as_str() {
            Some("session.output_transcript.delta") => awaiting_audio = true,
            Some("session.output_audio.delta") if awaiting_audio => {
                awaiting_audio = false;
                if let Some(&end) = end_times.get(delays.len()) {
                    delays.push(if now >= end {
                        (now - end).as_secs_f64()
                    } else {
                        -(end - now).as_secs_f64()
                    });
                }
            }
            Some("session.closed") => break,
            _ => {}
        }
    }
    let _ = sender.await;
    (delays, expected)
}

fn worker_of(pid: u32) -> Option<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .ok()?
        .split_whitespace()
        .filter_map(|c| c.parse::<u32>().ok())
        .find(|c| {
            std::fs::read(format!("/proc/{c}/cmdline"))
                .is_ok_and(|cmd| String::from_utf8_lossy(&cmd).contains("python"))
        })
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let quick = std::env::var_os("BENCH_QUICK").is_some_and(|v| v != "0" && !v.is_empty());
    let (levels, seconds): (&[usize], f64) = if quick {
        (&[1, 2], 20.0)
    } else {
        (&[1, 2, 3, 4, 6, 8, 10, 12, 16], 30.0)
    };
    let (audio, ends) = speech_loop();
    let t = Instant::now();
    let mut server = Command::new(env!("CARGO_BIN_EXE_realtimetranslate-server"))
        .args(["--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("server binary");
    let mut line = String::new();
    BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("ws://"))
        .expect("listening line")
        .to_string();
    let pid = server.id();
    let worker = worker_of(pid).expect("worker process");
    println!(
        "server ready in {:.1} s (Whisper base + Piper loaded); server RSS {:.0} MB, worker RSS {:.0} MB",
        t.elapsed().as_secs_f64(),
        rss_mb(&pid.to_string()),
        rss_mb(&worker.to_string())
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    for model in ["whisper-base", "whisper-tiny.en", "pocketsphinx"] {
        let url = format!("{url}?model={model}");
        println!("\n== {model} ==");
        println!(
            "{:>3}  {:>9}  {:>7}  {:>7}  {:>7}  {:>12}  {:>10}  {:>10}  {:>8}  {:>6}  verdict",
            "N",
            "answered",
            "p50 s",
            "p95 s",
            "max s",
            "last-first s",
            "server MB",
            "worker MB",
            "CPU",
            "load"
        );
        let (mut sustained, mut keeps_up) = (0, 0);
        for &n in levels {
            let cpu0 =
                cpu_seconds(&pid.to_string(), false) + cpu_seconds(&worker.to_string(), false);
            let wall = Instant::now();
            let results: Vec<(Vec<f64>, usize)> = runtime.block_on(async {
                let mut tasks = Vec::new();
                for i in 0..n {
                    let (url, audio, ends) = (url.clone(), audio.clone(), ends.clone());
                    tasks.push(tokio::spawn(async move {
                        tokio::time::sleep(Duration::from_millis(370 * i as u64)).await;
                        session(url, audio, ends, seconds).await
                    }));
                }
                let mut out = Vec::new();
                for t in tasks {
                    out.push(t.await.unwrap());
                }
                out
            });
            let cpu = (cpu_seconds(&pid.to_string(), false)
                + cpu_seconds(&worker.to_string(), false)
                - cpu0)
                / wall.elapsed().as_secs_f64();
            let all: Vec<f64> = results.iter().flat_map(|(d, _)| d.clone()).collect();
            let answered: usize = results.iter().map(|(d, _)| d.len()).sum();
            let expected: usize = results.iter().map(|(_, e)| e).sum();
            // Growth: the last utterances' delay against the first ones', per session, averaged.
            let growth = results
                .iter()
                .filter(|(d, _)| d.len() >= 4)
                .map(|(d, _)| {
                    d[d.len() - 2..].iter().sum::<f64>() / 2.0 - d[..2].iter().sum::<f64>() / 2.0
                })
                .sum::<f64>()
                / results.len().max(1) as f64;
            let p95 = percentile(&all, 95.0);
            // Keeps up: every utterance answered and the delay not growing (whatever it is).
            let keeping_up = answered == expected && growth < MAX_GROWTH;
            let ok = keeping_up && p95 <= P95_TARGET;
            if ok {
                sustained = n;
            }
            if keeping_up {
                keeps_up = n;
            }
            let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
            println!(
                "{n:>3}  {:>4}/{:<4}  {:>7.2}  {:>7.2}  {:>7.2}  {:>12.2}  {:>10.0}  {:>10.0}  {:>7.0}%  {:>6}  {}",
                answered,
                expected,
                percentile(&all, 50.0),
                p95,
                percentile(&all, 100.0),
                growth,
                rss_mb(&pid.to_string()),
                rss_mb(&worker.to_string()),
                cpu * 100.0,
                load.split_whitespace().next().unwrap_or("?"),
                match (ok, keeping_up) {
                    (true, _) => "sustained",
                    (false, true) => "keeps up, slower than the target",
                    _ => "falls behind",
                }
            );
            if !keeping_up {
                break;
            }
        }
        println!(
            "{model}: {sustained} concurrent real-time session(s) sustained (p95 ≤ {P95_TARGET} s, all \
             answered, no growth); {keeps_up} keep up (all answered, no growth)"
        );
    }
    println!(
        "CPU: the server's and the worker's, in % of one core; load: the machine's 1-minute load average (2 cores)"
    );
    let _ = server.kill();
    let _ = server.wait();
}
