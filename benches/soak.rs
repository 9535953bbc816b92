//! Soak benchmark: hours of audio through the element against the local echo server, with
//! sessions that expire every 60 s of session time and connections dropped at random.
//!
//! `cargo bench --bench soak` pushes 6 hours of audio (`SOAK_HOURS` changes it; `BENCH_QUICK=1`
//! runs 15 minutes). Input goes as fast as the element takes it (`pacing=none`), in 200 ms frames
//! that each carry their number in their first samples. The echo engine sends every frame back
//! unchanged, so the output shows which frames were translated once, twice or never.
//!
//! Faults: the server expires each session after 60 s of session time (audio time, as input is
//! faster than real time); a TCP proxy between element and server cuts the connection (no close
//! frame) after random intervals. Reported, each with a baseline from the same run:
//! - output samples against input samples, and timestamp continuity (must be exact);
//! - rotations, reconnects, sessions;
//! - frames lost or duplicated, split into frames in flight at a dropped connection (lost with
//!   the socket: nothing can tell which the service translated) and all others (must be 0);
//! - resident memory after the first 5 % and at the end (flat over time).

use gst::prelude::*;
use rand::Rng;
use realtimetranslate_server::engine::echo::EchoEngineFactory;
use realtimetranslate_server::{BackgroundServer, Faults, ServerConfig};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const RATE: u64 = 24_000;
const FRAME: usize = 4_800;
const MARKER: [i16; 4] = [i16::MIN, i16::MAX, i16::MIN, i16::MAX];
/// Server-side session lifetime (session time).
const SESSION_MS: u64 = 60_000;
/// Mean audio between forced drops: 3 minutes of base64 PCM in JSON (≈ 64 kB per second).
const MEAN_DROP_BYTES: u64 = 180 * 64_000;
/// A frame lost within this much input before a reconnection (or before the end of a replaced
/// session that lost its connection while finishing) was in flight on the dropped connection.
const IN_FLIGHT_WINDOW_SAMPLES: u64 = 30 * RATE;

fn frame(number: u32) -> Vec<i16> {
    let mut samples = Vec::with_capacity(FRAME);
    samples.extend_from_slice(&MARKER);
    samples.push((number >> 16) as i16);
    samples.push((number & 0xffff) as u16 as i16);
    // Never silent (the timeline skips silence when behind) and never a marker value.
    samples.extend((6..FRAME).map(|i| 1000 + ((number as usize + i) % 97) as i16));
    samples
}

/// Finds frame numbers in the output stream, across buffer boundaries.
#[derive(Default)]
struct FrameScanner {
    matched: usize,
    id_hi: Option<i16>,
    counts: Vec<u8>,
    out_of_order: u64,
    last: Option<u32>,
}

impl FrameScanner {
    fn feed(&mut self, samples: &[i16]) {
        for &s in samples {
            if self.matched < MARKER.len() {
                if s == MARKER[self.matched] {
                    self.matched += 1;
                } else {
                    self.matched = usize::from(s == MARKER[0]);
                }
                continue;
            }
            match self.id_hi.take() {
                None => self.id_hi = Some(s),
                Some(hi) => {
                    let number = ((hi as u16 as u32) << 16) | s as u16 as u32;
                    let index = number as usize;
                    if self.counts.len() <= index {
                        self.counts.resize(index + 1, 0);
                    }
                    self.counts[index] = self.counts[index].saturating_add(1);
                    if let Some(last) = self.last
                        && number <= last
                    {
                        self.out_of_order += 1;
                        if std::env::var("SOAK_VERBOSE").is_ok() {
                            println!("    frame {number} after frame {last}");
                        }
                    }
                    self.last = Some(number);
                    self.matched = 0;
                }
            }
        }
    }
}

/// Loopback TCP proxy that cuts the connection (no close frame) after random amounts of audio:
/// intervals measured in bytes sent to the server, so that they are audio time, however fast
/// the input runs.
struct DroppingProxy {
    port: u16,
    drops: Arc<AtomicU64>,
    runtime: tokio::runtime::Runtime,
}

