//! Recipe: the phone bridge. Two simulated phones on 127.0.0.1 send real speech as PCMU/RTP in
//! real time (A: English by flite, two sentences; B: Spanish by eSpeak NG, one sentence, after A)
//! and record the bridge's RTP coming back. The bridge translates through the utterance server,
//! whose answers are deterministic (a 440 Hz tone as long as the sentence, and the text
//! `Frase n de D ms.`), so what each phone hears can be checked exactly: the other's translation,
//! after its source, with the original audible and ducked under it; and the mouth-to-ear delay
//! is measured on the shared system clock. A second call goes through the offline engine, as the
//! recipe runs with no options.

mod common;
#[allow(dead_code)]
#[path = "../examples/phone_bridge.rs"]
mod recipe;

use common::*;
use gst::prelude::*;
use gstrealtimetranslate::secret::ApiKey;
use recipes::cli;
use recipes::run::Stop;
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const RATE: f64 = 8_000.0;
/// 20 ms at 8 kHz: the frame in which tone and speech are judged.
const FRAME: usize = 160;
/// The utterance engine answers a sentence once this much silence has followed it.
const ENGINE_END_SILENCE: f64 = 0.4;
/// What a busy machine may add, beyond the pipeline's latency, between a sentence's end (plus
/// the engine's wait) and its translation at the other phone: the engine's work, the element's
/// placement, scheduling.
const SCHEDULING_SLACK: f64 = 1.5;
/// Half the engine's tone amplitude (8000): the translation is heard above it, while the
/// original's harmonics near 440 Hz, at `original-volume`, stay below.
const TONE_HEARD: f64 = 4_000.0;

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn clock_seconds() -> f64 {
    gst::SystemClock::obtain().time().seconds_f64()
}

fn sox(args: &[&Path], effects: &[String]) {
    let status = Command::new("sox")
        .args(args)
        .args(effects)
        .status()
        .expect("sox is installed (see README)");
    assert!(status.success());
}

/// What one phone says during the call: a WAV and its spoken spans (seconds from its start).
struct Talk {
    path: PathBuf,
    spans: Vec<(f64, f64)>,
    /// The same audio band-limited to the phone's 8 kHz, resampled to 24 kHz (reference levels).
    reference: Vec<i16>,
}

fn talk(path: PathBuf, sentences: usize) -> Talk {
    let (_, reference) = decode_audio(&format!(
        "filesrc location={} ! wavparse ! audioconvert ! audioresample ! audio/x-raw,rate=8000",
        path.display()
    ));
    let spans = audible_spans(&reference);
    assert_eq!(spans.len(), sentences, "spoken: {spans:?}");
    Talk {
        path,
        spans,
        reference,
    }
}

/// A: two English sentences, `pause` s apart; B: one Spanish sentence once A is done. Both
/// recordings last the whole call.
fn conversation(dir: &Path, first_sentence: &str, pause: f64) -> (Talk, Talk) {
    let (first, _) = speech_wav(dir, "a1", first_sentence, 0.4, pause);
    let (second, _) = speech_wav(dir, "a2", "Thank you very much.", 0.0, 0.0);
    let a_speech = dir.join("a_speech.wav");
    sox(&[&first, &second, &a_speech], &[]);
    let spanish = dir.join("b.raw.wav");
    let status = Command::new("espeak-ng")
        .args(["-v", "es", "-w"])
        .arg(&spanish)
        .arg("Buenos días a todos.")
        .status()
        .expect("espeak-ng is installed (see README)");
    assert!(status.success());
    let length = |path: &Path| -> f64 {
        let out = Command::new("soxi").arg("-D").arg(path).output().unwrap();
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
    };
    let (a_length, b_length) = (length(&a_speech), length(&spanish));
    let b_lead = a_length + 1.5;
    let call = b_lead + b_length + 3.0;
    let (a, b) = (dir.join("a.wav"), dir.join("b.wav"));
    sox(
        &[&a_speech, &a],
        &["pad".into(), "0".into(), format!("{}", call - a_length)],
    );
    sox(
        &[&spanish, &b],
        &["pad".into(), format!("{b_lead}"), "3.0".into()],
    );
    (talk(a, 2), talk(b, 1))
}

/// A decoded packet and when it arrived (system-clock seconds).
type Packet = (f64, Vec<i16>);

/// A phone's earpiece: the bridge's RTP, decoded, with when each packet arrived.
struct Ear {
    pipeline: gst::Pipeline,
    heard: Arc<Mutex<Vec<Packet>>>,
}

