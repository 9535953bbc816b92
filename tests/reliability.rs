//! A broadcast must go on whatever the service does: sessions rotate before they expire, lost
//! connections come back, and no translation is lost or repeated at a session boundary. Each test
//! injects one fault into the local server (`fault_*` query parameters) and checks what a viewer
//! would get.

mod common;

use common::*;
use realtimetranslate_server::BackgroundServer;
use std::time::{Duration, Instant};

/// Each burst answered exactly once, in order (the engine measures in 20 ms frames).
fn assert_each_answered_once(captured: &Captured, durations_ms: &[u64]) {
    let answers = answered(captured);
    assert_eq!(
        answers.len(),
        durations_ms.len(),
        "answers {answers:?} for bursts {durations_ms:?}: {:?}",
        captured.text()
    );
    for (got, want) in answers.iter().zip(durations_ms) {
        assert!(
            got.abs_diff(*want) <= 20,
            "answers {answers:?} for bursts {durations_ms:?}"
        );
    }
}

struct Run {
    captured: Captured,
    started: Instant,
}

fn translate(server: &BackgroundServer, faults: &str, durations_ms: &[u64], extra: &str) -> Run {
    init();
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("bursts.wav");
    write_wav(&wav, 24_000, &bursts(durations_ms));
    let started = Instant::now();
    let captured = run(
        &format!(
            "filesrc location={} ! wavparse ! realtimetranslate name=t url={}?{faults} \
             api-key={KEY} {extra} \
             t.src ! appsink name=audio sync=false \
             t.subtitle_src ! queue ! appsink name=text sync=false",
            wav.display(),
            server.url(),
        ),
        Duration::from_secs(60),
    );
    Run { captured, started }
}

/// The output is one continuous stream covering the input.
fn assert_continuous(captured: &Captured, durations_ms: &[u64]) {
    let input = bursts(durations_ms).len() as f64 / 24_000.0;
    let output = captured.duration_seconds();
    assert!(
        output >= input - 0.2,
        "output {output:.2} s for input {input:.2} s"
    );
    let mut expected = captured.first_pts();
    for (pts, samples) in &captured.audio {
        assert!(
            pts.nseconds().abs_diff(expected.nseconds()) <= 50_000,
            "output jumps at {pts} (expected {expected})"
        );
        expected =
            *pts + gst::ClockTime::from_nseconds(samples.len() as u64 * 1_000_000_000 / 24_000);
    }
    assert_eq!(captured.disconts, 1, "only the first buffer is DISCONT");
}

#[test]
fn sessions_rotate_before_expiry_without_losing_or_repeating_a_translation() {
    let server = utterance_server();
    // 6 s sessions, rotation opened 3 s in: the switch waits for a pause, and within the 1.5 s it
    // may wait there is always one (bursts last at most 1.1 s), so no burst is split.
    let durations = [600, 700, 800, 900, 1000, 1100, 600, 700];
    let run = translate(
        &server,
        "fault_expire_after_ms=6000",
        &durations,
        "rotation-margin=3000",
    );
    let captured = &run.captured;
    assert!(captured.errors.is_empty(), "{:?}", captured.errors);
    assert!(captured.eos);
    assert_each_answered_once(captured, &durations);
    assert_continuous(captured, &durations);
    let sessions = server.records().sessions();
    assert!(
        sessions.len() >= 3,
        "{} sessions for 15 s at 6 s each",
        sessions.len()
    );
    for session in &sessions {
        // Every session was closed by the element ahead of its expiry, politely.
        assert!(
            session.faults_fired.is_empty(),
            "{:?}",
            session.faults_fired
        );
        assert!(session.sent_session_closed, "{}", session.path_and_query);
    }
    let rotating = captured.connection_messages("rotating").len();
    assert_eq!(rotating, sessions.len() - 1);
    assert!(captured.connection_messages("reconnecting").is_empty());
}

