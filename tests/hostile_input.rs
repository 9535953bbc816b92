//! What a hostile run throws at the element, each answered at its cause: a server sending
//! megabytes of text at once, an input that jumps an hour ahead, an engine that speaks faster
//! than real time. Real pipelines, the local server on 127.0.0.1, its fault knobs.

mod common;

use common::timing::*;
use common::*;
use gst::prelude::*;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The memory test measures this process's RSS: no other test of this file runs meanwhile.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

const APPEND: &str = "session.input_audio_buffer.append";

/// The last `realtimetranslate/stats` message of a run.
fn last_stats(run: &Run) -> gst::Structure {
    run.messages
        .iter()
        .rev()
        .find(|m| m.name() == "realtimetranslate/stats")
        .cloned()
        .expect("statistics were posted")
}

/// The `D` of each "… de D ms." the text of a pad holds.
fn answers(texts: &[(f64, String)]) -> Vec<u64> {
    let text: Vec<&str> = texts.iter().map(|(_, t)| t.as_str()).collect();
    text.join(" ")
        .split("de ")
        .skip(1)
        .filter_map(|rest| rest.split(" ms").next()?.parse().ok())
        .collect()
}

fn assert_answered(texts: &[(f64, String)], durations: &[u64], what: &str) {
    let got = answers(texts);
    assert_eq!(got.len(), durations.len(), "{what}: answers {got:?}");
    for (got, want) in got.iter().zip(durations) {
        assert!(got.abs_diff(*want) <= 20, "{what}: answers {got:?}");
    }
}

/// How long the element's own parser takes, on this machine now, for the two 2 MiB deltas the
/// fault sends (the median of three tries): the session reads frames on the task that sends the
/// audio, so this much is the parser's, not the element's, and is allowed for.
fn parse_time_of_two_huge_deltas() -> f64 {
    use gstrealtimetranslate::protocol::translation::ServerEvent;
    let mut text = String::new();
    let mut n = 0;
    while text.len() < 2 * 1024 * 1024 {
        text.push_str(&format!("palabra{} ", n % 10));
        n += 1;
    }
    let frames: Vec<String> = ["output", "input"]
        .iter()
        .map(|kind| {
            serde_json::json!({
                "type": format!("session.{kind}_transcript.delta"),
                "event_id": "ev_1",
                "delta": text,
                "elapsed_ms": 3200,
            })
            .to_string()
        })
        .collect();
    let mut tries: Vec<f64> = (0..3)
        .map(|_| {
            let started = std::time::Instant::now();
            for frame in &frames {
                assert!(ServerEvent::parse_timed(frame).is_ok());
            }
            started.elapsed().as_secs_f64()
        })
        .collect();
    tries.sort_by(f64::total_cmp);
    tries[1]
}

