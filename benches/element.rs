//! Benchmark of the `realtimetranslate` element against the local echo server.
//!
//! `cargo bench --bench element` runs the full benchmark (about 2–3 minutes);
//! `BENCH_QUICK=1 cargo bench --bench element` (or `-- --quick`) a short smoke run.
//! `BENCH_SECTIONS=3` runs only the listed sections (comma separated; default all).
//!
//! Section 3's settings: `BENCH_SESSIONS=N` the first N probed (default 100: its run is reported
//! in detail), `BENCH_MAX_SESSIONS=N` the largest (default 800), `BENCH_REPEATS=K` how many times
//! the whole search is repeated (default 3, quick 1), `BENCH_LANGUAGES=L` target languages per
//! stream (default 1; more requires the element's per-language request pads `src_%s`, else the
//! bench says so and uses 1).
//!
//! Sections, each with a baseline measured in the same run:
//! 1. CPU time per second of audio (`pacing=none`, non-live input, as fast as possible), as
//!    process CPU time (getrusage) / audio seconds = "% of one core per real-time stream".
//!    Measured with the echo server in this process (its CPU counted) and in a child process
//!    (its CPU reported apart). Baselines: the source alone, and
//!    `audioconvert ! audioresample ! 24 kHz mono S16LE`.
//! 2. Delay from a server frame arriving to its buffer leaving `src`, from the element's `stats`
//!    (p50/p99), for the `pacing=none` run and for live input; baseline: the time a plain
//!    `queue` holds a buffer (between its sink and src pad probes) on the same live input.
//! 3. Capacity: the largest N of concurrent live streams without underrun (every buffer ready
//!    for `queue ! fakesink sync=true` on time, no gap, no error; for the element also its
//!    translation keeping up), with the element against one echo server
//!    (child process) and for the baseline, N pipelines with `audioconvert ! audioresample`
//!    instead of the element: the same search and criterion for both, interleaved, repeated
//!    (see `element/capacity.rs`); their ratio, CPU and RSS per stream at capacity, the load
//!    average. The N=`BENCH_SESSIONS` runs are printed in detail.
//!
//! The child echo server is this benchmark binary re-executed with `BENCH_ROLE=echo-server`: the
//! same `BackgroundServer` + `EchoEngineFactory` as `realtimetranslate-server --engine echo`.

#[path = "element/capacity.rs"]
mod capacity;

use capacity::{CapacitySearch, Probe, Repetition};
use gst::prelude::*;
use realtimetranslate_server::engine::echo::EchoEngineFactory;
use realtimetranslate_server::{BackgroundServer, ServerConfig};
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Input format of every pipeline: 48 kHz stereo F32, 20 ms buffers.
const INPUT_RATE: u64 = 48_000;
const SAMPLES_PER_BUFFER: u64 = 960;
const INPUT_CAPS: &str = "audio/x-raw,format=F32LE,rate=48000,channels=2,layout=interleaved";
const ENGINE_CAPS: &str = "audio/x-raw,format=S16LE,rate=24000,channels=1";

const TARGET_CPU_PERCENT: f64 = 1.0;
const TARGET_DELAY_P99_MS: f64 = 5.0;

// ---------------------------------------------------------------------------------------------
// Configuration

#[derive(Debug, Clone)]
struct Config {
    quick: bool,
    /// Audio pushed through the element in section 1.
    cpu_audio_secs: u64,
    /// Repetitions of each section 1 run (the minimum CPU time is kept: the machine is noisy).
    cpu_reps: usize,
    /// Length of the live delay runs.
    live_secs: u64,
    /// Sections to run (1, 2, 3).
    sections: Vec<u32>,
    /// First N of the capacity search.
    sessions: usize,
    max_sessions: usize,
    /// The capacity search stops once it knows the capacity to this many streams.
    resolution: usize,
    repeats: usize,
    languages: usize,
    /// Length of each capacity probe.
    sessions_secs: u64,
}

fn env_number<T: std::str::FromStr>(name: &str) -> Option<T> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

impl Config {
    fn from_env() -> Self {
        let quick = std::env::var("BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0")
            || std::env::args().any(|a| a == "--quick");
        let sections = std::env::var("BENCH_SECTIONS")
            .ok()
            .map(|v| v.split(',').filter_map(|s| s.trim().parse().ok()).collect())
            .unwrap_or_else(|| vec![1, 2, 3]);
        let sessions = env_number("BENCH_SESSIONS").unwrap_or(100);
        let max_sessions = env_number("BENCH_MAX_SESSIONS").unwrap_or(800);
        let languages = env_number("BENCH_LANGUAGES").unwrap_or(1usize).max(1);
        let repeats = env_number("BENCH_REPEATS").unwrap_or(if quick { 1 } else { 3 });
        if quick {
            Config {
                quick,
                cpu_audio_secs: 60,
                cpu_reps: 1,
                live_secs: 5,
                sections,
                sessions,
                max_sessions,
                resolution: 25,
                repeats,
                languages,
                sessions_secs: 4,
            }
        } else {
            Config {
                quick,
                cpu_audio_secs: 600,
                cpu_reps: 3,
                live_secs: 20,
                sections,
                sessions,
                max_sessions,
                resolution: 10,
                repeats,
                languages,
                sessions_secs: 10,
            }
        }
    }

    fn runs(&self, section: u32) -> bool {
        self.sections.contains(&section)
    }
}

fn buffers_for(secs: u64) -> u64 {
    secs * INPUT_RATE / SAMPLES_PER_BUFFER
}

// ---------------------------------------------------------------------------------------------
// Process measurements

#[repr(C)]
struct Timeval {
    tv_sec: i64,
    tv_usec: i64,
}

#[repr(C)]
struct Rusage {
    ru_utime: Timeval,
    ru_stime: Timeval,
    _rest: [i64; 14],
}

unsafe extern "C" {
    fn getrusage(who: i32, usage: *mut Rusage) -> i32;
    fn sysconf(name: i32) -> i64;
}

const RUSAGE_SELF: i32 = 0;
const SC_CLK_TCK: i32 = 2;

/// User + system CPU time of this process (all threads).
fn cpu_time() -> Duration {
    let mut usage = Rusage {
        ru_utime: Timeval {
            tv_sec: 0,
            tv_usec: 0,
        },
        ru_stime: Timeval {
            tv_sec: 0,
            tv_usec: 0,
        },
        _rest: [0; 14],
    };
    // SAFETY: `usage` is a valid, writable `struct rusage` for x86_64/aarch64 Linux.
    let rc = unsafe { getrusage(RUSAGE_SELF, &mut usage) };
    assert_eq!(rc, 0, "getrusage failed");
    let tv = |t: &Timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(&usage.ru_utime) + tv(&usage.ru_stime)
}

/// User + system CPU time of another process, from /proc (clock-tick resolution).
fn cpu_time_of(pid: u32) -> Duration {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return Duration::ZERO;
    };
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return Duration::ZERO;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0)
        + fields.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { sysconf(SC_CLK_TCK) }.max(1) as u64;
    Duration::from_nanos(ticks * 1_000_000_000 / hz)
}

/// CPU time all processes of the machine used so far (busy: neither idle nor waiting for I/O).
fn machine_busy() -> Duration {
    let Ok(stat) = std::fs::read_to_string("/proc/stat") else {
        return Duration::ZERO;
    };
    let Some(line) = stat.lines().find(|l| l.starts_with("cpu ")) else {
        return Duration::ZERO;
    };
    // user nice system idle iowait irq softirq steal …
    let ticks: u64 = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4)
        .filter_map(|(_, v)| v.parse::<u64>().ok())
        .sum();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { sysconf(SC_CLK_TCK) }.max(1) as u64;
    Duration::from_nanos(ticks * 1_000_000_000 / hz)
}

