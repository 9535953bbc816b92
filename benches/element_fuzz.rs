//! Many random cases of the element fuzz test (`tests/element_fuzz.rs`): random input against a
//! misbehaving server, every invariant checked per case. `FUZZ_CASES` (default 60) non-live
//! cases and a tenth as many live ones; prints per case and a summary: cases, bursts answered,
//! untranslated seconds, dropped subtitle text, wall time, and resident memory against the
//! baseline measured before the first case.

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "../tests/common/fuzz.rs"]
mod fuzz;

use fuzz::{Case, rss_kb, run_case, server};
use std::time::Instant;

fn main() {
    common::init();
    let cases: u64 = std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    let server = server();
    let baseline = rss_kb();
    let started = Instant::now();
    let (mut bursts, mut answered, mut untranslated, mut dropped_text, mut peak) =
        (0, 0, 0.0, 0, 0);
    let live_cases = (cases / 10).max(1);
    for (seed, live) in (1_000..1_000 + cases)
        .map(|seed| (seed, false))
        .chain((5_000..5_000 + live_cases).map(|seed| (seed, true)))
    {
        let case = Case::random(seed, live);
        let outcome = run_case(&server, &case);
        println!(
            "seed {seed} live {live}: {}/{} answered, untranslated {:.1} s, dropped text {}, {:.1} s, RSS {} MB, faults {:?}",
            outcome.answered,
            outcome.bursts,
            outcome.untranslated_s,
            outcome.dropped_text,
            outcome.wall.as_secs_f64(),
            outcome.rss_kb / 1024,
            case.faults
        );
        bursts += outcome.bursts;
        answered += outcome.answered;
        untranslated += outcome.untranslated_s;
        dropped_text += outcome.dropped_text;
        peak = peak.max(outcome.rss_kb);
    }
    println!(
        "\n{} cases ({} live) in {:.0} s: every invariant held; {answered}/{bursts} bursts answered, {untranslated:.1} s counted untranslated, {dropped_text} subtitle characters dropped (counted); RSS baseline {} MB, peak {} MB",
        cases + live_cases,
        live_cases,
        started.elapsed().as_secs_f64(),
        baseline / 1024,
        peak / 1024
    );
}
