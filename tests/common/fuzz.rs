//! Random cases for the element as a whole: random input (sample formats, rates, channel counts,
//! buffer sizes from one frame, timestamp jumps, caps changes, live or not) against a server that
//! misbehaves at random (cut connections, stalls, a silent engine, slow answers, garbage frames,
//! oversized text, an engine faster than real time, refusals, expiries). Used by
//! `tests/element_fuzz.rs` (a few cases) and `benches/element_fuzz.rs` (many).
//!
//! The input is tone bursts, which the utterance engine answers with their length ("de N ms"), so
//! what was translated can be told from the subtitles. Checked for every case:
//! - no error, no crash, and end of stream within a time limit (no hang);
//! - `src` on the input's timeline: buffers in order, never overlapping, from the input's start
//!   to its end;
//! - no subtitle past the input's end + the reported latency + 5 s;
//! - nothing lost silently: every burst answered, unless the element counted untranslated
//!   audio or dropped subtitle text;
//! - memory: the process's RSS after the case, for the caller to bound.

use crate::common::*;
use gst::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use realtimetranslate_server::BackgroundServer;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Sample formats the element accepts, with their sizes in bytes.
const FORMATS: [(&str, usize); 6] = [
    ("S16LE", 2),
    ("S32LE", 4),
    ("F32LE", 4),
    ("F64LE", 8),
    ("U8", 1),
    ("S24LE", 3),
];
const RATES: [i32; 6] = [8_000, 16_000, 22_050, 32_000, 44_100, 48_000];
/// Burst amplitude, as a fraction of full scale (the utterance engine's threshold is far below).
const AMPLITUDE: f64 = 0.12;
const PAUSE_S: f64 = 1.0;

/// Faults the server may show, each with a random parameter; all are recoverable.
fn random_faults(rng: &mut StdRng) -> String {
    let mut faults = Vec::new();
    let count = rng.random_range(0..=2);
    for _ in 0..count {
        let at = rng.random_range(500..5_000);
        faults.push(match rng.random_range(0..10) {
            0 => format!("fault_drop_after_audio_ms={at}"),
            1 => format!("fault_stall_after_audio_ms={at}"),
            2 => format!("fault_mute_after_audio_ms={at}"),
            3 => format!("fault_server_error_after_audio_ms={at}"),
            4 => format!("fault_expire_early_ms={}", at + 1_000),
            5 => format!("fault_answer_delay_ms={}", rng.random_range(100..2_000)),
            6 => format!(
                "fault_send={}",
                [
                    "malformed_json",
                    "unknown_event",
                    "invalid_base64",
                    "binary"
                ][rng.random_range(0..4)]
            ),
            7 => format!("fault_rate_limit_first={}", rng.random_range(1..=2)),
            8 => format!("fault_huge_text_after_audio_ms={at}"),
            _ => format!("fault_audio_repeat={}", rng.random_range(2..=3)),
        });
    }
    // One of each kind at most (the server refuses a parameter given twice).
    faults.sort_by_key(|f| f.split('=').next().unwrap_or_default().to_owned());
    faults.dedup_by_key(|f| f.split('=').next().unwrap_or_default().to_owned());
    // The two expiry faults exclude each other; only one is ever drawn.
    faults.join("&")
}

/// A stretch of input in one format.
#[derive(Debug, Clone)]
struct Piece {
    format: (&'static str, usize),
    rate: i32,
    channels: i32,
}

impl Piece {
    fn random(rng: &mut StdRng) -> Piece {
        Piece {
            format: FORMATS[rng.random_range(0..FORMATS.len())],
            rate: RATES[rng.random_range(0..RATES.len())],
            channels: rng.random_range(1..=8),
        }
    }

    fn caps(&self) -> gst::Caps {
        let mut caps = gst::Caps::builder("audio/x-raw")
            .field("format", self.format.0)
            .field("rate", self.rate)
            .field("channels", self.channels)
            .field("layout", "interleaved");
        if self.channels > 2 {
            // What a capture source or decoder sets for more than two channels.
            let mask = gst_audio::AudioChannelPosition::fallback_mask(self.channels as u32);
            caps = caps.field("channel-mask", gst::Bitmask::new(mask));
        }
        caps.build()
    }

