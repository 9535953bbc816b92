//! The Realtime API backends in real pipelines against the local `/v1/realtime` test servers:
//! `openai-realtime` (the conversation model as a turn-based interpreter) and
//! `openai-transcription` (captions only). Real speech from flite; the servers' contracts are in
//! `server/src/realtime/{conversation,transcription}.rs`.

mod common;

use common::*;
use gst::prelude::*;
use realtimetranslate_server::{BackgroundServer, SessionRecord};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

fn realtime_url(server: &BackgroundServer, query: &str) -> String {
    let base = format!(
        "ws://{}{}",
        server.local_addr(),
        realtimetranslate_server::realtime::PATH
    );
    if query.is_empty() {
        base
    } else {
        format!("{base}?{query}")
    }
}

/// The element on `backend`, talking to `url`, with every output captured.
fn pipeline(wav: &Path, backend: &str, url: &str, extra: &str) -> String {
    format!(
        "filesrc location={} ! wavparse ! audioconvert ! audioresample ! \
         realtimetranslate name=t backend={backend} url={url} api-key={KEY} {extra} \
         t.src ! appsink name=audio sync=false \
         t.subtitle_src ! queue ! appsink name=text sync=false \
         t.source_subtitle_src ! queue ! appsink name=source sync=false",
        wav.display()
    )
}

/// Two sentences with a pause between them that ends a turn: returns the file and the spans
/// (start, end, in seconds) of the two utterances.
fn two_sentences(dir: &Path) -> (PathBuf, [(f64, f64); 2]) {
    let (first, s1) = speech_wav(dir, "one", "The weather is sunny and warm.", 0.5, 1.5);
    let (second, s2) = speech_wav(dir, "two", "See you tomorrow morning.", 0.0, 2.5);
    let both = dir.join("both.wav");
    let status = Command::new("sox")
        .arg(&first)
        .arg(&second)
        .arg(&both)
        .status()
        .expect("sox is installed (see README)");
    assert!(status.success());
    let second_start = 0.5 + s1 + 1.5;
    (both, [(0.5, 0.5 + s1), (second_start, second_start + s2)])
}

/// Audible stretches of 24 kHz audio (20 ms frames louder than RMS 300, gaps under 200 ms
/// bridged), in seconds from the first sample.
fn audible_regions(samples: &[i16]) -> Vec<(f64, f64)> {
    let mut regions: Vec<(f64, f64)> = Vec::new();
    for (k, frame) in samples.chunks(480).enumerate() {
        if rms(frame) <= 300.0 {
            continue;
        }
        let (start, end) = (k as f64 * 0.02, (k + 1) as f64 * 0.02);
        match regions.last_mut() {
            Some(last) if start - last.1 < 0.2 => last.1 = end,
            _ => regions.push((start, end)),
        }
    }
    regions
}

/// An answer tone covers `heard_ms`, the voiced span the server measured, and that span is the
/// sentence's speech (flite pads its files with some quiet, so it can be a little shorter).
fn assert_translation_matches(region: (f64, f64), heard_ms: f64, said: (f64, f64)) {
    let (tone, heard, spoken) = (region.1 - region.0, heard_ms / 1000.0, said.1 - said.0);
    assert!(
        (tone - heard).abs() <= 0.06,
        "{tone:.2} s of translation for {heard:.2} s of speech heard"
    );
    assert!(
        heard <= spoken + 0.05 && heard >= spoken - 0.6,
        "the server heard {heard:.2} s of a {spoken:.2} s sentence"
    );
}