/// A `Vm*` line of /proc/<pid>/status, in kB.
fn vm_kb(pid: &str, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// Resets VmHWM (peak RSS) of a process to its current RSS (Linux ≥ 4.0).
fn reset_peak_rss(pid: &str) -> bool {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

// ---------------------------------------------------------------------------------------------
// Echo servers

/// Serves the echo engine until stdin closes (the child side of [`ChildServer`]).
fn run_echo_server_role() {
    let server = BackgroundServer::start(ServerConfig::new(Arc::new(EchoEngineFactory::new())))
        .expect("start echo server");
    println!("{}", server.url());
    std::io::stdout().flush().ok();
    let mut line = String::new();
    while std::io::stdin().read_line(&mut line).is_ok_and(|n| n > 0) {
        line.clear();
    }
    drop(server);
}

/// The echo server in a child process, so its CPU is measured apart.
struct ChildServer {
    child: Child,
    stdin: Option<ChildStdin>,
    url: String,
}

impl ChildServer {
    fn start() -> Result<Self, String> {
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let mut child = Command::new(exe)
            .env("BENCH_ROLE", "echo-server")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start the echo server process: {e}"))?;
        let stdin = child.stdin.take();
        let mut url = String::new();
        BufReader::new(child.stdout.take().expect("piped stdout"))
            .read_line(&mut url)
            .map_err(|e| e.to_string())?;
        let url = url.trim().to_owned();
        if !url.starts_with("ws://") {
            return Err(format!("echo server process printed {url:?}"));
        }
        Ok(Self { child, stdin, url })
    }

    fn cpu(&self) -> Duration {
        cpu_time_of(self.child.id())
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        // Closing stdin makes the child stop its server and exit.
        self.stdin.take();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------------
// Pipeline helpers

fn launch(description: &str) -> gst::Pipeline {
    gst::parse::launch(description)
        .unwrap_or_else(|e| panic!("cannot build `{description}`: {e}"))
        .downcast::<gst::Pipeline>()
        .expect("a pipeline")
}

fn element_desc(url: &str, name: &str, extra: &str) -> String {
    format!("realtimetranslate name={name} url={url} api-key=anything {extra}")
}

/// Messages seen while a pipeline ran.
#[derive(Debug, Default)]
struct BusReport {
    eos: bool,
    errors: Vec<String>,
    warnings: Vec<String>,
}

fn collect_message(report: &mut BusReport, msg: &gst::Message) {
    use gst::MessageView;
    match msg.view() {
        MessageView::Eos(_) => report.eos = true,
        MessageView::Error(e) => report.errors.push(format!(
            "{}: {} ({:?})",
            msg.src().map(|s| s.path_string()).unwrap_or_default(),
            e.error(),
            e.debug()
        )),
        MessageView::Warning(w) => report.warnings.push(format!(
            "{}: {}",
            msg.src().map(|s| s.path_string()).unwrap_or_default(),
            w.error()
        )),
        _ => {}
    }
}

/// Waits for EOS or an error (or the timeout).
fn wait_eos(pipeline: &gst::Pipeline, timeout: Duration) -> BusReport {
    let bus = pipeline.bus().expect("pipeline bus");
    let deadline = Instant::now() + timeout;
    let mut report = BusReport::default();
    while !report.eos && report.errors.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            report.errors.push(format!("no EOS within {timeout:?}"));
            break;
        }
        let Some(msg) = bus.timed_pop(gst::ClockTime::from_nseconds(left.as_nanos() as u64)) else {
            continue;
        };
        collect_message(&mut report, &msg);
    }
    report
}

/// Messages queued on the bus so far.
fn drain_bus(pipeline: &gst::Pipeline) -> BusReport {
    let bus = pipeline.bus().expect("pipeline bus");
    let mut report = BusReport::default();
    while let Some(msg) = bus.pop() {
        collect_message(&mut report, &msg);
    }
    report
}

fn stop(pipeline: &gst::Pipeline) {
    let _ = pipeline.set_state(gst::State::Null);
}

/// The element's `stats` property.
#[derive(Debug, Clone, Default)]
struct ElementStats {
    p50_ms: f64,
    p99_ms: f64,
    delay_samples: u64,
    sent_s: f64,
    received_s: f64,
    output_s: f64,
    chunks_dropped: u64,
    translation_dropped_s: f64,
}

fn element_stats(pipeline: &gst::Pipeline, name: &str) -> ElementStats {
    let element = pipeline.by_name(name).expect("element by name");
    let s = element.property::<gst::Structure>("stats");
    let f = |k: &str| s.get::<f64>(k).unwrap_or(f64::NAN);
    let u = |k: &str| s.get::<u64>(k).unwrap_or(0);
    ElementStats {
        p50_ms: f("output-delay-p50-ms"),
        p99_ms: f("output-delay-p99-ms"),
        delay_samples: u("output-delay-samples"),
        sent_s: f("audio-sent-seconds"),
        received_s: f("audio-received-seconds"),
        output_s: f("output-seconds"),
        chunks_dropped: u("input-chunks-dropped"),
        translation_dropped_s: f("translation-dropped-seconds"),
    }
}

// ---------------------------------------------------------------------------------------------
// 1. CPU per second of audio

struct CpuRun {
    cpu: Duration,
    /// CPU of the child server process during the run, when there is one.
    server_cpu: Option<Duration>,
    wall: Duration,
    stats: Option<ElementStats>,
    report: BusReport,
}

impl CpuRun {
    fn percent(&self, audio_secs: f64) -> f64 {
        self.cpu.as_secs_f64() / audio_secs * 100.0
    }
    fn server_percent(&self, audio_secs: f64) -> Option<f64> {
        self.server_cpu
            .map(|cpu| cpu.as_secs_f64() / audio_secs * 100.0)
    }
}

fn run_cpu_pipeline(
    description: &str,
    audio_secs: u64,
    element: Option<&str>,
    child: Option<&ChildServer>,
) -> CpuRun {
    let pipeline = launch(description);
    pipeline.set_state(gst::State::Paused).expect("to PAUSED");
    let _ = pipeline.state(gst::ClockTime::from_seconds(10));
    let server_before = child.map(ChildServer::cpu);
    let before = cpu_time();
    let start = Instant::now();
    pipeline.set_state(gst::State::Playing).expect("to PLAYING");
    let report = wait_eos(&pipeline, Duration::from_secs(60 + audio_secs / 5));
    let wall = start.elapsed();
    let cpu = cpu_time() - before;
    let server_cpu = child
        .map(|c| c.cpu())
        .zip(server_before)
        .map(|(a, b)| a - b);
    let stats = element.map(|name| element_stats(&pipeline, name));
    stop(&pipeline);
    CpuRun {
        cpu,
        server_cpu,
        wall,
        stats,
        report,
    }
}

/// The run with the least CPU time of `reps` (noise only ever adds time).
fn best_of(reps: usize, mut run: impl FnMut() -> CpuRun) -> CpuRun {
    let mut best: Option<CpuRun> = None;
    for _ in 0..reps {
        let r = run();
        if best.as_ref().is_none_or(|b| r.cpu < b.cpu) {
            best = Some(r);
        }
    }
    best.expect("at least one repetition")
}

struct CpuResults {
    audio_secs: f64,
    source: CpuRun,
    baseline: CpuRun,
    inprocess: CpuRun,
    external: CpuRun,
}

fn bench_cpu(cfg: &Config, inprocess_url: &str, child: &ChildServer) -> CpuResults {
    let n = buffers_for(cfg.cpu_audio_secs);
    let audio_secs = (n * SAMPLES_PER_BUFFER) as f64 / INPUT_RATE as f64;
    let src = format!(
        "audiotestsrc wave=sine is-live=false num-buffers={n} samplesperbuffer={SAMPLES_PER_BUFFER} ! {INPUT_CAPS}"
    );
    let source_desc = format!("{src} ! fakesink sync=false");
    let baseline_desc =
        format!("{src} ! audioconvert ! audioresample ! {ENGINE_CAPS} ! fakesink sync=false");
    let element_pipeline = |url: &str| {
        format!(
            "{src} ! {} rt.src ! fakesink sync=false \
             rt.subtitle_src ! queue ! fakesink sync=false \
             rt.source_subtitle_src ! queue ! fakesink sync=false",
            element_desc(url, "rt", "pacing=none")
        )
    };
    let inprocess_desc = element_pipeline(inprocess_url);
    let external_desc = element_pipeline(&child.url);

    // Warm-up: first use of the elements, the tokio runtime, the connections.
    let warm = buffers_for(2);
    let warm_desc = element_pipeline(inprocess_url).replace(
        &format!("num-buffers={n} "),
        &format!("num-buffers={warm} "),
    );
    let _ = run_cpu_pipeline(&warm_desc, 2, None, None);
    let _ = run_cpu_pipeline(
        &baseline_desc.replace(
            &format!("num-buffers={n} "),
            &format!("num-buffers={warm} "),
        ),
        2,
        None,
        None,
    );

    let reps = cfg.cpu_reps;
    let secs = cfg.cpu_audio_secs;
    let source = best_of(reps, || run_cpu_pipeline(&source_desc, secs, None, None));
    let baseline = best_of(reps, || run_cpu_pipeline(&baseline_desc, secs, None, None));
    let inprocess = best_of(reps, || {
        run_cpu_pipeline(&inprocess_desc, secs, Some("rt"), None)
    });
    let external = best_of(reps, || {
        run_cpu_pipeline(&external_desc, secs, Some("rt"), Some(child))
    });
    CpuResults {
        audio_secs,
        source,
        baseline,
        inprocess,
        external,
    }
}

// ---------------------------------------------------------------------------------------------
// 2. Output delay, live input

struct LiveResults {
    /// `src ! fakesink sync=false`.
    unsynced: ElementStats,
    unsynced_report: BusReport,
    /// `src ! fakesink sync=true` (no queue): the stat then includes the sink's clock wait.
    synced: ElementStats,
    synced_report: BusReport,
    /// `src ! fakesink sync=false` with 5 ms input buffers instead of 20 ms.
    small_buffers: ElementStats,
    small_buffers_report: BusReport,
    /// Stats of `unsynced` and `small_buffers` 1.5 s after start (the start-up chunks).
    early: [ElementStats; 2],
    /// Time buffers spend in a plain `queue` (ms, sorted).
    queue_ms: Vec<f64>,
}

/// Adds probes measuring how long each buffer takes from the queue's sink pad to its src pad.
fn probe_queue(queue: &gst::Element) -> Arc<Mutex<Vec<f64>>> {
    let entered: Arc<Mutex<std::collections::VecDeque<(u64, Instant)>>> = Arc::default();
    let delays: Arc<Mutex<Vec<f64>>> = Arc::default();
    let e = entered.clone();
    queue.static_pad("sink").expect("queue sink").add_probe(
        gst::PadProbeType::BUFFER,
        move |_, info| {
            if let Some(pts) = info.buffer().and_then(|b| b.pts()) {
                e.lock()
                    .unwrap()
                    .push_back((pts.nseconds(), Instant::now()));
            }
            gst::PadProbeReturn::Ok
        },
    );
    let d = delays.clone();
    queue.static_pad("src").expect("queue src").add_probe(
        gst::PadProbeType::BUFFER,
        move |_, info| {
            let now = Instant::now();
            if let Some(pts) = info.buffer().and_then(|b| b.pts()) {
                let mut entered = entered.lock().unwrap();
                while let Some((p, at)) = entered.pop_front() {
                    if p == pts.nseconds() {
                        d.lock()
                            .unwrap()
                            .push(now.duration_since(at).as_secs_f64() * 1000.0);
                        break;
                    }
                }
            }
            gst::PadProbeReturn::Ok
        },
    );
    delays
}

fn bench_live_delay(cfg: &Config, url: &str) -> LiveResults {
    let n = buffers_for(cfg.live_secs);
    let src = format!(
        "audiotestsrc wave=sine is-live=true num-buffers={n} samplesperbuffer={SAMPLES_PER_BUFFER} ! {INPUT_CAPS}"
    );
    let with_sink = |src: &str, sync: bool| {
        format!(
            "{src} ! {} rt.src ! fakesink sync={sync} \
             rt.subtitle_src ! queue ! fakesink sync=false \
             rt.source_subtitle_src ! queue ! fakesink sync=false",
            element_desc(url, "rt", "")
        )
    };
    let small = format!(
        "audiotestsrc wave=sine is-live=true num-buffers={} samplesperbuffer={} ! {INPUT_CAPS}",
        n * 4,
        SAMPLES_PER_BUFFER / 4
    );
    let unsynced = launch(&with_sink(&src, false));
    let synced = launch(&with_sink(&src, true));
    let small_buffers = launch(&with_sink(&small, false));
    let baseline = launch(&format!("{src} ! queue name=q ! fakesink sync=false"));
    let queue_delays = probe_queue(&baseline.by_name("q").expect("queue"));
    // The three run side by side: they are light, and share the same conditions.
    for p in [&unsynced, &synced, &small_buffers, &baseline] {
        p.set_state(gst::State::Playing).expect("to PLAYING");
    }
    std::thread::sleep(Duration::from_millis(1500));
    let early = [
        element_stats(&unsynced, "rt"),
        element_stats(&small_buffers, "rt"),
    ];
    let timeout = Duration::from_secs(cfg.live_secs + 30);
    let unsynced_report = wait_eos(&unsynced, timeout);
    let synced_report = wait_eos(&synced, timeout);
    let small_buffers_report = wait_eos(&small_buffers, timeout);
    let _ = wait_eos(&baseline, timeout);
    let results = LiveResults {
        unsynced: element_stats(&unsynced, "rt"),
        unsynced_report,
        synced: element_stats(&synced, "rt"),
        synced_report,
        small_buffers: element_stats(&small_buffers, "rt"),
        small_buffers_report,
        early,
        queue_ms: {
            let mut v = queue_delays.lock().unwrap().clone();
            v.sort_by(f64::total_cmp);
            v
        },
    };
    for p in [&unsynced, &synced, &small_buffers, &baseline] {
        stop(p);
    }
    results
}

// ---------------------------------------------------------------------------------------------
// 3. Concurrent sessions

/// What the probe on one fakesink's sink pad saw.
#[derive(Debug, Default, Clone)]
struct SinkStats {
    buffers: u64,
    /// Sum of buffer durations.
    duration: u64,
    first_pts: Option<u64>,
    /// End (pts + duration) of the latest buffer.
    end: Option<u64>,
    /// A buffer starting more than 1 ms after the previous one ended.
    gaps: u64,
    /// Total time missing in those gaps.
    gap_ns: u64,
    /// A buffer starting more than 1 ms before the previous one ended.
    overlaps: u64,
    /// Buffers reaching the sink after their running time + latency (strictly / by > 5 ms /
    /// by > 20 ms), and the worst lateness.
    late: u64,
    late_5ms: u64,
    late_20ms: u64,
    max_late_ns: u64,
    /// Lateness of every buffer past its first second (ms), for percentiles.
    slack_ms: Vec<f64>,
    latency: u64,
    /// Buffers that reached the sink before it was PLAYING (the preroll buffer of a live
    /// pipeline comes before the latency is configured: not judged for lateness).
    preroll: u64,
}

const GAP_TOLERANCE_NS: u64 = 1_000_000;

/// Records what reaches `queue`, the queue in front of the synchronised `sink`, judged against
/// the sink's clock and latency: when each buffer is ready for the sink, whose own clock waits
/// then neither gate it (a synchronised sink takes a buffer only once it rendered the one
/// before, so at its own pad every buffer would look early by just one buffer's duration, and a
/// pipeline with shorter buffers would count as late on a shorter scheduling delay).
fn probe_sink(queue: &gst::Element, sink: &gst::Element) -> Arc<Mutex<SinkStats>> {
    let stats: Arc<Mutex<SinkStats>> = Arc::default();
    let s = stats.clone();
    let base_sink = sink
        .clone()
        .downcast::<gst_base::BaseSink>()
        .expect("fakesink is a base sink");
    let sinkpad = queue.static_pad("sink").expect("queue sink pad");
    sinkpad.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
        let Some(buffer) = info.buffer() else {
            return gst::PadProbeReturn::Ok;
        };
        let (Some(pts), Some(clock), Some(base_time)) =
            (buffer.pts(), base_sink.clock(), base_sink.base_time())
        else {
            return gst::PadProbeReturn::Ok;
        };
        let now = clock.time().saturating_sub(base_time).nseconds();
        let duration = buffer.duration().map_or(0, |d| d.nseconds());
        let running_time = pad
            .sticky_event::<gst::event::Segment>(0)
            .and_then(|e| {
                e.segment()
                    .downcast_ref::<gst::ClockTime>()
                    .and_then(|seg| seg.to_running_time(pts))
            })
            .map_or(pts.nseconds(), |t| t.nseconds());
        let latency = gst_base::prelude::BaseSinkExt::latency(&base_sink).nseconds();
        let playing = base_sink.current_state() == gst::State::Playing;
        let mut s = s.lock().unwrap();
        s.latency = latency;
        s.buffers += 1;
        s.duration += duration;
        let pts = pts.nseconds();
        if let Some(end) = s.end {
            if pts > end + GAP_TOLERANCE_NS {
                s.gaps += 1;
                s.gap_ns += pts - end;
            } else if pts + GAP_TOLERANCE_NS < end {
                s.overlaps += 1;
            }
        }
        let first = *s.first_pts.get_or_insert(pts);
        s.end = Some(pts + duration);
        if !playing {
            s.preroll += 1;
            return gst::PadProbeReturn::Ok;
        }
        let deadline = running_time + latency;
        let lateness = now as i64 - deadline as i64;
        if lateness > 0 {
            let lateness = lateness as u64;
            s.late += 1;
            s.late_5ms += u64::from(lateness > 5_000_000);
            s.late_20ms += u64::from(lateness > 20_000_000);
            s.max_late_ns = s.max_late_ns.max(lateness);
        }
        if pts >= first + 1_000_000_000 {
            s.slack_ms.push(lateness as f64 / 1e6);
        }
        gst::PadProbeReturn::Ok
    });
    stats
}

