//! Per-language request pads: `src_%s` and `subtitle_src_%s` beside the always pads, one session
//! per language over the one converted input. Real pipelines, real sessions on 127.0.0.1: the
//! offline engine (flite speech translated into Spanish, Catalan and Esperanto) for each
//! language's content; the utterance engine, whose answers cost nothing, for live timing, for a
//! language joining or leaving mid-stream and for a cut of one language's connection.

mod common;

use common::timing::*;
use common::*;
use gst::prelude::*;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Three sentences the offline engine understands, with a speaker's pauses.
const SENTENCES: [&str; 3] = [
    "The weather is very nice today.",
    "My brother lives in a big house.",
    "Thank you very much for your help.",
];
const PAUSES: [f64; 3] = [1.2, 1.5, 1.5];

/// Words of each language's translation of [`SENTENCES`] (Apertium's): "today", "brother",
/// "help"/"thank you". Each belongs to one language only.
const MARKERS: [(&str, [&str; 3]); 3] = [
    ("es", ["hoy", "hermano", "ayuda"]),
    ("ca", ["avui", "germà", "ajut"]),
    ("eo", ["hodiaŭ", "frat", "helpo"]),
];

/// Where the source is measured to a 20 ms frame: a translation may start this much before.
const ONSET_TOLERANCE: f64 = 0.04;

/// Records, under `name`, the language tag of every TAG event passing `pad`.
fn record_language_tags(
    pad: &gst::Pad,
    name: &str,
    into: Arc<Mutex<HashMap<String, Vec<String>>>>,
) {
    let name = name.to_owned();
    pad.add_probe(gst::PadProbeType::EVENT_DOWNSTREAM, move |_, info| {
        if let Some(gst::PadProbeData::Event(event)) = &info.data
            && let gst::EventView::Tag(tag) = event.view()
            && let Some(code) = tag.tag().get::<gst::tags::LanguageCode>()
        {
            into.lock()
                .unwrap()
                .entry(name.clone())
                .or_default()
                .push(code.get().to_owned());
        }
        gst::PadProbeReturn::Ok
    });
}

/// What a text pad said, lower-cased.
fn spoken_text(run: &Run, pad: &str) -> String {
    run.pad(pad)
        .texts()
        .into_iter()
        .map(|(_, text)| text)
        .collect::<String>()
        .to_lowercase()
}

/// The always pads and two requested languages' pads, each pad's name and its language.
const LIVE_PADS: [(&str, &str); 6] = [
    ("src", "es"),
    ("subtitle_src", "es"),
    ("src_fr", "fr"),
    ("subtitle_src_fr", "fr"),
    ("src_de", "de"),
    ("subtitle_src_de", "de"),
];

/// Requests the pads of `pads` that are not always pads, and records their language tags.
fn request_and_tag(
    element: &gst::Element,
    pads: &[&str],
) -> Arc<Mutex<HashMap<String, Vec<String>>>> {
    let tags = Arc::new(Mutex::new(HashMap::new()));
    for name in pads {
        let pad = element
            .static_pad(name)
            .or_else(|| element.request_pad_simple(name))
            .unwrap_or_else(|| panic!("pad {name}"));
        record_language_tags(&pad, name, tags.clone());
    }
    tags
}

/// Checks each pad's tags are exactly its language.
fn check_tags(
    tags: &Mutex<HashMap<String, Vec<String>>>,
    pads: &[(&str, &str)],
    failures: &mut Vec<String>,
) {
    for (pad, language) in pads {
        let got = tags.lock().unwrap().get(*pad).cloned();
        if got.as_deref() != Some(&[language.to_string()][..]) {
            failures.push(format!(
                "{pad} language tags {got:?}, expected [{language}]"
            ));
        }
    }
}