impl Ear {
    fn listen(port: u16) -> Self {
        let pipeline = launch(&format!(
            "udpsrc port={port} caps=\"{}\" ! rtppcmudepay ! mulawdec \
             ! audio/x-raw,format=S16LE,rate=8000,channels=1 ! appsink name=ear sync=false",
            recipe::PCMU_CAPS
        ));
        let heard = Arc::new(Mutex::new(Vec::new()));
        let into = heard.clone();
        pipeline
            .by_name("ear")
            .unwrap()
            .downcast::<gst_app::AppSink>()
            .unwrap()
            .set_callbacks(
                gst_app::AppSinkCallbacks::builder()
                    .new_sample(move |sink| {
                        let arrived = clock_seconds();
                        let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                        let map = sample.buffer().unwrap().map_readable().unwrap();
                        let samples = map
                            .chunks_exact(2)
                            .map(|b| i16::from_le_bytes([b[0], b[1]]))
                            .collect();
                        into.lock().unwrap().push((arrived, samples));
                        Ok(gst::FlowSuccess::Ok)
                    })
                    .build(),
            );
        pipeline.set_state(gst::State::Playing).unwrap();
        Self { pipeline, heard }
    }

    /// Hangs up: the samples heard, and the system-clock time of the first one. Packets are
    /// never early, only late: the earliest (arrival − position) is when the stream was due.
    fn hang_up(self) -> (f64, Vec<i16>) {
        self.pipeline.set_state(gst::State::Null).unwrap();
        let heard = std::mem::take(&mut *self.heard.lock().unwrap());
        let mut start = f64::INFINITY;
        let mut samples = Vec::new();
        for (arrived, packet) in heard {
            start = start.min(arrived - samples.len() as f64 / RATE);
            samples.extend(packet);
        }
        assert!(!samples.is_empty(), "the phone heard nothing");
        (start, samples)
    }
}

/// A phone's microphone: the recording sent as PCMU/RTP in real time, 20 ms a packet. Returns the
/// pipeline, playing, and the system-clock time at which its first sample was sent.
fn speak(talk: &Talk, port: u16) -> (gst::Pipeline, f64) {
    let pipeline = launch(&format!(
        "filesrc location={} ! wavparse ! audioconvert ! audioresample \
         ! audio/x-raw,format=S16LE,rate=8000,channels=1 ! mulawenc \
         ! rtppcmupay pt=0 min-ptime=20000000 max-ptime=20000000 \
         ! udpsink host=127.0.0.1 port={port} sync=true",
        talk.path.display()
    ));
    pipeline.use_clock(Some(&gst::SystemClock::obtain()));
    pipeline.set_state(gst::State::Playing).unwrap();
    let (changed, _, _) = pipeline.state(gst::ClockTime::from_seconds(10));
    changed.expect("the phone starts talking");
    let base = pipeline.base_time().expect("playing").seconds_f64();
    (pipeline, base)
}

fn wait_for_end(pipeline: &gst::Pipeline) {
    let bus = pipeline.bus().unwrap();
    let message = bus
        .timed_pop_filtered(
            gst::ClockTime::from_seconds(60),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        )
        .expect("the phone finishes talking");
    assert!(
        matches!(message.view(), gst::MessageView::Eos(_)),
        "{message:?}"
    );
    pipeline.set_state(gst::State::Null).unwrap();
}

/// Least-squares fit of a `hz` sine to `frame`: its amplitude, and the frame without it.
fn split_tone(frame: &[i16], hz: f64) -> (f64, Vec<f64>) {
    let w = 2.0 * std::f64::consts::PI * hz / RATE;
    let (mut ss, mut sc, mut cc, mut xs, mut xc) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for (i, &x) in frame.iter().enumerate() {
        let (s, c, x) = ((w * i as f64).sin(), (w * i as f64).cos(), x as f64);
        (ss, sc, cc, xs, xc) = (ss + s * s, sc + s * c, cc + c * c, xs + x * s, xc + x * c);
    }
    let det = ss * cc - sc * sc;
    let (a, b) = ((xs * cc - xc * sc) / det, (xc * ss - xs * sc) / det);
    let rest = frame
        .iter()
        .enumerate()
        .map(|(i, &x)| x as f64 - a * (w * i as f64).sin() - b * (w * i as f64).cos())
        .collect();
    ((a * a + b * b).sqrt(), rest)
}

