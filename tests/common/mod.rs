//! Shared by the integration tests: plugin registration, the local server, real speech made with
//! flite, and pipelines whose outputs are captured for assertions.
#![allow(dead_code)]

pub mod timing;

use gst::prelude::*;
use realtimetranslate_server::engine::echo::EchoEngineFactory;
use realtimetranslate_server::engine::utterance::UtteranceEngineFactory;
use realtimetranslate_server::{BackgroundServer, ServerConfig};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const KEY: &str = "test-key-123";

/// The file name of the plugin library cargo builds.
pub const PLUGIN_LIBRARY: &str = "libgstrealtimetranslate.so";

/// The plugin as built for this test run: cargo leaves the cdylib beside the test binaries
/// (`target/debug/deps`); `target/debug` holds it only after a `cargo build`, maybe stale.
pub fn built_plugin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let plugin = exe.parent().unwrap().join(PLUGIN_LIBRARY);
    assert!(plugin.is_file(), "{} was not built", plugin.display());
    plugin
}

pub fn init() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        gst::init().unwrap();
        gstrealtimetranslate::plugin_register_static().unwrap();
    });
}

/// A loopback server with the deterministic utterance engine that requires [`KEY`].
pub fn utterance_server() -> BackgroundServer {
    let mut config = ServerConfig::new(Arc::new(UtteranceEngineFactory::new()));
    config.required_api_key = Some(KEY.into());
    BackgroundServer::start(config).unwrap()
}

/// A loopback server with the echo engine (translation = the input, at once).
pub fn echo_server() -> BackgroundServer {
    let mut config = ServerConfig::new(Arc::new(EchoEngineFactory::new()));
    config.required_api_key = Some(KEY.into());
    BackgroundServer::start(config).unwrap()
}

/// English speech spoken by flite, padded with silence, as a 16 kHz mono WAV; returns the file and
/// the speech's own duration.
pub fn speech_wav(dir: &Path, name: &str, text: &str, lead: f64, trail: f64) -> (PathBuf, f64) {
    let raw = dir.join(format!("{name}.raw.wav"));
    let out = dir.join(format!("{name}.wav"));
    let status = Command::new("flite")
        .args(["-voice", "slt", "-t", text, "-o"])
        .arg(&raw)
        .status()
        .expect("flite is installed (see README)");
    assert!(status.success());
    let status = Command::new("sox")
        .arg(&raw)
        .arg(&out)
        .args(["pad", &lead.to_string(), &trail.to_string()])
        .status()
        .expect("sox is installed (see README)");
    assert!(status.success());
    let output = Command::new("soxi").arg("-D").arg(&raw).output().unwrap();
    let speech: f64 = String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .unwrap();
    (out, speech)
}

/// A text buffer that came out of a text pad.
#[derive(Debug, Clone)]
pub struct Cue {
    pub pts: gst::ClockTime,
    pub duration: gst::ClockTime,
    pub text: String,
}

/// Everything the pipeline's appsinks received.
#[derive(Debug, Default)]
pub struct Captured {
    /// (pts, samples) of every `src` buffer.
    pub audio: Vec<(gst::ClockTime, Vec<i16>)>,
    pub cues: Vec<Cue>,
    pub source_cues: Vec<Cue>,
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
    /// `src` buffers flagged DISCONT.
    pub disconts: usize,
    /// Element messages (connection state, statistics), with when they arrived.
    pub messages: Vec<(Duration, gst::Structure)>,
    pub eos: bool,
}

impl Captured {
    pub fn samples(&self) -> Vec<i16> {
        self.audio
            .iter()
            .flat_map(|(_, s)| s.iter().copied())
            .collect()
    }

    pub fn first_pts(&self) -> gst::ClockTime {
        self.audio
            .first()
            .map(|(pts, _)| *pts)
            .unwrap_or(gst::ClockTime::ZERO)
    }

    pub fn duration_seconds(&self) -> f64 {
        self.audio.iter().map(|(_, s)| s.len()).sum::<usize>() as f64 / 24_000.0
    }

    /// `realtimetranslate/connection` messages with this status.
    pub fn connection_messages(&self, status: &str) -> Vec<&gst::StructureRef> {
        self.messages
            .iter()
            .map(|(_, m)| m.as_ref())
            .filter(|m| {
                m.name() == "realtimetranslate/connection"
                    && m.get::<&str>("status").is_ok_and(|s| s == status)
            })
            .collect()
    }