/// The audio pad's buffers cover the whole input, with no holes.
fn check_covers_input(run: &Run, audio: &str, failures: &mut Vec<String>) {
    let (holes, covered) = audio_coverage(run.pad(audio), 0.0005);
    match covered {
        Some(c) if c.start <= run.input_start + 0.001 && c.end >= run.input_end - 0.001 => {}
        other => failures.push(format!("{audio} covers {other:?}, not the whole input")),
    }
    if !holes.is_empty() {
        failures.push(format!(
            "{audio}: {} holes, first {:?}",
            holes.len(),
            holes[0]
        ));
    }
}

/// The final `stats` of each language says it was sent the whole input.
fn check_stats(run: &Run, languages: &[&str], failures: &mut Vec<String>) {
    for language in languages {
        let stats = run.messages.iter().rev().find(|m| {
            m.name() == "realtimetranslate/stats"
                && m.get::<String>("language").ok().as_deref() == Some(*language)
        });
        match stats.map(|s| s.get::<f64>("audio-sent-seconds").unwrap()) {
            Some(sent) if sent >= run.input_end - 0.5 => {}
            other => failures.push(format!(
                "{language}: stats audio-sent-seconds {other:?} for {:.2} s of input",
                run.input_end
            )),
        }
    }
}

fn assert_no_failures(failures: Vec<String>) {
    assert!(
        failures.is_empty(),
        "{} failed check(s):\n  {}",
        failures.len(),
        failures.join("\n  ")
    );
}

#[test]
fn two_requested_languages_beside_the_always_pads_live_all_on_time() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let (rate, samples) = spoken(dir.path(), &SENTENCES, 0.5, &PAUSES);
    // The utterance engine, half a second late: three sessions whose answers cost the machine
    // nothing, so what is measured is the element's own timing.
    let server = utterance_server();
    let url = format!("{}?fault_answer_delay_ms=500", server.url());
    let element = translator(&[
        ("url", url.as_str()),
        ("api-key", KEY),
        ("target-language", "es"),
        ("transcription-model", "gpt-realtime-whisper"),
        ("fallback", "silence"),
        ("subtitle-mode", "live"),
    ]);
    let mut pads: Vec<&str> = LIVE_PADS.iter().map(|(pad, _)| *pad).collect();
    pads.push("source_subtitle_src");
    let tags = request_and_tag(&element, &pads);
    let run = run_live_pads(element, rate, &samples, &pads, Duration::from_secs(60));

    let mut failures = pipeline_failures(&run);
    let latency = run.reported_latency();
    println!(
        "reported latency {:.0} ms; input {:.2} s",
        latency * 1000.0,
        run.input_end
    );
    for (pad, _, min, _) in &run.latencies {
        if (min - latency).abs() > 1e-6 {
            failures.push(format!(
                "{pad} reports {min:.3} s of latency, src {latency:.3} s"
            ));
        }
    }
    // On time and in order, on every pad of every language.
    for pad in &run.pads {
        let l = lateness(&run, pad, latency);
        println!(
            "{:<20} {:>4} buffers {:>4} gaps, worst {:>7.1} ms (less input's {:>7.1} ms), late {}",
            pad.name,
            pad.buffers().count(),
            pad.gaps(),
            l.worst * 1000.0,
            l.worst_excused * 1000.0,
            l.late
        );
        if l.items == 0 {
            failures.push(format!("{}: nothing timed arrived", pad.name));
        }
        if l.late > 0 {
            failures.push(format!(
                "{}: {} of {} items after position + reported latency, worst {:.1} ms at {:.2} s",
                pad.name,
                l.late,
                l.items,
                l.worst_excused * 1000.0,
                l.worst_excused_at
            ));
        }
        if let Some((prev, this)) = backwards(pad).first() {
            failures.push(format!(
                "{}: position goes back from {prev:.3} to {this:.3} s",
                pad.name
            ));
        }
    }
    for (audio, text) in [
        ("src", "subtitle_src"),
        ("src_fr", "subtitle_src_fr"),
        ("src_de", "subtitle_src_de"),
    ] {
        // Each language's audio covers the input; each answers every sentence once, after it.
        check_covers_input(&run, audio, &mut failures);
        let said = spoken_text(&run, text);
        let answered = answers(&said);
        println!("{text}: {answered:?}");
        if answered.len() != run.source.len() {
            failures.push(format!(
                "{text}: {} answers for {} sentences: {said:?}",
                answered.len(),
                run.source.len()
            ));
        }
        let spans = sound_spans(run.pad(audio));
        if let (Some(first), Some(source)) = (spans.first(), run.source.first())
            && first.start < source.start - ONSET_TOLERANCE
        {
            failures.push(format!(
                "{audio}: speech at {:.2} s before the source starts at {:.2} s",
                first.start, source.start
            ));
        }
    }
    if run.pad("source_subtitle_src").texts().is_empty() {
        failures.push("no source transcript on source_subtitle_src".into());
    }
    check_tags(&tags, &LIVE_PADS, &mut failures);
    check_stats(&run, &["es", "fr", "de"], &mut failures);
    assert_no_failures(failures);
}

