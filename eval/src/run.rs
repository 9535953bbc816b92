//! Runs the `realtimetranslate` element on one recording, in this process, as a broadcast would
//! (non-live input fed at clock pace unless `fast`), and keeps everything it produced.

use crate::audio::Pcm;
use crate::subtitles::Cue;
use gst::prelude::*;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The element's rate on `src`.
const TRANSLATED_RATE: u32 = 24_000;
/// Source audio is kept at this rate for clips and checks.
const SOURCE_RATE: u32 = 16_000;

#[derive(Debug, Clone)]
pub struct RunConfig {
    pub backend: String,
    pub language: String,
    pub url: Option<String>,
    pub latency_ms: u32,
    /// `pacing=none`: as fast as the engine takes it.
    pub fast: bool,
    /// Asks for the source transcript (`transcription-model`).
    pub transcription_model: Option<String>,
    /// Failed connection attempts in a row before the run stops with an error (the element's
    /// `reconnect-attempts`; -1: never, as a broadcast would).
    pub reconnect_attempts: i32,
}

impl RunConfig {
    /// The transcription model each backend understands, for the source transcript.
    pub fn default_transcription_model(backend: &str) -> Option<&'static str> {
        match backend {
            "local" => Some("local"),
            "openai" | "openai-realtime" => Some("gpt-realtime-whisper"),
            _ => None,
        }
    }
}

/// What the element produced for one recording, on the recording's timeline.
#[derive(Debug, Clone)]
pub struct RunOutput {
    pub source: Pcm,
    pub translated: Pcm,
    pub captions: Vec<Cue>,
    pub heard: Vec<Cue>,
    pub wall_s: f64,
}

/// Registers the element in this process (once).
pub fn init() -> Result<(), String> {
    static RESULT: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    RESULT
        .get_or_init(|| {
            gst::init().map_err(|e| format!("cannot initialise GStreamer: {e}"))?;
            gstrealtimetranslate::plugin_register_static()
                .map_err(|e| format!("cannot register realtimetranslate: {e}"))
        })
        .clone()
}

/// Decodes any audio file GStreamer reads into mono 16-bit samples at `rate`.
pub fn decode(path: &Path, rate: u32) -> Result<Pcm, String> {
    init()?;
    let pipeline = launch(&format!(
        "filesrc name=in ! decodebin ! audioconvert ! audioresample ! \
         audio/x-raw,format=S16LE,channels=1,rate={rate} ! appsink name=pcm sync=false"
    ))?;
    set_location(&pipeline, path)?;
    let pcm = collect_pcm(&appsink(&pipeline, "pcm")?, rate);
    play_to_end(&pipeline, Duration::from_secs(600))?;
    let pcm = pcm.lock().unwrap().clone();
    Ok(pcm)
}

/// Translates `input` with the element; returns its audio, captions and source transcript.
pub fn translate(input: &Path, config: &RunConfig) -> Result<RunOutput, String> {
    init()?;
    let source = decode(input, SOURCE_RATE)?;
    let pipeline = launch(&format!(
        "filesrc name=in ! decodebin ! audioconvert ! audioresample ! \
         realtimetranslate name=t subtitle-mode=cues pacing={pacing} latency={latency} ! \
         appsink name=audio sync=false \
         t.subtitle_src ! queue ! appsink name=captions sync=false \
         t.source_subtitle_src ! queue ! appsink name=heard sync=false",
        pacing = if config.fast { "none" } else { "realtime" },
        latency = config.latency_ms,
    ))?;
    set_location(&pipeline, input)?;
    let element = pipeline.by_name("t").ok_or("no element")?;
    // Strings go through properties, not the description, so no quoting can break them.
    element.set_property_from_str("backend", &config.backend);
    element.set_property("target-language", &config.language);
    if let Some(url) = &config.url {
        element.set_property("url", url);
    }
    element.set_property("reconnect-attempts", config.reconnect_attempts);
    if let Some(model) = &config.transcription_model {
        element.set_property("transcription-model", model);
    }
    let translated = collect_pcm(&appsink(&pipeline, "audio")?, TRANSLATED_RATE);
    let captions = collect_cues(&appsink(&pipeline, "captions")?);
    let heard = collect_cues(&appsink(&pipeline, "heard")?);
    let started = Instant::now();
    // Bounded: the element drains within its own timeouts; this only stops a wedged run.
    let limit = Duration::from_secs_f64(120.0 + 3.0 * source.duration_s());
    play_to_end(&pipeline, limit)?;
    let wall_s = started.elapsed().as_secs_f64();
    let translated = translated.lock().unwrap().clone();
    let captions = captions.lock().unwrap().clone();
    let heard = heard.lock().unwrap().clone();
    Ok(RunOutput {
        source,
        translated,
        captions,
        heard,
        wall_s,
    })
}

