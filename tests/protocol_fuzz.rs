//! Seeded fuzzing of what a server can send: random and mutated frames into
//! `ServerEvent::parse`, close frames into `close_error`, error events into `error_event_outcome`.
//!
//! A server is untrusted input: whatever it sends must not panic, must not make the client
//! allocate more than a small multiple of the frame, must not turn into multi-megabyte warning
//! texts, and must not yield audio longer than the 10 s a delta may hold. A counting allocator
//! measures every parse. `PROTOCOL_FUZZ_SEED` and `PROTOCOL_FUZZ_CASES` replay or lengthen a run.

use gstrealtimetranslate::backends::openai_translation::error_event_outcome;
use gstrealtimetranslate::backends::websocket::close_error;
use gstrealtimetranslate::protocol::translation::{
    MAX_AUDIO_DELTA_SECONDS, MAX_MESSAGE_CHARS, SAMPLE_RATE, ServerEvent, ServiceError,
    encode_pcm16,
};
use gstrealtimetranslate::session_types::SessionError;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, RngCore, SeedableRng};
use serde_json::{Value, json};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Instant;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;

/// Counts the bytes each thread holds so a parse's peak allocation can be measured.
struct CountingAllocator;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn note(delta: isize) {
    let _ = LIVE.try_with(|live| {
        let now = live.get() + delta;
        live.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

// SAFETY: every call goes straight to `System`; only counters are added.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            note(layout.size() as isize);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            note(layout.size() as isize);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        note(-(layout.size() as isize));
    }
    /// Counted as old and new held at once: an upper bound on the peak.
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            note(new_size as isize);
            note(-(layout.size() as isize));
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// Runs `f`, returning its result and the most bytes it held at once on this thread.
fn peak_allocation<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let start = LIVE.with(Cell::get);
    PEAK.with(|peak| peak.set(start));
    let result = f();
    let peak = PEAK.with(Cell::get) - start;
    (result, peak.max(0) as usize)
}

/// What a parse may hold: the delta string, its decoded bytes and the samples are each at most
/// about the frame's size, plus serde_json's small fixed buffers.
fn allocation_bound(frame_len: usize) -> usize {
    4 * frame_len + 64 * 1024
}

/// Warnings and errors shown to the user quote server text; this keeps them readable (a little
/// over [`MAX_MESSAGE_CHARS`] for the explanation around the quote).
const MAX_SHOWN_BYTES: usize = 4 * MAX_MESSAGE_CHARS + 256;

fn seed() -> u64 {
    std::env::var("PROTOCOL_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_4a11)
}

fn cases(default: usize) -> usize {
    std::env::var("PROTOCOL_FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// The start of a frame, for failure messages.
fn preview(text: &str) -> String {
    text.chars().take(300).collect()
}

/// What one checked parse did.
struct Checked {
    parsed: bool,
    audio: bool,
    /// The most bytes the parse held at once.
    peak: usize,
}

/// Parses one frame and checks every promise the parser makes about it.
fn check_frame(text: &str, what: &str) -> Checked {
    let (parsed, peak) = peak_allocation(|| ServerEvent::parse(text));
    let checked = Checked {
        parsed: parsed.is_ok(),
        audio: matches!(parsed, Ok(ServerEvent::OutputAudio { .. })),
        peak,
    };
    let context = || format!("{what}: {} bytes: {:?}", text.len(), preview(text));
    assert!(
        peak <= allocation_bound(text.len()),
        "parse held {peak} bytes for {}",
        context()
    );
    match parsed {
        Err(err) => assert!(
            err.to_string().len() <= MAX_SHOWN_BYTES,
            "{}-byte parse error for {}",
            err.to_string().len(),
            context()
        ),
        Ok(ServerEvent::Created(info) | ServerEvent::Updated(info)) => {
            assert!(info.id.len() <= text.len(), "{}", context())
        }
        Ok(ServerEvent::InputTranscript { delta } | ServerEvent::OutputTranscript { delta }) => {
            assert!(delta.len() <= text.len(), "{}", context())
        }
        Ok(ServerEvent::OutputAudio {
            samples,
            sample_rate,
            channels,
        }) => {
            assert!((8_000..=192_000).contains(&sample_rate), "{}", context());
            assert!((1..=8).contains(&channels), "{}", context());
            // Base64: 4 characters carry 3 bytes, so at most 3/8 of a sample per character.
            assert!(samples.len() * 8 <= text.len() * 3, "{}", context());
            assert!(
                samples.len().is_multiple_of(channels as usize),
                "partial frame for {}",
                context()
            );
            let frames = samples.len() / channels as usize;
            assert!(
                frames as u64 <= MAX_AUDIO_DELTA_SECONDS * sample_rate as u64,
                "{frames} frames at {sample_rate} Hz for {}",
                context()
            );
        }
        Ok(ServerEvent::Error(err)) => check_service_error(&err, &context()),
        Ok(ServerEvent::Unknown(kind)) => assert!(kind.len() <= text.len(), "{}", context()),
        Ok(ServerEvent::Closed) => {}
    }
    checked
}

/// An `error` event's outcome agrees with how fatal it says it is, and its text stays short.
fn check_service_error(err: &ServiceError, context: &str) {
    let shown = err.to_string();
    assert!(
        shown.len() <= 4 * MAX_SHOWN_BYTES,
        "{}-byte service error for {context}",
        shown.len()
    );
    let outcome = error_event_outcome(err);
    if err.is_fatal() {
        assert!(
            outcome.as_ref().is_some_and(|o| !o.is_recoverable()),
            "fatal {err:?} gave {outcome:?}"
        );
    }
    if err.code.as_deref() == Some("invalid_api_key") {
        assert!(
            matches!(outcome, Some(SessionError::Authentication(_))),
            "{err:?} gave {outcome:?}"
        );
    }
    if err.is_session_expired() && !err.is_fatal() && err.kind != "authentication_error" {
        assert!(
            matches!(outcome, Some(SessionError::Expired(_))),
            "{err:?} gave {outcome:?}"
        );
    }
}

/// The server frames of `docs/protocol/translation.md`, with a short real audio delta.
fn protocol_frames() -> Vec<String> {
    let audio: Vec<i16> = (0..48).map(|i| (i * 700 - 16_000) as i16).collect();
    vec![
        r#"{"type":"session.created","event_id":"ev_1","session":{"id":"sess_1","type":"translation","model":"gpt-realtime-translate","expires_at":1779990000,"audio":{"input":{"noise_reduction":null,"transcription":null},"output":{"language":"en"}}}}"#.into(),
        r#"{"type":"session.updated","event_id":"ev_2","session":{"id":"sess_1","type":"translation","model":"gpt-realtime-translate","expires_at":1779990000,"audio":{"input":{"noise_reduction":{"type":"near_field","strength":1.0},"transcription":{"model":"gpt-realtime-whisper"}},"output":{"language":"es"}}}}"#.into(),
        r#"{"type":"session.input_transcript.delta","event_id":"ev_3","delta":"Good morning","elapsed_ms":1400}"#.into(),
        r#"{"type":"session.output_transcript.delta","event_id":"ev_4","delta":"Buenos días","elapsed_ms":1600}"#.into(),
        format!(
            r#"{{"type":"session.output_audio.delta","event_id":"ev_5","delta":"{}","sample_rate":24000,"channels":1,"format":"pcm16","elapsed_ms":1600}}"#,
            encode_pcm16(&audio)
        ),
        r#"{"type":"error","event_id":"ev_6","error":{"type":"invalid_request_error","code":"invalid_value","message":"…","param":"session.audio.output.language","event_id":null}}"#.into(),
        r#"{"type":"error","event_id":"ev_8","error":{"type":"invalid_request_error","code":"invalid_api_key","message":"Incorrect API key provided."}}"#.into(),
        r#"{"type":"session.closed","event_id":"ev_7"}"#.into(),
    ]
}

const TYPES: [&str; 9] = [
    "session.created",
    "session.updated",
    "session.closed",
    "session.input_transcript.delta",
    "session.output_transcript.delta",
    "session.output_audio.delta",
    "error",
    "rate_limits.updated",
    "",
];

const KEYS: [&str; 14] = [
    "type",
    "delta",
    "sample_rate",
    "channels",
    "format",
    "session",
    "error",
    "id",
    "expires_at",
    "code",
    "message",
    "param",
    "event_id",
    "elapsed_ms",
];

const CODES: [&str; 8] = [
    "invalid_api_key",
    "insufficient_quota",
    "account_deactivated",
    "session_expired",
    "rate_limit_exceeded",
    "authentication_error",
    "permission_error",
    "server_error",
];

/// Numbers at and around every limit the parser has, and beyond what the fields' types hold.
const NUMBERS: [&str; 22] = [
    "0",
    "-1",
    "1",
    "2",
    "8",
    "9",
    "7999",
    "8000",
    "24000",
    "192000",
    "192001",
    "65535",
    "65536",
    "4294967295",
    "4294967296",
    "-9223372036854775808",
    "18446744073709551616",
    "1e308",
    "1e999",
    "-0",
    "0.5",
    "123456789012345678901234567890",
];

/// Text that breaks JSON in interesting ways when spliced in.
const TOKENS: [&str; 16] = [
    "{",
    "}",
    "[",
    "]",
    "\"",
    ",",
    ":",
    "null",
    "true",
    "\\u0000",
    "\\ud800",
    "\\",
    "\u{0}",
    "\u{feff}",
    "\"type\":",
    "\"delta\":",
];

fn random_string(rng: &mut StdRng, max_len: usize) -> String {
    let len = rng.random_range(0..=max_len);
    (0..len)
        .map(|_| match rng.random_range(0..4) {
            0 => rng.random_range(0x20u8..0x7f) as char,
            1 => *['"', '\\', '\n', '\u{0}', '/', '='].choose(rng).unwrap(),
            2 => *['A', 'Q', 'g', '+', '/', '='].choose(rng).unwrap(),
            _ => char::from_u32(rng.random_range(0x80..0x11_0000)).unwrap_or('\u{fffd}'),
        })
        .collect()
}

fn random_number(rng: &mut StdRng) -> Value {
    match rng.random_range(0..3) {
        0 => json!(rng.random::<i64>()),
        1 => json!(rng.random::<f64>() * 1e6 - 5e5),
        // A limit; those beyond what serde_json's `Value` holds come in through `mutate_bytes`.
        _ => NUMBERS
            .choose(rng)
            .and_then(|n| serde_json::from_str(n).ok())
            .unwrap_or(Value::Null),
    }
}

/// Any JSON value, nested at most `depth` deep, biased towards the protocol's vocabulary.
fn random_value(rng: &mut StdRng, depth: u32) -> Value {
    match rng.random_range(0..if depth == 0 { 6 } else { 8 }) {
        0 => Value::Null,
        1 => json!(rng.random_bool(0.5)),
        2 => random_number(rng),
        3 => json!(random_string(rng, 24)),
        4 => json!(*TYPES.choose(rng).unwrap()),
        5 => json!(*CODES.choose(rng).unwrap()),
        6 => Value::Array(
            (0..rng.random_range(0..4))
                .map(|_| random_value(rng, depth - 1))
                .collect(),
        ),
        _ => Value::Object(
            (0..rng.random_range(0..5))
                .map(|_| {
                    (
                        KEYS.choose(rng).unwrap().to_string(),
                        random_value(rng, depth - 1),
                    )
                })
                .collect(),
        ),
    }
}

/// A frame with the protocol's shape and random content: a random `type` and random known fields.
fn random_event(rng: &mut StdRng) -> String {
    let mut event = serde_json::Map::new();
    event.insert("type".into(), json!(*TYPES.choose(rng).unwrap()));
    for _ in 0..rng.random_range(0..6) {
        event.insert(KEYS.choose(rng).unwrap().to_string(), random_value(rng, 3));
    }
    Value::Object(event).to_string()
}

/// Changes a parsed frame: a field set to anything, removed, or given another `type`.
fn mutate_structure(rng: &mut StdRng, frame: &str) -> String {
    let Ok(Value::Object(mut event)) = serde_json::from_str::<Value>(frame) else {
        return frame.to_owned();
    };
    for _ in 0..rng.random_range(1..4) {
        let key = KEYS.choose(rng).unwrap().to_string();
        match rng.random_range(0..5) {
            0 => {
                event.remove(&key);
            }
            1 => {
                event.insert("type".into(), json!(*TYPES.choose(rng).unwrap()));
            }
            2 => {
                // Inside `session` or `error`, where the nested structs are.
                let inner = if rng.random_bool(0.5) {
                    "session"
                } else {
                    "error"
                };
                if let Some(Value::Object(object)) = event.get_mut(inner) {
                    object.insert(key, random_value(rng, 2));
                } else {
                    event.insert(inner.into(), random_value(rng, 2));
                }
            }
            _ => {
                event.insert(key, random_value(rng, 2));
            }
        }
    }
    Value::Object(event).to_string()
}

/// Byte-level damage: flips, truncation, splices, deletions, duplications, odd numbers and tokens.
fn mutate_bytes(rng: &mut StdRng, frame: &[u8]) -> Vec<u8> {
    let mut bytes = frame.to_vec();
    for _ in 0..rng.random_range(1..5) {
        let len = bytes.len();
        let at = rng.random_range(0..=len);
        match rng.random_range(0..8) {
            0 if len > 0 => {
                let i = rng.random_range(0..len);
                bytes[i] ^= 1 << rng.random_range(0..8);
            }
            1 => bytes.truncate(at),
            2 => {
                let end = rng.random_range(at..=len);
                bytes.drain(at..end);
            }
            3 => {
                let end = rng.random_range(at..=len.min(at + 64));
                let copy = bytes[at..end].to_vec();
                bytes.splice(at..at, copy);
            }
            4 => {
                let n = NUMBERS.choose(rng).unwrap().as_bytes();
                bytes.splice(at..at, n.iter().copied());
            }
            5 => {
                let t = TOKENS.choose(rng).unwrap().as_bytes();
                bytes.splice(at..at, t.iter().copied());
            }
            6 => bytes.insert(at, rng.random()),
            _ => {
                // Replace a number already there, e.g. sample_rate or channels.
                if let Some(digit) = bytes.iter().position(|b| b.is_ascii_digit()) {
                    let end = bytes[digit..]
                        .iter()
                        .position(|b| !b.is_ascii_digit())
                        .map_or(bytes.len(), |e| digit + e);
                    let n = NUMBERS.choose(rng).unwrap().as_bytes();
                    bytes.splice(digit..end, n.iter().copied());
                }
            }
        }
    }
    bytes
}

/// Nesting `depth` deep of arrays or objects, as text (serde_json's `Value` cannot hold it).
fn deep_nesting(depth: usize, objects: bool) -> String {
    if objects {
        format!("{}1{}", r#"{"a":"#.repeat(depth), "}".repeat(depth))
    } else {
        format!("{}{}", "[".repeat(depth), "]".repeat(depth))
    }
}

/// An audio delta event holding `bytes` bytes of PCM.
fn audio_frame(bytes: usize, sample_rate: i64, channels: i64) -> String {
    let samples = vec![0x1234i16; bytes / 2];
    let mut delta = encode_pcm16(&samples);
    if bytes % 2 == 1 {
        // An odd byte count, encoded honestly.
        use base64::Engine as _;
        let mut raw: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
        raw.push(7);
        delta = base64::engine::general_purpose::STANDARD.encode(raw);
    }
    format!(
        r#"{{"type":"session.output_audio.delta","delta":"{delta}","sample_rate":{sample_rate},"channels":{channels},"format":"pcm16"}}"#
    )
}

/// The text a frame arrives as: tungstenite text frames are UTF-8, and the client reads binary
/// frames only when they are, so other bytes come in as replacement characters at worst.
fn as_text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn random_and_mutated_frames_never_panic_overallocate_or_overflow_limits() {
    let seed = seed();
    let total = cases(200_000);
    let mut rng = StdRng::seed_from_u64(seed);
    let frames = protocol_frames();
    let started = Instant::now();
    let mut parsed_ok = 0usize;
    let mut audio_ok = 0usize;
    // The frame of at least 4 KiB whose parse held the most per byte: (peak, frame length).
    let mut worst = (0usize, 1usize);
    for case in 0..total {
        let what = format!("seed {seed} case {case}");
        let text = match case % 10 {
            // Random bytes.
            0 => {
                let mut bytes = vec![0u8; rng.random_range(0..200)];
                rng.fill_bytes(&mut bytes);
                as_text(&bytes)
            }
            // Random JSON with the protocol's keys and types.
            1 | 2 => random_event(&mut rng),
            // Protocol frames with fields swapped for other types and values.
            3..=5 => {
                let frame = frames.choose(&mut rng).unwrap();
                mutate_structure(&mut rng, frame)
            }
            // Protocol frames, damaged byte by byte (possibly structurally first).
            _ => {
                let frame = frames.choose(&mut rng).unwrap();
                let frame = if rng.random_bool(0.3) {
                    mutate_structure(&mut rng, frame)
                } else {
                    frame.clone()
                };
                as_text(&mutate_bytes(&mut rng, frame.as_bytes()))
            }
        };
        // Rarely, and costly: a big audio delta or deep nesting spliced into the frame.
        let text = match rng.random_range(0..4_000) {
            0 => {
                let bytes = rng.random_range(0..3 << 20);
                audio_frame(
                    bytes,
                    *[8_000, 24_000, 48_000, 192_000].choose(&mut rng).unwrap(),
                    rng.random_range(1..=8),
                )
            }
            1 => {
                let at = text.char_indices().map(|(i, _)| i).collect::<Vec<_>>();
                let at = at.choose(&mut rng).copied().unwrap_or(0);
                let depth = *[127, 128, 129, 10_000, 200_000].choose(&mut rng).unwrap();
                format!(
                    "{}{}{}",
                    &text[..at],
                    deep_nesting(depth, rng.random_bool(0.5)),
                    &text[at..]
                )
            }
            _ => text,
        };
        let checked = check_frame(&text, &what);
        parsed_ok += checked.parsed as usize;
        audio_ok += checked.audio as usize;
        if text.len() >= 4096 && checked.peak * worst.1 > worst.0 * text.len() {
            worst = (checked.peak, text.len());
        }
    }
    let elapsed = started.elapsed();
    println!(
        "{total} frames (seed {seed}) in {:.1} s: {parsed_ok} parsed, {audio_ok} of them audio; \
         most held by a parse: {} bytes for a {}-byte frame ({:.2} × its size)",
        elapsed.as_secs_f64(),
        worst.0,
        worst.1,
        worst.0 as f64 / worst.1 as f64
    );
    // The mutations must keep a fair share of frames parsable, or they test only the JSON parser.
    assert!(parsed_ok > total / 5, "only {parsed_ok} of {total} parsed");
    assert!(
        audio_ok > total / 100,
        "only {audio_ok} audio frames parsed"
    );
}

/// Deep nesting at every place a frame has, at and around serde_json's recursion limit (128) and
/// far beyond. The client's event types are not recursive: a typed field meets the first bracket
/// as a type error, and a skipped value (unknown field) is walked by serde_json without recursion.
/// So nesting never reaches the recursion limit, the stack never overflows, memory stays within
/// the frame's size, and a skipped deep value does not spoil an otherwise good frame.
#[test]
fn deep_nesting_anywhere_is_refused_or_skipped_without_overflowing_the_stack() {
    for depth in [1, 100, 127, 128, 129, 1_000, 100_000, 1_000_000] {
        for objects in [false, true] {
            let nest = deep_nesting(depth, objects);
            let typed = [
                nest.clone(),
                format!(r#"{{"type":"session.created","session":{nest}}}"#),
                format!(r#"{{"type":"error","error":{nest}}}"#),
                format!(r#"{{"type":"session.output_audio.delta","delta":{nest}}}"#),
                format!(
                    r#"{{"type":"session.output_audio.delta","sample_rate":{nest},"delta":"AAAA"}}"#
                ),
            ];
            for frame in &typed {
                check_frame(frame, &format!("depth {depth}"));
            }
            let skipped = [
                format!(r#"{{"type":"rate_limits.updated","extra":{nest}}}"#),
                format!(r#"{{"type":"session.created","session":{{"id":"s","audio":{nest}}}}}"#),
                format!(r#"{{"type":"error","error":{{"message":"m","x":{nest}}}}}"#),
            ];
            for frame in &skipped {
                assert!(
                    check_frame(frame, &format!("depth {depth}")).parsed,
                    "depth {depth} refused: {}",
                    preview(frame)
                );
            }
        }
    }
    // Where a value must be a string or a number, brackets are refused outright.
    for field in ["delta", "sample_rate", "type"] {
        let frame = format!(
            r#"{{"type":"session.output_audio.delta","delta":"AAAA","{field}":{}}}"#,
            deep_nesting(200_000, false)
        );
        assert!(ServerEvent::parse(&frame).is_err(), "{field}");
    }
}

/// A delta holds at most 10 s of audio at its own rate and channel count, and at most
/// 10 s at 24 kHz mono in bytes, whatever the rate, so a frame can never become minutes of audio.
#[test]
fn audio_deltas_beyond_ten_seconds_are_refused() {
    let cap_bytes = MAX_AUDIO_DELTA_SECONDS as usize * SAMPLE_RATE as usize * 2;
    for (rate, channels) in [
        (24_000, 1),
        (8_000, 1),
        (16_000, 1),
        (48_000, 2),
        (192_000, 8),
    ] {
        let ten_seconds =
            (MAX_AUDIO_DELTA_SECONDS as usize * rate as usize * channels as usize * 2)
                .min(cap_bytes);
        let frame_bytes = 2 * channels as usize;
        let largest = ten_seconds / frame_bytes * frame_bytes;
        for bytes in [0, frame_bytes, largest - frame_bytes, largest] {
            let frame = audio_frame(bytes, rate, channels);
            check_frame(&frame, &format!("{bytes} bytes at {rate} Hz × {channels}"));
            match ServerEvent::parse(&frame) {
                Ok(ServerEvent::OutputAudio { samples, .. }) => {
                    assert_eq!(samples.len() * 2, bytes)
                }
                other => panic!("{bytes} bytes at {rate} Hz × {channels}: {other:?}"),
            }
        }
        for bytes in [largest + frame_bytes, largest + 2 * frame_bytes, 3 << 20] {
            let frame = audio_frame(bytes, rate, channels);
            check_frame(&frame, &format!("{bytes} bytes at {rate} Hz × {channels}"));
            let err = ServerEvent::parse(&frame).expect_err("more than 10 s accepted");
            assert!(err.to_string().contains("too"), "{err}");
        }
        // Samples that do not fill whole frames, or bytes that do not fill a sample.
        for bytes in [frame_bytes + 1, frame_bytes + 2] {
            if bytes % frame_bytes == 0 {
                continue;
            }
            let frame = audio_frame(bytes, rate, channels);
            check_frame(&frame, "partial frame");
            assert!(
                ServerEvent::parse(&frame).is_err(),
                "{bytes} bytes × {channels}"
            );
        }
    }
    // Impossible formats are refused before the delta is decoded.
    for (rate, channels) in [
        (0, 1),
        (-24_000, 1),
        (7_999, 1),
        (192_001, 1),
        (24_000, 0),
        (24_000, 9),
        (24_000, -1),
        (4_294_967_296, 1),
    ] {
        let frame = audio_frame(4, rate, channels);
        check_frame(&frame, "bad format");
        assert!(
            ServerEvent::parse(&frame).is_err(),
            "{rate} Hz × {channels}"
        );
    }
}

/// Server text quoted in a warning is cut short: a hostile frame cannot post megabytes.
#[test]
fn warnings_quote_at_most_a_short_excerpt_of_the_frame() {
    let big = "x".repeat(1 << 20);
    for frame in [
        format!(r#"{{"type":"{big}"}}"#),
        format!(r#"{{"type":"session.output_audio.delta","format":"{big}","delta":"AAAA"}}"#),
        format!(r#"{{"type":"session.output_audio.delta","sample_rate":"{big}","delta":"AAAA"}}"#),
        format!(r#"{{"type":"session.output_transcript.delta","delta":["{big}"]}}"#),
        format!(
            r#"{{"type":"error","error":{{"message":"{big}","code":"{big}","type":"{big}"}}}}"#
        ),
        format!(r#"{{"type":"{big}","session":{{"id":5}}}}"#),
        format!(r#"{{"{big}":1}}"#),
    ] {
        check_frame(&frame, "1 MiB of text in a field");
    }
}

#[test]
fn close_frames_and_error_events_classify_without_panicking() {
    let seed = seed();
    let total = cases(200_000) / 4;
    let mut rng = StdRng::seed_from_u64(seed ^ 0xc105e);
    let reasons = [
        "invalid_request_error.invalid_api_key",
        "authentication_error",
        "permission_error",
        "insufficient_quota",
        "invalid_request_error.session_expired",
        "rate_limit_exceeded",
        "invalid_request_error.unknown_parameter",
        "",
    ];
    let started = Instant::now();
    assert!(matches!(close_error(None), SessionError::Connection(_)));
    for case in 0..total {
        // A close reason fits a control frame: at most 123 bytes of UTF-8.
        let mut reason = match rng.random_range(0..3) {
            0 => reasons.choose(&mut rng).unwrap().to_string(),
            1 => {
                let reason = reasons.choose(&mut rng).unwrap();
                as_text(&mutate_bytes(&mut rng, reason.as_bytes()))
            }
            _ => random_string(&mut rng, 60),
        };
        while reason.len() > 123 {
            reason.pop();
        }
        let code = if rng.random_bool(0.5) {
            *[
                1000, 1001, 1005, 1006, 1008, 1011, 1012, 1013, 1015, 4000, 4001,
            ]
            .choose(&mut rng)
            .unwrap()
        } else {
            rng.random()
        };
        let frame = CloseFrame {
            code: code.into(),
            reason: reason.as_str().into(),
        };
        let err = close_error(Some(&frame));
        let text = err.to_string();
        // The message says which code the server closed with.
        assert!(
            text.contains(&u16::from(frame.code).to_string()),
            "seed {seed} case {case}: {text}"
        );
        assert!(
            text.len() <= MAX_SHOWN_BYTES,
            "seed {seed} case {case}: {text}"
        );
        if reason.contains("invalid_api_key") || reason.starts_with("authentication") {
            assert!(matches!(err, SessionError::Authentication(_)), "{text}");
        }

        let service = ServiceError {
            kind: if rng.random_bool(0.5) {
                random_string(&mut rng, 20)
            } else {
                reasons.choose(&mut rng).unwrap().to_string()
            },
            message: random_string(&mut rng, 200),
            code: rng
                .random_bool(0.7)
                .then(|| CODES.choose(&mut rng).unwrap().to_string()),
            param: rng.random_bool(0.3).then(|| random_string(&mut rng, 30)),
        };
        check_service_error(&service, &format!("seed {seed} case {case}"));
    }
    println!(
        "{total} close frames and {total} error events (seed {seed}) in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