/// Exponentially distributed, mean `mean`.
fn random_interval(mean: u64) -> u64 {
    (-(mean as f64) * (1.0 - rand::rng().random::<f64>()).ln()) as u64 + 1
}

impl DroppingProxy {
    fn start(target: std::net::SocketAddr, mean_bytes: u64) -> DroppingProxy {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        let drops = Arc::new(AtomicU64::new(0));
        // Bytes left before the next cut, shared by all connections.
        let budget = Arc::new(AtomicU64::new(random_interval(mean_bytes)));
        let counter = drops.clone();
        runtime.spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = tokio::net::TcpStream::connect(target).await else {
                    continue;
                };
                let budget = budget.clone();
                let counter = counter.clone();
                tokio::spawn(async move {
                    let (mut client_read, mut client_write) = client.into_split();
                    let (mut server_read, mut server_write) = server.into_split();
                    let upstream = async {
                        let mut buffer = vec![0u8; 64 * 1024];
                        loop {
                            let n = client_read.read(&mut buffer).await.unwrap_or(0);
                            if n == 0 {
                                return;
                            }
                            if server_write.write_all(&buffer[..n]).await.is_err() {
                                return;
                            }
                            let left = budget.load(Ordering::Relaxed);
                            if n as u64 >= left {
                                budget.store(random_interval(mean_bytes), Ordering::Relaxed);
                                counter.fetch_add(1, Ordering::Relaxed);
                                return;
                            }
                            budget.store(left - n as u64, Ordering::Relaxed);
                        }
                    };
                    let downstream = tokio::io::copy(&mut server_read, &mut client_write);
                    tokio::select! {
                        _ = upstream => {}
                        _ = downstream => {}
                    }
                    // Both sockets close here: the client sees the connection end mid-session.
                });
            }
        });
        DroppingProxy {
            port,
            drops,
            runtime,
        }
    }
}