#[test]
fn each_requested_language_speaks_and_writes_its_own_language() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let (rate, samples) = spoken(dir.path(), &SENTENCES, 0.5, &PAUSES);
    // The offline engine, English into Spanish (always pads), Catalan and Esperanto (requested).
    // Not live (fed at clock pace): how soon three real engines answer on a busy machine is not
    // what is checked here, so no deadline applies.
    let element = translator(&[
        ("backend", "local"),
        ("model", "pocketsphinx"),
        ("target-language", "es"),
        ("fallback", "silence"),
    ]);
    let pads = [
        ("src", "es"),
        ("subtitle_src", "es"),
        ("src_ca", "ca"),
        ("subtitle_src_ca", "ca"),
        ("src_eo", "eo"),
        ("subtitle_src_eo", "eo"),
    ];
    let names: Vec<&str> = pads.iter().map(|(pad, _)| *pad).collect();
    let tags = request_and_tag(&element, &names);
    let run = run_nonlive_pads(
        element,
        rate,
        &samples,
        Feed::Timestamped { buffer_ms: 100 },
        &names,
        Duration::from_secs(120),
    );
    let mut failures = pipeline_failures(&run);
    for (language, markers) in MARKERS {
        let (audio, text) = if language == "es" {
            ("src".to_owned(), "subtitle_src".to_owned())
        } else {
            (
                format!("src_{language}"),
                format!("subtitle_src_{language}"),
            )
        };
        // The audio covers the input, with translated speech, never ahead of its source.
        check_covers_input(&run, &audio, &mut failures);
        let spans = sound_spans(run.pad(&audio));
        let speech: f64 = spans.iter().map(|s| s.duration()).sum();
        println!("{audio}: {speech:.2} s of translated speech in {spans:?}");
        if speech < 3.0 {
            failures.push(format!("{audio}: only {speech:.2} s of translated speech"));
        }
        if let (Some(first), Some(source)) = (spans.first(), run.source.first())
            && first.start < source.start - ONSET_TOLERANCE
        {
            failures.push(format!(
                "{audio}: speech at {:.2} s before the source starts at {:.2} s",
                first.start, source.start
            ));
        }
        // The text is in the pad's own language.
        let said = spoken_text(&run, &text);
        println!("{text}: {said:?}");
        let own = markers.iter().filter(|m| said.contains(*m)).count();
        if own < 2 {
            failures.push(format!(
                "{text}: {own} of the {language} words {markers:?} in {said:?}"
            ));
        }
        for (other, words) in MARKERS.iter().filter(|(other, _)| *other != language) {
            if let Some(word) = words.iter().find(|w| said.contains(*w)) {
                failures.push(format!("{text} has the {other} word {word:?}: {said:?}"));
            }
        }
    }
    // Each language speaks its own translation: not the same audio.
    let audio_of = |pad: &str| -> Vec<i16> {
        run.pad(pad)
            .buffers()
            .flat_map(|r| r.samples.iter().copied())
            .collect()
    };
    if audio_of("src") == audio_of("src_ca") || audio_of("src_ca") == audio_of("src_eo") {
        failures.push("two languages carry the same audio".into());
    }
    check_tags(&tags, &pads, &mut failures);
    check_stats(&run, &["es", "ca", "eo"], &mut failures);
    assert_no_failures(failures);
}

