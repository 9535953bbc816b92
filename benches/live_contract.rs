//! The live timing contract on a loaded machine: `STREAMS` (default 20) live streams fed in real
//! time at once, against the utterance engine answering 0.5 s late, first alone (the baseline),
//! then beside two busy loops (one per core). For every buffer and timestamped event on every
//! src pad: arrival − (PTS + the latency the element reports). Also the ear-voice span of each
//! utterance (source start → translated speech start) in low-delay and aligned mode.
//!
//! `cargo bench --bench live_contract` (about 1 min; `STREAMS=N` to change the load).

#[path = "../tests/common/mod.rs"]
mod common;

use common::timing::*;
use common::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

const SENTENCES: [&str; 3] = [
    "The weather is very nice today.",
    "My brother lives in a big house.",
    "Thank you very much for your help.",
];

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn summary(values: &mut [f64]) -> String {
    values.sort_by(f64::total_cmp);
    format!(
        "p50 {:+7.1}  p90 {:+7.1}  p99 {:+7.1}  max {:+7.1} ms",
        percentile(values, 0.5) * 1000.0,
        percentile(values, 0.9) * 1000.0,
        percentile(values, 0.99) * 1000.0,
        values.last().copied().unwrap_or(f64::NAN) * 1000.0
    )
}

/// Runs `streams` live streams at once; returns every item's lateness (s), how many items, how
/// many late, and each utterance's ear-voice span (s).
fn run_streams(
    streams: usize,
    url: &str,
    latency: &str,
    rate: u32,
    samples: &[i16],
) -> (Vec<f64>, usize, Vec<f64>) {
    let handles: Vec<_> = (0..streams)
        .map(|_| {
            let url = url.to_owned();
            let latency = latency.to_owned();
            let samples = samples.to_vec();
            std::thread::spawn(move || {
                let element = translator(&[
                    ("url", &url),
                    ("api-key", KEY),
                    ("latency", &latency),
                    ("fallback", "silence"),
                ]);
                run_live(element, rate, &samples, Duration::from_secs(60))
            })
        })
        .collect();
    let mut lateness = Vec::new();
    let mut late = 0;
    let mut spans = Vec::new();
    for handle in handles {
        let run = handle.join().unwrap();
        assert!(run.errors.is_empty(), "{:?}", run.errors);
        let latency = run.reported_latency();
        for pad in &run.pads {
            for record in pad.timed() {
                let (Some(arrival), Some(pts)) = (record.arrival, record.pts) else {
                    continue;
                };
                let over = arrival - (pts + latency);
                late += usize::from(over > 0.0);
                lateness.push(over);
            }
        }
        for (source, translated) in run.source.iter().zip(&run.translated) {
            spans.push(translated.start - source.start);
        }
    }
    let items = lateness.len();
    println!("    {items} items, {late} late");
    (lateness, late, spans)
}

fn main() {
    init();
    let streams: usize = std::env::var("STREAMS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let dir = tempfile::tempdir().unwrap();
    let (rate, samples) = spoken(dir.path(), &SENTENCES, 0.5, &[1.2, 1.5, 1.5]);
    let server = utterance_server();
    let url = format!("{}?fault_answer_delay_ms=500", server.url());
    println!(
        "live contract: {streams} live streams of {:.1} s, utterance engine 0.5 s late",
        samples.len() as f64 / rate as f64
    );
    for load in [false, true] {
        let stop = Arc::new(AtomicBool::new(false));
        let busy: Vec<_> = (0..if load { 2 } else { 0 })
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let mut x = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
                        std::hint::black_box(x);
                    }
                })
            })
            .collect();
        let label = if load {
            "beside two busy loops"
        } else {
            "baseline (no load)"
        };
        for (mode, latency) in [("low delay", "200"), ("aligned", "5000")] {
            println!("  {label}, {mode} (latency={latency}):");
            let (mut lateness, late, mut spans) =
                run_streams(streams, &url, latency, rate, &samples);
            println!(
                "    lateness vs PTS + reported latency: {}",
                summary(&mut lateness)
            );
            println!(
                "    ear-voice span (source start → translation start): {}",
                {
                    spans.sort_by(f64::total_cmp);
                    format!(
                        "p50 {:.2} s  p90 {:.2} s  max {:.2} s over {} utterances",
                        percentile(&spans, 0.5),
                        percentile(&spans, 0.9),
                        spans.last().copied().unwrap_or(f64::NAN),
                        spans.len()
                    )
                }
            );
            println!("    late items: {late}");
        }
        stop.store(true, Ordering::Relaxed);
        for thread in busy {
            thread.join().unwrap();
        }
    }
}
