//! Timing harness: what reaches each sink, when, and where on the timeline; where the input speaks
//! and where the output does. Used by the live and non-live timing tests.
//!
//! Times are running times (clock time − base time for arrivals, PTS through the pad's segment for
//! positions), in seconds as `f64` for the analysis.

use gst::prelude::*;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Input buffers of the live feeder: this long each (upstream's latency is one buffer).
pub const FEED_MS: u64 = 20;
/// A 20 ms frame is voiced above this RMS (int16), as the utterance engine judges it.
pub const VOICED_RMS: f64 = 300.0;
/// An utterance ends after this much unvoiced audio.
pub const UTTERANCE_END_SILENCE: f64 = 0.4;
/// Utterances with fewer voiced frames are ignored (as the utterance engine does).
pub const MIN_VOICED_FRAMES: usize = 5;
/// Output samples louder than this are translated speech.
pub const SOUND_PEAK: i16 = 100;
/// Translated speech is split into spans at this much silence.
pub const SPAN_SPLIT_SILENCE: f64 = 0.1;

/// `[start, end)` in seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Span {
    pub start: f64,
    pub end: f64,
}

impl Span {
    pub fn duration(&self) -> f64 {
        self.end - self.start
    }
}

/// What reached a sink pad.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Buffer,
    Gap,
    /// A custom downstream event (its structure name), e.g. `rstranscribe/final-transcript`.
    Custom(String),
    Eos,
}

/// One buffer or event as it reached a sink pad (before the sink's clock wait).
#[derive(Debug, Clone)]
pub struct Record {
    pub kind: Kind,
    /// Running time at which it arrived; `None` before the sink had a base time.
    pub arrival: Option<f64>,
    /// Its timestamp as running time (buffers: PTS; GAP: its timestamp).
    pub pts: Option<f64>,
    pub duration: Option<f64>,
    /// Text buffers: the text.
    pub text: Option<String>,
    /// Audio buffers: S16LE samples.
    pub samples: Vec<i16>,
    pub discont: bool,
}

impl Record {
    pub fn end(&self) -> Option<f64> {
        Some(self.pts? + self.duration.unwrap_or(0.0))
    }
}

/// Everything one sink pad received.
#[derive(Debug, Clone, Default)]
pub struct PadLog {
    pub name: String,
    pub records: Vec<Record>,
}

impl PadLog {
    pub fn buffers(&self) -> impl Iterator<Item = &Record> {
        self.records.iter().filter(|r| r.kind == Kind::Buffer)
    }

    /// Buffers and GAPs: the items that carry a position.
    pub fn timed(&self) -> impl Iterator<Item = &Record> {
        self.records
            .iter()
            .filter(|r| matches!(r.kind, Kind::Buffer | Kind::Gap) && r.pts.is_some())
    }

    pub fn customs(&self) -> usize {
        self.records
            .iter()
            .filter(|r| matches!(r.kind, Kind::Custom(_)))
            .count()
    }

    pub fn gaps(&self) -> usize {
        self.records.iter().filter(|r| r.kind == Kind::Gap).count()
    }

    /// `(pts, text)` of every text buffer.
    pub fn texts(&self) -> Vec<(f64, String)> {
        self.buffers()
            .filter_map(|r| Some((r.pts?, r.text.clone()?)))
            .collect()
    }
}

fn seconds(t: gst::ClockTime) -> f64 {
    t.nseconds() as f64 / 1e9
}