/// The number after `prefix` in `text` (as in `"Traducción 1 de 2140 ms."`).
fn number_after(text: &str, prefix: &str) -> f64 {
    let rest = &text[text
        .find(prefix)
        .unwrap_or_else(|| panic!("no {prefix:?} in {text:?}"))
        + prefix.len()..];
    rest.split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

fn joined(cues: &[Cue]) -> String {
    cues.iter()
        .map(|c| c.text.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

fn only_session(server: &BackgroundServer) -> SessionRecord {
    assert!(
        server
            .records()
            .wait_for_ended_sessions(1, Duration::from_secs(5))
    );
    let sessions = server.records().sessions();
    assert_eq!(sessions.len(), 1);
    let session = sessions.into_iter().next().unwrap();
    assert!(
        session.schema_errors.is_empty(),
        "{:?}",
        session.schema_errors
    );
    assert!(!session.beta_header);
    assert_eq!(
        session.authorization.as_deref(),
        Some(&*format!("Bearer {KEY}"))
    );
    session
}

/// Each sentence is answered only after its pause, with a translation as long as the sentence;
/// captions follow both languages; the server got the interpreter session of
/// `docs/protocol/realtime-interpreter.md`.
#[test]
fn interpreter_answers_each_sentence_after_its_pause() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let (wav, spans) = two_sentences(dir.path());
    let server = utterance_server();
    let captured = run(
        &pipeline(
            &wav,
            "openai-realtime",
            &realtime_url(&server, ""),
            "target-language=de transcription-model=gpt-realtime-whisper",
        ),
        Duration::from_secs(60),
    );
    assert!(captured.errors.is_empty(), "{:?}", captured.errors);
    assert!(captured.eos);

    // One translation per sentence, each starting after its sentence ended (the server waits
    // for 500 ms of silence), as long as the speech the server heard, which its subtitle names.
    let regions = audible_regions(&captured.samples());
    assert_eq!(regions.len(), 2, "{regions:?}");
    let text = captured.text();
    for (k, (region, said)) in regions.iter().zip(spans).enumerate() {
        // flite's trailing quiet and the 200 ms latency can pull it a little before the file's
        // end of speech, never before the speech itself ends.
        assert!(
            region.0 >= said.1 - 0.15,
            "translation {k} at {:.2} s, before its sentence ends at {:.2} s",
            region.0,
            said.1
        );
        assert!(
            region.0 <= said.1 + 2.0,
            "translation {k} at {:.2} s, long after {:.2} s",
            region.0,
            said.1
        );
        let heard_ms = number_after(&text, &format!("Traducción {} de ", k + 1));
        assert_translation_matches(*region, heard_ms, said);
    }
    // Source captions: the two input transcripts, once each (deltas, not again the completed).
    let source = joined(&captured.source_cues);
    for k in 1..=2 {
        assert_eq!(
            source.matches(&format!("utterance {k} of")).count(),
            1,
            "{source:?}"
        );
        assert_eq!(
            number_after(&source, &format!("utterance {k} of ")),
            number_after(&text, &format!("Traducción {k} de ")),
            "transcript and translation of the same turn"
        );
    }

    let session = only_session(&server);
    assert_eq!(session.path_and_query, "/v1/realtime?model=gpt-realtime-2");
    assert_eq!(session.events[0].kind, "session.update");
    let update = &session.events[0].json["session"];
    assert_eq!(update["type"], "realtime");
    let instructions = update["instructions"].as_str().unwrap();
    assert!(instructions.contains("into German"), "{instructions}");
    assert_eq!(update["output_modalities"], serde_json::json!(["audio"]));
    let input = &update["audio"]["input"];
    assert_eq!(input["turn_detection"]["type"], "server_vad");
    assert_eq!(input["turn_detection"]["interrupt_response"], false);
    assert_eq!(input["turn_detection"]["create_response"], true);
    assert_eq!(input["transcription"]["model"], "gpt-realtime-whisper");
    assert_eq!(input["format"]["rate"], 24_000);
    assert_eq!(update["audio"]["output"]["voice"], "marin");
    // The turns were the server's: no commits, no response requests from the client.
    let kinds: Vec<&str> = session.events.iter().map(|e| e.kind.as_str()).collect();
    assert!(
        kinds[1..].iter().all(|k| *k == "input_audio_buffer.append"),
        "{kinds:?}"
    );
    let sent: usize = session.events.iter().filter_map(|e| e.audio_samples).sum();
    let input_seconds = spans[1].1 + 2.5;
    assert!(
        (sent as f64 / 24_000.0 - input_seconds).abs() < 0.05,
        "sent {sent} samples for {input_seconds:.2} s"
    );
    assert_eq!(session.closed_with, Some(1000));
}

/// Input that ends in the middle of a sentence: the backend commits the turn itself and asks
/// for its answer, which still comes out.
#[test]
fn a_sentence_cut_by_the_end_of_input_is_still_translated() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let (wav, speech) = speech_wav(
        dir.path(),
        "cut",
        "Good morning to everyone here.",
        0.5,
        0.0,
    );
    let server = utterance_server();
    let captured = run(
        &pipeline(&wav, "openai-realtime", &realtime_url(&server, ""), ""),
        Duration::from_secs(60),
    );
    assert!(captured.errors.is_empty(), "{:?}", captured.errors);
    assert!(captured.eos);
    let regions = audible_regions(&captured.samples());
    assert_eq!(regions.len(), 1, "{regions:?}");
    let (start, _) = regions[0];
    // It arrives after the input ended and lands at the output's write head, which trails the
    // input by the latency (200 ms by default).
    let input_end = 0.5 + speech;
    assert!(
        start >= input_end - 0.2 - 0.1,
        "translation at {start:.2} s, input ended at {input_end:.2} s"
    );
    let heard_ms = number_after(&captured.text(), "Traducción 1 de ");
    assert_translation_matches(regions[0], heard_ms, (0.5, input_end));
    assert!(captured.source_cues.is_empty(), "transcription is off");

    let session = only_session(&server);
    let kinds: Vec<&str> = session.events.iter().map(|e| e.kind.as_str()).collect();
    let tail: Vec<&str> = kinds
        .iter()
        .copied()
        .filter(|k| *k != "input_audio_buffer.append")
        .collect();
    assert_eq!(
        tail,
        [
            "session.update",
            "input_audio_buffer.commit",
            "response.create"
        ]
    );
    assert!(session.events[0].json["session"]["audio"]["input"]["transcription"].is_null());
    assert_eq!(session.closed_with, Some(1000));
}

/// A server still speaking the beta event names (`response.audio.delta`, …) is understood.
#[test]
fn beta_event_names_are_accepted() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let (wav, speech) = speech_wav(dir.path(), "beta", "Thank you very much.", 0.3, 1.2);
    let server = utterance_server();
    let captured = run(
        &pipeline(
            &wav,
            "openai-realtime",
            &realtime_url(&server, "test_event_names=beta"),
            "",
        ),
        Duration::from_secs(60),
    );
    assert!(captured.errors.is_empty(), "{:?}", captured.errors);
    let regions = audible_regions(&captured.samples());
    assert_eq!(regions.len(), 1, "{regions:?}");
    let heard_ms = number_after(&captured.text(), "Traducción 1 de ");
    assert_translation_matches(regions[0], heard_ms, (0.3, 0.3 + speech));
    let session = only_session(&server);
    assert_eq!(
        session.path_and_query,
        "/v1/realtime?test_event_names=beta&model=gpt-realtime-2"
    );
}