#[derive(Debug, Default)]
struct SessionsResult {
    n: usize,
    /// Target languages per stream (src pads judged per pipeline).
    languages: usize,
    secs: f64,
    cpu_percent: f64,
    server_cpu_percent: f64,
    peak_rss_mb: f64,
    /// RSS of this process before the pipelines were made.
    rss_before_mb: f64,
    server_peak_rss_mb: f64,
    /// 1-minute load average at the end of the run (which counts this run's own threads).
    load: f64,
    /// CPU the machine's other processes used meanwhile, % of one core: the noise.
    others_cpu_percent: f64,
    pipelines_with_underrun: usize,
    buffers: u64,
    gaps: u64,
    gap_ms: f64,
    overlaps: u64,
    late: u64,
    late_5ms: u64,
    late_20ms: u64,
    max_late_ms: f64,
    /// Lateness percentiles over all buffers after the first second (negative = early).
    late_p50_ms: f64,
    late_p99_ms: f64,
    /// Worst (expected output up to now) − (output received) at the end of the run.
    max_deficit_ms: f64,
    /// Smallest (sum of buffer durations) / (running time − latency − first pts).
    min_coverage: f64,
    latency_ms: f64,
    preroll: u64,
    chunks_dropped: u64,
    /// Element pipelines whose translation fell behind: the echo's answers ended more than
    /// [`TRANSLATION_LAG_MAX_S`] behind the input heard, or input chunks were dropped. Output on
    /// time that is silence where the translation should be is no stream carried.
    translation_behind: usize,
    /// Worst (input heard) − (translation received) at the end of the run, seconds.
    worst_translation_lag_s: f64,
    delay_p99_max_ms: f64,
    delay_p50_median_ms: f64,
    /// Pipelines that produced nothing at all.
    silent: usize,
    errors: Vec<String>,
    warnings: Vec<String>,
}

