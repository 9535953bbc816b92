//! Non-live input with `pacing=none` (as fast as the connection takes it): the output on `src` lies
//! on the input's timeline whatever the buffering (small buffers, one big buffer, no timestamps)
//! and however long the stream. The output lasts as long as the input, plus at most the last
//! translation running past its end; each translation starts between the start of the utterance
//! it translates and 1.5 s after its end.

mod common;

use common::timing::*;
use common::*;
use std::time::Duration;

const SENTENCES: [&str; 3] = [
    "The weather is very nice today.",
    "My brother lives in a big house.",
    "Thank you very much for your help.",
];
/// A translation starts at most this long after its source ends.
const TRAIL_BUDGET: f64 = 1.5;
/// The output may run past the input's end by the last translation plus this.
const END_BUDGET: f64 = 0.5;
/// Where the source starts is measured to a 20 ms frame.
const ONSET_TOLERANCE: f64 = 0.04;

fn translate(faults: &str, rate: u32, samples: &[i16], feed: Feed, timeout: Duration) -> Run {
    init();
    let server = utterance_server();
    let url = format!("{}?{faults}", server.url());
    let element = translator(&[
        ("url", &url),
        ("api-key", KEY),
        ("pacing", "none"),
        ("fallback", "silence"),
        ("subtitle-mode", "live"),
    ]);
    run_nonlive(element, rate, samples, feed, timeout)
}

/// Prints the figures; panics listing every broken promise.
fn check(title: &str, run: &Run, rate: u32, samples: &[i16], rows: bool) {
    let mut failures = Vec::new();
    let input = samples.len() as f64 / rate as f64;
    let (source, translated) = (&run.source, &run.translated);
    let src = run.pad("src");
    println!("\n== non-live, pacing=none: {title} ==");
    println!(
        "wall time {:.1} s; input {input:.2} s, {} utterances; eos {}",
        run.wall.as_secs_f64(),
        source.len(),
        run.eos
    );
    failures.extend(pipeline_failures(run));

    let (holes, covered) = audio_coverage(src, 0.0005);
    let last_d = source.last().map_or(0.0, Span::duration);
    match covered {
        None => failures.push("src: no audio".into()),
        Some(c) => {
            let output = c.end - c.start;
            println!(
                "src {:.3}–{:.3} s: {output:.3} s for {input:.3} s of input (allowed up to \
                 {:.3} s: + last translation {last_d:.2} s + {END_BUDGET} s); {} holes/overlaps",
                c.start,
                c.end,
                input + last_d + END_BUDGET,
                holes.len()
            );
            if output < input - 0.001 || output > input + last_d + END_BUDGET {
                failures.push(format!(
                    "output lasts {output:.3} s for {input:.3} s of input (at most {:.3} s)",
                    input + last_d + END_BUDGET
                ));
            }
            if c.start.abs() > 0.001 {
                failures.push(format!("output starts at {:.3} s, input at 0", c.start));
            }
            if let Some((at, size)) = holes.first() {
                failures.push(format!(
                    "src is not contiguous: {} holes/overlaps, first {:.1} ms at {at:.3} s",
                    holes.len(),
                    size * 1000.0
                ));
            }
        }
    }

    if source.len() != translated.len() {
        failures.push(format!(
            "{} source utterances but {} translated speech spans",
            source.len(),
            translated.len()
        ));
    }
    let mut early = 0;
    let mut late = 0;
    let (mut min_from_start, mut max_from_end) = (f64::INFINITY, f64::NEG_INFINITY);
    if rows {
        println!(
            "{:>4} {:>15} {:>15} {:>10} {:>10}",
            "n", "source s", "translated s", "−src start", "−src end"
        );
    }
    for (i, (s, t)) in source.iter().zip(translated).enumerate() {
        let from_start = t.start - s.start;
        let from_end = t.start - s.end;
        min_from_start = min_from_start.min(from_start);
        max_from_end = max_from_end.max(from_end);
        if rows {
            println!(
                "{:>4} {:>6.2}–{:<8.2} {:>6.2}–{:<8.2} {from_start:>+10.2} {from_end:>+10.2}",
                i + 1,
                s.start,
                s.end,
                t.start,
                t.end
            );
        }
        if from_start < -ONSET_TOLERANCE {
            early += 1;
        }
        if from_end > TRAIL_BUDGET {
            late += 1;
        }
        if (from_start < -ONSET_TOLERANCE || from_end > TRAIL_BUDGET) && failures.len() < 12 {
            failures.push(format!(
                "utterance {}: source {:.2}–{:.2} s, translation at {:.2} s ({from_start:+.2} s \
                 from its start, {from_end:+.2} s from its end)",
                i + 1,
                s.start,
                s.end,
                t.start
            ));
        }
    }
    println!(
        "placement: translation − source start ≥ {min_from_start:+.2} s, translation − source \
         end ≤ {max_from_end:+.2} s; {early} start before their source, {late} more than \
         {TRAIL_BUDGET} s after its end"
    );
    if failures.is_empty() {
        println!("all checks pass");
    } else {
        println!("FAILED:\n  {}", failures.join("\n  "));
    }
    assert!(
        failures.is_empty(),
        "{title}: {} failed check(s):\n  {}",
        failures.len(),
        failures.join("\n  ")
    );
}

/// Two sentences with a speaker's pause between them, about 5 s.
fn five_seconds(dir: &std::path::Path) -> (u32, Vec<i16>) {
    spoken(dir, &SENTENCES[..2], 0.3, &[0.8, 0.5])
}

/// The two sentences fed as `feed`, padded with silence to `length_s` if given; checked.
fn five_seconds_case(title: &str, feed: Feed, length_s: Option<usize>) {
    let dir = tempfile::tempdir().unwrap();
    let (rate, mut samples) = five_seconds(dir.path());
    if let Some(seconds) = length_s {
        samples.resize(seconds * rate as usize, 0);
    }
    let run = translate("", rate, &samples, feed, Duration::from_secs(60));
    check(title, &run, rate, &samples, true);
}

#[test]
fn five_seconds_in_100_ms_buffers() {
    five_seconds_case(
        "5 s of speech in 100 ms buffers",
        Feed::Timestamped { buffer_ms: 100 },
        None,
    );
}

#[test]
fn ten_seconds_in_one_buffer() {
    five_seconds_case(
        "speech and silence, 10 s in one buffer",
        Feed::OneBuffer,
        Some(10),
    );
}

#[test]
fn untimestamped_buffers() {
    five_seconds_case(
        "5 s of speech in 100 ms buffers without timestamps",
        Feed::Untimestamped { buffer_ms: 100 },
        None,
    );
}

/// Ten minutes of speech bursts (the three sentences over and over, with pauses) against an engine
/// that answers 300 ms late.
#[test]
fn ten_minutes_against_a_slow_engine() {
    let dir = tempfile::tempdir().unwrap();
    let (rate, cycle) = spoken(dir.path(), &SENTENCES, 0.5, &[1.2, 1.5, 1.0]);
    let mut samples = Vec::with_capacity(600 * rate as usize + cycle.len());
    while samples.len() < 600 * rate as usize {
        samples.extend_from_slice(&cycle);
    }
    let run = translate(
        "fault_answer_delay_ms=300",
        rate,
        &samples,
        Feed::Timestamped { buffer_ms: 100 },
        Duration::from_secs(180),
    );
    check(
        &format!(
            "{:.0} s of speech bursts in 100 ms buffers, fault_answer_delay_ms=300",
            samples.len() as f64 / rate as f64
        ),
        &run,
        rate,
        &samples,
        false,
    );
}