/// Captions only: the source transcript arrives on `source_subtitle_src`; `src` carries the
/// original (the default `fallback`, tested below) or silence, and `subtitle_src` nothing.
#[test]
fn transcription_backend_gives_source_captions_only() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let (wav, spans) = two_sentences(dir.path());
    let server = utterance_server();
    let captured = run(
        &pipeline(
            &wav,
            "openai-transcription",
            &realtime_url(&server, ""),
            "fallback=silence",
        ),
        Duration::from_secs(60),
    );
    assert!(captured.errors.is_empty(), "{:?}", captured.errors);
    assert!(captured.eos);
    let input_seconds = spans[1].1 + 2.5;
    assert!(
        captured.duration_seconds() >= input_seconds - 0.2,
        "output {:.2} s for {input_seconds:.2} s of input",
        captured.duration_seconds()
    );
    assert_eq!(audible_regions(&captured.samples()), vec![]);
    assert!(captured.cues.is_empty(), "{:?}", captured.cues);
    let source = joined(&captured.source_cues);
    for (k, (from, to)) in spans.iter().enumerate() {
        let heard = number_after(&source, &format!("utterance {} of ", k + 1)) / 1000.0;
        assert!(
            heard <= to - from + 0.05 && heard >= to - from - 0.6,
            "{source:?}: sentence {k} lasted {:.2} s",
            to - from
        );
    }
    assert_eq!(source.matches("utterance").count(), 2, "{source:?}");

    // With the default fallback, `src` passes the original speech through, where it was said.
    let other_server = utterance_server();
    let captured = run(
        &pipeline(
            &wav,
            "openai-transcription",
            &realtime_url(&other_server, ""),
            "",
        ),
        Duration::from_secs(60),
    );
    assert!(captured.errors.is_empty(), "{:?}", captured.errors);
    let regions = audible_regions(&captured.samples());
    assert!(!regions.is_empty());
    for (start, end) in &regions {
        assert!(
            spans
                .iter()
                .any(|(from, to)| *start >= from - 0.1 && *end <= to + 0.1),
            "original audio at {start:.2}–{end:.2} s, speech at {spans:?}"
        );
    }
    assert!(captured.cues.is_empty(), "{:?}", captured.cues);

    let session = only_session(&server);
    assert_eq!(session.path_and_query, "/v1/realtime?intent=transcription");
    let update = &session.events[0].json["session"];
    assert_eq!(update["type"], "transcription");
    assert_eq!(
        update["audio"]["input"]["transcription"]["model"],
        "gpt-realtime-whisper"
    );
    assert!(update["audio"]["input"]["turn_detection"].is_null());
    // The client ended each sentence's turn itself, after its pause.
    let commits: Vec<f64> = {
        let mut sent = 0usize;
        let mut at = Vec::new();
        for event in &session.events {
            sent += event.audio_samples.unwrap_or(0);
            if event.kind == "input_audio_buffer.commit" {
                at.push(sent as f64 / 24_000.0);
            }
        }
        at
    };
    assert_eq!(commits.len(), 2, "{commits:?}");
    for (at, (_, said_to)) in commits.iter().zip(spans) {
        assert!(
            *at >= said_to + 0.2 && *at <= said_to + 1.0,
            "commit after {at:.2} s of audio, sentence ended at {said_to:.2} s"
        );
    }
    assert_eq!(session.closed_with, Some(1000));
}