    /// One sample value (−1..1) in this format, for every channel.
    fn encode(&self, value: f64, into: &mut Vec<u8>) {
        for _ in 0..self.channels {
            match self.format.0 {
                "S16LE" => into.extend_from_slice(&((value * 32767.0) as i16).to_le_bytes()),
                "S32LE" => into.extend_from_slice(&((value * 2147483647.0) as i32).to_le_bytes()),
                "F32LE" => into.extend_from_slice(&(value as f32).to_le_bytes()),
                "F64LE" => into.extend_from_slice(&value.to_le_bytes()),
                "U8" => into.push((128.0 + value * 127.0) as u8),
                "S24LE" => into.extend_from_slice(&((value * 8388607.0) as i32).to_le_bytes()[..3]),
                other => unreachable!("format {other}"),
            }
        }
    }
}

/// One random case.
#[derive(Debug, Clone)]
pub struct Case {
    pub seed: u64,
    pub live: bool,
    pub faults: String,
    /// Burst lengths in ms, each followed by [`PAUSE_S`] of silence.
    bursts: Vec<u64>,
    /// The first format, and a caps change at this burst to a second, if any.
    pieces: (Piece, Option<(usize, Piece)>),
    /// Timestamp jumps (seconds) before these bursts.
    jumps: Vec<(usize, f64)>,
    /// Largest buffer in frames (each buffer is 1..=this).
    max_buffer: usize,
}

impl Case {
    pub fn random(seed: u64, live: bool) -> Case {
        let mut rng = StdRng::seed_from_u64(seed);
        let count = rng.random_range(3..=6);
        // Lengths 100 ms apart, so that an answer ("de N ms", ±20 ms) names one burst only.
        let mut lengths: Vec<u64> = (3..=12).map(|tenths| tenths * 100).collect();
        let bursts = (0..count)
            .map(|_| lengths.swap_remove(rng.random_range(0..lengths.len())))
            .collect();
        let first = Piece::random(&mut rng);
        let change = rng
            .random_bool(0.4)
            .then(|| (rng.random_range(1..count), Piece::random(&mut rng)));
        let mut jumps = Vec::new();
        for burst in 1..count {
            if rng.random_bool(0.2) {
                let seconds = if rng.random_bool(0.3) {
                    rng.random_range(60.0..4_000.0)
                } else {
                    rng.random_range(0.05..8.0)
                };
                jumps.push((burst, seconds));
            }
        }
        let max_buffer = [1, 7, 64, 480, 4_096][rng.random_range(0..5)];
        Case {
            seed,
            live,
            faults: random_faults(&mut rng),
            bursts,
            pieces: (first, change),
            jumps,
            max_buffer,
        }
    }
}

/// What a case gave, for the caller's report.
#[derive(Debug)]
pub struct Outcome {
    pub answered: usize,
    pub bursts: usize,
    pub untranslated_s: f64,
    pub dropped_text: u64,
    pub wall: Duration,
    pub rss_kb: u64,
}

/// The utterance server, keeping few records of what clients sent (each case sends thousands
/// of events; memory must measure the element).
pub fn server() -> BackgroundServer {
    let mut config = realtimetranslate_server::ServerConfig::new(std::sync::Arc::new(
        realtimetranslate_server::engine::utterance::UtteranceEngineFactory::new(),
    ));
    config.required_api_key = Some(KEY.into());
    config.event_record_limit = 16;
    BackgroundServer::start(config).unwrap()
}

pub fn rss_kb() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4
}