/// One oversized delta of translated text and one of source text (2 MiB each, no sentence end)
/// in the middle of live speech (in a pause, 0.3 s after the second answer).
fn oversized_text_case(mode: &str) {
    let _serial = one_at_a_time();
    init();
    let server = utterance_server();
    let durations = [600, 700, 800, 600, 700];
    let mut samples = bursts(&durations);
    // Trailing silence: every legitimate caption is off screen before the input ends.
    samples.resize(samples.len() + 4 * 24_000, 0);
    let element = translator(&[
        (
            "url",
            &format!("{}?fault_huge_text_after_audio_ms=3300", server.url()),
        ),
        ("api-key", KEY),
        ("transcription-model", "gpt-realtime-whisper"),
        ("subtitle-mode", mode),
        ("stats-interval", "500"),
    ]);
    let run = run_live(element, 24_000, &samples, Duration::from_secs(60));
    let failures = pipeline_failures(&run);
    assert!(failures.is_empty(), "{mode}: {failures:?}");
    let latency = run.reported_latency();
    let sessions = server.records().sessions();
    assert_eq!(sessions.len(), 1);
    assert_eq!(
        sessions[0].fault_fired(),
        Some("fault_huge_text_after_audio_ms")
    );

    // The audio kept flowing to the server: no append later than its cadence (200 ms chunks)
    // by more than 50 ms beyond what the input itself was late.
    let appends: Vec<_> = sessions[0]
        .events
        .iter()
        .filter(|e| e.kind == APPEND)
        .map(|e| e.received_at)
        .collect();
    let input_late = run.feed.iter().map(|(_, late)| *late).fold(0.0, f64::max);
    let parsing = parse_time_of_two_huge_deltas();
    let worst_gap = appends
        .windows(2)
        .map(|w| w[1].duration_since(w[0]).as_secs_f64())
        .fold(0.0, f64::max);
    println!(
        "{mode}: {} appends, longest gap between two {:.0} ms (input late by up to {:.0} ms; \
         parsing the two deltas takes {:.0} ms here)",
        appends.len(),
        worst_gap * 1000.0,
        input_late * 1000.0,
        parsing * 1000.0
    );
    assert!(
        worst_gap <= 0.2 + 0.05 + input_late + parsing,
        "{mode}: audio stopped for {worst_gap:.3} s"
    );

    // Captions stay on the input's timeline and on time.
    let input_end = run.input_end;
    for pad in ["subtitle_src", "source_subtitle_src"] {
        let log = run.pad(pad);
        for r in log.buffers() {
            let end = r.end().unwrap();
            assert!(
                end <= input_end + latency + 1e-3,
                "{mode} {pad}: a caption ends at {end:.2} s, input ends at {input_end:.2} s \
                 + latency {latency:.2} s: {:?}",
                r.text
            );
        }
        let shown: usize = log.texts().iter().map(|(_, t)| t.len()).sum();
        assert!(
            shown < 8 * 1024,
            "{mode} {pad}: {shown} bytes of text shown"
        );
    }
    for pad in PADS {
        let late = lateness(&run, run.pad(pad), latency);
        assert_eq!(late.late, 0, "{mode} {pad}: late items {late:?}");
    }
    // What was not shown is counted, and said.
    let stats = last_stats(&run);
    for field in [
        "subtitle-dropped-characters",
        "source-subtitle-dropped-characters",
    ] {
        let dropped = stats.get::<u64>(field).unwrap();
        assert!(
            dropped > 2 * 1024 * 1024 - 8 * 1024,
            "{mode}: {field} = {dropped}"
        );
    }
    assert!(
        run.warnings
            .iter()
            .any(|w| w.contains("characters dropped")),
        "{mode}: {:?}",
        run.warnings
    );
    // Every utterance still answered, in order, in speech and text.
    assert_answered(&run.texts, &durations, mode);
    assert_eq!(run.translated.len(), durations.len(), "{mode}");
}

#[test]
fn an_oversized_text_delta_neither_stops_the_audio_nor_runs_live_captions_off_the_timeline() {
    oversized_text_case("live");
}

#[test]
fn an_oversized_text_delta_neither_stops_the_audio_nor_runs_cues_off_the_timeline() {
    oversized_text_case("cues");
}

/// This process's resident memory, bytes.
fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