/// What a phone heard, frame by frame: the translation's 440 Hz tone and everything else.
struct Heard {
    start: f64,
    tone: Vec<f64>,
    rest: Vec<f64>,
}

impl Heard {
    fn new((start, samples): (f64, Vec<i16>)) -> Self {
        let (tone, rest) = samples
            .chunks_exact(FRAME)
            .map(|frame| split_tone(frame, 440.0))
            .unzip::<_, _, Vec<f64>, Vec<Vec<f64>>>();
        let rest = rest
            .iter()
            .map(|r| (r.iter().map(|x| x * x).sum::<f64>() / r.len() as f64).sqrt())
            .collect();
        Self { start, tone, rest }
    }

    fn time(&self, frame: usize) -> f64 {
        self.start + (frame * FRAME) as f64 / RATE
    }

    /// Spans (clock seconds) where the tone is heard, pauses under 100 ms bridged, ≥ 300 ms long.
    fn tones(&self) -> Vec<(f64, f64)> {
        let mut spans: Vec<(f64, f64)> = Vec::new();
        for (i, &amplitude) in self.tone.iter().enumerate() {
            if amplitude < TONE_HEARD {
                continue;
            }
            let (start, end) = (self.time(i), self.time(i + 1));
            match spans.last_mut() {
                Some(last) if start - last.1 < 0.1 => last.1 = end,
                _ => spans.push((start, end)),
            }
        }
        spans.retain(|(start, end)| end - start >= 0.3);
        spans
    }

    /// The first time (clock seconds) something other than the tone is audible.
    fn first_sound(&self) -> f64 {
        let frame = self.rest.iter().position(|&r| r > 300.0).expect("sound");
        self.time(frame)
    }

    /// The frame starting nearest to a clock time. Rounded, not compared: `time(i) + 0.2` need
    /// not be `time(i + 10)` in floating point, and whether it is depends on the clock's value
    /// (at some clock readings a 0.2 s window held 9 frames).
    fn frame_at(&self, t: f64) -> usize {
        ((t - self.start) * RATE / FRAME as f64).round().max(0.0) as usize
    }

    /// RMS of what is not the tone between two clock times.
    fn rest_rms(&self, from: f64, to: f64) -> f64 {
        let (first, end) = (self.frame_at(from), self.frame_at(to));
        assert!(
            end <= self.rest.len() && end >= first + 10,
            "{from:.2}–{to:.2}: too short or past the end"
        );
        let frames = &self.rest[first..end];
        (frames.iter().map(|r| r * r).sum::<f64>() / frames.len() as f64).sqrt()
    }
}

/// RMS of 24 kHz reference audio between two times (seconds from its start).
fn reference_rms(samples: &[i16], from: f64, to: f64) -> f64 {
    rms(&samples[(from * 24_000.0) as usize..(to * 24_000.0) as usize])
}

/// The translations in a direction's subtitles (live pieces, joined): (n, D in seconds) each.
fn translations(
    subtitles: &Mutex<Vec<gstrealtimetranslate::subtitle_file::TimedCue>>,
) -> Vec<(u32, f64)> {
    let pieces: Vec<String> = subtitles
        .lock()
        .unwrap()
        .iter()
        .map(|c| c.text.trim().to_owned())
        .collect();
    let text = pieces.join(" ");
    text.split("Frase ")
        .filter(|s| !s.trim().is_empty())
        .map(|s| parse_translation(&format!("Frase {s}")))
        .collect()
}

/// The translations' tones among the tone spans heard: a translation that arrives while the
/// previous one still plays is queued right behind it, so one span may hold several, cut where
/// the subtitles' durations say. Each span must end with its last translation (± 0.1 s).
fn translated_tones(label: &str, spans: &[(f64, f64)], said: &[(u32, f64)]) -> Vec<(f64, f64)> {
    let mut durations = said.iter().map(|&(_, seconds)| seconds);
    let mut tones = Vec::new();
    for &(start, end) in spans {
        let mut at = start;
        while end - at > 0.1 {
            let seconds = durations
                .next()
                .unwrap_or_else(|| panic!("{label}: more tone than translations: {spans:?}"));
            tones.push((at, at + seconds));
            at += seconds;
        }
        assert!(
            (end - at).abs() < 0.1,
            "{label}: tone {start:.2}–{end:.2} for translations of {said:?}"
        );
    }
    tones
}