#[test]
fn an_unannounced_expiry_is_replaced_at_once_and_loses_nothing() {
    let server = utterance_server();
    // Session 1 expires (unannounced) 4.2 s into its audio: the third burst (3.4–4.0 s) has been
    // sent but not answered yet. Session 2 is given it again, from just before session 1's last
    // answer, and would only expire after the input's end (6.5 s).
    let durations = [600, 500, 600, 500];
    let run = translate(&server, "fault_expire_early_ms=4200", &durations, "");
    let captured = &run.captured;
    assert!(captured.errors.is_empty(), "{:?}", captured.errors);
    let reconnecting = captured.connection_messages("reconnecting");
    assert_eq!(reconnecting.len(), 1, "{reconnecting:?}");
    assert_eq!(reconnecting[0].get::<u64>("delay-ms").unwrap(), 0);
    assert!(
        reconnecting[0]
            .get::<&str>("reason")
            .unwrap()
            .contains("session_expired")
    );
    // The replay starts after the second burst (answered by session 1) and before the third.
    let replay_from = reconnecting[0]
        .get::<gst::ClockTime>("input-position")
        .unwrap()
        .seconds_f64();
    assert!(
        replay_from > burst_start(&durations, 1) + 0.5 && replay_from < burst_start(&durations, 2),
        "replayed from {replay_from:.2} s"
    );
    assert_eq!(server.records().sessions().len(), 2);
    assert_each_answered_once(captured, &durations);
    assert_continuous(captured, &durations);
    assert_eq!(untranslated_seconds(captured), 0.0);
}

#[test]
fn rate_limited_start_backs_off_plays_the_original_and_translates_the_buffered_audio() {
    let server = utterance_server();
    // The three back-offs take up to 3.5 s: the last burst (5.4 s) comes well after them.
    let durations = [600, 700, 800, 900];
    let run = translate(&server, "fault_rate_limit_first=3", &durations, "");
    let captured = &run.captured;
    assert!(captured.errors.is_empty(), "{:?}", captured.errors);
    let reconnecting = captured.connection_messages("reconnecting");
    let attempts: Vec<u32> = reconnecting
        .iter()
        .map(|m| m.get("attempt").unwrap())
        .collect();
    assert_eq!(attempts, [1, 2, 3]);
    let delays: Vec<u64> = reconnecting
        .iter()
        .map(|m| m.get("delay-ms").unwrap())
        .collect();
    // Exponential with jitter: 0.25–0.5 s, 0.5–1 s, 1–2 s.
    for (delay, (low, high)) in delays.iter().zip([(250, 500), (500, 1000), (1000, 2000)]) {
        assert!((low..=high).contains(delay), "delays {delays:?}");
    }
    assert_eq!(server.records().handshakes_refused(), 3);
    // Nothing lost: the audio of the outage (under the 10 s outage buffer) was replayed.
    assert_each_answered_once(captured, &durations);
    // Meanwhile src carried the original (fallback=original, the default): the first burst,
    // spoken during the outage, is heard at full level.
    let samples = captured.samples();
    let first = burst_start(&durations, 0);
    let level = tone_amplitude(
        &samples[((first + 0.1) * 24_000.0) as usize..((first + 0.5) * 24_000.0) as usize],
        1000.0,
    );
    assert!(
        (level - 4000.0).abs() < 200.0,
        "original during the outage: {level:.0}"
    );
    // Once connected, the original is gone again (translation only).
    let last = burst_start(&durations, 3);
    let level = tone_amplitude(
        &samples[((last + 0.1) * 24_000.0) as usize..((last + 0.5) * 24_000.0) as usize],
        1000.0,
    );
    assert!(level < 5.0, "original after reconnecting: {level:.0}");
    assert_continuous(captured, &durations);
}

#[test]
fn fallback_silence_keeps_the_original_out_during_an_outage() {
    let server = utterance_server();
    let durations = [600, 700];
    let run = translate(
        &server,
        "fault_rate_limit_first=3",
        &durations,
        "fallback=silence",
    );
    let captured = &run.captured;
    assert!(captured.errors.is_empty(), "{:?}", captured.errors);
    let samples = captured.samples();
    let first = burst_start(&durations, 0);
    let level = tone_amplitude(
        &samples[((first + 0.1) * 24_000.0) as usize..((first + 0.5) * 24_000.0) as usize],
        1000.0,
    );
    assert!(level < 5.0, "original during the outage: {level:.0}");
    assert_each_answered_once(captured, &durations);
}

/// When the first `reconnecting` message arrived, after the first session's fault fired, and
/// the message.
fn noticed_after_fault(run: &Run, server: &BackgroundServer) -> (Duration, gst::Structure) {
    let sessions = server.records().sessions();
    let fired_at = sessions[0].faults_fired[0].at;
    let (noticed_after_start, message) = run
        .captured
        .messages
        .iter()
        .find(|(_, m)| m.get::<&str>("status").is_ok_and(|s| s == "reconnecting"))
        .expect("a reconnection");
    let noticed_at = run.started + *noticed_after_start;
    (
        noticed_at.saturating_duration_since(fired_at),
        message.clone(),
    )
}