fn rss_kb(key: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

struct Outcome {
    input_samples: u64,
    output_samples: u64,
    discontinuities: u64,
    counts: Vec<u8>,
    out_of_order: u64,
    reconnect_positions: Vec<u64>,
    stats: gst::Structure,
    rss_early_kb: u64,
    rss_end_kb: u64,
    peak_rss_kb: u64,
    elapsed: Duration,
}

/// Pushes `frames` numbered frames through `source ! realtimetranslate ! sink`.
fn run(frames: u32, element: &str) -> Outcome {
    let pipeline = gst::parse::launch(&format!(
        "appsrc name=in format=time is-live=false block=true max-bytes=96000 \
         caps=audio/x-raw,format=S16LE,rate=24000,channels=1,layout=interleaved ! {element} \
         t.src ! appsink name=out sync=false \
         t.subtitle_src ! fakesink sync=false async=false \
         t.source_subtitle_src ! fakesink sync=false async=false"
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let scanner = Arc::new(Mutex::new(FrameScanner::default()));
    let output = Arc::new(Mutex::new((0u64, 0u64, None::<gst::ClockTime>)));
    {
        let scanner = scanner.clone();
        let output = output.clone();
        let sink = pipeline.by_name("out").unwrap();
        sink.downcast::<gst_app::AppSink>().unwrap().set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |sink| {
                    let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                    let buffer = sample.buffer().unwrap();
                    let map = buffer.map_readable().unwrap();
                    let samples: Vec<i16> = map
                        .chunks_exact(2)
                        .map(|b| i16::from_le_bytes([b[0], b[1]]))
                        .collect();
                    let mut output = output.lock().unwrap();
                    let pts = buffer.pts().unwrap();
                    if let Some(expected) = output.2
                        && pts.nseconds().abs_diff(expected.nseconds()) > 50_000
                    {
                        output.1 += 1;
                    }
                    output.0 += samples.len() as u64;
                    output.2 = Some(
                        pts + gst::ClockTime::from_nseconds(
                            samples.len() as u64 * 1_000_000_000 / RATE,
                        ),
                    );
                    scanner.lock().unwrap().feed(&samples);
                    Ok(gst::FlowSuccess::Ok)
                })
                .build(),
        );
    }
    let reconnects = Arc::new(Mutex::new(Vec::new()));
    let bus = pipeline.bus().unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let source = pipeline
        .by_name("in")
        .unwrap()
        .downcast::<gst_app::AppSrc>()
        .unwrap();
    let started = Instant::now();
    let mut rss_early_kb = 0;
    let frame_duration = gst::ClockTime::from_mseconds(200);
    for number in 0..frames {
        let bytes: Vec<u8> = frame(number).iter().flat_map(|s| s.to_le_bytes()).collect();
        let mut buffer = gst::Buffer::from_mut_slice(bytes);
        {
            let buffer = buffer.get_mut().unwrap();
            buffer.set_pts(frame_duration * number as u64);
            buffer.set_duration(frame_duration);
        }
        if source.push_buffer(buffer).is_err() {
            break;
        }
        if number == frames / 20 {
            rss_early_kb = rss_kb("VmRSS:");
        }
        while let Some(message) = bus.pop() {
            watch(&message, &reconnects);
        }
        if number % 18_000 == 0 && number > 0 {
            eprintln!(
                "  {:.1} h of audio in {:.0} s",
                number as f64 / 18_000.0,
                started.elapsed().as_secs_f64()
            );
        }
    }
    let _ = source.end_of_stream();
    loop {
        let Some(message) = bus.timed_pop(gst::ClockTime::from_seconds(120)) else {
            panic!("no EOS within 120 s of the input's end");
        };
        watch(&message, &reconnects);
        match message.view() {
            gst::MessageView::Eos(_) => break,
            gst::MessageView::Error(err) => panic!("{} ({:?})", err.error(), err.debug()),
            _ => {}
        }
    }
    let elapsed = started.elapsed();
    let stats = pipeline
        .by_name("t")
        .map(|t| t.property::<gst::Structure>("stats"))
        .unwrap_or_else(|| gst::Structure::new_empty("none"));
    pipeline.set_state(gst::State::Null).unwrap();
    let rss_end_kb = rss_kb("VmRSS:");
    let peak_rss_kb = rss_kb("VmHWM:");
    let scanner = std::mem::take(&mut *scanner.lock().unwrap());
    let (output_samples, discontinuities, _) = *output.lock().unwrap();
    let reconnect_positions = std::mem::take(&mut *reconnects.lock().unwrap());
    Outcome {
        input_samples: frames as u64 * FRAME as u64,
        output_samples,
        discontinuities,
        counts: scanner.counts,
        out_of_order: scanner.out_of_order,
        reconnect_positions,
        stats,
        rss_early_kb,
        rss_end_kb,
        peak_rss_kb,
        elapsed,
    }
}

fn watch(message: &gst::Message, reconnects: &Mutex<Vec<u64>>) {
    if std::env::var("SOAK_VERBOSE").is_ok()
        && let gst::MessageView::Element(element) = message.view()
        && let Some(s) = element.structure()
        && s.name() == "realtimetranslate/connection"
    {
        eprintln!("    {s}");
    }
    if std::env::var("SOAK_VERBOSE").is_ok()
        && let gst::MessageView::Warning(w) = message.view()
    {
        eprintln!("    warning: {}", w.error());
    }
    if let gst::MessageView::Element(element) = message.view()
        && let Some(s) = element.structure()
        && s.name() == "realtimetranslate/connection"
        && s.get::<&str>("status")
            .is_ok_and(|status| status == "reconnecting" || status == "lost")
        && let Ok(position) = s.get::<gst::ClockTime>("input-position")
    {
        reconnects
            .lock()
            .unwrap()
            .push(position.nseconds() * RATE / 1_000_000_000);
    }
}

fn report(name: &str, frames: u32, outcome: &Outcome) -> bool {
    let mut lost_in_flight = 0;
    let mut lost_elsewhere = Vec::new();
    let mut duplicated = 0;
    // Frames lost or repeated, per cut (the nearest reconnection): what one cut costs.
    let cuts = &outcome.reconnect_positions;
    let mut lost_per_cut = vec![0u64; cuts.len()];
    let mut duplicated_per_cut = vec![0u64; cuts.len()];
    let nearest_cut = |number: u32| {
        let at = number as u64 * FRAME as u64;
        (0..cuts.len()).min_by_key(|&i| cuts[i].abs_diff(at))
    };
    for number in 0..frames {
        let count = outcome.counts.get(number as usize).copied().unwrap_or(0);
        if count > 1 {
            duplicated += 1;
            if let Some(cut) = nearest_cut(number) {
                duplicated_per_cut[cut] += u64::from(count - 1);
            }
            if std::env::var("SOAK_VERBOSE").is_ok() && duplicated < 20 {
                println!("    duplicated frame {number} ({count}×)");
            }
        }
        if count == 0 {
            let end = (number as u64 + 1) * FRAME as u64;
            let in_flight = outcome
                .reconnect_positions
                .iter()
                .any(|&at| end <= at + FRAME as u64 && at < end + IN_FLIGHT_WINDOW_SAMPLES);
            if in_flight {
                lost_in_flight += 1;
                if let Some(cut) = nearest_cut(number) {
                    lost_per_cut[cut] += 1;
                }
            } else {
                lost_elsewhere.push(number);
            }
        }
    }
    let s = &outcome.stats;
    let field = |key: &str| s.get::<u64>(key).unwrap_or(0);
    let audio_hours = outcome.input_samples as f64 / RATE as f64 / 3600.0;
    println!(
        "\n{name}: {audio_hours:.2} h of audio in {:.0} s",
        outcome.elapsed.as_secs_f64()
    );
    println!(
        "  output samples {} for input samples {} (tail after the input's end: {}); timestamp discontinuities: {}",
        outcome.output_samples,
        outcome.input_samples,
        outcome.output_samples as i64 - outcome.input_samples as i64,
        outcome.discontinuities
    );
    println!(
        "  sessions {}, rotations {}, reconnects {}",
        field("sessions"),
        field("rotations"),
        field("reconnects")
    );
    println!(
        "  frames: {frames} sent; lost in flight at a dropped connection {lost_in_flight}; lost elsewhere {}; duplicated {duplicated}; out of order {}",
        lost_elsewhere.len(),
        outcome.out_of_order
    );
    let frame_s = FRAME as f64 / RATE as f64;
    let per_cut = |counts: &[u64]| {
        let total: u64 = counts.iter().sum();
        (
            total as f64 * frame_s / counts.len().max(1) as f64,
            counts.iter().max().copied().unwrap_or(0) as f64 * frame_s,
        )
    };
    let (lost_mean, lost_max) = per_cut(&lost_per_cut);
    let (duplicated_mean, duplicated_max) = per_cut(&duplicated_per_cut);
    if std::env::var("SOAK_VERBOSE").is_ok() {
        for (i, at) in cuts.iter().enumerate() {
            if lost_per_cut[i] + duplicated_per_cut[i] > 2 {
                println!(
                    "    cut at {:.1} s: {} frames lost, {} repeated",
                    *at as f64 / RATE as f64,
                    lost_per_cut[i],
                    duplicated_per_cut[i]
                );
            }
        }
    }
    println!(
        "  per cut ({} reconnections): lost {lost_mean:.2} s mean, {lost_max:.2} s max; translated twice {duplicated_mean:.2} s mean, {duplicated_max:.2} s max",
        cuts.len()
    );
    if !lost_elsewhere.is_empty() {
        println!(
            "    first lost elsewhere: {:?}",
            &lost_elsewhere[..lost_elsewhere.len().min(10)]
        );
    }
    println!(
        "  RSS after 5 %: {} MB, at the end: {} MB; peak RSS of the process so far: {} MB",
        outcome.rss_early_kb / 1024,
        outcome.rss_end_kb / 1024,
        outcome.peak_rss_kb / 1024
    );
    // The output covers the input exactly; only translation still queued at the end runs past it.
    let covers = outcome.output_samples >= outcome.input_samples && outcome.discontinuities == 0;
    // A cut loses at most 0.5 s and repeats at most 0.5 s (the replay starts 300 ms before the
    // last answer); only repeated frames come out of order.
    covers
        && lost_elsewhere.is_empty()
        && lost_max <= 0.5
        && duplicated_max <= 0.5 + 1e-9
        && outcome.out_of_order <= duplicated
}

fn main() {
    gst::init().unwrap();
    gstrealtimetranslate::plugin_register_static().unwrap();
    let quick = std::env::var("BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0")
        || std::env::args().any(|a| a == "--quick");
    let hours: f64 = std::env::var("SOAK_HOURS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if quick { 0.25 } else { 6.0 });
    let frames = (hours * 3600.0 * 5.0) as u32;

    // Baseline: same input, no faults.
    let plain =
        BackgroundServer::start(ServerConfig::new(Arc::new(EchoEngineFactory::new()))).unwrap();
    let baseline_frames = frames.min(5 * 60 * 5 * 6);
    let baseline = run(
        baseline_frames,
        &format!(
            "realtimetranslate name=t pacing=none api-key=k url={}",
            plain.url()
        ),
    );
    let baseline_ok = report(
        "baseline (no faults, 30 min at most)",
        baseline_frames,
        &baseline,
    );

    let mut config = ServerConfig::new(Arc::new(EchoEngineFactory::new()));
    // The server keeps a record of every event it received: bounded, so RSS measures the element.
    config.event_record_limit = 16;
    config.faults = Faults {
        expire_after_ms: Some(SESSION_MS),
        ..Faults::default()
    };
    let server = BackgroundServer::start(config).unwrap();
    let mean_drop_bytes = if std::env::var("SOAK_NO_DROPS").is_ok() {
        u64::MAX / 4
    } else {
        MEAN_DROP_BYTES
    };
    let proxy = DroppingProxy::start(server.local_addr(), mean_drop_bytes);
    let outcome = run(
        frames,
        &format!(
            "realtimetranslate name=t pacing=none api-key=k rotation-margin=10000 fallback=silence \
             url=ws://127.0.0.1:{}/v1/realtime/translations",
            proxy.port
        ),
    );
    let ok = report(
        "soak (sessions expire every 60 s of session time, random drops)",
        frames,
        &outcome,
    );
    println!(
        "  connections cut by the proxy: {}",
        proxy.drops.load(Ordering::Relaxed)
    );
    if std::env::var("SOAK_VERBOSE").is_ok() {
        for (i, session) in server.records().sessions().iter().enumerate() {
            let audio: usize = session.events.iter().filter_map(|e| e.audio_samples).sum();
            let kinds: Vec<&str> = session
                .events
                .iter()
                .map(|e| e.kind.as_str())
                .filter(|k| *k != "session.input_audio_buffer.append")
                .collect();
            println!(
                "    session {i}: {:.1} s audio, fired {:?}, closed_with {:?}, sent closed {}, events {kinds:?}",
                audio as f64 / 24_000.0,
                session.fault_fired(),
                session.closed_with,
                session.sent_session_closed
            );
        }
        println!("    element stats: {}", outcome.stats);
    }
    drop(proxy.runtime);
    println!(
        "\nverdict: {}",
        if ok && baseline_ok { "PASS" } else { "FAIL" }
    );
    if !(ok && baseline_ok) {
        std::process::exit(1);
    }
}
