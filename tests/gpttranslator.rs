//! The `gpttranslator` backend against a real Socket.IO server we did not write: python-socketio
//! (Debian's python3-socketio) running `tests/peers/gpttranslator_server.py` on loopback, which
//! plays the provider's event sequence and records what it received as JSON.

mod common;

use common::*;
use gstrealtimetranslate::protocol::translation::SessionConfig;
use gstrealtimetranslate::secret::ApiKey;
use gstrealtimetranslate::session::Session;
use gstrealtimetranslate::session_types::{
    Endpoint, Protocol, SessionError, SessionEvent, SessionParams,
};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const GT_KEY: &str = "gt-live-K3Y-that-must-stay-secret";
const NS: &str = "/api/realtime-translator";
/// The peer pings every second and waits one more: a session silent for 2 s is dead.
const SILENCE_LIMIT: Duration = Duration::from_secs(2);

/// The python-socketio peer, stopped (stdin closed, then killed) when dropped.
struct Peer {
    child: Child,
    port: u16,
    record: PathBuf,
    _dir: tempfile::TempDir,
}

impl Peer {
    fn start(mode: &str) -> Peer {
        let dir = tempfile::tempdir().unwrap();
        let record = dir.path().join("record.json");
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/peers/gpttranslator_server.py"
        );
        // Debian's interpreter, where apt installs python3-socketio (scripts/setup.sh).
        let python = ["/usr/bin/python3", "python3"]
            .into_iter()
            .find(|p| !p.starts_with('/') || std::path::Path::new(p).exists())
            .unwrap();
        let mut child = Command::new(python)
            .arg(script)
            .args(["--key", GT_KEY, "--mode", mode, "--record"])
            .arg(&record)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 with python3-socketio and python3-aiohttp (scripts/setup.sh)");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .strip_prefix("PORT ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("the peer did not start: {line:?}"));
        Peer {
            child,
            port,
            record,
            _dir: dir,
        }
    }

    fn url(&self) -> String {
        format!("ws://127.0.0.1:{}", self.port)
    }

    fn record(&self) -> Value {
        serde_json::from_str(&std::fs::read_to_string(&self.record).unwrap()).unwrap()
    }

    /// The record once `done` holds for it (or as it is after `timeout`).
    fn record_when(&self, timeout: Duration, done: impl Fn(&Value) -> bool) -> Value {
        let started = Instant::now();
        loop {
            let record = self.record();
            if done(&record) || started.elapsed() > timeout {
                return record;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The element with this peer's URL, `key` and `extra` properties.
    fn element(&self, key: &str, extra: &str) -> String {
        format!(
            "realtimetranslate name=t backend=gpttranslator url={} api-key={key} {extra}",
            self.url()
        )
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn event_names(connection: &Value) -> Vec<String> {
    connection["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_owned())
        .collect()
}

/// Speech in, every output pad captured.
fn speech_pipeline(wav: &std::path::Path, element: &str) -> String {
    format!(
        "filesrc location={} ! wavparse ! audioconvert ! audioresample ! {element} \
         t.src ! appsink name=audio sync=false \
         t.subtitle_src ! queue ! appsink name=text sync=false \
         t.source_subtitle_src ! queue ! appsink name=source sync=false",
        wav.display()
    )
}

fn tone_pipeline(element: &str) -> String {
    format!("audiotestsrc is-live=true ! audio/x-raw,rate=48000,channels=2 ! {element} ! fakesink")
}

/// Exactly one error, containing every one of `needles` and never the key.
fn single_error<'a>(captured: &'a Captured, needles: &[&str]) -> &'a str {
    assert_eq!(captured.errors.len(), 1, "{:?}", captured.errors);
    let error = &captured.errors[0];
    for needle in needles {
        assert!(error.contains(needle), "{needle:?} missing from {error}");
    }
    error
}

/// The translated tone: where it is in the output (seconds from the first output sample), and
/// its level.
fn tone_span(captured: &Captured) -> (f64, f64, f64) {
    let samples = captured.samples();
    let (start, end) = audible_span(&samples).expect("translated audio in the output");
    let level = rms(&samples[(start * 24_000.0) as usize..(end * 24_000.0) as usize]);
    (start, end, level)
}

/// Real speech through the whole protocol: statuses before audio (the audio queued meanwhile
/// arrives afterwards, none lost), 100 ms chunks, pings answered, the tone after the speech, the
/// captions with it, and at EOS `translation_stop`, `translation_closed`, then the namespace left.
#[test]
fn speech_is_translated_over_socketio_with_audio_held_until_ready_for_audio() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let (wav, speech) = speech_wav(
        dir.path(),
        "talk",
        "The weather today is sunny and warm.",
        0.5,
        3.0,
    );
    let input_seconds = 0.5 + speech + 3.0;
    let peer = Peer::start("normal");
    let captured = run(
        &speech_pipeline(
            &wav,
            &peer.element(GT_KEY, "target-language=pt-BR subtitle-mode=cues"),
        ),
        Duration::from_secs(40),
    );
    assert!(captured.errors.is_empty(), "{:?}", captured.errors);
    assert!(captured.warnings.is_empty(), "{:?}", captured.warnings);
    assert!(captured.eos);

    // The tone answers the utterance after it ends (the peer waits for 400 ms of silence), and
    // lasts as long as the speech.
    let (start, end, level) = tone_span(&captured);
    let speech_end = 0.5 + speech - 0.15;
    assert!(
        start >= speech_end && start <= speech_end + 1.5,
        "translation at {start:.2} s for speech ending at {speech_end:.2} s"
    );
    assert!(
        ((end - start) - speech).abs() < 0.5,
        "tone of {:.2} s for {speech:.2} s of speech",
        end - start
    );
    assert!((level - 5657.0).abs() < 600.0, "tone level {level}");

    // Captions: the fragments joined, timed with the tone.
    assert_eq!(captured.cues.len(), 1, "{:?}", captured.cues);
    let cue = &captured.cues[0];
    let ms: f64 = cue
        .text
        .strip_prefix("Frase 1 de ")
        .and_then(|t| t.strip_suffix(" ms."))
        .unwrap_or_else(|| panic!("unexpected subtitle {:?}", cue.text))
        .parse()
        .unwrap();
    assert!((ms / 1000.0 - speech).abs() < 0.5, "{ms} ms for {speech} s");
    let cue_start = (cue.pts - captured.first_pts()).seconds_f64();
    assert!(
        (cue_start - start).abs() < 0.2,
        "cue at {cue_start:.2} s, tone at {start:.2} s"
    );
    assert_eq!(captured.source_cues.len(), 1, "{:?}", captured.source_cues);
    assert!(
        captured.source_cues[0].text.starts_with("utterance 1 of "),
        "{:?}",
        captured.source_cues
    );

    // What the Socket.IO server saw.
    let record = peer.record_when(Duration::from_secs(5), |r| {
        !r["connections"][0]["disconnected_at"].is_null()
    });
    assert_eq!(record["connections"].as_array().unwrap().len(), 1);
    let connection = &record["connections"][0];
    assert_eq!(connection["key_ok"], true);
    assert_eq!(connection["eio"], "4");
    assert_eq!(connection["transport"], "websocket");
    assert!(!connection["disconnected_at"].is_null(), "{record:#}");
    assert_eq!(
        event_names(connection),
        [
            "translation_start",
            "status",
            "status",
            "status",
            "answered",
            "translation_stop",
            "translation_closed"
        ],
        "{record:#}"
    );
    assert_eq!(connection["events"][0]["data"]["targetLanguage"], "pt-BR");
    // Audio was queued for ~0.9 s of statuses; none was sent early and none was lost.
    assert_eq!(connection["audio_before_ready"], 0);
    let sent = connection["samples"].as_u64().unwrap() as f64 / 24_000.0;
    assert!(
        (sent - input_seconds).abs() < 0.05,
        "sent {sent:.3} s of {input_seconds:.3} s"
    );
    let sizes: Vec<u64> = connection["chunk_sizes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_u64().unwrap())
        .collect();
    assert!(
        sizes[..sizes.len() - 1].iter().all(|&n| n == 2_400) && sizes[sizes.len() - 1] <= 2_400,
        "{sizes:?}"
    );
    // The session outlived several ping rounds, so the pongs were right; the goodbye was polite.
    assert!(input_seconds > 2.0 * SILENCE_LIMIT.as_secs_f64());
    let packets: Vec<&str> = record["packets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    // Socket.IO packets as the library decoded them (the Engine.IO `4` already removed).
    assert_eq!(packets.first(), Some(&format!("0{NS},").as_str()));
    let stop = format!("2{NS},[\"translation_stop\"]");
    let stop_at = packets.iter().position(|p| *p == stop).expect("stop sent");
    assert_eq!(packets.last(), Some(&format!("1{NS},").as_str()));
    assert_eq!(stop_at, packets.len() - 2, "{packets:?}");
}

/// A wrong key: one clear authentication error, one connection attempt, no key in the message.
#[test]
fn wrong_key_is_one_authentication_error_without_retry_or_key() {
    init();
    let peer = Peer::start("normal");
    let wrong = "gt-WRONG-but-still-secret-0451";
    let started = Instant::now();
    let captured = run(
        &tone_pipeline(&peer.element(wrong, "")),
        Duration::from_secs(10),
    );
    let error = single_error(&captured, &["Authentication failed", "Invalid API key"]);
    assert!(!error.contains(wrong), "{error}");
    assert!(started.elapsed() < Duration::from_secs(5));
    let record = peer.record();
    let connections = record["connections"].as_array().unwrap();
    assert_eq!(connections.len(), 1, "{record:#}");
    assert_eq!(connections[0]["key_ok"], false);
}

/// Out of tokens: the service says so and drops the client; one error that says what to do.
#[test]
fn insufficient_tokens_is_one_clear_error() {
    init();
    let peer = Peer::start("insufficient_tokens");
    let captured = run(
        &tone_pipeline(&peer.element(GT_KEY, "")),
        Duration::from_secs(15),
    );
    let error = single_error(
        &captured,
        &[
            "run out of tokens",
            "Insufficient tokens",
            "0 tokens left",
            "top up",
        ],
    );
    assert!(!error.contains(GT_KEY));
    let record = peer.record();
    assert_eq!(record["connections"].as_array().unwrap().len(), 1);
    assert!(event_names(&record["connections"][0]).contains(&"insufficient_tokens".into()));
}

/// `translation_error` is reported as a warning and the translation goes on.
#[test]
fn translation_error_is_a_warning_and_the_translation_goes_on() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let (wav, speech) = speech_wav(dir.path(), "hello", "Good morning to everyone.", 0.3, 2.0);
    let peer = Peer::start("translation_error");
    let captured = run(
        &speech_pipeline(&wav, &peer.element(GT_KEY, "")),
        Duration::from_secs(30),
    );
    assert!(captured.errors.is_empty(), "{:?}", captured.errors);
    assert!(captured.eos);
    assert_eq!(captured.warnings.len(), 1, "{:?}", captured.warnings);
    assert!(
        captured.warnings[0].contains("model hiccup on utterance 1"),
        "{:?}",
        captured.warnings
    );
    assert!(!captured.warnings[0].contains(GT_KEY));
    let (start, end, _) = tone_span(&captured);
    assert!(((end - start) - speech).abs() < 0.5);
    assert!(
        captured.text().starts_with("Frase 1 de "),
        "{:?}",
        captured.cues
    );
}

/// `output_audio` deltas sent as Socket.IO binary attachments (`451-…` + a binary frame) are
/// decoded like base64 ones.
#[test]
fn binary_attachment_audio_becomes_the_translated_speech() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let (wav, speech) = speech_wav(dir.path(), "short", "Thank you very much.", 0.3, 2.0);
    let peer = Peer::start("binary");
    let captured = run(
        &speech_pipeline(&wav, &peer.element(GT_KEY, "")),
        Duration::from_secs(30),
    );
    assert!(captured.errors.is_empty(), "{:?}", captured.errors);
    assert!(captured.warnings.is_empty(), "{:?}", captured.warnings);
    let (start, end, level) = tone_span(&captured);
    assert!(
        ((end - start) - speech).abs() < 0.5,
        "tone of {:.2} s for {speech:.2} s",
        end - start
    );
    assert!((level - 5657.0).abs() < 600.0, "tone level {level}");
    // 440 Hz: about 880 zero crossings a second inside the tone.
    let samples = captured.samples();
    let tone = &samples[((start + 0.1) * 24_000.0) as usize..((end - 0.1) * 24_000.0) as usize];
    let crossings = tone.windows(2).filter(|w| (w[0] < 0) != (w[1] < 0)).count();
    let hz = crossings as f64 / 2.0 / (tone.len() as f64 / 24_000.0);
    assert!((hz - 440.0).abs() < 10.0, "{hz:.1} Hz");
}

/// Session-level checks: events reported by a session running on its own.
struct Recorder {
    events: Arc<Mutex<Vec<(Instant, SessionEvent)>>>,
}

impl Recorder {
    fn start(url: &str, key: &str) -> (Session, Recorder) {
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink = events.clone();
        let params = SessionParams {
            protocol: Protocol::GptTranslator,
            endpoint: Endpoint::Remote {
                url: url.into(),
                model: String::new(),
            },
            api_key: ApiKey::new(key),
            safety_identifier: None,
            config: SessionConfig {
                target_language: "es".into(),
                transcription: None,
                noise_reduction: None,
            },
            connect_timeout: Duration::from_secs(5),
            drain_timeout: Duration::from_secs(2),
            keepalive_timeout: Duration::from_secs(15),
            tls_ca_file: None,
        };
        let session = Session::start(
            params,
            Arc::new(move |event| sink.lock().unwrap().push((Instant::now(), event))),
            Default::default(),
        );
        (session, Recorder { events })
    }

    /// The failure, and when it came.
    fn failure(&self, timeout: Duration) -> (Instant, SessionError) {
        let started = Instant::now();
        while started.elapsed() < timeout {
            for (at, event) in self.events.lock().unwrap().iter() {
                if let SessionEvent::Failed(err) = event {
                    return (*at, err.clone());
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("no failure within {timeout:?}");
    }
}

/// Input that ends before the service is ready: the queued audio still goes out once it is,
/// then `translation_stop`, and the session finishes cleanly.
#[test]
fn input_ending_before_ready_for_audio_is_sent_then_stopped() {
    let peer = Peer::start("normal");
    let (session, recorder) = Recorder::start(&peer.url(), GT_KEY);
    for _ in 0..3 {
        session.send_audio(vec![100; 4_800]).unwrap();
    }
    session.close();
    let started = Instant::now();
    while !recorder
        .events
        .lock()
        .unwrap()
        .iter()
        .any(|(_, e)| matches!(e, SessionEvent::Finished | SessionEvent::Failed(_)))
    {
        assert!(started.elapsed() < Duration::from_secs(10), "no end");
        std::thread::sleep(Duration::from_millis(20));
    }
    let events = recorder.events.lock().unwrap();
    assert!(
        matches!(events.last(), Some((_, SessionEvent::Finished))),
        "{:?}",
        events.iter().map(|(_, e)| e).collect::<Vec<_>>()
    );
    assert_eq!(
        session
            .counters()
            .samples_sent
            .load(std::sync::atomic::Ordering::Relaxed),
        14_400
    );
    let record = peer.record_when(Duration::from_secs(5), |r| {
        !r["connections"][0]["disconnected_at"].is_null()
    });
    let connection = &record["connections"][0];
    assert_eq!(connection["audio_before_ready"], 0);
    assert_eq!(connection["samples"], 14_400);
    assert_eq!(connection["chunk_sizes"].as_array().unwrap().len(), 6);
    assert_eq!(
        event_names(connection),
        [
            "translation_start",
            "status",
            "status",
            "status",
            "translation_stop",
            "translation_closed"
        ]
    );
}

/// A server that stops answering (pings included) once the session runs is declared dead after
/// pingInterval + pingTimeout of silence: a recoverable connection error, not a hang.
#[test]
fn a_server_gone_silent_is_a_dead_link_after_ping_interval_plus_timeout() {
    let peer = Peer::start("freeze");
    let (session, recorder) = Recorder::start(&peer.url(), GT_KEY);
    // Audio flows once the service is ready; the peer freezes just after saying so.
    for _ in 0..20 {
        let _ = session.send_audio(vec![0; 4_800]);
    }
    let record = peer.record_when(Duration::from_secs(5), |r| {
        r["connections"][0]["events"]
            .as_array()
            .is_some_and(|e| e.len() >= 4)
    });
    assert_eq!(
        event_names(&record["connections"][0]).len(),
        4,
        "{record:#}"
    );
    let frozen = Instant::now();
    let (at, err) = recorder.failure(Duration::from_secs(10));
    assert!(err.is_recoverable(), "{err}");
    assert!(
        matches!(&err, SessionError::Connection(why) if why.contains("2000 ms")),
        "{err}"
    );
    let waited = at.duration_since(frozen);
    assert!(
        waited >= SILENCE_LIMIT - Duration::from_millis(700) && waited <= SILENCE_LIMIT * 2,
        "declared dead {waited:?} after the last frame"
    );
}

/// The key is in the URL, so an error quoting the request must not quote the key: a proxy that
/// refuses with the request line in its body, and a port nobody listens on.
#[test]
fn connection_errors_never_contain_the_key() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        if let Ok((mut stream, _)) = listener.accept() {
            let mut request = [0u8; 2048];
            let n = stream.read(&mut request).unwrap_or(0);
            let line = String::from_utf8_lossy(&request[..n])
                .lines()
                .next()
                .unwrap_or_default()
                .to_owned();
            let body = format!("forbidden: {line}");
            // One write, so the body travels with the headers (the client reads only those).
            let response = format!(
                "HTTP/1.1 403 Forbidden\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes());
        }
    });
    let (_session, recorder) = Recorder::start(&format!("ws://127.0.0.1:{port}"), GT_KEY);
    let (_, err) = recorder.failure(Duration::from_secs(10));
    let text = err.to_string();
    assert!(matches!(err, SessionError::Authentication(_)), "{text}");
    assert!(
        text.contains("/socket.io/?apiKey=<redacted>&EIO=4"),
        "{text}"
    );
    assert!(!text.contains(GT_KEY) && !text.contains("K3Y"), "{text}");

    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (_session, recorder) = Recorder::start(&format!("ws://127.0.0.1:{closed}"), GT_KEY);
    let (_, err) = recorder.failure(Duration::from_secs(10));
    assert!(matches!(err, SessionError::Connection(_)), "{err}");
    assert!(!err.to_string().contains("K3Y"), "{err}");
}