#[test]
fn a_stalled_connection_is_detected_within_the_keepalive_timeout_and_its_audio_sent_again() {
    let server = utterance_server();
    // Session 1 stops reading and writing (no pongs) 3 s in, after the second burst's answer:
    // the third burst goes into the dead connection.
    let durations = [600, 500, 600, 500];
    let run = translate(
        &server,
        "fault_stall_after_audio_ms=3000",
        &durations,
        "keepalive-timeout=1000",
    );
    let captured = &run.captured;
    assert!(captured.errors.is_empty(), "{:?}", captured.errors);
    let (detection, message) = noticed_after_fault(&run, &server);
    assert!(
        detection <= Duration::from_millis(1800),
        "noticed after {detection:?}"
    );
    assert!(
        message
            .get::<&str>("reason")
            .unwrap()
            .contains("nothing from the server"),
        "{message}"
    );
    // The audio session 1 never answered went to the next session: every burst answered once.
    assert_each_answered_once(captured, &durations);
    assert_continuous(captured, &durations);
    assert_eq!(untranslated_seconds(captured), 0.0);
}

#[test]
fn an_engine_that_falls_silent_on_an_open_socket_is_replaced_and_loses_nothing() {
    let server = utterance_server();
    // Session 1's engine says nothing more 3.8 s in (pings still answered, audio read and
    // discarded), during the third burst: only the element's own check can notice. Session 2
    // is given the audio from the second burst's answer on, 3.7 s of it: it would fall silent
    // only after the input's end.
    let durations = [600, 500, 600, 300];
    let run = translate(
        &server,
        "fault_mute_after_audio_ms=3800",
        &durations,
        "keepalive-timeout=3000",
    );
    let captured = &run.captured;
    assert!(captured.errors.is_empty(), "{:?}", captured.errors);
    let (detection, message) = noticed_after_fault(&run, &server);
    assert!(
        detection <= Duration::from_millis(3800),
        "noticed after {detection:?}"
    );
    assert!(
        message
            .get::<&str>("reason")
            .unwrap()
            .contains("said nothing for 3000 ms"),
        "{message}"
    );
    assert_each_answered_once(captured, &durations);
    assert_continuous(captured, &durations);
    assert_eq!(untranslated_seconds(captured), 0.0);
}

#[test]
fn a_slow_engine_cut_mid_speech_has_its_unanswered_audio_sent_again() {
    let server = utterance_server();
    // Every answer comes 2 s late, and the connection drops 4.2 s into the audio: the third
    // burst (3.4–4.0 s) and the answer to the second are in flight.
    let durations = [600, 500, 600, 500];
    let run = translate(
        &server,
        "fault_drop_after_audio_ms=4200&fault_answer_delay_ms=2000",
        &durations,
        "",
    );
    let captured = &run.captured;
    assert!(captured.errors.is_empty(), "{:?}", captured.errors);
    assert!(!captured.connection_messages("reconnecting").is_empty());
    assert_each_answered_once(captured, &durations);
    assert_continuous(captured, &durations);
    assert_eq!(untranslated_seconds(captured), 0.0);
}

#[test]
fn dropped_connection_and_server_error_are_recovered() {
    for fault in [
        "fault_drop_after_audio_ms=2500",
        "fault_server_error_after_audio_ms=2500",
    ] {
        let server = utterance_server();
        let durations = [600, 700, 800, 900];
        let run = translate(&server, fault, &durations, "");
        let captured = &run.captured;
        assert!(captured.errors.is_empty(), "{fault}: {:?}", captured.errors);
        assert!(
            !captured.connection_messages("reconnecting").is_empty(),
            "{fault}"
        );
        assert!(server.records().sessions().len() >= 2, "{fault}");
        let answers = answered(captured);
        assert!(answers.len() >= durations.len() - 1, "{fault}: {answers:?}");
        assert!(
            answers.last().unwrap().abs_diff(900) <= 20,
            "{fault}: {answers:?}"
        );
        assert_continuous(captured, &durations);
        assert!(!captured.warnings.is_empty(), "{fault}: a warning");
    }
}