/// Runs `pipeline` to its end while sampling RSS; returns the run's peak growth. Past `abort`
/// bytes of growth the test process ends at once (a broken element allocates faster than a
/// pipeline can be stopped, and must not take the machine down with it).
fn peak_growth_while(pipeline: &gst::Pipeline, run: &mut Run, abort: u64) -> u64 {
    let start = rss();
    let peak = Arc::new(AtomicU64::new(start));
    let done = Arc::new(AtomicBool::new(false));
    let monitor = {
        let (peak, done) = (peak.clone(), done.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                let now = rss();
                peak.fetch_max(now, Ordering::Relaxed);
                if now.saturating_sub(start) > abort {
                    eprintln!(
                        "FAILED: memory grew by {} MB during the run; stopping the test process",
                        (now - start) >> 20
                    );
                    std::process::exit(1);
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };
    if pipeline.set_state(gst::State::Playing).is_err() {
        run.errors.push("state change to PLAYING failed".into());
    }
    wait_end(
        pipeline,
        run,
        Duration::from_secs(90),
        std::time::Instant::now(),
    );
    done.store(true, Ordering::Relaxed);
    monitor.join().unwrap();
    peak.load(Ordering::Relaxed).saturating_sub(start)
}

/// Non-live, `pacing=none`: bursts, then the same bursts `jump` later (a DISCONT), as 100 ms
/// buffers; returns the run and its peak memory growth.
fn jump_case(
    server: &realtimetranslate_server::BackgroundServer,
    jump: gst::ClockTime,
) -> (Run, u64) {
    let durations = [600, 700, 800];
    let part = bursts(&durations);
    let element = translator(&[
        ("url", &server.url()),
        ("api-key", KEY),
        ("pacing", "none"),
        ("stats-interval", "200"),
    ]);
    let (pipeline, src, sinks, mut run) = assemble(element, 24_000, &part, false);
    let part_time = gst::ClockTime::from_nseconds(part.len() as u64 * 1_000_000_000 / 24_000);
    for (offset, first_flag) in [(gst::ClockTime::ZERO, false), (part_time + jump, true)] {
        for (i, chunk) in part.chunks(2400).enumerate() {
            let mut buffer = buffer_of(chunk);
            let buffer_mut = buffer.get_mut().unwrap();
            let at = gst::ClockTime::from_mseconds(100 * i as u64);
            buffer_mut.set_pts(offset + at);
            buffer_mut.set_duration(gst::ClockTime::from_mseconds(100));
            if i == 0 && first_flag {
                buffer_mut.set_flags(gst::BufferFlags::DISCONT);
            }
            src.push_buffer(buffer).unwrap();
        }
    }
    src.end_of_stream().unwrap();
    run.input_end = 2.0 * part_time.seconds_f64() + jump.seconds_f64();
    let growth = peak_growth_while(&pipeline, &mut run, 1 << 30);
    pipeline.set_state(gst::State::Null).unwrap();
    run.finish(&sinks, 24_000, &part);
    (run, growth)
}

#[test]
fn an_hour_long_timestamp_jump_costs_no_memory_and_no_engine_time() {
    let _serial = one_at_a_time();
    init();
    let server = utterance_server();
    // Baseline in the same process: the same audio without the jump.
    let (baseline, baseline_growth) = jump_case(&server, gst::ClockTime::ZERO);
    assert!(
        pipeline_failures(&baseline).is_empty(),
        "{:?}",
        baseline.errors
    );
    let hour = gst::ClockTime::from_seconds(3600);
    let (run, growth) = jump_case(&server, hour);
    println!(
        "peak RSS growth: {} MB with a 1 h jump, {} MB without",
        growth >> 20,
        baseline_growth >> 20
    );
    let failures = pipeline_failures(&run);
    assert!(failures.is_empty(), "{failures:?}");
    assert!(
        growth < baseline_growth + (200 << 20),
        "memory grew by {} MB (baseline {} MB)",
        growth >> 20,
        baseline_growth >> 20
    );

    // The engine heard both parts and at most a few seconds of the hour.
    let sent = |session: &realtimetranslate_server::SessionRecord| -> u64 {
        session
            .events
            .iter()
            .filter_map(|e| e.audio_samples)
            .map(|n| n as u64)
            .sum()
    };
    let sessions = server.records().sessions();
    let (first, second) = (&sessions[0], &sessions[1]);
    let part = bursts(&[600, 700, 800]).len() as f64 / 24_000.0;
    let heard = sent(second) as f64 / 24_000.0;
    println!(
        "engine heard {heard:.1} s for {:.1} s of audio and a 1 h gap (baseline {:.1} s)",
        2.0 * part,
        sent(first) as f64 / 24_000.0
    );
    assert!(heard <= 2.0 * part + 3.2, "engine heard {heard:.1} s");
    assert!(heard >= 2.0 * part, "engine heard {heard:.1} s");

    // `src` covers the whole timeline: buffers and GAP events, no hole, no overlap.
    let src = run.pad("src");
    let mut covered = 0.0;
    for r in src.timed() {
        let (pts, end) = (r.pts.unwrap(), r.end().unwrap());
        assert!(
            (pts - covered).abs() < 1e-3,
            "src jumps from {covered} to {pts}"
        );
        covered = end;
    }
    assert!(covered >= run.input_end - 1e-3, "src ends at {covered}");
    let gaps = src.gaps();
    assert!(gaps >= 1, "the hour is one GAP, not samples");
    let samples: usize = src.buffers().map(|r| r.samples.len()).sum();
    assert!(
        (samples as f64) < 24_000.0 * (2.0 * part + 130.0),
        "{samples} samples written for the hour"
    );

    // Both parts translated, each answer at or after its source: the second part's after the
    // hour.
    let durations = [600, 700, 800];
    assert_answered(
        &run.texts,
        &[&durations[..], &durations[..]].concat(),
        "jump",
    );
    assert_eq!(run.translated.len(), 6, "{:?}", run.translated);
    for span in &run.translated[3..] {
        assert!(span.start > 3600.0 + part, "{span:?}");
    }
    let stats = last_stats(&run);
    let skipped = stats.get::<f64>("input-gap-skipped-seconds").unwrap();
    assert!(skipped > 3596.0 && skipped <= 3600.0, "{skipped}");
}

/// Live: the source stops for 8 s right after an utterance, then goes on 8 s later. The output
/// goes on with the clock meanwhile, the engine hears a few seconds of silence and says the
/// last words during the gap, not after it.
#[test]
fn a_live_source_that_stops_for_seconds_is_covered_on_time_and_its_last_words_translated() {
    let _serial = one_at_a_time();
    init();
    let server = utterance_server();
    let durations = [600, 700];
    // Stop 100 ms after the second burst ends: the engine has not heard its end yet.
    let mut samples = bursts(&durations);
    let stop = ((burst_start(&durations, 1) + 0.8) * 24_000.0) as usize;
    samples.truncate(stop);
    let mut after = bursts(&durations);
    after.resize(after.len() + 3 * 24_000, 0);
    samples.extend(after);
    let jump = Duration::from_secs(8);
    let element = translator(&[("url", &server.url()), ("api-key", KEY)]);
    let run = run_live_jumping(
        element,
        24_000,
        &samples,
        Some((stop, jump)),
        Duration::from_secs(60),
    );
    let failures = pipeline_failures(&run);
    assert!(failures.is_empty(), "{failures:?}");
    let latency = run.reported_latency();
    for pad in PADS {
        let late = lateness(&run, run.pad(pad), latency);
        assert_eq!(late.late, 0, "{pad}: late items {late:?}");
    }
    let (holes, covered) = audio_coverage(run.pad("src"), 1e-3);
    assert!(holes.is_empty(), "{holes:?}");
    assert!(covered.unwrap().end >= run.input_end - 1e-3);
    // The second utterance's translation plays during the gap.
    let gap = (
        stop as f64 / 24_000.0,
        stop as f64 / 24_000.0 + jump.as_secs_f64(),
    );
    println!("gap {gap:?}; translated speech {:?}", run.translated);
    assert_eq!(run.translated.len(), 4, "{:?}", run.translated);
    assert!(
        run.translated[1].start > gap.0 && run.translated[1].end < gap.1,
        "{:?} for a gap {gap:?}",
        run.translated[1]
    );
    assert_answered(&run.texts, &[600, 700, 600, 700], "live gap");
    // The engine heard at most 3 s of the 8 s.
    let heard: usize = server.records().sessions()[0]
        .events
        .iter()
        .filter_map(|e| e.audio_samples)
        .sum();
    let heard = heard as f64 / 24_000.0;
    let input = samples.len() as f64 / 24_000.0;
    println!("engine heard {heard:.2} s for {input:.2} s of input and an 8 s gap");
    assert!(heard <= input + 3.2 && heard >= input - 0.2, "{heard}");
}

/// Echo engine (the input back at once) repeating every audio delta 3 times: three times more
/// speech than real time, live.
#[test]
fn an_engine_speaking_three_times_faster_than_real_time_is_bounded_and_reported() {
    let _serial = one_at_a_time();
    init();
    let server = echo_server();
    // 16 s of a steady 300 Hz tone: everything is "speech" to translate.
    let samples: Vec<i16> = (0..16 * 24_000)
        .map(|i| (6000.0 * (2.0 * std::f64::consts::PI * 300.0 * i as f64 / 24_000.0).sin()) as i16)
        .collect();
    let element = translator(&[
        ("url", &format!("{}?fault_audio_repeat=3", server.url())),
        ("api-key", KEY),
        ("outage-buffer", "0"),
        ("stats-interval", "500"),
    ]);
    let run = run_live(element, 24_000, &samples, Duration::from_secs(60));
    let failures = pipeline_failures(&run);
    assert!(failures.is_empty(), "{failures:?}");
    // The allowance: outage buffer (none) + 20 s.
    let allowance = 20.0;
    let queued: Vec<f64> = run
        .messages
        .iter()
        .filter(|m| m.name() == "realtimetranslate/stats")
        .map(|m| m.get::<f64>("translation-queued-seconds").unwrap())
        .collect();
    let most = queued.iter().copied().fold(0.0, f64::max);
    println!("queued translation at most {most:.1} s (allowance {allowance} s)");
    assert!(queued.len() >= 10, "{} statistics", queued.len());
    assert!(most <= allowance + 0.5, "queued {queued:?}");
    let stats = last_stats(&run);
    let overproduced = stats
        .get::<f64>("translation-overproduced-seconds")
        .unwrap();
    println!(
        "{overproduced:.1} s dropped of {:.1} s received",
        stats.get::<f64>("audio-received-seconds").unwrap()
    );
    // 36 s received for 12 s of input: what does not fit real time plus the allowance.
    assert!(
        overproduced >= 36.0 - 12.0 - allowance - 2.0,
        "{overproduced}"
    );
    let warnings: Vec<_> = run
        .warnings
        .iter()
        .filter(|w| w.contains("more audio than real time"))
        .collect();
    assert_eq!(warnings.len(), 1, "{:?}", run.warnings);
    // The output keeps to the input's timeline: on time, and no longer than the input plus
    // the allowance.
    let late = lateness(&run, run.pad("src"), run.reported_latency());
    assert_eq!(late.late, 0, "{late:?}");
    let (holes, covered) = audio_coverage(run.pad("src"), 1e-3);
    assert!(holes.is_empty(), "{holes:?}");
    let covered = covered.unwrap();
    assert!(
        covered.end <= run.input_end + allowance + 0.5,
        "output ends at {:.1} s for {:.1} s of input",
        covered.end,
        run.input_end
    );
}