/// The `D` of every "Frase n de D ms." of the utterance engine, in order.
fn answers(text: &str) -> Vec<u64> {
    text.split("de ")
        .skip(1)
        .filter_map(|rest| rest.split(" ms").next()?.parse().ok())
        .collect()
}

fn cue_text(cues: &Mutex<Vec<Cue>>) -> String {
    cues.lock()
        .unwrap()
        .iter()
        .map(|c| c.text.as_str())
        .collect()
}

/// The target language a session was given (its `session.update`).
fn session_language(record: &realtimetranslate_server::SessionRecord) -> Option<String> {
    record
        .events
        .iter()
        .filter(|e| e.kind == "session.update")
        .filter_map(|e| e.json["session"]["audio"]["output"]["language"].as_str())
        .next_back()
        .map(str::to_owned)
}

/// The always pads in Spanish, `src_fr` and `subtitle_src_fr` beside them, over the utterance
/// engine; `faults` on the URL. Returns the always pads' capture and the French text.
fn run_with_french(
    server: &realtimetranslate_server::BackgroundServer,
    faults: &str,
    durations_ms: &[u64],
    mut tick: impl FnMut(&gst::Pipeline, &Mutex<Vec<Cue>>),
) -> (Captured, String) {
    init();
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("bursts.wav");
    write_wav(&wav, 24_000, &bursts(durations_ms));
    let pipeline = launch(&format!(
        "filesrc location={} ! wavparse ! realtimetranslate name=t url={}?{faults} \
         api-key={KEY} target-language=es \
         t.src ! appsink name=audio sync=false \
         t.subtitle_src ! queue ! appsink name=text sync=false \
         t.src_fr ! queue ! appsink name=fr_audio sync=false \
         t.subtitle_src_fr ! queue ! appsink name=fr_text sync=false",
        wav.display(),
        server.url(),
    ));
    let french = Arc::new(Mutex::new(Vec::new()));
    capture_text(
        &pipeline.by_name("fr_text").unwrap().downcast().unwrap(),
        french.clone(),
    );
    // Pulled, or the sink would hold its end of stream until it is.
    pipeline
        .by_name("fr_audio")
        .unwrap()
        .downcast::<gst_app::AppSink>()
        .unwrap()
        .set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(|sink| {
                    sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                    Ok(gst::FlowSuccess::Ok)
                })
                .build(),
        );
    let captured = run_pipeline(&pipeline, Duration::from_secs(60), |pipeline, _| {
        tick(pipeline, &french)
    });
    let text = cue_text(&french);
    (captured, text)
}

/// Releases a request pad while playing: unlinked, released, and its branch (a queue and the
/// sink named `sink`) taken out of the pipeline.
fn release(pipeline: &gst::Pipeline, name: &str, sink: &str) {
    let t = pipeline.by_name("t").unwrap();
    let pad = t.static_pad(name).unwrap();
    let peer = pad.peer().unwrap();
    pad.unlink(&peer).unwrap();
    t.release_request_pad(&pad);
    let queue = peer.parent_element().unwrap();
    for element in [queue, pipeline.by_name(sink).unwrap()] {
        element.set_state(gst::State::Null).unwrap();
        pipeline.remove(&element).unwrap();
    }
}