#[test]
fn quota_and_key_errors_mid_session_are_fatal_without_retry() {
    for (code, needle) in [
        ("insufficient_quota", "insufficient_quota"),
        ("invalid_api_key", "Authentication failed"),
    ] {
        let server = utterance_server();
        let run = translate(
            &server,
            &format!("fault_error_after_audio_ms=1500&fault_error_code={code}"),
            &[600, 700, 800],
            "",
        );
        let captured = &run.captured;
        assert_eq!(captured.errors.len(), 1, "{code}: {:?}", captured.errors);
        assert!(captured.errors[0].contains(needle), "{:?}", captured.errors);
        assert!(!captured.errors[0].contains(KEY));
        std::thread::sleep(Duration::from_millis(500));
        assert_eq!(server.records().sessions().len(), 1, "{code}: no retry");
        assert!(captured.connection_messages("reconnecting").is_empty());
        assert_eq!(captured.connection_messages("failed").len(), 1);
    }
}

#[test]
fn garbage_from_the_server_is_a_warning_and_an_oversized_frame_a_reconnect() {
    for kind in [
        "malformed_json",
        "unknown_event",
        "invalid_base64",
        "binary",
    ] {
        let server = utterance_server();
        let durations = [600, 700];
        let run = translate(&server, &format!("fault_send={kind}"), &durations, "");
        let captured = &run.captured;
        assert!(captured.errors.is_empty(), "{kind}: {:?}", captured.errors);
        assert_each_answered_once(captured, &durations);
        assert_eq!(
            server.records().sessions().len(),
            1,
            "{kind}: no reconnection"
        );
        if kind != "unknown_event" {
            assert!(!captured.warnings.is_empty(), "{kind}: a warning");
        }
    }
    let server = utterance_server();
    let durations = [600, 700];
    let run = translate(&server, "fault_send=oversized", &durations, "");
    let captured = &run.captured;
    assert!(captured.errors.is_empty(), "{:?}", captured.errors);
    // 20 MiB is past the 8 MiB frame bound: the connection is dropped and reopened (each new
    // one gets the same frame, so the element keeps retrying with back-off) — never a crash.
    let reconnecting = captured.connection_messages("reconnecting");
    assert!(!reconnecting.is_empty());
    assert!(
        reconnecting[0]
            .get::<&str>("reason")
            .unwrap()
            .contains("Message too long")
            || reconnecting[0]
                .get::<&str>("reason")
                .unwrap()
                .contains("too big")
            || reconnecting[0]
                .get::<&str>("reason")
                .unwrap()
                .contains("size"),
        "{}",
        reconnecting[0]
    );
}

#[test]
fn statistics_are_posted_periodically() {
    let server = utterance_server();
    let durations = [600, 700];
    let run = translate(&server, "", &durations, "stats-interval=500");
    let captured = &run.captured;
    assert!(captured.errors.is_empty(), "{:?}", captured.errors);
    let stats: Vec<_> = captured
        .messages
        .iter()
        .filter(|(_, m)| m.name() == "realtimetranslate/stats")
        .collect();
    // One message every 0.5 s for as long as the stream ran.
    let expected = run.started.elapsed().as_secs_f64() / 0.5;
    assert!(
        (expected - 3.0..=expected + 1.0).contains(&(stats.len() as f64)),
        "{} stats messages in {:.1} s",
        stats.len(),
        run.started.elapsed().as_secs_f64()
    );
    assert!(stats.len() >= 3, "{} stats messages", stats.len());
    let last = &stats.last().unwrap().1;
    assert!(
        last.get::<f64>("audio-sent-seconds").unwrap() > 2.0,
        "{last}"
    );
    assert_eq!(last.get::<&str>("connection-state").unwrap(), "connected");
    assert_eq!(last.get::<u64>("reconnects").unwrap(), 0);
    // The ear-voice span of the bursts answered so far: from each burst's start to its answer's
    // (the engine answers 0.4 s after a burst ends; the write head is 0.2 s behind).
    let utterances = last.get::<u64>("utterances").unwrap();
    assert!(utterances >= 1, "{last}");
    let p50 = last.get::<f64>("ear-voice-span-p50").unwrap();
    let max = last.get::<f64>("ear-voice-span-max").unwrap();
    assert!((0.6..2.0).contains(&p50) && max >= p50, "{last}");
}