impl SessionsResult {
    fn ok(&self) -> bool {
        self.pipelines_with_underrun == 0
            && self.translation_behind == 0
            && self.errors.is_empty()
            && self.silent == 0
    }

    fn probe(&self) -> Probe {
        Probe {
            n: self.n,
            passed: self.ok(),
            cpu_percent: self.cpu_percent,
            server_cpu_percent: self.server_cpu_percent,
            rss_growth_mb: (self.peak_rss_mb - self.rss_before_mb).max(0.0),
            server_rss_mb: self.server_peak_rss_mb,
            load: self.load,
            others_cpu_percent: self.others_cpu_percent,
        }
    }
}

/// Target languages of the extra per-language pads, after the element's own `target-language`
/// (`es`, its default).
const EXTRA_LANGUAGES: [&str; 12] = [
    "fr", "de", "it", "pt", "ja", "ru", "zh", "ko", "hi", "id", "vi", "en",
];

/// Whether the element has per-language request pads (`src_%s`), which `BENCH_LANGUAGES` needs.
fn has_language_pads() -> bool {
    gst::ElementFactory::find("realtimetranslate").is_some_and(|factory| {
        factory
            .static_pad_templates()
            .iter()
            .any(|t| t.name_template() == "src_%s")
    })
}

/// Requests a `src_<language>` pad per extra language, each into its own `queue ! fakesink
/// sync=true` judged like `src` (one session per language in the element); returns the pairs.
fn add_language_pads(
    pipeline: &gst::Pipeline,
    languages: usize,
) -> Vec<(gst::Element, gst::Element)> {
    let element = pipeline.by_name("rt").expect("element by name");
    let mut sinks = Vec::new();
    for language in EXTRA_LANGUAGES.iter().take(languages.saturating_sub(1)) {
        let pad = element
            .request_pad_simple(&format!("src_{language}"))
            .unwrap_or_else(|| panic!("no src_{language} pad"));
        let queue = gst::ElementFactory::make("queue").build().expect("queue");
        let sink = gst::ElementFactory::make("fakesink")
            .property("sync", true)
            .build()
            .expect("fakesink");
        pipeline
            .add_many([&queue, &sink])
            .expect("add queue, fakesink");
        queue.link(&sink).expect("link queue ! fakesink");
        pad.link(&queue.static_pad("sink").expect("queue sink pad"))
            .expect("link a language pad");
        sinks.push((queue, sink));
    }
    sinks
}

/// The pipeline's running time now, once it has a clock.
fn running_time(pipeline: &gst::Pipeline) -> Option<gst::ClockTime> {
    pipeline
        .clock()
        .zip(pipeline.base_time())
        .map(|(clock, base)| clock.time().saturating_sub(base))
}

/// A capacity probe's translation keeps up when the echo has answered all the input heard but
/// this much: one 200 ms chunk, the round trip, and room for the machine's scheduling.
const TRANSLATION_LAG_MAX_S: f64 = 1.0;

/// What a capacity probe runs: N pipelines with the element, or the baseline.
#[derive(Debug, Clone)]
enum SessionsKind {
    /// The element against the echo server at `url` (`server_pid`: its process, measured apart).
    Element {
        url: String,
        server_pid: Option<u32>,
        languages: usize,
    },
    /// `audioconvert ! audioresample` instead of the element, held to `latency`.
    Baseline { latency: gst::ClockTime },
}