#[test]
fn releasing_a_language_closes_its_session_while_the_others_go_on() {
    let server = utterance_server();
    let durations = [600, 700, 800, 900, 1000, 1100];
    let mut released = false;
    let (captured, french) = run_with_french(&server, "", &durations, |pipeline, french| {
        // Once playing, after French has answered.
        if !released
            && pipeline.current_state() == gst::State::Playing
            && answers(&cue_text(french)).len() >= 2
        {
            released = true;
            release(pipeline, "src_fr", "fr_audio");
            release(pipeline, "subtitle_src_fr", "fr_text");
            assert!(
                pipeline
                    .by_name("t")
                    .unwrap()
                    .static_pad("src_fr")
                    .is_none()
            );
        }
    });
    assert!(captured.errors.is_empty(), "{:?}", captured.errors);
    assert!(captured.eos, "no EOS");
    assert!(released, "French never answered");
    let spanish = answered(&captured);
    let french = answers(&french);
    println!("Spanish answers {spanish:?}, French {french:?}");
    assert_eq!(spanish.len(), durations.len(), "{}", captured.text());
    assert!(
        !french.is_empty() && french.len() < durations.len(),
        "French answered {french:?} though released after its first answer"
    );

    let sessions = server.records().sessions();
    let of = |language: &str| -> Vec<_> {
        sessions
            .iter()
            .filter(|s| session_language(s).as_deref() == Some(language))
            .cloned()
            .collect()
    };
    let (es, fr) = (of("es"), of("fr"));
    assert_eq!((es.len(), fr.len()), (1, 1), "one session per language");
    let (es, fr) = (&es[0], &fr[0]);
    assert!(
        fr.events.iter().any(|e| e.kind == "session.close") && fr.ended,
        "the French session was not closed: {:?}",
        fr.events.iter().map(|e| &e.kind).collect::<Vec<_>>()
    );
    let last_append = |s: &realtimetranslate_server::SessionRecord| {
        s.events
            .iter()
            .filter(|e| e.audio_samples.is_some())
            .map(|e| e.received_at)
            .max()
            .unwrap()
    };
    let went_on = last_append(es).duration_since(last_append(fr));
    println!("Spanish audio went on {went_on:?} after the French session's last");
    assert!(
        went_on > Duration::from_secs(2),
        "Spanish audio stopped {went_on:?} after French's"
    );
}

#[test]
fn a_cut_of_one_language_does_not_disturb_the_others() {
    let server = utterance_server();
    let durations = [600, 700, 800, 900, 1000, 1100];
    let (captured, french) = run_with_french(
        &server,
        "fault_drop_after_audio_ms=3000&fault_language=fr",
        &durations,
        |_, _| {},
    );
    assert!(captured.errors.is_empty(), "{:?}", captured.errors);
    assert!(captured.eos, "no EOS");
    let spanish = answered(&captured);
    let french = answers(&french);
    println!("Spanish answers {spanish:?}, French {french:?}");
    for (language, got) in [("es", &spanish), ("fr", &french)] {
        assert_eq!(got.len(), durations.len(), "{language}: {got:?}");
        for (got, want) in got.iter().zip(&durations) {
            assert!(got.abs_diff(*want) <= 20, "{language}: {got} for {want} ms");
        }
    }
    // Only French reconnected; Spanish kept its one session and a continuous output.
    let reconnecting: Vec<String> = captured
        .connection_messages("reconnecting")
        .iter()
        .map(|m| m.get::<String>("language").unwrap())
        .collect();
    assert!(
        !reconnecting.is_empty() && reconnecting.iter().all(|l| l == "fr"),
        "reconnections {reconnecting:?}"
    );
    let sessions = server.records().sessions();
    let count = |language: &str| {
        sessions
            .iter()
            .filter(|s| session_language(s).as_deref() == Some(language))
            .count()
    };
    assert_eq!(count("es"), 1, "Spanish sessions");
    assert!(count("fr") >= 2, "French sessions: {}", count("fr"));
    let mut expected = captured.first_pts();
    for (pts, samples) in &captured.audio {
        assert!(
            pts.nseconds().abs_diff(expected.nseconds()) <= 50_000,
            "Spanish output jumps at {pts} (expected {expected})"
        );
        expected =
            *pts + gst::ClockTime::from_nseconds(samples.len() as u64 * 1_000_000_000 / 24_000);
    }
}