    pub fn text(&self) -> String {
        self.cues
            .iter()
            .map(|c| c.text.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

pub fn capture_text(sink: &gst_app::AppSink, into: Arc<Mutex<Vec<Cue>>>) {
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                let buffer = sample.buffer().unwrap();
                let map = buffer.map_readable().unwrap();
                into.lock().unwrap().push(Cue {
                    pts: buffer.pts().unwrap(),
                    duration: buffer.duration().unwrap(),
                    text: String::from_utf8(map.to_vec()).unwrap(),
                });
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
}

/// Runs a pipeline description until EOS, an error, or `timeout`. Appsinks named `audio`, `text`
/// and `source` are captured when present.
pub fn run(description: &str, timeout: Duration) -> Captured {
    run_pipeline(&launch(description), timeout, |_, _| {})
}

/// The pipeline a `gst-launch-1.0` description makes.
pub fn launch(description: &str) -> gst::Pipeline {
    gst::parse::launch(description)
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap()
}

/// Like [`run`], on a built pipeline, calling `tick(pipeline, elapsed)` about every 50 ms.
pub fn run_pipeline(
    pipeline: &gst::Pipeline,
    timeout: Duration,
    mut tick: impl FnMut(&gst::Pipeline, Duration),
) -> Captured {
    let audio = Arc::new(Mutex::new(Vec::new()));
    let disconts = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let cues = Arc::new(Mutex::new(Vec::new()));
    let source_cues = Arc::new(Mutex::new(Vec::new()));
    if let Some(sink) = pipeline.by_name("audio") {
        let audio = audio.clone();
        let disconts = disconts.clone();
        sink.downcast::<gst_app::AppSink>().unwrap().set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |sink| {
                    let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                    let buffer = sample.buffer().unwrap();
                    if buffer.flags().contains(gst::BufferFlags::DISCONT) {
                        disconts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    let map = buffer.map_readable().unwrap();
                    let samples = map
                        .chunks_exact(2)
                        .map(|b| i16::from_le_bytes([b[0], b[1]]))
                        .collect();
                    audio.lock().unwrap().push((buffer.pts().unwrap(), samples));
                    Ok(gst::FlowSuccess::Ok)
                })
                .build(),
        );
    }
    if let Some(sink) = pipeline.by_name("text") {
        capture_text(&sink.downcast().unwrap(), cues.clone());
    }
    if let Some(sink) = pipeline.by_name("source") {
        capture_text(&sink.downcast().unwrap(), source_cues.clone());
    }
    let mut captured = Captured::default();
    let bus = pipeline.bus().unwrap();
    let started = Instant::now();
    let start_failed = pipeline.set_state(gst::State::Playing).is_err();
    while started.elapsed() < timeout {
        tick(pipeline, started.elapsed());
        let Some(message) = bus.timed_pop(gst::ClockTime::from_mseconds(50)) else {
            continue;
        };
        match message.view() {
            gst::MessageView::Eos(_) => {
                captured.eos = true;
                break;
            }
            gst::MessageView::Error(err) => {
                captured
                    .errors
                    .push(format!("{} ({:?})", err.error(), err.debug()));
                break;
            }
            gst::MessageView::Warning(w) => captured.warnings.push(w.error().to_string()),
            gst::MessageView::Element(e) => {
                if let Some(structure) = e.structure() {
                    captured
                        .messages
                        .push((started.elapsed(), structure.to_owned()));
                }
            }
            _ => {}
        }
    }
    // Errors posted while the pipeline failed to start come through here too; after the first
    // error, the follow-on ones (upstream's "streaming stopped") are not collected.
    while let Some(message) = captured
        .errors
        .is_empty()
        .then(|| bus.pop_filtered(&[gst::MessageType::Error]))
        .flatten()
    {
        if let gst::MessageView::Error(err) = message.view() {
            let text = format!("{} ({:?})", err.error(), err.debug());
            if !captured.errors.contains(&text) {
                captured.errors.push(text);
            }
        }
    }
    if start_failed && captured.errors.is_empty() {
        captured
            .errors
            .push("state change to PLAYING failed".into());
    }
    pipeline.set_state(gst::State::Null).unwrap();
    captured.audio = std::mem::take(&mut audio.lock().unwrap());
    captured.disconts = disconts.load(std::sync::atomic::Ordering::Relaxed);
    captured.cues = std::mem::take(&mut cues.lock().unwrap());
    captured.source_cues = std::mem::take(&mut source_cues.lock().unwrap());
    captured
}

/// Like [`run_pipeline`], setting the `target-language` of the element named `t` to `language`
/// once `after` has passed (a change while playing).
pub fn run_changing_language(
    pipeline: &gst::Pipeline,
    timeout: Duration,
    after: Duration,
    language: &str,
) -> Captured {
    let mut changed = false;
    run_pipeline(pipeline, timeout, |pipeline, elapsed| {
        if elapsed > after && !std::mem::replace(&mut changed, true) {
            pipeline
                .by_name("t")
                .unwrap()
                .set_property("target-language", language);
        }
    })
}

/// RMS of a slice of samples.
pub fn rms(samples: &[i16]) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    (samples.iter().map(|&s| (s as f64).powi(2)).sum::<f64>() / samples.len() as f64).sqrt()
}

/// Start and end (in seconds from the first sample) of the audible part of 24 kHz audio, judged
/// in 20 ms frames. The end is never past the last sample: output that stops mid-frame (the
/// translation ending the stream) ends where its samples end.
pub fn audible_span(samples: &[i16]) -> Option<(f64, f64)> {
    let frames: Vec<bool> = samples.chunks(480).map(|f| rms(f) > 300.0).collect();
    let first = frames.iter().position(|&v| v)?;
    let last = frames.iter().rposition(|&v| v)?;
    let end = ((last + 1) * 480).min(samples.len());
    Some((first as f64 * 0.02, end as f64 / 24_000.0))
}

/// The element's description with the server's URL and key.
pub fn element(server: &BackgroundServer, extra: &str) -> String {
    format!(
        "realtimetranslate name=t url={} api-key={KEY} {extra}",
        server.url()
    )
}

/// Writes 16-bit mono PCM as a WAV file.
pub fn write_wav(path: &Path, rate: u32, samples: &[i16]) {
    let data_len = (samples.len() * 2) as u32;
    let mut bytes = Vec::with_capacity(44 + data_len as usize);
    bytes.extend_from_slice(b"RIFF");
    bytes.extend_from_slice(&(36 + data_len).to_le_bytes());
    bytes.extend_from_slice(b"WAVEfmt ");
    bytes.extend_from_slice(&16u32.to_le_bytes());
    bytes.extend_from_slice(&1u16.to_le_bytes());
    bytes.extend_from_slice(&1u16.to_le_bytes());
    bytes.extend_from_slice(&rate.to_le_bytes());
    bytes.extend_from_slice(&(rate * 2).to_le_bytes());
    bytes.extend_from_slice(&2u16.to_le_bytes());
    bytes.extend_from_slice(&16u16.to_le_bytes());
    bytes.extend_from_slice(b"data");
    bytes.extend_from_slice(&data_len.to_le_bytes());
    for sample in samples {
        bytes.extend_from_slice(&sample.to_le_bytes());
    }
    std::fs::write(path, bytes).unwrap();
}

/// Amplitude of the `hz` component of 24 kHz `samples` (Goertzel).
pub fn tone_amplitude(samples: &[i16], hz: f64) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let w = 2.0 * std::f64::consts::PI * hz / 24_000.0;
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &x in samples {
        let s0 = f64::from(x) + 2.0 * w.cos() * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let power = s1 * s1 + s2 * s2 - 2.0 * w.cos() * s1 * s2;
    2.0 * power.sqrt() / samples.len() as f64
}

pub const LEAD_MS: u64 = 300;
pub const GAP_MS: u64 = 1000;

/// 1 kHz bursts ("utterances" for the test engine) of the given lengths, 1 s apart, as 24 kHz
/// mono; the engine answers each with "Frase n de D ms." and a 440 Hz tone of D ms.
pub fn bursts(durations_ms: &[u64]) -> Vec<i16> {
    let mut samples = vec![0i16; (LEAD_MS * 24) as usize];
    for &ms in durations_ms {
        samples.extend((0..ms * 24).map(|i| {
            let phase = 2.0 * std::f64::consts::PI * 1000.0 * i as f64 / 24_000.0;
            (4000.0 * phase.sin()) as i16
        }));
        samples.extend(std::iter::repeat_n(0, (GAP_MS * 24) as usize));
    }
    samples
}

/// `untranslated-seconds` of the last `stats` message (the element posts one at end of stream).
pub fn untranslated_seconds(captured: &Captured) -> f64 {
    captured
        .messages
        .iter()
        .rev()
        .find(|(_, m)| m.name() == "realtimetranslate/stats")
        .expect("a stats message")
        .1
        .get::<f64>("untranslated-seconds")
        .unwrap()
}

/// Where burst `index` starts, in seconds.
pub fn burst_start(durations_ms: &[u64], index: usize) -> f64 {
    (LEAD_MS + durations_ms[..index].iter().sum::<u64>() + GAP_MS * index as u64) as f64 / 1000.0
}

/// The `D` of every "Frase n de D ms." cue, in output order.
pub fn answered(captured: &Captured) -> Vec<u64> {
    captured
        .text()
        .split("de ")
        .skip(1)
        .filter_map(|rest| rest.split(" ms").next()?.parse().ok())
        .collect()
}