/// N live pipelines `audiotestsrc ! X ! queue ! fakesink sync=true` for `secs`; every buffer
/// must reach the queue before its running time + the sink's latency (see [`probe_sink`]).
///
/// The baseline (X = `audioconvert ! audioresample`) gets the element's latency as its pipeline
/// latency, so both are held to the same deadline. Judged at the sink itself, and without the
/// queue, the baseline's 20 ms buffers would fail on any 25 ms scheduling delay whatever its CPU
/// use (measured: 9 of 18 pipelines late at 10 % CPU beside other builds), the element's 100 ms
/// ones only on a 105 ms delay.
fn run_sessions(n: usize, secs: u64, kind: &SessionsKind) -> SessionsResult {
    let src = format!(
        "audiotestsrc wave=sine is-live=true samplesperbuffer={SAMPLES_PER_BUFFER} ! {INPUT_CAPS}"
    );
    let (middle, server_pid, languages, latency) = match kind {
        SessionsKind::Element {
            url,
            server_pid,
            languages,
        } => (
            format!("{} !", element_desc(url, "rt", "")),
            *server_pid,
            *languages,
            None,
        ),
        SessionsKind::Baseline { latency } => (
            format!("audioconvert ! audioresample ! {ENGINE_CAPS} !"),
            None,
            1,
            Some(*latency),
        ),
    };
    let desc = format!("{src} ! {middle} queue name=q ! fakesink name=sink sync=true");
    let rss_before_mb = vm_kb("self", "VmRSS:") as f64 / 1024.0;
    let pipelines: Vec<gst::Pipeline> = (0..n).map(|_| launch(&desc)).collect();
    if let Some(latency) = latency {
        for p in &pipelines {
            p.set_latency(latency);
        }
    }
    // One probe per judged sink; `owner[i]` is the pipeline of `probes[i]`.
    let mut probes = Vec::new();
    let mut owner = Vec::new();
    for (i, p) in pipelines.iter().enumerate() {
        let mut sinks = vec![(
            p.by_name("q").expect("queue"),
            p.by_name("sink").expect("sink"),
        )];
        if languages > 1 {
            sinks.extend(add_language_pads(p, languages));
        }
        for (queue, sink) in &sinks {
            probes.push(probe_sink(queue, sink));
            owner.push(i);
        }
    }
    let server_pid = server_pid.map(|pid| pid.to_string());
    reset_peak_rss("self");
    if let Some(pid) = &server_pid {
        reset_peak_rss(pid);
    }
    let busy_before = machine_busy();
    let cpu_before = cpu_time();
    let server_cpu_of = |pid: &String| pid.parse().map_or(Duration::ZERO, cpu_time_of);
    let server_before = server_pid.as_ref().map(server_cpu_of);
    let start = Instant::now();
    for p in &pipelines {
        p.set_state(gst::State::Playing).expect("to PLAYING");
    }
    // Sleep in steps, stopping early on an error.
    let deadline = start + Duration::from_secs(secs);
    let mut result = SessionsResult {
        n,
        languages,
        rss_before_mb,
        ..Default::default()
    };
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(250));
        for p in &pipelines {
            let report = drain_bus(p);
            result.errors.extend(report.errors);
            result.warnings.extend(report.warnings);
        }
        if !result.errors.is_empty() {
            break;
        }
    }
    let wall = start.elapsed();
    let cpu = cpu_time() - cpu_before;
    let server_cpu = server_pid
        .as_ref()
        .map(server_cpu_of)
        .zip(server_before)
        .map(|(a, b)| a.saturating_sub(b));
    result.secs = wall.as_secs_f64();
    result.cpu_percent = cpu.as_secs_f64() / wall.as_secs_f64() * 100.0;
    result.server_cpu_percent =
        server_cpu.map_or(0.0, |c| c.as_secs_f64() / wall.as_secs_f64() * 100.0);
    result.peak_rss_mb = vm_kb("self", "VmHWM:") as f64 / 1024.0;
    result.server_peak_rss_mb = server_pid.map_or(0.0, |pid| vm_kb(&pid, "VmHWM:") as f64 / 1024.0);
    result.load = capacity::load_average();
    let others = machine_busy()
        .saturating_sub(busy_before)
        .saturating_sub(cpu)
        .saturating_sub(server_cpu.unwrap_or_default());
    result.others_cpu_percent = others.as_secs_f64() / wall.as_secs_f64() * 100.0;

    // Where each sink should be by now, read right away, before anything else takes time.
    let mut deficits = Vec::with_capacity(probes.len());
    for (&i, probe) in owner.iter().zip(&probes) {
        let now = running_time(&pipelines[i]).map(gst::ClockTime::nseconds);
        let s = probe.lock().unwrap().clone();
        deficits.push((i, now, s));
    }
    let mut p50s = Vec::new();
    let mut slack = Vec::new();
    // Pipelines with a silent or underrunning sink (counted once however many sinks).
    let mut silent = std::collections::BTreeSet::new();
    let mut underrun = std::collections::BTreeSet::new();
    result.min_coverage = f64::INFINITY;
    for (i, now, s) in &deficits {
        if s.buffers == 0 {
            silent.insert(*i);
            continue;
        }
        result.buffers += s.buffers;
        result.gaps += s.gaps;
        result.gap_ms += s.gap_ns as f64 / 1e6;
        result.overlaps += s.overlaps;
        result.late += s.late;
        result.preroll += s.preroll;
        result.late_5ms += s.late_5ms;
        result.late_20ms += s.late_20ms;
        result.max_late_ms = result.max_late_ms.max(s.max_late_ns as f64 / 1e6);
        result.latency_ms = s.latency as f64 / 1e6;
        slack.extend_from_slice(&s.slack_ms);
        if let (Some(now), Some(first), Some(end)) = (now, s.first_pts, s.end) {
            // All pipelines start at segment time 0, so pts = running time here.
            let expected_end = now.saturating_sub(s.latency);
            let deficit = expected_end as f64 - end as f64;
            result.max_deficit_ms = result.max_deficit_ms.max(deficit / 1e6);
            let span = expected_end.saturating_sub(first);
            if span > 0 {
                result.min_coverage = result.min_coverage.min(s.duration as f64 / span as f64);
            }
        }
        // Underrun: output missing (gap), or a buffer later than its render time by > 5 ms
        // (beyond what the clock reading and scheduling jitter explain), or output falling
        // behind by more than one 100 ms buffer at the end.
        let deficit_ms = now.map_or(0.0, |now| {
            (now.saturating_sub(s.latency) as f64 - s.end.unwrap_or(0) as f64) / 1e6
        });
        if s.gaps > 0 || s.late_5ms > 0 || deficit_ms > 100.0 {
            underrun.insert(*i);
        }
    }
    result.silent = silent.len();
    result.pipelines_with_underrun = underrun.len();
    if !result.min_coverage.is_finite() {
        result.min_coverage = 0.0;
    }
    slack.sort_by(f64::total_cmp);
    result.late_p50_ms = percentile(&slack, 0.5);
    result.late_p99_ms = percentile(&slack, 0.99);
    if matches!(kind, SessionsKind::Element { .. }) {
        let mut p99 = 0.0f64;
        for p in &pipelines {
            let st = element_stats(p, "rt");
            // The input started at running time 0 and the echo answers with what it was sent;
            // the clock is read after the stats, so a slow read counts against the element.
            let heard_s = running_time(p).map_or(0.0, gst::ClockTime::seconds_f64);
            let lag = heard_s - st.received_s;
            result.worst_translation_lag_s = result.worst_translation_lag_s.max(lag);
            if lag > TRANSLATION_LAG_MAX_S || st.chunks_dropped > 0 {
                result.translation_behind += 1;
            }
            result.chunks_dropped += st.chunks_dropped;
            p99 = p99.max(st.p99_ms);
            p50s.push(st.p50_ms);
        }
        p50s.sort_by(f64::total_cmp);
        result.delay_p99_max_ms = p99;
        result.delay_p50_median_ms = percentile(&p50s, 0.5);
    }
    // Not stopped: the probe process exits once it has printed this (see `run_probe_role`).
    // Stopping hundreds of overloaded pipelines one at a time, while the rest still ran, took
    // over ten minutes at 800 streams.
    std::mem::forget(pipelines);
    result
}

// ---------------------------------------------------------------------------------------------
// Report

fn fmt_pct(v: f64) -> String {
    format!("{v:.3} %")
}

fn print_warnings(label: &str, report: &BusReport) {
    for e in report.errors.iter().take(3) {
        println!("    ! {label} error: {e}");
    }
    let n = report.warnings.len();
    for w in report.warnings.iter().take(2) {
        println!("    ! {label} warning: {w}");
    }
    if n > 2 {
        println!("    ! {label}: {} more warnings", n - 2);
    }
}

fn print_stats(label: &str, s: &ElementStats) {
    println!(
        "    {label:<38} delay p50 {:>7.3} ms  p99 {:>7.3} ms  ({} chunks)",
        s.p50_ms, s.p99_ms, s.delay_samples
    );
    println!(
        "    {:<38} sent {:.1} s, received {:.1} s, output {:.1} s, input chunks dropped {}, translation dropped {:.1} s",
        "", s.sent_s, s.received_s, s.output_s, s.chunks_dropped, s.translation_dropped_s
    );
}

fn print_sessions(label: &str, r: &SessionsResult) {
    println!(
        "  {label}: N={} ({} language(s)) for {:.1} s — CPU {:.1} % of one core (server process {:.1} %), peak RSS {:.1} MB (server {:.1} MB)",
        r.n,
        r.languages,
        r.secs,
        r.cpu_percent,
        r.server_cpu_percent,
        r.peak_rss_mb,
        r.server_peak_rss_mb
    );
    println!(
        "    buffers {}, silent pipelines {}, pipelines with underrun {}, gaps {} ({:.1} ms), overlaps {}",
        r.buffers, r.silent, r.pipelines_with_underrun, r.gaps, r.gap_ms, r.overlaps
    );
    println!(
        "    sink latency {:.1} ms; buffers after running time + latency: {} (> 5 ms: {}, > 20 ms: {}), worst {:.1} ms; preroll buffers (not judged) {}",
        r.latency_ms, r.late, r.late_5ms, r.late_20ms, r.max_late_ms, r.preroll
    );
    println!(
        "    arrival vs render time (after 1 s; negative = early): p50 {:.2} ms, p99 {:.2} ms; end-of-run deficit max {:.1} ms; min coverage {:.4}",
        r.late_p50_ms, r.late_p99_ms, r.max_deficit_ms, r.min_coverage
    );
    if r.delay_p99_max_ms > 0.0 {
        println!(
            "    element stats: output delay p50 (median over sessions) {:.2} ms, worst session p99 {:.2} ms, input chunks dropped {}",
            r.delay_p50_median_ms, r.delay_p99_max_ms, r.chunks_dropped
        );
    }
    for e in r.errors.iter().take(3) {
        println!("    ! error: {e}");
    }
    if !r.warnings.is_empty() {
        println!(
            "    ! {} warnings, e.g. {}",
            r.warnings.len(),
            r.warnings[0]
        );
    }
}

struct Row {
    figure: String,
    value: String,
    baseline: String,
    target: String,
    pass: Option<bool>,
}