/// The error message a refused pad request put on the bus.
fn refusal(bus: &gst::Bus) -> String {
    let message = bus
        .pop_filtered(&[gst::MessageType::Error])
        .expect("an error on the bus");
    let gst::MessageView::Error(err) = message.view() else {
        unreachable!()
    };
    err.error().to_string()
}

#[test]
fn a_language_the_backend_cannot_take_is_refused_with_the_valid_codes() {
    init();
    let pipeline = gst::Pipeline::new();
    let t = gst::ElementFactory::make("realtimetranslate")
        .build()
        .unwrap();
    pipeline.add(&t).unwrap();
    let bus = pipeline.bus().unwrap();

    assert!(t.request_pad_simple("src_xx").is_none());
    let text = refusal(&bus);
    assert!(
        text.contains("src_xx")
            && text.contains("es, pt, fr, ja, ru, zh, de, ko, hi, id, vi, it, en"),
        "{text}"
    );
    t.set_property_from_str("backend", "local");
    assert!(t.request_pad_simple("subtitle_src_ja").is_none());
    let text = refusal(&bus);
    assert!(text.contains("es, ca, gl, eo, en"), "{text}");
    assert!(
        t.request_pad_simple("src_%s").is_none(),
        "a pad with no language"
    );
    let text = refusal(&bus);
    assert!(text.contains("e.g. src_fr"), "{text}");

    // One pad of each kind per language; released, it can be requested again.
    let audio = t.request_pad_simple("src_ca").expect("src_ca");
    let text_pad = t.request_pad_simple("subtitle_src_%s");
    assert!(text_pad.is_none());
    let _ = refusal(&bus);
    let text_pad = t
        .request_pad_simple("subtitle_src_ca")
        .expect("subtitle_src_ca");
    assert!(t.request_pad_simple("src_ca").is_none(), "a second src_ca");
    assert_eq!(audio.name(), "src_ca");
    assert_eq!(text_pad.name(), "subtitle_src_ca");
    t.release_request_pad(&audio);
    t.release_request_pad(&text_pad);
    assert!(t.static_pad("src_ca").is_none());
    assert!(t.request_pad_simple("src_ca").is_some(), "requested again");
    assert!(bus.pop_filtered(&[gst::MessageType::Error]).is_none());
}

#[test]
fn gst_inspect_documents_the_request_pads() {
    // The plugin this test run built, alone in a directory (cargo leaves it beside the test
    // binaries, among other crates' libraries), found through GST_PLUGIN_PATH with a registry of
    // its own.
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(built_plugin(), dir.path().join(PLUGIN_LIBRARY)).unwrap();
    let registry = tempfile::tempdir().unwrap();
    let output = std::process::Command::new("gst-inspect-1.0")
        .arg("realtimetranslate")
        .env("GST_PLUGIN_PATH", dir.path())
        .env("GST_REGISTRY", registry.path().join("registry.bin"))
        .output()
        .expect("gst-inspect-1.0 is installed");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{text}");
    for template in ["src_%s", "subtitle_src_%s"] {
        let at = text
            .find(&format!("SRC template: '{template}'"))
            .unwrap_or_else(|| panic!("no {template} in:\n{text}"));
        let after = &text[at..];
        let first_line = after.find('\n').unwrap_or(after.len());
        let next = after[first_line..]
            .find("template: '")
            .map_or(after.len(), |i| i + first_line);
        assert!(
            after[..next].contains("Availability: On request"),
            "{template}: {}",
            &after[..next]
        );
    }
    assert!(text.contains("src_<language>"), "description:\n{text}");
}