/// Input faster than real time: the second sentence ends while the first answer is still being
/// spoken, so the service refuses to start a response for it; the backend asks again once the
/// first answer is done, and both sentences are translated.
#[test]
fn a_turn_refused_during_an_answer_is_answered_next() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let (wav, spans) = two_sentences(dir.path());
    let server = utterance_server();
    let captured = run(
        &pipeline(
            &wav,
            "openai-realtime",
            &realtime_url(&server, ""),
            "pacing=none",
        ),
        Duration::from_secs(60),
    );
    assert!(captured.errors.is_empty(), "{:?}", captured.errors);
    assert!(captured.eos);
    let text = captured.text();
    let heard: Vec<f64> = (1..=2)
        .map(|k| number_after(&text, &format!("Traducción {k} de ")))
        .collect();
    for (heard_ms, said) in heard.iter().zip(spans) {
        let (heard, spoken) = (heard_ms / 1000.0, said.1 - said.0);
        assert!(
            heard <= spoken + 0.05 && heard >= spoken - 0.6,
            "{text:?}: a {spoken:.2} s sentence"
        );
    }
    // All of both answers reached the output: count the audible 20 ms frames (merging regions
    // would count a short gap between two answers placed close together as sound).
    let audible = captured
        .samples()
        .chunks(480)
        .filter(|frame| rms(frame) > 300.0)
        .count() as f64
        * 0.02;
    let answers = (heard[0] + heard[1]) / 1000.0;
    assert!(
        (audible - answers).abs() <= 0.1,
        "{audible:.2} s audible for {answers:.2} s of answers"
    );

    let session = only_session(&server);
    let requests: Vec<&str> = session
        .events
        .iter()
        .map(|e| e.kind.as_str())
        .filter(|k| *k != "input_audio_buffer.append")
        .collect();
    assert_eq!(requests, ["session.update", "response.create"]);
    assert_eq!(session.closed_with, Some(1000));
}

/// `target-language` changed while playing reaches the interpreter as new instructions.
#[test]
fn target_language_change_gives_the_interpreter_new_instructions() {
    init();
    let server = utterance_server();
    let pipeline = gst::parse::launch(&format!(
        "audiotestsrc is-live=true wave=silence ! audio/x-raw,rate=16000 ! \
         realtimetranslate name=t backend=openai-realtime url={} api-key={KEY} ! fakesink \
         t.subtitle_src ! fakesink async=false",
        realtime_url(&server, "")
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let captured = run_changing_language(
        &pipeline,
        Duration::from_secs(2),
        Duration::from_millis(800),
        "fr",
    );
    assert!(captured.errors.is_empty(), "{:?}", captured.errors);
    let session = &server.records().sessions()[0];
    let instructions: Vec<&str> = session
        .events
        .iter()
        .filter(|e| e.kind == "session.update")
        .map(|e| e.json["session"]["instructions"].as_str().unwrap())
        .collect();
    assert_eq!(instructions.len(), 2, "{instructions:?}");
    assert!(instructions[0].contains("into Spanish"));
    assert!(instructions[1].contains("into French"));
    assert!(
        session.schema_errors.is_empty(),
        "{:?}",
        session.schema_errors
    );
}
