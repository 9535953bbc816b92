//! Lifecycle: latency before connecting, no deadlock without queues, unlinked text pads, flushing
//! seeks, prompt stops and repeated state cycles.

mod common;

use common::*;
use gst::prelude::*;
use std::time::{Duration, Instant};

/// Accepts TCP connections and never answers the WebSocket handshake: a service that hangs.
fn stalled_server() -> (std::net::TcpListener, String) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "ws://{}/v1/realtime/translations",
        listener.local_addr().unwrap()
    );
    (listener, url)
}

#[test]
fn latency_is_answered_from_settings_before_any_connection() {
    init();
    let (_listener, url) = stalled_server();
    let pipeline = gst::parse::launch(&format!(
        "audiotestsrc is-live=true ! realtimetranslate name=t url={url} api-key=k latency=700 ! fakesink sync=true"
    ))
    .unwrap();
    let translate = pipeline
        .downcast_ref::<gst::Bin>()
        .unwrap()
        .by_name("t")
        .unwrap();
    // Not even started: the element alone knows its latency: `latency` plus its margin for
    // scheduling jitter, plus the cue assembly time when it pushes whole cues.
    let mut query = gst::query::Latency::new();
    assert!(translate.static_pad("src").unwrap().query(&mut query));
    assert_eq!(query.result().1, gst::ClockTime::from_mseconds(700 + 250));
    translate.set_property_from_str("subtitle-mode", "cues");
    let mut query = gst::query::Latency::new();
    assert!(translate.static_pad("src").unwrap().query(&mut query));
    assert_eq!(
        query.result().1,
        gst::ClockTime::from_mseconds(700 + 250 + 4000)
    );
    translate.set_property_from_str("subtitle-mode", "live");

    pipeline.set_state(gst::State::Playing).unwrap();
    let (result, _, _) = pipeline.state(gst::ClockTime::from_seconds(5));
    result.unwrap();
    let mut query = gst::query::Latency::new();
    assert!(pipeline.query(&mut query));
    let (live, min, _) = query.result();
    assert!(live);
    assert!(min >= gst::ClockTime::from_mseconds(700), "{min}");
    let started = Instant::now();
    pipeline.set_state(gst::State::Null).unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "stop took {:?}",
        started.elapsed()
    );
}

/// Both src pads straight into synchronising sinks, no queue anywhere: each pad pushes from its own
/// task, so neither branch can block the other.
#[test]
fn branches_without_queues_do_not_deadlock() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let (wav, _) = speech_wav(dir.path(), "talk", "Good afternoon.", 0.3, 1.2);
    let server = utterance_server();
    let captured = run(
        &format!(
            "filesrc location={} ! wavparse ! {} t.src ! fakesink sync=true t.subtitle_src ! fakesink sync=true \
             t.source_subtitle_src ! fakesink sync=true",
            wav.display(),
            element(&server, "transcription-model=whisper")
        ),
        Duration::from_secs(30),
    );
    assert!(captured.errors.is_empty(), "{:?}", captured.errors);
    assert!(captured.eos, "the pipeline stalled");
}

/// Text pads left unlinked (e.g. a gst_check harness on `src` only) do not stop the audio.
#[test]
fn unlinked_text_pads_do_not_stop_the_audio() {
    init();
    let server = echo_server();
    let element = gst::ElementFactory::make("realtimetranslate")
        .property("url", server.url())
        .property("api-key", KEY)
        .property_from_str("pacing", "none")
        .property("latency", 0u32)
        .build()
        .unwrap();
    let mut harness = gst_check::Harness::with_element(&element, Some("sink"), Some("src"));
    harness.set_src_caps_str("audio/x-raw,format=S16LE,rate=24000,channels=1,layout=interleaved");
    harness.play();
    let tone: Vec<i16> = (0..24_000)
        .map(|i| ((i as f64 * 0.1).sin() * 5000.0) as i16)
        .collect();
    for second in 0..3u64 {
        let bytes: Vec<u8> = tone.iter().flat_map(|s| s.to_le_bytes()).collect();
        let mut buffer = gst::Buffer::from_mut_slice(bytes);
        buffer
            .get_mut()
            .unwrap()
            .set_pts(gst::ClockTime::from_seconds(second));
        assert_eq!(harness.push(buffer), Ok(gst::FlowSuccess::Ok));
    }
    assert!(harness.push_event(gst::event::Eos::new()));
    let caps = harness.sinkpad().unwrap().current_caps().unwrap();
    assert_eq!(
        caps.structure(0).unwrap().get::<i32>("rate").unwrap(),
        24_000
    );
    let mut out = Vec::new();
    while let Some(buffer) = harness.pull_until_eos().unwrap() {
        let map = buffer.map_readable().unwrap();
        out.extend(
            map.chunks_exact(2)
                .map(|b| i16::from_le_bytes([b[0], b[1]])),
        );
    }
    // The echo engine returns the input: all 3 s of it come out, none lost.
    assert!(out.len() >= 3 * 24_000, "{} samples", out.len());
    let echoed = out.iter().filter(|s| s.unsigned_abs() > 1000).count();
    assert!(
        echoed > 2 * 24_000,
        "only {echoed} loud samples: the translation did not come through"
    );
}