fn print_table(rows: &[Row]) {
    let w0 = rows
        .iter()
        .map(|r| r.figure.len())
        .max()
        .unwrap_or(0)
        .max(6);
    let w1 = rows.iter().map(|r| r.value.len()).max().unwrap_or(0).max(5);
    let w2 = rows
        .iter()
        .map(|r| r.baseline.len())
        .max()
        .unwrap_or(0)
        .max(8);
    let w3 = rows
        .iter()
        .map(|r| r.target.len())
        .max()
        .unwrap_or(0)
        .max(6);
    let line = format!(
        "+{}+{}+{}+{}+--------+",
        "-".repeat(w0 + 2),
        "-".repeat(w1 + 2),
        "-".repeat(w2 + 2),
        "-".repeat(w3 + 2)
    );
    println!("{line}");
    println!(
        "| {:<w0$} | {:<w1$} | {:<w2$} | {:<w3$} | result |",
        "figure", "value", "baseline", "target"
    );
    println!("{line}");
    for r in rows {
        let verdict = match r.pass {
            Some(true) => "PASS",
            Some(false) => "FAIL",
            None => "info",
        };
        println!(
            "| {:<w0$} | {:<w1$} | {:<w2$} | {:<w3$} | {verdict:<6} |",
            r.figure, r.value, r.baseline, r.target
        );
    }
    println!("{line}");
}

/// Section 1; returns the in-process run's statistics, which section 2 reports too.
fn section_cpu(
    cfg: &Config,
    inprocess_url: &str,
    child: &ChildServer,
    rows: &mut Vec<Row>,
) -> Option<ElementStats> {
    println!(
        "\n[1] CPU per second of audio: {} s of 48 kHz stereo F32 sine, pacing=none, non-live, best of {}",
        cfg.cpu_audio_secs, cfg.cpu_reps
    );
    let cpu = bench_cpu(cfg, inprocess_url, child);
    let a = cpu.audio_secs;
    let source_pct = cpu.source.percent(a);
    let baseline_pct = cpu.baseline.percent(a);
    let inproc_pct = cpu.inprocess.percent(a);
    let ext_pct = cpu.external.percent(a);
    let server_pct = cpu.external.server_percent(a).unwrap_or(f64::NAN);
    for (label, run) in [
        ("source only (audiotestsrc ! fakesink)", &cpu.source),
        ("baseline (audioconvert ! audioresample)", &cpu.baseline),
        ("element, echo server in process", &cpu.inprocess),
        ("element, echo server in child process", &cpu.external),
    ] {
        println!(
            "  {label:<42} {:>8.3} % of a core per RT stream  (CPU {:.3} s, wall {:.2} s, {:.0}x real time)",
            run.percent(a),
            run.cpu.as_secs_f64(),
            run.wall.as_secs_f64(),
            a / run.wall.as_secs_f64()
        );
        print_warnings(label, &run.report);
    }
    println!(
        "  {:<42} {:>8.3} % (its own process, same run)",
        "  echo server child process", server_pct
    );
    let net_ext = ext_pct - source_pct;
    let net_inproc = inproc_pct - source_pct;
    let net_baseline = baseline_pct - source_pct;
    println!(
        "  net of the source: element {} (in-process server incl.: {}), baseline convert+resample {}",
        fmt_pct(net_ext),
        fmt_pct(net_inproc),
        fmt_pct(net_baseline)
    );
    if let Some(s) = &cpu.inprocess.stats {
        print_stats("stats (in-process server run):", s);
    }
    if let Some(s) = &cpu.external.stats {
        print_stats("stats (child server run):", s);
    }
    rows.push(Row {
        figure: "1. CPU / RT stream, element (excl. server, net of src)".into(),
        value: fmt_pct(net_ext),
        baseline: format!("{} convert+resample", fmt_pct(net_baseline)),
        target: format!("<= {TARGET_CPU_PERCENT} %"),
        pass: Some(net_ext <= TARGET_CPU_PERCENT),
    });
    rows.push(Row {
        figure: "1. CPU / RT stream, element + in-process echo server".into(),
        value: fmt_pct(net_inproc),
        baseline: format!("{} convert+resample", fmt_pct(net_baseline)),
        target: format!("<= {TARGET_CPU_PERCENT} %"),
        pass: Some(net_inproc <= TARGET_CPU_PERCENT),
    });
    let sent_ok = cpu
        .external
        .stats
        .iter()
        .chain(cpu.inprocess.stats.iter())
        .all(|s| s.chunks_dropped == 0 && (s.sent_s - a).abs() < 0.3);
    rows.push(Row {
        figure: "1. pacing=none: all input reaches the server".into(),
        value: cpu.external.stats.as_ref().map_or("-".into(), |s| {
            format!("{:.1}/{a:.0} s, {} dropped", s.sent_s, s.chunks_dropped)
        }),
        baseline: "-".into(),
        target: "0 dropped".into(),
        pass: Some(sent_ok),
    });

    cpu.inprocess.stats
}

/// Section 2; `pacing_none`: the statistics of section 1's in-process run, when it ran.
fn section_delay(cfg: &Config, url: &str, pacing_none: Option<&ElementStats>, rows: &mut Vec<Row>) {
    println!(
        "\n[2] Output delay (server frame arrival -> buffer pushed on src), element stats; live input {} s",
        cfg.live_secs
    );
    let live = bench_live_delay(cfg, url);
    let q = &live.queue_ms;
    let (q50, q99) = (percentile(q, 0.5), percentile(q, 0.99));
    println!(
        "    {:<38} delay p50 {q50:>7.3} ms  p99 {q99:>7.3} ms  ({} buffers)",
        "baseline: time in a plain queue",
        q.len()
    );
    print_stats("live, src ! fakesink sync=false", &live.unsynced);
    print_warnings("live sync=false", &live.unsynced_report);
    println!(
        "    {:<38} 20 ms buffers: p50 {:.3} / p99 {:.3} ms ({} chunks); 5 ms buffers: p50 {:.3} / p99 {:.3} ms ({} chunks)",
        "(the same, first 1.5 s only)",
        live.early[0].p50_ms,
        live.early[0].p99_ms,
        live.early[0].delay_samples,
        live.early[1].p50_ms,
        live.early[1].p99_ms,
        live.early[1].delay_samples
    );
    print_stats("live, 5 ms input buffers, sync=false", &live.small_buffers);
    print_warnings("live 5 ms buffers", &live.small_buffers_report);
    print_stats("live, src ! fakesink sync=true", &live.synced);
    print_warnings("live sync=true", &live.synced_report);
    println!(
        "    (with a synchronised sink and no queue, a buffer waits in the element while the sink\n     blocks the previous push on its clock, so that figure includes the sink's clock wait)"
    );
    if let Some(s) = pacing_none {
        print_stats("pacing=none (section 1 run)", s);
    }
    let baseline_q = format!("queue p50 {q50:.3} / p99 {q99:.3} ms");
    // `judged`: whether the figure counts against the target.
    let delay_row = |figure: &str, s: &ElementStats, judged: bool| Row {
        figure: figure.into(),
        value: format!("{:.3} / {:.3} ms", s.p50_ms, s.p99_ms),
        baseline: baseline_q.clone(),
        target: if judged {
            format!("p99 <= {TARGET_DELAY_P99_MS} ms")
        } else {
            "-".into()
        },
        pass: judged.then_some(s.delay_samples > 0 && s.p99_ms <= TARGET_DELAY_P99_MS),
    };
    if let Some(s) = pacing_none {
        rows.push(delay_row(
            "2. delay p50/p99, pacing=none (non-live)",
            s,
            true,
        ));
    }
    rows.push(delay_row(
        "2. delay p50/p99, live, 20 ms input buffers",
        &live.unsynced,
        true,
    ));
    rows.push(delay_row(
        "2. delay p50/p99, live, 5 ms input buffers",
        &live.small_buffers,
        true,
    ));
    rows.push(delay_row(
        "2. delay p50/p99, live, fakesink sync=true (incl. sink wait)",
        &live.synced,
        false,
    ));
}

/// The element's latency at a sink in the capacity pipelines (`latency` 200 + 250 ms margin +
/// the source's 20 ms buffer + …), used for the baseline until an element probe has reported it.
const DEFAULT_ELEMENT_SINK_LATENCY: gst::ClockTime = gst::ClockTime::from_mseconds(490);

/// The line a probe process ends with, before its figures.
const PROBE_RESULT: &str = "PROBE-RESULT ";

impl SessionsResult {
    /// The figures the capacity search needs, on one line (a probe process's answer).
    fn to_line(&self) -> String {
        format!(
            "{} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {} {}",
            self.n,
            self.languages,
            self.secs,
            self.cpu_percent,
            self.server_cpu_percent,
            self.peak_rss_mb,
            self.rss_before_mb,
            self.server_peak_rss_mb,
            self.load,
            self.others_cpu_percent,
            self.pipelines_with_underrun,
            self.silent,
            self.gaps,
            self.late_5ms,
            self.errors.len(),
            self.latency_ms,
            self.translation_behind,
            self.worst_translation_lag_s,
            self.chunks_dropped
        )
    }