/// Pushes the case's input into `appsrc`; returns the input's end (running time).
fn feed(case: &Case, appsrc: &gst_app::AppSrc) -> gst::ClockTime {
    let mut rng = StdRng::seed_from_u64(case.seed ^ 0x5eed);
    let mut piece = case.pieces.0.clone();
    appsrc.set_caps(Some(&piece.caps()));
    let mut pts_ns: u64 = 0;
    let mut discont = false;
    let started = Instant::now();
    for (index, &burst_ms) in case.bursts.iter().enumerate() {
        if let Some((at, next)) = &case.pieces.1
            && *at == index
        {
            piece = next.clone();
            appsrc.set_caps(Some(&piece.caps()));
        }
        if let Some((_, seconds)) = case.jumps.iter().find(|(at, _)| *at == index) {
            pts_ns += (seconds * 1e9) as u64;
            discont = true;
        }
        let rate = piece.rate as u64;
        let tone = burst_ms * rate / 1000;
        let total = tone + (PAUSE_S * rate as f64) as u64;
        let mut frame = 0u64;
        while frame < total {
            let frames = rng
                .random_range(1..=case.max_buffer as u64)
                .min(total - frame);
            let mut data = Vec::with_capacity(frames as usize * piece.format.1 * 8);
            for i in frame..frame + frames {
                let value = if i < tone {
                    AMPLITUDE * (2.0 * std::f64::consts::PI * 1000.0 * i as f64 / rate as f64).sin()
                } else {
                    0.0
                };
                piece.encode(value, &mut data);
            }
            let duration_ns = frames * 1_000_000_000 / rate;
            let mut buffer = gst::Buffer::from_mut_slice(data);
            {
                let buffer = buffer.get_mut().unwrap();
                buffer.set_pts(gst::ClockTime::from_nseconds(pts_ns));
                buffer.set_duration(gst::ClockTime::from_nseconds(duration_ns));
                if std::mem::take(&mut discont) {
                    buffer.set_flags(gst::BufferFlags::DISCONT);
                }
            }
            if case.live {
                // In real time, as a capture card would; a jump is a jump of the clock too.
                let due = Duration::from_nanos(pts_ns);
                if let Some(wait) = due.checked_sub(started.elapsed())
                    && wait < Duration::from_secs(10)
                {
                    std::thread::sleep(wait);
                }
            }
            if appsrc.push_buffer(buffer).is_err() {
                return gst::ClockTime::from_nseconds(pts_ns);
            }
            pts_ns += duration_ns;
            frame += frames;
        }
    }
    let _ = appsrc.end_of_stream();
    gst::ClockTime::from_nseconds(pts_ns)
}