/// Checks one direction: the listener hears one tone per sentence of the speaker, as long as the
/// subtitle says and each after its sentence; returns the mouth-to-ear delay of the first.
fn check_direction(
    label: &str,
    speaker: &Talk,
    mouth: f64,
    heard: &Heard,
    said: &[(u32, f64)],
    pipeline_latency: f64,
) -> f64 {
    assert_eq!(said.len(), speaker.spans.len(), "{label}: {said:?}");
    let tones = translated_tones(label, &heard.tones(), said);
    assert_eq!(tones.len(), said.len(), "{label}: tones at {tones:?}");
    let mut first_delay = None;
    for (i, (((n, seconds), &(start, _)), &(from, to))) in
        said.iter().zip(&tones).zip(&speaker.spans).enumerate()
    {
        assert_eq!(*n as usize, i + 1, "{label}: {said:?}");
        assert!(
            (seconds - (to - from)).abs() < 0.3,
            "{label}: sentence of {:.2} s translated as {seconds:.2} s",
            to - from
        );
        let delay = start - (mouth + from);
        let after_end = start - (mouth + to);
        assert!(
            after_end > ENGINE_END_SILENCE - 0.05,
            "{label}: translation heard {after_end:.2} s after the sentence ended"
        );
        assert!(
            after_end < ENGINE_END_SILENCE + pipeline_latency + SCHEDULING_SLACK,
            "{label}: translation heard {after_end:.2} s after the sentence ended \
             (pipeline latency {pipeline_latency:.2} s)"
        );
        println!(
            "{label}: sentence {n} ({:.2} s) mouth-to-ear {delay:.2} s: {after_end:.2} s after \
             it ended (engine waits {ENGINE_END_SILENCE} s, bridge latency {pipeline_latency:.2} s)",
            to - from
        );
        first_delay.get_or_insert(delay);
    }
    first_delay.unwrap()
}

/// One call through the bridge: both phones talk at once (each its own recording, in real time)
/// and listen to what the bridge sends them.
struct Call {
    args: recipe::Args,
    /// System-clock time of each phone's first sample sent.
    a_mouth: f64,
    b_mouth: f64,
    heard_a: Heard,
    heard_b: Heard,
    /// The bridge pipeline's latency, queried while it ran (seconds).
    pipeline_latency: f64,
    bridge: recipe::Bridge,
}