    fn from_line(line: &str) -> Option<Self> {
        let v: Vec<f64> = line
            .split_whitespace()
            .map(|x| x.parse().ok())
            .collect::<Option<_>>()?;
        let [
            n,
            languages,
            secs,
            cpu,
            server_cpu,
            peak,
            before,
            server_peak,
            load,
            others,
            underrun,
            silent,
            gaps,
            late_5ms,
            errors,
            latency,
            translation_behind,
            worst_translation_lag,
            chunks_dropped,
        ] = v[..]
        else {
            return None;
        };
        Some(Self {
            n: n as usize,
            languages: languages as usize,
            secs,
            cpu_percent: cpu,
            server_cpu_percent: server_cpu,
            peak_rss_mb: peak,
            rss_before_mb: before,
            server_peak_rss_mb: server_peak,
            load,
            others_cpu_percent: others,
            pipelines_with_underrun: underrun as usize,
            silent: silent as usize,
            gaps: gaps as u64,
            late_5ms: late_5ms as u64,
            errors: vec!["(reported by the probe process)".into(); errors as usize],
            latency_ms: latency,
            translation_behind: translation_behind as usize,
            worst_translation_lag_s: worst_translation_lag,
            chunks_dropped: chunks_dropped as u64,
            ..Default::default()
        })
    }
}

/// Runs one capacity probe as this process (`BENCH_ROLE=probe`): the spec in `BENCH_PROBE` is
/// `N SECS element URL SERVER_PID LANGUAGES` or `N SECS baseline LATENCY_NS`.
fn run_probe_role() {
    let spec = std::env::var("BENCH_PROBE").expect("BENCH_PROBE");
    let f: Vec<&str> = spec.split_whitespace().collect();
    let n: usize = f[0].parse().expect("N");
    let secs: u64 = f[1].parse().expect("SECS");
    let kind = match f[2] {
        "element" => SessionsKind::Element {
            url: f[3].to_owned(),
            server_pid: f[4].parse().ok(),
            languages: f[5].parse().expect("LANGUAGES"),
        },
        _ => SessionsKind::Baseline {
            latency: gst::ClockTime::from_nseconds(f[3].parse().expect("LATENCY_NS")),
        },
    };
    let r = run_sessions(n, secs, &kind);
    let label = match kind {
        SessionsKind::Element { .. } => "realtimetranslate",
        SessionsKind::Baseline { .. } => "baseline (audioconvert ! audioresample)",
    };
    print_sessions(label, &r);
    println!("{PROBE_RESULT}{}", r.to_line());
    std::io::stdout().flush().ok();
    // The pipelines are still running: the process ends with them rather than stopping each.
    std::process::exit(0);
}

/// How long a probe process may run beyond its probe's length before it counts as failed.
const PROBE_OVERTIME_SECS: u64 = 240;

/// One capacity probe in a process of its own, so that its CPU, its peak RSS, and the threads
/// and heap it leaves behind are its own, not shared with the probes before it. Returns the
/// figures and the probe's detailed report.
fn probe_in_child(n: usize, secs: u64, kind: &SessionsKind) -> (SessionsResult, String) {
    let spec = match kind {
        SessionsKind::Element {
            url,
            server_pid,
            languages,
        } => format!(
            "{n} {secs} element {url} {} {languages}",
            server_pid.map_or("-".into(), |p| p.to_string())
        ),
        SessionsKind::Baseline { latency } => format!("{n} {secs} baseline {}", latency.nseconds()),
    };
    let failed = |why: String| {
        let result = SessionsResult {
            n,
            errors: vec![why.clone()],
            ..Default::default()
        };
        (result, why)
    };
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => return failed(format!("no executable: {e}")),
    };
    let mut child = match Command::new(exe)
        .env("BENCH_ROLE", "probe")
        .env("BENCH_PROBE", &spec)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
    {
        Ok(child) => child,
        Err(e) => return failed(format!("cannot start a probe process: {e}")),
    };
    let mut stdout = child.stdout.take().expect("piped stdout");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut stdout, &mut text);
        text
    });
    // A probe far past capacity can take minutes just to start its pipelines; one that has not
    // ended by then counts as failed rather than holding the search up for good.
    let limit = Duration::from_secs(secs + PROBE_OVERTIME_SECS);
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() < limit => std::thread::sleep(Duration::from_millis(200)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return failed(format!(
                    "probe process still running after {} s: killed",
                    limit.as_secs()
                ));
            }
        }
    };
    let text = reader.join().unwrap_or_default();
    let mut detail = String::new();
    let mut result = None;
    for line in text.lines() {
        match line.strip_prefix(PROBE_RESULT) {
            Some(figures) => result = SessionsResult::from_line(figures),
            None => {
                detail.push_str(line);
                detail.push('\n');
            }
        }
    }
    match result {
        Some(result) => (result, detail),
        None => failed(format!("probe process ended ({status}) without figures")),
    }
}

/// One line per capacity probe.
fn print_probe(label: &str, r: &SessionsResult) {
    println!(
        "    {label:<8} N={:<4} {}  underrun {}, silent {}, gaps {}, late>5ms {}, errors {}; CPU {:.1} % (server {:.1} %), RSS +{:.1} MB; other processes {:.0} %, load {:.1}",
        r.n,
        if r.ok() { "pass" } else { "FAIL" },
        r.pipelines_with_underrun,
        r.silent,
        r.gaps,
        r.late_5ms,
        r.errors.len(),
        r.cpu_percent,
        r.server_cpu_percent,
        (r.peak_rss_mb - r.rss_before_mb).max(0.0),
        r.others_cpu_percent,
        r.load
    );
    if r.translation_behind > 0 {
        println!(
            "             translation behind in {} pipeline(s): worst {:.1} s behind the input, {} input chunks dropped",
            r.translation_behind, r.worst_translation_lag_s, r.chunks_dropped
        );
    }
    if let Some(first) = r.errors.first() {
        let first: String = first.chars().take(160).collect();
        println!("             first error: {first}");
    }
}

/// Per stream at capacity: CPU % of a core (the server's apart) and RSS MB, from the probe at
/// that N.
fn per_stream(probe: Option<&Probe>) -> Option<(f64, f64, f64, f64)> {
    probe.map(|p| {
        let n = p.n as f64;
        (
            p.cpu_percent / n,
            p.server_cpu_percent / n,
            p.rss_growth_mb / n,
            p.server_rss_mb / n,
        )
    })
}

fn fmt_spread((median, lo, hi): (f64, f64, f64), decimals: usize) -> String {
    if lo == hi {
        format!("{median:.decimals$}")
    } else {
        format!("{median:.decimals$} ({lo:.decimals$}–{hi:.decimals$})")
    }
}