/// What reached a branch linked to a text pad: (kind, PTS in s) of every GAP and text buffer,
/// and whether caps came first.
#[derive(Default)]
struct TextBranch {
    seen: Vec<(&'static str, f64)>,
    caps_first: bool,
}

/// Links `pad` to a new `queue ! fakesink` in `pipeline` while it plays, logging what arrives.
fn link_text_branch(
    pipeline: &gst::Pipeline,
    pad: &gst::Pad,
) -> std::sync::Arc<std::sync::Mutex<TextBranch>> {
    let queue = gst::ElementFactory::make("queue").build().unwrap();
    let sink = gst::ElementFactory::make("fakesink")
        .property("sync", false)
        .build()
        .unwrap();
    let branch = std::sync::Arc::new(std::sync::Mutex::new(TextBranch::default()));
    let log = branch.clone();
    sink.static_pad("sink").unwrap().add_probe(
        gst::PadProbeType::BUFFER | gst::PadProbeType::EVENT_DOWNSTREAM,
        move |_, info| {
            let mut log = log.lock().unwrap();
            match &info.data {
                Some(gst::PadProbeData::Buffer(b)) => {
                    let pts = b.pts().unwrap().seconds_f64();
                    log.seen.push(("text", pts));
                }
                Some(gst::PadProbeData::Event(e)) => match e.view() {
                    gst::EventView::Gap(g) => log.seen.push(("gap", g.get().0.seconds_f64())),
                    gst::EventView::Caps(_) => log.caps_first = log.seen.is_empty(),
                    _ => {}
                },
                _ => {}
            }
            gst::PadProbeReturn::Ok
        },
    );
    pipeline.add_many([&queue, &sink]).unwrap();
    queue.link(&sink).unwrap();
    queue.sync_state_with_parent().unwrap();
    sink.sync_state_with_parent().unwrap();
    pad.link(&queue.static_pad("sink").unwrap()).unwrap();
    branch
}

/// Text pads with nothing linked get no GAP events queued (nobody to tell); one linked while
/// playing gets the stream's sticky events, its GAPs and its text from then on.
#[test]
fn text_pads_linked_while_playing_get_gaps_and_text_from_then_on() {
    init();
    let server = echo_server();
    let pipeline = gst::parse::launch(&format!(
        "audiotestsrc is-live=true wave=sine volume=0.3 samplesperbuffer=480 \
         ! realtimetranslate name=t url={} api-key={KEY} ! fakesink sync=true",
        server.url()
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let translate = pipeline.by_name("t").unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let running = || {
        pipeline
            .clock()
            .zip(pipeline.base_time())
            .map_or(0.0, |(c, b)| (c.time() - b).seconds_f64())
    };
    while running() < 1.5 {
        std::thread::sleep(Duration::from_millis(20));
    }
    let linked_at = running();
    let pad = |name| translate.static_pad(name).unwrap();
    // The echo engine says "[n s]" once a second; with no transcription asked for, the source
    // text pad has nothing to say: GAPs alone.
    let subtitles = link_text_branch(&pipeline, &pad("subtitle_src"));
    let source = link_text_branch(&pipeline, &pad("source_subtitle_src"));
    while running() < linked_at + 3.5 {
        std::thread::sleep(Duration::from_millis(20));
    }
    pipeline.set_state(gst::State::Null).unwrap();
    for (name, branch, min_texts, min_gaps) in [
        ("subtitle_src", subtitles, 2, 0),
        // 3.5 s linked, less the element's latency (under a second): over 2 s in GAPs of at
        // most 100 ms.
        ("source_subtitle_src", source, 0, 15),
    ] {
        let branch = branch.lock().unwrap();
        let seen = &branch.seen;
        assert!(branch.caps_first, "{name}: no caps before its first item");
        let texts = seen.iter().filter(|s| s.0 == "text").count();
        let gaps = seen.iter().filter(|s| s.0 == "gap").count();
        assert!(texts >= min_texts, "{name}: {texts} text buffers: {seen:?}");
        assert!(gaps >= min_gaps, "{name}: {gaps} GAPs: {seen:?}");
        assert!(
            seen.windows(2).all(|w| w[1].1 >= w[0].1),
            "{name}: out of order: {seen:?}"
        );
        // From about when the pad was linked, not from the stream's start.
        assert!(
            seen[0].1 >= linked_at - 1.5,
            "{name}: first item at {} for a pad linked at {linked_at}",
            seen[0].1
        );
    }
}

#[test]
fn flushing_seek_restarts_the_session_cleanly() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let (wav, _) = speech_wav(
        dir.path(),
        "talk",
        "The weather today is sunny and warm.",
        0.5,
        1.5,
    );
    let server = utterance_server();
    let pipeline = gst::parse::launch(&format!(
        "filesrc location={} ! wavparse ! {} t.src ! appsink name=audio sync=true t.subtitle_src ! queue ! fakesink sync=true",
        wav.display(),
        element(&server, "")
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let mut seeked = false;
    let captured = run_pipeline(&pipeline, Duration::from_secs(30), |pipeline, elapsed| {
        if elapsed > Duration::from_millis(1500) && !std::mem::replace(&mut seeked, true) {
            assert!(
                pipeline
                    .seek_simple(
                        gst::SeekFlags::FLUSH | gst::SeekFlags::ACCURATE,
                        gst::ClockTime::ZERO
                    )
                    .is_ok()
            );
        }
    });
    assert!(captured.errors.is_empty(), "{:?}", captured.errors);
    assert!(captured.eos);
    // The output went back to the start once, and then ran to the end.
    let restarts = captured
        .audio
        .windows(2)
        .filter(|w| w[1].0 < w[0].0)
        .count();
    assert_eq!(restarts, 1);
    assert!(
        server
            .records()
            .wait_for_ended_sessions(2, Duration::from_secs(5))
    );
    let sessions = server.records().sessions();
    assert_eq!(
        sessions.len(),
        2,
        "one session before the seek, a new one after"
    );
    assert!(sessions.iter().all(|s| s.schema_errors.is_empty()));
    assert_eq!(sessions[1].events.last().unwrap().kind, "session.close");
}

#[test]
fn stopping_while_the_service_hangs_returns_promptly() {
    init();
    let (_listener, url) = stalled_server();
    let pipeline = gst::parse::launch(&format!(
        "audiotestsrc is-live=true ! realtimetranslate url={url} api-key=k ! fakesink"
    ))
    .unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    pipeline.set_state(gst::State::Null).unwrap();
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "stop took {:?}",
        started.elapsed()
    );
}

fn count_entries(dir: &str) -> usize {
    std::fs::read_dir(dir).unwrap().count()
}

#[test]
fn fifty_state_cycles_leak_nothing_and_hang_nothing() {
    init();
    let server = echo_server();
    let pipeline = gst::parse::launch(&format!(
        "audiotestsrc is-live=true samplesperbuffer=480 ! {} ! fakesink t.subtitle_src ! fakesink async=false",
        element(&server, "")
    ))
    .unwrap();
    let cycle = |pipeline: &gst::Element| {
        let started = Instant::now();
        pipeline.set_state(gst::State::Playing).unwrap();
        std::thread::sleep(Duration::from_millis(40));
        pipeline.set_state(gst::State::Null).unwrap();
        started.elapsed()
    };
    // Warm up (runtime threads, server connections), then measure.
    for _ in 0..3 {
        cycle(&pipeline);
    }
    std::thread::sleep(Duration::from_millis(300));
    let (threads, fds) = (
        count_entries("/proc/self/task"),
        count_entries("/proc/self/fd"),
    );
    let mut slowest = Duration::ZERO;
    for _ in 0..50 {
        slowest = slowest.max(cycle(&pipeline));
    }
    assert!(slowest < Duration::from_secs(1), "a cycle took {slowest:?}");
    std::thread::sleep(Duration::from_millis(500));
    let (threads_after, fds_after) = (
        count_entries("/proc/self/task"),
        count_entries("/proc/self/fd"),
    );
    assert!(
        threads_after <= threads + 2,
        "threads {threads} → {threads_after}"
    );
    assert!(fds_after <= fds + 2, "file descriptors {fds} → {fds_after}");
    assert!(
        server
            .records()
            .wait_for_ended_sessions(53, Duration::from_secs(5)),
        "sessions left open on the server"
    );
}