fn launch(description: &str) -> Result<gst::Pipeline, String> {
    gst::parse::launch(description)
        .map_err(|e| format!("cannot build the pipeline: {e}"))?
        .downcast::<gst::Pipeline>()
        .map_err(|_| "not a pipeline".to_owned())
}

fn set_location(pipeline: &gst::Pipeline, path: &Path) -> Result<(), String> {
    let src = pipeline.by_name("in").ok_or("no filesrc")?;
    src.set_property(
        "location",
        path.to_str().ok_or("the input path is not UTF-8")?,
    );
    Ok(())
}

fn appsink(pipeline: &gst::Pipeline, name: &str) -> Result<gst_app::AppSink, String> {
    pipeline
        .by_name(name)
        .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
        .ok_or(format!("no appsink {name}"))
}

/// Stream time of a sample's buffer (the recording's own timeline).
fn stream_time(sample: &gst::Sample, buffer: &gst::BufferRef) -> Option<gst::ClockTime> {
    let pts = buffer.pts()?;
    let segment = sample
        .segment()
        .and_then(|s| s.downcast_ref::<gst::ClockTime>().cloned());
    Some(segment.and_then(|s| s.to_stream_time(pts)).unwrap_or(pts))
}

/// Mono S16 samples placed by their timestamps (a hole is filled with silence).
fn collect_pcm(sink: &gst_app::AppSink, rate: u32) -> Arc<Mutex<Pcm>> {
    let pcm = Arc::new(Mutex::new(Pcm {
        rate,
        origin_s: f64::NAN,
        samples: Vec::new(),
    }));
    let into = pcm.clone();
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                let buffer = sample.buffer().ok_or(gst::FlowError::Error)?;
                let at = stream_time(&sample, buffer).map(|t| t.seconds_f64());
                let map = buffer.map_readable().map_err(|_| gst::FlowError::Error)?;
                let mut pcm = into.lock().unwrap();
                if pcm.origin_s.is_nan() {
                    pcm.origin_s = at.unwrap_or(0.0);
                }
                if let Some(at) = at {
                    let index = ((at - pcm.origin_s) * rate as f64).round().max(0.0) as usize;
                    if index > pcm.samples.len() {
                        pcm.samples.resize(index, 0);
                    }
                }
                pcm.samples.extend(
                    map.chunks_exact(2)
                        .map(|b| i16::from_le_bytes([b[0], b[1]])),
                );
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
    pcm
}

fn collect_cues(sink: &gst_app::AppSink) -> Arc<Mutex<Vec<Cue>>> {
    let cues = Arc::new(Mutex::new(Vec::new()));
    let into = cues.clone();
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                let buffer = sample.buffer().ok_or(gst::FlowError::Error)?;
                let start = stream_time(&sample, buffer).unwrap_or_default();
                let map = buffer.map_readable().map_err(|_| gst::FlowError::Error)?;
                let text = String::from_utf8_lossy(&map).trim().to_owned();
                if !text.is_empty() {
                    into.lock().unwrap().push(Cue {
                        start_s: start.seconds_f64(),
                        end_s: (start + buffer.duration().unwrap_or_default()).seconds_f64(),
                        text,
                    });
                }
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
    cues
}

/// PLAYING until end of stream, an error, or `limit`; back to NULL in every case.
fn play_to_end(pipeline: &gst::Pipeline, limit: Duration) -> Result<(), String> {
    let bus = pipeline.bus().ok_or("no bus")?;
    let result = (|| {
        pipeline
            .set_state(gst::State::Playing)
            .map_err(|_| first_error(&bus).unwrap_or("the pipeline did not start".into()))?;
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(format!("no end of stream after {} s", limit.as_secs()));
            }
            let Some(message) =
                bus.timed_pop(gst::ClockTime::from_mseconds(left.as_millis() as u64))
            else {
                continue;
            };
            match message.view() {
                gst::MessageView::Eos(_) => return Ok(()),
                gst::MessageView::Error(err) => return Err(err.error().to_string()),
                gst::MessageView::Warning(w) => eprintln!("warning: {}", w.error()),
                _ => {}
            }
        }
    })();
    let _ = pipeline.set_state(gst::State::Null);
    result
}

fn first_error(bus: &gst::Bus) -> Option<String> {
    let message = bus.pop_filtered(&[gst::MessageType::Error])?;
    match message.view() {
        gst::MessageView::Error(err) => Some(err.error().to_string()),
        _ => None,
    }
}
