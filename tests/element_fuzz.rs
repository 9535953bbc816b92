//! The element under random input and random server behaviour (see `tests/common/fuzz.rs` for
//! the cases and the invariants checked). A few fixed seeds here; `cargo bench --bench
//! element_fuzz` runs many.

mod common;
#[path = "common/fuzz.rs"]
mod fuzz;

use fuzz::{Case, rss_kb, run_case, server};

/// Resident memory may grow this much over all cases (each case's buffers are freed after it;
/// an unbounded queue shows as gigabytes).
const RSS_GROWTH_LIMIT_KB: u64 = 300 * 1024;

fn run_seeds(seeds: impl IntoIterator<Item = u64>, live: bool) {
    let server = server();
    let baseline = rss_kb();
    for seed in seeds {
        let case = Case::random(seed, live);
        let outcome = run_case(&server, &case);
        println!(
            "seed {seed} live {live}: {}/{} bursts answered, untranslated {:.1} s, dropped text {} chars, {:.1} s, faults {:?}",
            outcome.answered,
            outcome.bursts,
            outcome.untranslated_s,
            outcome.dropped_text,
            outcome.wall.as_secs_f64(),
            case.faults
        );
        assert!(
            outcome.rss_kb < baseline + RSS_GROWTH_LIMIT_KB,
            "seed {seed}: RSS {} MB after starting at {} MB",
            outcome.rss_kb / 1024,
            baseline / 1024
        );
    }
}

#[test]
fn random_input_against_a_misbehaving_server_keeps_every_invariant() {
    common::init();
    // Seed 102: U8, 8 channels, buffers of 1–64 frames; it once kept the pipeline from
    // prerolling (tiny output buffers filled the src queue before a text GAP was due).
    run_seeds((1..=8).chain([102]), false);
}

#[test]
fn random_live_input_against_a_misbehaving_server_keeps_every_invariant() {
    common::init();
    run_seeds([101, 102], true);
}

/// `FUZZ_SEED=N [FUZZ_LIVE=1] cargo test --test element_fuzz one_seed -- --ignored --nocapture`
/// replays one case.
#[test]
#[ignore = "replays the case FUZZ_SEED names"]
fn one_seed() {
    common::init();
    let seed = std::env::var("FUZZ_SEED").unwrap().parse().unwrap();
    let live = std::env::var("FUZZ_LIVE").is_ok_and(|v| v == "1");
    run_seeds([seed], live);
}