/// Records every buffer and event reaching `sink`'s sink pad, with its arrival running time (from
/// the sink's own clock and base time) and its position through the pad's segment. `audio`:
/// buffers are S16LE samples, else UTF-8 text. The sink's samples are pulled and dropped.
/// Records what reaches `pad` (an appsink's sink pad, or the pad of the queue in front of it).
pub fn record_sink(
    sink: &gst_app::AppSink,
    pad: &gst::Pad,
    name: &str,
    audio: bool,
) -> Arc<Mutex<PadLog>> {
    let log = Arc::new(Mutex::new(PadLog {
        name: name.to_owned(),
        records: Vec::new(),
    }));
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(|sink| {
                sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
    let segment = Mutex::new(gst::FormattedSegment::<gst::ClockTime>::new());
    let into = log.clone();
    pad.add_probe(
        gst::PadProbeType::BUFFER | gst::PadProbeType::EVENT_DOWNSTREAM,
        move |pad, info| {
            let arrival = pad.parent_element().and_then(|e| {
                let clock = e.clock()?;
                let base = e.base_time()?;
                Some(seconds(clock.time().saturating_sub(base)))
            });
            let running = |t: Option<gst::ClockTime>| {
                t.and_then(|t| segment.lock().unwrap().to_running_time(t))
                    .map(seconds)
            };
            let record = match &info.data {
                Some(gst::PadProbeData::Buffer(buffer)) => {
                    let map = buffer.map_readable().unwrap();
                    let (text, samples) = if audio {
                        let samples = map
                            .chunks_exact(2)
                            .map(|b| i16::from_le_bytes([b[0], b[1]]))
                            .collect();
                        (None, samples)
                    } else {
                        (Some(String::from_utf8_lossy(&map).into_owned()), Vec::new())
                    };
                    Some(Record {
                        kind: Kind::Buffer,
                        arrival,
                        pts: running(buffer.pts()),
                        duration: buffer.duration().map(seconds),
                        text,
                        samples,
                        discont: buffer.flags().contains(gst::BufferFlags::DISCONT),
                    })
                }
                Some(gst::PadProbeData::Event(event)) => match event.view() {
                    gst::EventView::Segment(s) => {
                        if let Ok(s) = s.segment().clone().downcast::<gst::ClockTime>() {
                            *segment.lock().unwrap() = s;
                        }
                        None
                    }
                    gst::EventView::Gap(g) => {
                        let (ts, duration) = g.get();
                        Some(Record {
                            kind: Kind::Gap,
                            arrival,
                            pts: running(Some(ts)),
                            duration: duration.map(seconds),
                            text: None,
                            samples: Vec::new(),
                            discont: false,
                        })
                    }
                    gst::EventView::CustomDownstream(c) => Some(Record {
                        kind: Kind::Custom(
                            c.structure()
                                .map(|s| s.name().to_string())
                                .unwrap_or_default(),
                        ),
                        arrival,
                        pts: None,
                        duration: None,
                        text: None,
                        samples: Vec::new(),
                        discont: false,
                    }),
                    gst::EventView::Eos(_) => Some(Record {
                        kind: Kind::Eos,
                        arrival,
                        pts: None,
                        duration: None,
                        text: None,
                        samples: Vec::new(),
                        discont: false,
                    }),
                    _ => None,
                },
                _ => None,
            };
            if let Some(record) = record {
                into.lock().unwrap().records.push(record);
            }
            gst::PadProbeReturn::Ok
        },
    );
    log
}

/// A `realtimetranslate` with these properties (each from its string form). `subtitle-mode` is
/// set only if the element has it.
pub fn translator(properties: &[(&str, &str)]) -> gst::Element {
    let element = gst::ElementFactory::make("realtimetranslate")
        .name("t")
        .build()
        .unwrap();
    for (name, value) in properties {
        if *name == "subtitle-mode" && element.find_property(name).is_none() {
            continue;
        }
        element.set_property_from_str(name, value);
    }
    element
}

/// The three output pads' names, in the order the harness reports them.
pub const PADS: [&str; 3] = ["src", "subtitle_src", "source_subtitle_src"];

/// Appsinks on these src pads of the element (requested when not always pads: `src_fr`).
fn link_sinks(
    pipeline: &gst::Pipeline,
    element: &gst::Element,
    sync: bool,
    pads: &[&str],
) -> Sinks {
    pads.iter()
        .map(|name| {
            let sink = gst_app::AppSink::builder()
                .name(format!("sink_{name}"))
                .sync(sync)
                .build();
            pipeline.add(&sink).unwrap();
            // Live, a queue takes what the element pushes and records when it arrives: a sink
            // that syncs to the clock blocks each push until the previous buffer is due, so
            // measured at the sink, any element looks as late as the sink's own schedule.
            let first = if sync {
                let queue = gst::ElementFactory::make("queue")
                    .property("max-size-buffers", 0u32)
                    .property("max-size-bytes", 0u32)
                    .property("max-size-time", 60_000_000_000u64)
                    .build()
                    .unwrap();
                pipeline.add(&queue).unwrap();
                queue.link(&sink).unwrap();
                queue.static_pad("sink").unwrap()
            } else {
                sink.static_pad("sink").unwrap()
            };
            let pad = element
                .static_pad(name)
                .or_else(|| element.request_pad_simple(name))
                .unwrap_or_else(|| panic!("no pad {name}"));
            pad.link(&first).unwrap();
            let log = record_sink(&sink, &first, name, name.starts_with("src"));
            (sink, log)
        })
        .collect()
}

/// What a run of the pipeline gave.
#[derive(Debug, Default)]
pub struct Run {
    /// `src`, `subtitle_src`, `source_subtitle_src`.
    pub pads: Vec<PadLog>,
    /// Live: the latency a LATENCY query through each appsink's peer (the element's pad) reported:
    /// `(pad, live, min, max)`, in seconds.
    pub latencies: Vec<(String, bool, f64, Option<f64>)>,
    /// Live: the pipeline's latency (a LATENCY query on it: the sinks add their
    /// `processing-deadline`), seconds.
    pub pipeline_latency: Option<f64>,
    /// Live: for every input buffer, `(running time it was pushed, how late: pushed − its end)`.
    pub feed: Vec<(f64, f64)>,
    /// Running time of the input's first sample and of its end.
    pub input_start: f64,
    pub input_end: f64,
    /// The input's utterances (see [`utterances`]), in running time.
    pub source: Vec<Span>,
    /// Translated speech on `src` (see [`sound_spans`]).
    pub translated: Vec<Span>,
    /// `(pts, text)` of every `subtitle_src` buffer.
    pub texts: Vec<(f64, String)>,
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
    /// Element messages (statistics, connection states), in order.
    pub messages: Vec<gst::Structure>,
    pub eos: bool,
    pub wall: Duration,
}

impl Run {
    pub fn pad(&self, name: &str) -> &PadLog {
        self.pads.iter().find(|p| p.name == name).unwrap()
    }

    /// The latency the element reported on `src` (upstream's included), seconds.
    pub fn reported_latency(&self) -> f64 {
        self.latencies
            .iter()
            .find(|(pad, ..)| pad == "src")
            .map(|(_, _, min, _)| *min)
            .unwrap_or(0.0)
    }

    /// How late the input itself was around `arrival` (the feeder is a thread on a shared
    /// machine): the worst lateness of input pushed in the 200 ms before it.
    pub fn input_lateness_before(&self, arrival: f64) -> f64 {
        self.feed
            .iter()
            .filter(|(at, _)| *at <= arrival && *at >= arrival - 0.2)
            .map(|(_, late)| *late)
            .fold(0.0, f64::max)
    }
}

fn appsrc(caps: &gst::Caps, live: bool) -> gst_app::AppSrc {
    let mut builder = gst_app::AppSrc::builder()
        .name("in")
        .caps(caps)
        .format(gst::Format::Time)
        .is_live(live)
        .max_bytes(0);
    if live {
        // One buffer of latency; its queue is unbounded, so no maximum.
        builder = builder
            .min_latency((FEED_MS * 1_000_000) as i64)
            .max_latency(-1);
    }
    builder.build()
}

pub fn mono_caps(rate: u32) -> gst::Caps {
    gst::Caps::builder("audio/x-raw")
        .field("format", "S16LE")
        .field("layout", "interleaved")
        .field("rate", rate as i32)
        .field("channels", 1)
        .build()
}

pub fn buffer_of(samples: &[i16]) -> gst::Buffer {
    let bytes: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
    gst::Buffer::from_mut_slice(bytes)
}

/// Waits for EOS or an error (or `timeout`), collecting messages.
pub fn wait_end(pipeline: &gst::Pipeline, run: &mut Run, timeout: Duration, started: Instant) {
    let bus = pipeline.bus().unwrap();
    while started.elapsed() < timeout {
        let Some(message) = bus.timed_pop(gst::ClockTime::from_mseconds(50)) else {
            continue;
        };
        match message.view() {
            gst::MessageView::Eos(_) => {
                run.eos = true;
                return;
            }
            gst::MessageView::Error(err) => {
                run.errors
                    .push(format!("{} ({:?})", err.error(), err.debug()));
                return;
            }
            gst::MessageView::Warning(w) => run.warnings.push(w.error().to_string()),
            gst::MessageView::Element(e) => {
                run.messages.extend(e.structure().map(|s| s.to_owned()))
            }
            _ => {}
        }
    }
}

pub type Sinks = Vec<(gst_app::AppSink, Arc<Mutex<PadLog>>)>;

/// `appsrc` (live or not) → `element` → a recorded sink per src pad, and the run to fill in.
pub fn assemble(
    element: gst::Element,
    rate: u32,
    samples: &[i16],
    live: bool,
) -> (gst::Pipeline, gst_app::AppSrc, Sinks, Run) {
    assemble_pads(element, rate, samples, live, &PADS)
}

/// Like [`assemble`], with a recorded sink on each of `pads`.
pub fn assemble_pads(
    element: gst::Element,
    rate: u32,
    samples: &[i16],
    live: bool,
    pads: &[&str],
) -> (gst::Pipeline, gst_app::AppSrc, Sinks, Run) {
    let pipeline = gst::Pipeline::new();
    let src = appsrc(&mono_caps(rate), live);
    pipeline.add(src.upcast_ref::<gst::Element>()).unwrap();
    pipeline.add(&element).unwrap();
    src.link(&element).unwrap();
    let sinks = link_sinks(&pipeline, &element, live, pads);
    let run = Run {
        input_start: 0.0,
        input_end: samples.len() as f64 / rate as f64,
        ..Run::default()
    };
    (pipeline, src, sinks, run)
}

/// What went wrong with the pipeline itself (errors, no EOS); warnings are printed.
pub fn pipeline_failures(run: &Run) -> Vec<String> {
    let mut failures = Vec::new();
    if !run.errors.is_empty() {
        failures.push(format!("pipeline errors: {:?}", run.errors));
    }
    if !run.eos {
        failures.push("no EOS within the timeout".into());
    }
    if !run.warnings.is_empty() {
        println!("warnings: {:?}", run.warnings);
    }
    failures
}

/// Live input: `appsrc is-live=true format=time` (20 ms of upstream latency) → `element` → one
/// `appsink sync=true` per src pad. A feeder thread pushes `samples` (mono S16 at `rate`) in
/// 20 ms buffers in real time: it waits on the pipeline clock until the running time reaches a
/// buffer's end, then pushes it with PTS = its start; then EOS.
pub fn run_live(element: gst::Element, rate: u32, samples: &[i16], timeout: Duration) -> Run {
    run_live_jumping(element, rate, samples, None, timeout)
}

/// Like [`run_live`], with the input's time jumping ahead by `jump.1` before sample `jump.0`
/// (a live source that stops for that long: the feeder waits through it, then goes on with
/// timestamps that far ahead).
pub fn run_live_jumping(
    element: gst::Element,
    rate: u32,
    samples: &[i16],
    jump: Option<(usize, Duration)>,
    timeout: Duration,
) -> Run {
    let (pipeline, src, sinks, run) = assemble(element, rate, samples, true);
    feed_live(pipeline, src, sinks, run, rate, samples, jump, timeout)
}

/// Like [`run_live`], recording `pads` (always pads, or request pads such as `src_fr`).
pub fn run_live_pads(
    element: gst::Element,
    rate: u32,
    samples: &[i16],
    pads: &[&str],
    timeout: Duration,
) -> Run {
    let (pipeline, src, sinks, run) = assemble_pads(element, rate, samples, true, pads);
    feed_live(pipeline, src, sinks, run, rate, samples, None, timeout)
}

#[allow(clippy::too_many_arguments)]
fn feed_live(
    pipeline: gst::Pipeline,
    src: gst_app::AppSrc,
    sinks: Sinks,
    mut run: Run,
    rate: u32,
    samples: &[i16],
    jump: Option<(usize, Duration)>,
    timeout: Duration,
) -> Run {
    let started = Instant::now();
    let (jump_at, jump_ns) = jump.map_or((usize::MAX, 0), |(at, d)| (at, d.as_nanos() as u64));
    run.input_end += jump_ns as f64 / 1e9;
    if pipeline.set_state(gst::State::Playing).is_err() {
        run.errors.push("state change to PLAYING failed".into());
    }
    // A live pipeline completes PLAYING only once every sink has had data, so the feeder starts
    // as soon as the source plays (the base time is distributed before that).
    let waiting = Instant::now();
    while src.current_state() != gst::State::Playing && waiting.elapsed() < Duration::from_secs(10)
    {
        std::thread::sleep(Duration::from_millis(1));
    }
    let clock = pipeline.clock().expect("a clock once PLAYING");
    let base = pipeline.base_time().expect("a base time once PLAYING");

    let feeder = {
        let samples = samples.to_vec();
        let src = src.clone();
        let clock = clock.clone();
        std::thread::spawn(move || {
            let per_buffer = (rate as u64 * FEED_MS / 1000) as usize;
            let mut feed = Vec::new();
            let mut position = 0u64;
            for chunk in samples.chunks(per_buffer) {
                let shift = if position as usize >= jump_at {
                    jump_ns
                } else {
                    0
                };
                let start =
                    gst::ClockTime::from_nseconds(position * 1_000_000_000 / rate as u64 + shift);
                position += chunk.len() as u64;
                let end =
                    gst::ClockTime::from_nseconds(position * 1_000_000_000 / rate as u64 + shift);
                let _ = clock.new_single_shot_id(base + end).wait();
                let mut buffer = buffer_of(chunk);
                {
                    let buffer = buffer.get_mut().unwrap();
                    buffer.set_pts(start);
                    buffer.set_duration(end - start);
                }
                let now = clock.time().saturating_sub(base);
                feed.push((seconds(now), seconds(now) - seconds(end)));
                if src.push_buffer(buffer).is_err() {
                    break;
                }
            }
            let _ = src.end_of_stream();
            feed
        })
    };
    // The latency as the element reports it once the pipeline plays (its sinks had data).
    while pipeline.current_state() != gst::State::Playing
        && started.elapsed() < Duration::from_secs(10)
    {
        std::thread::sleep(Duration::from_millis(5));
    }
    for (sink, log) in &sinks {
        let mut query = gst::query::Latency::new();
        if sink.static_pad("sink").unwrap().peer_query(&mut query) {
            let (live, min, max) = query.result();
            run.latencies.push((
                log.lock().unwrap().name.clone(),
                live,
                seconds(min),
                max.map(seconds),
            ));
        }
    }
    let mut query = gst::query::Latency::new();
    if pipeline.query(&mut query) {
        run.pipeline_latency = Some(seconds(query.result().1));
    }
    wait_end(&pipeline, &mut run, timeout, started);
    pipeline.set_state(gst::State::Null).unwrap();
    run.feed = feeder.join().unwrap();
    run.finish(&sinks, rate, samples);
    run.wall = started.elapsed();
    run
}

impl Run {
    /// Takes what the sinks recorded and works out where the input and the output speak.
    pub fn finish(
        &mut self,
        sinks: &[(gst_app::AppSink, Arc<Mutex<PadLog>>)],
        rate: u32,
        samples: &[i16],
    ) {
        self.pads = sinks
            .iter()
            .map(|(_, log)| std::mem::take(&mut *log.lock().unwrap()))
            .collect();
        self.source = utterances(samples, rate)
            .into_iter()
            .map(|s| Span {
                start: self.input_start + s.start,
                end: self.input_start + s.end,
            })
            .collect();
        self.translated = sound_spans(self.pad("src"));
        self.texts = self.pad("subtitle_src").texts();
    }
}

/// How a non-live run gets its input.
pub enum Feed {
    /// Buffers of this many ms, timestamped.
    Timestamped { buffer_ms: u64 },
    /// All of it in one timestamped buffer.
    OneBuffer,
    /// Buffers of this many ms without PTS or duration.
    Untimestamped { buffer_ms: u64 },
}

/// Non-live input: `appsrc format=time` (not live) → `element` → one `appsink sync=false` per
/// src pad; everything is queued into appsrc at once.
pub fn run_nonlive(
    element: gst::Element,
    rate: u32,
    samples: &[i16],
    feed: Feed,
    timeout: Duration,
) -> Run {
    run_nonlive_pads(element, rate, samples, feed, &PADS, timeout)
}

/// Like [`run_nonlive`], recording `pads` (always pads, or request pads such as `src_fr`).
pub fn run_nonlive_pads(
    element: gst::Element,
    rate: u32,
    samples: &[i16],
    feed: Feed,
    pads: &[&str],
    timeout: Duration,
) -> Run {
    let started = Instant::now();
    let (pipeline, src, sinks, mut run) = assemble_pads(element, rate, samples, false, pads);
    let time = |n: u64| gst::ClockTime::from_nseconds(n * 1_000_000_000 / rate as u64);
    let (per_buffer, timestamps) = match feed {
        Feed::Timestamped { buffer_ms } => ((rate as u64 * buffer_ms / 1000) as usize, true),
        Feed::OneBuffer => (samples.len().max(1), true),
        Feed::Untimestamped { buffer_ms } => ((rate as u64 * buffer_ms / 1000) as usize, false),
    };
    let mut position = 0u64;
    for chunk in samples.chunks(per_buffer) {
        let mut buffer = buffer_of(chunk);
        if timestamps {
            let buffer = buffer.get_mut().unwrap();
            buffer.set_pts(time(position));
            buffer.set_duration(time(position + chunk.len() as u64) - time(position));
        }
        position += chunk.len() as u64;
        src.push_buffer(buffer).unwrap();
    }
    src.end_of_stream().unwrap();
    if pipeline.set_state(gst::State::Playing).is_err() {
        run.errors.push("state change to PLAYING failed".into());
    }
    wait_end(&pipeline, &mut run, timeout, started);
    pipeline.set_state(gst::State::Null).unwrap();
    run.finish(&sinks, rate, samples);
    run.wall = started.elapsed();
    run
}

/// Mono 16-bit samples and rate of a PCM WAV file.
pub fn read_wav(path: &Path) -> (u32, Vec<i16>) {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[..4], b"RIFF");
    assert_eq!(&bytes[8..12], b"WAVE");
    let mut at = 12;
    let mut rate = 0;
    while at + 8 <= bytes.len() {
        let id = &bytes[at..at + 4];
        let len = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
        let body = &bytes[at + 8..(at + 8 + len).min(bytes.len())];
        if id == b"fmt " {
            let channels = u16::from_le_bytes([body[2], body[3]]);
            let bits = u16::from_le_bytes([body[14], body[15]]);
            assert_eq!((channels, bits), (1, 16), "{}", path.display());
            rate = u32::from_le_bytes(body[4..8].try_into().unwrap());
        } else if id == b"data" {
            let samples = body
                .chunks_exact(2)
                .map(|b| i16::from_le_bytes([b[0], b[1]]))
                .collect();
            return (rate, samples);
        }
        at += 8 + len + (len & 1);
    }
    panic!("no data chunk in {}", path.display());
}

/// English sentences spoken by flite with the given silences: `lead`, then each sentence followed
/// by its pause (`pauses[i]`, the last one being the trail). Returns the rate and the samples.
pub fn spoken(dir: &Path, sentences: &[&str], lead: f64, pauses: &[f64]) -> (u32, Vec<i16>) {
    assert_eq!(sentences.len(), pauses.len());
    let mut rate = 0;
    let mut samples = Vec::new();
    for (i, (text, pause)) in sentences.iter().zip(pauses).enumerate() {
        let (wav, _) = super::speech_wav(dir, &format!("s{i}"), text, 0.0, 0.0);
        let (r, speech) = read_wav(&wav);
        if rate == 0 {
            rate = r;
            samples.resize((lead * rate as f64) as usize, 0);
        }
        assert_eq!(r, rate);
        samples.extend(speech);
        samples.resize(samples.len() + (pause * rate as f64) as usize, 0);
    }
    (rate, samples)
}

fn rms(frame: &[i16]) -> f64 {
    super::rms(frame)
}

/// Utterances of the input as the utterance engine finds them: 20 ms frames, voiced above RMS
/// 300, an utterance ending after 400 ms unvoiced, fewer than 5 voiced frames ignored. Spans are
/// first voiced frame to last voiced frame (inclusive), in seconds from the first sample.
pub fn utterances(samples: &[i16], rate: u32) -> Vec<Span> {
    let frame = (rate as u64 * 20 / 1000) as usize;
    let end_frames = (UTTERANCE_END_SILENCE / 0.02).round() as usize;
    let mut out = Vec::new();
    // (first voiced, last voiced, voiced count)
    let mut current: Option<(usize, usize, usize)> = None;
    let close = |c: (usize, usize, usize), out: &mut Vec<Span>| {
        if c.2 >= MIN_VOICED_FRAMES {
            out.push(Span {
                start: c.0 as f64 * 0.02,
                end: (c.1 + 1) as f64 * 0.02,
            });
        }
    };
    for (k, f) in samples.chunks_exact(frame).enumerate() {
        let voiced = rms(f) > VOICED_RMS;
        current = match (current, voiced) {
            (None, true) => Some((k, k, 1)),
            (None, false) => None,
            (Some((first, _, n)), true) => Some((first, k, n + 1)),
            (Some(c), false) if k - c.1 >= end_frames => {
                close(c, &mut out);
                None
            }
            (c, false) => c,
        };
    }
    if let Some(c) = current {
        close(c, &mut out);
    }
    out
}

/// Non-silent runs of the audio on a pad (|sample| > 100), split at ≥ 100 ms of silence, in
/// running time (each buffer placed at its own PTS).
pub fn sound_spans(log: &PadLog) -> Vec<Span> {
    let mut spans: Vec<Span> = Vec::new();
    for buffer in log.buffers() {
        let Some(pts) = buffer.pts else { continue };
        for (i, s) in buffer.samples.iter().enumerate() {
            if s.unsigned_abs() <= SOUND_PEAK as u16 {
                continue;
            }
            let t = pts + i as f64 / 24_000.0;
            match spans.last_mut() {
                Some(last) if t - last.end < SPAN_SPLIT_SILENCE => last.end = t + 1.0 / 24_000.0,
                _ => spans.push(Span {
                    start: t,
                    end: t + 1.0 / 24_000.0,
                }),
            }
        }
    }
    spans
}

/// Holes and overlaps in the audio buffers' timeline (`(where, size)` with size > 0 a hole,
/// < 0 an overlap), beyond `tolerance` seconds; and the covered `[first pts, last end]`.
pub fn audio_coverage(log: &PadLog, tolerance: f64) -> (Vec<(f64, f64)>, Option<Span>) {
    let mut problems = Vec::new();
    let mut covered: Option<Span> = None;
    for buffer in log.buffers() {
        let (Some(pts), Some(end)) = (buffer.pts, buffer.end()) else {
            problems.push((f64::NAN, f64::NAN));
            continue;
        };
        match &mut covered {
            None => covered = Some(Span { start: pts, end }),
            Some(c) => {
                if (pts - c.end).abs() > tolerance {
                    problems.push((c.end, pts - c.end));
                }
                c.end = c.end.max(end);
            }
        }
    }
    (problems, covered)
}

/// Positions going backwards between consecutive timed items of a pad: `(previous, this)`.
pub fn backwards(log: &PadLog) -> Vec<(f64, f64)> {
    let mut out = Vec::new();
    let mut last: Option<f64> = None;
    for r in log.timed() {
        let pts = r.pts.unwrap();
        if let Some(l) = last
            && pts < l - 1e-6
        {
            out.push((l, pts));
        }
        last = Some(last.map_or(pts, |l| l.max(pts)));
    }
    out
}

/// Lateness of one pad's timed items: arrival − (position + latency), and the same less what the
/// input itself was late by just before (the feeder is a thread on a shared machine).
#[derive(Debug, Clone, Default)]
pub struct Lateness {
    pub items: usize,
    /// Worst raw lateness, seconds (negative: every item early), and the item's position.
    pub worst: f64,
    pub worst_at: f64,
    /// Worst lateness beyond the input's own.
    pub worst_excused: f64,
    pub worst_excused_at: f64,
    /// Items late beyond the input's own.
    pub late: usize,
    /// Median and 90th percentile of the lateness beyond the input's own.
    pub p50: f64,
    pub p90: f64,
}

pub fn lateness(run: &Run, log: &PadLog, latency: f64) -> Lateness {
    let mut l = Lateness {
        worst: f64::NEG_INFINITY,
        worst_excused: f64::NEG_INFINITY,
        ..Lateness::default()
    };
    let mut all = Vec::new();
    for r in log.timed() {
        let (Some(arrival), Some(pts)) = (r.arrival, r.pts) else {
            continue;
        };
        l.items += 1;
        let late = arrival - (pts + latency);
        if late > l.worst {
            l.worst = late;
            l.worst_at = pts;
        }
        let excused = late - run.input_lateness_before(arrival);
        if excused > l.worst_excused {
            l.worst_excused = excused;
            l.worst_excused_at = pts;
        }
        if excused > 0.0 {
            l.late += 1;
        }
        all.push(excused);
    }
    all.sort_by(f64::total_cmp);
    if !all.is_empty() {
        l.p50 = all[all.len() / 2];
        l.p90 = all[all.len() * 9 / 10];
    }
    l
}