/// Section 3: the capacity search, element and baseline interleaved, repeated.
fn section_capacity(cfg: &Config, child: &ChildServer, rows: &mut Vec<Row>) {
    capacity::check_search();
    let languages = if cfg.languages > 1 && !has_language_pads() {
        println!(
            "\n  BENCH_LANGUAGES={} requires the element's per-language pads (src_%s), which this build lacks: 1 language per stream",
            cfg.languages
        );
        1
    } else {
        cfg.languages
    };
    println!(
        "\n[3] Capacity: concurrent live streams without underrun; element ({languages} language(s) per stream, echo server in a child process) \
         against the baseline (audioconvert ! audioresample, held to the element's latency), each into queue ! fakesink sync=true, each probe in its own process; {} s per probe, from N={} up to {} to within {}, \
         element and baseline probes alternated, {} repetition(s)",
        cfg.sessions_secs, cfg.sessions, cfg.max_sessions, cfg.resolution, cfg.repeats
    );
    println!(
        "    underrun, for both: output with a gap, a buffer reaching the queue > 5 ms after its running time + the sink's latency, output > 100 ms behind at the end, no output, or an error; for the element also its translation falling behind (the echo's answers more than {TRANSLATION_LAG_MAX_S} s behind the input at the end, or input chunks dropped)"
    );
    let template = CapacitySearch::new(cfg.sessions, cfg.max_sessions, cfg.resolution);
    let mut detailed_element: Option<(SessionsResult, String)> = None;
    let mut detailed_baseline: Option<(SessionsResult, String)> = None;
    // The baseline is held to the element's latency, as its sinks report it.
    let element_latency = std::cell::Cell::new(DEFAULT_ELEMENT_SINK_LATENCY);
    let element_kind = SessionsKind::Element {
        url: child.url.clone(),
        server_pid: Some(child.pid()),
        languages,
    };
    let mut reps: Vec<Repetition> = Vec::new();
    for k in 0..cfg.repeats {
        println!(
            "  repetition {}/{} (load average {:.2})",
            k + 1,
            cfg.repeats,
            capacity::load_average()
        );
        let rep = capacity::search_both(
            &template,
            |n| {
                let (r, detail) = probe_in_child(n, cfg.sessions_secs, &element_kind);
                print_probe("element", &r);
                if r.latency_ms > 0.0 {
                    element_latency.set(gst::ClockTime::from_nseconds(
                        (r.latency_ms * 1e6).round() as u64,
                    ));
                }
                let probe = r.probe();
                if n == cfg.sessions && detailed_element.is_none() {
                    detailed_element = Some((r, detail));
                }
                probe
            },
            |n| {
                let kind = SessionsKind::Baseline {
                    latency: element_latency.get(),
                };
                let (r, detail) = probe_in_child(n, cfg.sessions_secs, &kind);
                print_probe("baseline", &r);
                let probe = r.probe();
                if n == cfg.sessions && detailed_baseline.is_none() {
                    detailed_baseline = Some((r, detail));
                }
                probe
            },
        );
        let (lo, hi) = rep.load_range();
        println!(
            "    => element {}{} streams, baseline {}{}, ratio {:.2}; load average {lo:.2}–{hi:.2}",
            if rep.element.capped() { "≥ " } else { "" },
            rep.element.capacity(),
            if rep.baseline.capped() { "≥ " } else { "" },
            rep.baseline.capacity(),
            rep.ratio()
        );
        reps.push(rep);
    }
    if let (Some((_, e)), Some((_, b))) = (&detailed_element, &detailed_baseline) {
        println!("  the N={} probes in detail:\n{b}{e}", cfg.sessions);
    }

    let capped = |f: fn(&Repetition) -> bool| if reps.iter().any(f) { "≥ " } else { "" };
    let element_caps = capacity::spread(
        &reps
            .iter()
            .map(|r| r.element.capacity() as f64)
            .collect::<Vec<_>>(),
    );
    let baseline_caps = capacity::spread(
        &reps
            .iter()
            .map(|r| r.baseline.capacity() as f64)
            .collect::<Vec<_>>(),
    );
    let ratios = capacity::spread(&reps.iter().map(Repetition::ratio).collect::<Vec<_>>());
    let streams = if languages > 1 {
        format!(
            " streams × {languages} languages = {} language streams",
            element_caps.0 * languages as f64
        )
    } else {
        " streams".into()
    };
    rows.push(Row {
        figure: "3. capacity: live streams without underrun (element: translation keeping up too)"
            .into(),
        value: format!(
            "{}{}{streams}",
            capped(|r| r.element.capped()),
            fmt_spread(element_caps, 0)
        ),
        baseline: format!(
            "{}{} (no element)",
            capped(|r| r.baseline.capped()),
            fmt_spread(baseline_caps, 0)
        ),
        target: "-".into(),
        pass: None,
    });
    // Language pads count per language: one element carrying L languages does the work of L
    // single-language pipelines.
    let per_language = capacity::spread(
        &reps
            .iter()
            .map(|r| r.ratio() * languages as f64)
            .collect::<Vec<_>>(),
    );
    rows.push(if languages > 1 {
        Row {
            figure: format!("3. capacity ratio per language, element × {languages} / no element"),
            value: fmt_spread(per_language, 2),
            baseline: format!(
                "{} repetition(s); per stream {}",
                reps.len(),
                fmt_spread(ratios, 2)
            ),
            target: ">= 0.80".into(),
            pass: Some(per_language.0 >= 0.8),
        }
    } else {
        Row {
            figure: "3. capacity ratio, element / no element".into(),
            value: fmt_spread(ratios, 2),
            baseline: format!("{} repetition(s)", reps.len()),
            target: ">= 0.80".into(),
            pass: Some(ratios.0 >= 0.8),
        }
    });
    let element_per = reps
        .iter()
        .filter_map(|r| per_stream(r.element_at_capacity()))
        .collect::<Vec<_>>();
    let baseline_per = reps
        .iter()
        .filter_map(|r| per_stream(r.baseline_at_capacity()))
        .collect::<Vec<_>>();
    type PerStream = (f64, f64, f64, f64);
    let pick = |v: &[PerStream], f: fn(&PerStream) -> f64| {
        capacity::spread(&v.iter().map(f).collect::<Vec<_>>())
    };
    // One figure per stream: the element's own and the server's, against the baseline's own.
    let per_stream_row = |figure: &str,
                          own: fn(&PerStream) -> f64,
                          server: fn(&PerStream) -> f64,
                          decimals: usize| Row {
        figure: figure.into(),
        value: format!(
            "{} (+ server {})",
            fmt_spread(pick(&element_per, own), decimals),
            fmt_spread(pick(&element_per, server), decimals)
        ),
        baseline: format!(
            "{} (no element)",
            fmt_spread(pick(&baseline_per, own), decimals)
        ),
        target: "-".into(),
        pass: None,
    };
    rows.push(per_stream_row(
        "3. CPU per stream at capacity, % of a core",
        |p| p.0,
        |p| p.1,
        3,
    ));
    rows.push(per_stream_row(
        "3. RSS growth per stream at capacity, MB",
        |p| p.2,
        |p| p.3,
        2,
    ));
    let loads = reps
        .iter()
        .map(Repetition::load_range)
        .fold((f64::INFINITY, 0.0f64), |(lo, hi), (l, h)| {
            (lo.min(l), hi.max(h))
        });
    let others = |probes: fn(&Repetition) -> &Vec<Probe>| {
        capacity::spread(
            &reps
                .iter()
                .flat_map(|r| probes(r).iter().map(|p| p.others_cpu_percent))
                .collect::<Vec<_>>(),
        )
    };
    rows.push(Row {
        figure: "3. noise: other processes' CPU during the probes, %".into(),
        value: fmt_spread(others(|r| &r.element_probes), 0),
        baseline: format!(
            "{} (its probes)",
            fmt_spread(others(|r| &r.baseline_probes), 0)
        ),
        target: "-".into(),
        pass: None,
    });
    rows.push(Row {
        figure: "3. load average during the search (2 cores; counts the probes' threads)".into(),
        value: format!("{:.1}–{:.1}", loads.0, loads.1),
        baseline: "-".into(),
        target: "-".into(),
        pass: None,
    });
    if let (Some((e, _)), Some((b, _))) = (&detailed_element, &detailed_baseline) {
        rows.push(Row {
            figure: format!("3. {} streams: pipelines with underrun", cfg.sessions),
            value: format!(
                "{} (gaps {}, late>5ms {}, errors {})",
                e.pipelines_with_underrun,
                e.gaps,
                e.late_5ms,
                e.errors.len()
            ),
            baseline: format!("{} (no element)", b.pipelines_with_underrun),
            target: "0".into(),
            pass: Some(e.ok()),
        });
        rows.push(Row {
            figure: format!("3. {} streams: peak RSS", cfg.sessions),
            value: format!(
                "{:.1} MB (+ server {:.1} MB)",
                e.peak_rss_mb, e.server_peak_rss_mb
            ),
            baseline: format!("{:.1} MB (no element)", b.peak_rss_mb),
            target: "-".into(),
            pass: None,
        });
    }
}
fn main() {
    if std::env::var("BENCH_ROLE").as_deref() == Ok("echo-server") {
        run_echo_server_role();
        return;
    }
    let cfg = Config::from_env();
    gst::init().expect("gst::init");
    gstrealtimetranslate::plugin_register_static().expect("register the plugin");
    if std::env::var("BENCH_ROLE").as_deref() == Ok("probe") {
        run_probe_role();
        return;
    }
    let started = Instant::now();
    println!(
        "realtimetranslate element benchmark ({} mode; GStreamer {}, {} CPUs)",
        if cfg.quick { "quick" } else { "full" },
        gst::version_string(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    let inprocess = BackgroundServer::start(ServerConfig::new(Arc::new(EchoEngineFactory::new())))
        .expect("start the echo server");
    let child = ChildServer::start().expect("start the echo server process");
    let mut rows = Vec::new();
    let mut pacing_none = None;

    if cfg.runs(1) {
        pacing_none = section_cpu(&cfg, &inprocess.url(), &child, &mut rows);
    }
    if cfg.runs(2) {
        section_delay(&cfg, &inprocess.url(), pacing_none.as_ref(), &mut rows);
    }
    if cfg.runs(3) {
        section_capacity(&cfg, &child, &mut rows);
    }

    drop(child);
    drop(inprocess);
    println!(
        "\nSummary ({} mode, {:.0} s):",
        if cfg.quick { "quick" } else { "full" },
        started.elapsed().as_secs_f64()
    );
    print_table(&rows);
}