impl Call {
    /// `options`: the bridge's command line beyond the ports and languages (A: en, B: es);
    /// `api_key` is set as an embedding program sets it (never on a command line).
    fn run(a_talk: &Talk, b_talk: &Talk, options: &[String], api_key: Option<ApiKey>) -> Self {
        let [a_listen, b_listen, a_ear, b_ear] = [(); 4].map(|_| free_udp_port());
        let mut command_line = vec![
            "--a-listen".to_owned(),
            a_listen.to_string(),
            "--a-send".to_owned(),
            format!("127.0.0.1:{a_ear}"),
            "--a-language".to_owned(),
            "en".to_owned(),
            "--b-listen".to_owned(),
            b_listen.to_string(),
            "--b-send".to_owned(),
            b_ear.to_string(),
            "--b-language".to_owned(),
            "es".to_owned(),
        ];
        command_line.extend_from_slice(options);
        let mut args = recipe::Args::parse(cli::Args::new(command_line)).unwrap();
        args.translate.api_key = api_key;
        let bridge = recipe::Bridge::new(&args).unwrap();
        let (ear_a, ear_b) = (Ear::listen(a_ear), Ear::listen(b_ear));
        let stop = Stop::new();
        let running = {
            let (pipeline, stop) = (bridge.pipeline.clone(), stop.clone());
            std::thread::spawn(move || recipes::run::run_to_end(&pipeline, &stop))
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while bridge.pipeline.current_state() != gst::State::Playing {
            assert!(Instant::now() < deadline, "the bridge does not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        let (a_mic, a_mouth) = speak(a_talk, a_listen);
        let (b_mic, b_mouth) = speak(b_talk, b_listen);
        wait_for_end(&a_mic);
        wait_for_end(&b_mic);

        let mut query = gst::query::Latency::new();
        assert!(bridge.pipeline.query(&mut query));
        let (live, min, _) = query.result();
        assert!(live);
        let pipeline_latency = min.seconds_f64();
        stop.request();
        running
            .join()
            .unwrap()
            .expect("the bridge runs without error");
        // The jitter buffer's and the element's latency, and a few ms of resampling and packets.
        let excess_ms = pipeline_latency * 1000.0 - args.expected_latency_ms() as f64;
        assert!(
            (0.0..50.0).contains(&excess_ms),
            "bridge latency {pipeline_latency:.3} s, expected {} ms",
            args.expected_latency_ms()
        );
        Self {
            args,
            a_mouth,
            b_mouth,
            heard_a: Heard::new(ear_a.hang_up()),
            heard_b: Heard::new(ear_b.hang_up()),
            pipeline_latency,
            bridge,
        }
    }

    /// When B first hears A's voice, from A's mouth (seconds); checked to be one bridge latency.
    fn original_delay_to_b(&self, a_talk: &Talk) -> f64 {
        let delay = self.heard_b.first_sound() - (self.a_mouth + a_talk.spans[0].0);
        assert!(
            delay > self.pipeline_latency - 0.1 && delay < self.pipeline_latency + 1.0,
            "A's voice reached B after {delay:.2} s (bridge latency {:.2} s)",
            self.pipeline_latency
        );
        delay
    }
}

#[test]
fn each_phone_hears_the_other_translated_with_the_original_ducked_underneath() {
    init();
    let dir = tempfile::tempdir().unwrap();
    // A's first sentence is long, so its translation plays while A says the second.
    let (a_talk, b_talk) = conversation(
        dir.path(),
        "Good morning everyone and welcome to the meeting.",
        0.5,
    );
    let server = utterance_server();
    let call = Call::run(
        &a_talk,
        &b_talk,
        &["--url".into(), server.url()],
        ApiKey::new(KEY),
    );
    let (heard_a, heard_b, latency) = (&call.heard_a, &call.heard_b, call.pipeline_latency);

    // Each direction: the other's sentences, translated, after they were said.
    let to_b = translations(&call.bridge.subtitles_to_b);
    let to_a = translations(&call.bridge.subtitles_to_a);
    let a_to_b = check_direction("A → B", &a_talk, call.a_mouth, heard_b, &to_b, latency);
    let b_to_a = check_direction("B → A", &b_talk, call.b_mouth, heard_a, &to_a, latency);

    // B hears A's original voice, one bridge latency after A spoke, at `original-volume` while
    // nothing is translated (A's first sentence) ...
    let original_delay = call.original_delay_to_b(&a_talk);
    let at_b = |t: f64| call.a_mouth + t + original_delay;
    let (from, to) = a_talk.spans[0];
    let open = heard_b.rest_rms(at_b(from), at_b(to)) / reference_rms(&a_talk.reference, from, to);
    // ... and ducked under the first translation, which plays during A's second sentence.
    let (tone_start, tone_end) = translated_tones("A → B", &heard_b.tones(), &to_b)[0];
    let (second_start, second_end) = a_talk.spans[1];
    let (from, to) = (
        (tone_start + 0.1).max(at_b(second_start)),
        (tone_end - 0.1).min(at_b(second_end)),
    );
    assert!(
        to - from > 0.3,
        "the translation hardly overlaps A's second sentence"
    );
    let sent = |t: f64| t - call.a_mouth - original_delay;
    let ducked =
        heard_b.rest_rms(from, to) / reference_rms(&a_talk.reference, sent(from), sent(to));
    println!(
        "A's original at B: delay {original_delay:.2} s, level {open:.2} between translations, \
         {ducked:.2} under one ({:.2} of it; original-volume {}, duck-level {})",
        ducked / open,
        call.args.original_volume,
        call.args.duck_level
    );
    println!(
        "mouth-to-ear of the translation: A → B {a_to_b:.2} s, B → A {b_to_a:.2} s \
         (bridge latency {latency:.2} s)"
    );
    assert!(
        (open - call.args.original_volume).abs() < 0.3,
        "A's voice at B at {open:.2} of its level between translations"
    );
    assert!(
        ducked / open > 0.1 && ducked / open < 0.45,
        "A's voice under the translation at {ducked:.2}, {open:.2} outside"
    );
}

#[test]
fn with_the_offline_engine_b_hears_spanish_speech_in_a_pause_and_a_hears_b_untranslated() {
    init();
    let dir = tempfile::tempdir().unwrap();
    // A pause long enough for the first sentence's translation to be heard on its own, however
    // long the recogniser takes on a busy machine (1.2–2.7 s after the sentence, measured).
    let (a_talk, b_talk) = conversation(dir.path(), "Good morning everyone.", 5.0);
    // No translator options: the offline engine (English → Spanish; `en` is the transcript only).
    let call = Call::run(&a_talk, &b_talk, &[], None);
    let (heard_a, heard_b) = (&call.heard_a, &call.heard_b);

    // B reads A's first sentence in Spanish. Not the exact words: the engine's recogniser has a
    // wideband (16 kHz) acoustic model, and on 8 kHz telephone audio it mishears ("Good morning
    // everyone." came out as "Barack un."), so only that something was translated is checked ...
    let text = call
        .bridge
        .subtitles_to_b
        .lock()
        .unwrap()
        .iter()
        .map(|c| c.text.trim().to_owned())
        .collect::<Vec<_>>()
        .join(" ");
    assert!(!text.is_empty(), "B reads no translation");
    // ... and that B hears Spanish speech in the pause after it, where A says nothing.
    let original_delay = call.original_delay_to_b(&a_talk);
    let at_b = |t: f64| call.a_mouth + t + original_delay;
    let (first_end, second_start) = (a_talk.spans[0].1, a_talk.spans[1].0);
    let spoken = (0..heard_b.rest.len())
        .map(|i| heard_b.time(i))
        .find(|&t| {
            t > at_b(first_end) + 0.1 && t < at_b(second_start) && {
                heard_b.rest_rms(t, t + 0.2) > 300.0
            }
        })
        .expect("B hears the translation in A's pause");
    let mouth_to_ear = spoken - (call.a_mouth + a_talk.spans[0].0);
    println!(
        "offline engine, A → B: \"{text}\"; mouth-to-ear {mouth_to_ear:.2} s for a sentence of \
         {:.2} s ({:.2} s after it ended; bridge latency {:.2} s)",
        first_end - a_talk.spans[0].0,
        spoken - (call.a_mouth + first_end),
        call.pipeline_latency
    );

    // B speaks Spanish, which the engine does not translate into English: A hears B's own voice,
    // at `original-volume`, not ducked, one bridge latency after B spoke.
    let (from, to) = b_talk.spans[0];
    let delay = heard_a.first_sound() - (call.b_mouth + from);
    assert!(
        delay > call.pipeline_latency - 0.1 && delay < call.pipeline_latency + 1.0,
        "B's voice reached A after {delay:.2} s"
    );
    let at_a = |t: f64| call.b_mouth + t + delay;
    let level = heard_a.rest_rms(at_a(from), at_a(to)) / reference_rms(&b_talk.reference, from, to);
    println!("B's voice at A: delay {delay:.2} s, level {level:.2}");
    assert!(
        (level - call.args.original_volume).abs() < 0.3,
        "B's voice at A at {level:.2} of its level"
    );
}

#[test]
fn command_line_names_both_parties_and_refuses_what_cannot_bridge() {
    let parse = |line: &[&str]| recipe::Args::parse(cli::Args::new(line.iter().copied()));
    let parties = [
        "--a-listen",
        "5004",
        "--a-send",
        "192.0.2.10:4000",
        "--b-listen",
        "5006",
        "--b-send",
        "4002",
    ];
    let args = parse(&parties).unwrap();
    assert_eq!(
        (args.a.listen, args.a.send_host.as_str(), args.a.send_port),
        (5004, "192.0.2.10", 4000)
    );
    assert_eq!(
        (args.b.send_host.as_str(), args.b.send_port),
        ("127.0.0.1", 4002)
    );
    assert_eq!(
        (args.a.language.as_str(), args.b.language.as_str()),
        ("en", "es")
    );
    assert_eq!(args.translate.backend(), "local");
    assert_eq!((args.original_volume, args.duck_level), (0.8, 0.25));
    assert_eq!(args.expected_latency_ms(), 100 + 200 + 250);
    let description = recipe::pipeline_description(&args);
    assert!(description.contains("udpsrc port=5004") && description.contains("port=4000"));

    let refused = |extra: &[&str]| {
        let mut line = parties.to_vec();
        line.extend_from_slice(extra);
        parse(&line).unwrap_err()
    };
    assert!(refused(&["--language", "fr"]).contains("--a-language"));
    assert!(refused(&["--original-volume", "2"]).contains("between 0 and 1"));
    assert!(refused(&["--b-listen", "5004"]).contains("must differ"));
    assert!(refused(&["--a-send", "host:port"]).contains("[HOST:]PORT"));
    assert!(parse(&parties[..6]).unwrap_err().contains("--b-send"));
}