#[test]
fn a_language_requested_while_playing_joins_the_stream_from_there() {
    let server = utterance_server();
    let durations = [600, 700, 800, 900, 1000, 1100];
    init();
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("bursts.wav");
    write_wav(&wav, 24_000, &bursts(&durations));
    let pipeline = launch(&format!(
        "filesrc location={} ! wavparse ! realtimetranslate name=t url={} api-key={KEY} \
         t.src ! appsink name=audio sync=false \
         t.subtitle_src ! queue ! appsink name=text sync=false",
        wav.display(),
        server.url(),
    ));
    let french_text = Arc::new(Mutex::new(Vec::new()));
    let french_audio: Arc<Mutex<Vec<(gst::ClockTime, usize)>>> = Arc::default();
    let tags = Arc::new(Mutex::new(HashMap::new()));
    let mut joined = false;
    let captured = run_pipeline(&pipeline, Duration::from_secs(60), |pipeline, elapsed| {
        if joined
            || pipeline.current_state() != gst::State::Playing
            || elapsed < Duration::from_secs(3)
        {
            return;
        }
        joined = true;
        let t = pipeline.by_name("t").unwrap();
        for (name, audio) in [("src_fr", true), ("subtitle_src_fr", false)] {
            let queue = gst::ElementFactory::make("queue").build().unwrap();
            let sink = gst_app::AppSink::builder().sync(false).build();
            pipeline.add_many([&queue, sink.upcast_ref()]).unwrap();
            queue.link(&sink).unwrap();
            if audio {
                let into = french_audio.clone();
                sink.set_callbacks(
                    gst_app::AppSinkCallbacks::builder()
                        .new_sample(move |sink| {
                            let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                            let buffer = sample.buffer().unwrap();
                            into.lock()
                                .unwrap()
                                .push((buffer.pts().unwrap(), buffer.size() / 2));
                            Ok(gst::FlowSuccess::Ok)
                        })
                        .build(),
                );
            } else {
                capture_text(&sink, french_text.clone());
            }
            queue.sync_state_with_parent().unwrap();
            sink.sync_state_with_parent().unwrap();
            // Downstream of the link: the pad's sticky events reach it with its first data.
            let queue_pad = queue.static_pad("sink").unwrap();
            record_language_tags(&queue_pad, name, tags.clone());
            let pad = t.request_pad_simple(name).expect(name);
            pad.link(&queue_pad).unwrap();
        }
    });
    assert!(captured.errors.is_empty(), "{:?}", captured.errors);
    assert!(captured.eos, "no EOS");
    assert!(joined, "never played");

    // French output starts where it joined and covers the rest of the input, to the sample.
    let audio = french_audio.lock().unwrap().clone();
    let input_end = bursts(&durations).len() as f64 / 24_000.0;
    let first = audio.first().expect("French audio").0;
    let mut expected = first;
    for (pts, samples) in &audio {
        assert!(
            pts.nseconds().abs_diff(expected.nseconds()) <= 50_000,
            "French output jumps at {pts} (expected {expected})"
        );
        expected = *pts + gst::ClockTime::from_nseconds(*samples as u64 * 1_000_000_000 / 24_000);
    }
    println!("French audio {first} – {expected} for input of {input_end:.2} s");
    assert!(
        first.seconds_f64() > 1.0 && first.seconds_f64() < input_end - 3.0,
        "French starts at {first}"
    );
    assert!(
        expected.seconds_f64() >= input_end - 0.05,
        "French ends at {expected}"
    );

    // It answers what it heard: the bursts after it joined (the first perhaps in part).
    let spanish = answered(&captured);
    let french = answers(&cue_text(&french_text));
    println!("Spanish answers {spanish:?}, French {french:?}");
    assert_eq!(spanish.len(), durations.len());
    assert!(
        french.len() >= 2 && french.len() < durations.len(),
        "French answered {french:?}"
    );
    let whole = &durations[durations.len() - (french.len() - 1)..];
    for (got, want) in french[1..].iter().zip(whole) {
        assert!(
            got.abs_diff(*want) <= 20,
            "French {french:?} for {durations:?}"
        );
    }
    for pad in ["src_fr", "subtitle_src_fr"] {
        assert_eq!(
            tags.lock().unwrap().get(pad).cloned(),
            Some(vec!["fr".to_owned()]),
            "{pad} tags"
        );
    }
    let sessions = server.records().sessions();
    assert_eq!(sessions.len(), 2, "one session per language");
}