/// Runs one case against `server` and checks the invariants; panics with the case on failure.
pub fn run_case(server: &BackgroundServer, case: &Case) -> Outcome {
    init();
    let started = Instant::now();
    let url = if case.faults.is_empty() {
        server.url()
    } else {
        format!("{}?{}", server.url(), case.faults)
    };
    let pipeline = launch(&format!(
        "appsrc name=input format=time is-live={live} ! realtimetranslate name=t url={url} \
         api-key={KEY} pacing=none keepalive-timeout=1000 connect-timeout=3000 \
         drain-timeout=3000 reconnect-backoff-max=1000 \
         t.src ! appsink name=audio sync=false \
         t.subtitle_src ! queue ! appsink name=text sync=false \
         t.source_subtitle_src ! fakesink sync=false async=false",
        live = case.live,
    ));
    let appsrc = pipeline
        .by_name("input")
        .unwrap()
        .downcast::<gst_app::AppSrc>()
        .unwrap();
    appsrc.set_max_bytes(1 << 20);
    // `src` may cover a long stretch with nothing to play by a GAP event instead of silence.
    let gaps = Arc::new(Mutex::new(Vec::new()));
    {
        let gaps = gaps.clone();
        let sink = pipeline.by_name("audio").unwrap();
        sink.static_pad("sink").unwrap().add_probe(
            gst::PadProbeType::EVENT_DOWNSTREAM,
            move |_, info| {
                if let Some(gst::PadProbeData::Event(event)) = &info.data
                    && let gst::EventView::Gap(gap) = event.view()
                {
                    let (pts, duration) = gap.get();
                    gaps.lock()
                        .unwrap()
                        .push((pts, duration.unwrap_or(gst::ClockTime::ZERO)));
                }
                gst::PadProbeReturn::Ok
            },
        );
    }
    let case_copy = case.clone();
    let feeder = std::thread::spawn(move || feed(&case_copy, &appsrc));
    let captured = run_pipeline(&pipeline, Duration::from_secs(90), |_, _| {});
    let mut query = gst::query::Latency::new();
    let element = pipeline.by_name("t").unwrap();
    let latency = if element.static_pad("src").unwrap().query(&mut query) {
        query.result().1
    } else {
        gst::ClockTime::ZERO
    };
    pipeline.set_state(gst::State::Null).unwrap();
    let input_end = feeder.join().unwrap();
    let context = format!("case {case:?}");
    assert!(
        captured.errors.is_empty(),
        "{context}: {:?}",
        captured.errors
    );
    assert!(
        captured.eos,
        "{context}: no end of stream within 90 s; warnings {:?}; messages {:?}",
        captured.warnings,
        captured
            .messages
            .iter()
            .filter(|(_, m)| m.name() != "realtimetranslate/utterance")
            .map(|(at, m)| format!("{:.1} s {m}", at.as_secs_f64()))
            .collect::<Vec<_>>()
    );
    // src: buffers and GAPs in order, never overlapping, from the start to the input's end.
    let mut covered: Vec<(gst::ClockTime, gst::ClockTime)> = captured
        .audio
        .iter()
        .map(|(pts, samples)| {
            let duration = samples.len() as u64 * 1_000_000_000 / 24_000;
            (*pts, gst::ClockTime::from_nseconds(duration))
        })
        .chain(gaps.lock().unwrap().iter().copied())
        .collect();
    covered.sort();
    let mut end = gst::ClockTime::ZERO;
    for (pts, duration) in covered {
        assert!(
            pts + gst::ClockTime::from_useconds(50) >= end,
            "{context}: src item at {pts} overlaps the one ending at {end}"
        );
        end = pts + duration;
    }
    assert!(
        end + gst::ClockTime::from_mseconds(250) >= input_end,
        "{context}: src ends at {end}, the input at {input_end}"
    );
    let limit = input_end + latency + gst::ClockTime::from_seconds(5);
    for cue in &captured.cues {
        assert!(
            cue.pts <= limit,
            "{context}: subtitle {:?} at {} past the input's end {input_end} + latency {latency}",
            cue.text.chars().take(40).collect::<String>(),
            cue.pts
        );
    }
    let stats = captured
        .messages
        .iter()
        .rev()
        .find(|(_, m)| m.name() == "realtimetranslate/stats")
        .map(|(_, m)| m.clone())
        .expect("final stats");
    let untranslated_s = stats.get::<f64>("untranslated-seconds").unwrap_or(0.0);
    let dropped_text = stats.get::<u64>("subtitle-dropped-characters").unwrap_or(0);
    let answers = answered(&captured);
    let missing: Vec<u64> = case
        .bursts
        .iter()
        .copied()
        .filter(|want| !answers.iter().any(|got| got.abs_diff(*want) <= 45))
        .collect();
    // Every burst not answered is in the count of what went untranslated (unless subtitle text
    // was dropped by the text budget: then its answer may be what was dropped).
    let missing_s = missing.iter().sum::<u64>() as f64 / 1000.0;
    if dropped_text == 0 {
        assert!(
            missing_s <= untranslated_s + 0.3,
            "{context}: bursts {missing:?} never answered and only {untranslated_s:.1} s counted as lost (answers {answers:?}); subtitles {:?}; stats {stats}",
            captured
                .cues
                .iter()
                .map(|c| format!("{:.2} {}", c.pts.seconds_f64(), c.text))
                .collect::<Vec<_>>()
        );
    }
    Outcome {
        answered: case.bursts.len() - missing.len(),
        bursts: case.bursts.len(),
        untranslated_s,
        dropped_text,
        wall: started.elapsed(),
        rss_kb: rss_kb(),
    }
}
