//! End-to-end tests of the offline engine's PocketSphinx recogniser (the light choice,
//! `model=pocketsphinx`) with real (synthesised) speech; Whisper has `offline_whisper.rs`.
//!
//! English input is made with flite, which PocketSphinx recognises well; eSpeak NG speech is not
//! (≈70 % WER), so it is not used as test input.

#[path = "common/speech_metrics.rs"]
mod speech_metrics;
use realtimetranslate_server::engine::offline::apertium::Apertium;
use realtimetranslate_server::engine::offline::espeak::parse_wav;
use realtimetranslate_server::engine::offline::languages::RecognizerChoice;
use realtimetranslate_server::engine::offline::resample::{Resampler, resample};
use realtimetranslate_server::engine::offline::{OfflineEngineFactory, OfflineOptions};
use realtimetranslate_server::engine::{Engine, EngineFactory, EngineOutput, SessionOptions};
use speech_metrics::rms;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const RATE: usize = 24_000;
const CHUNK: usize = 4_800;

/// One factory for the whole file, as in the server (also exercises concurrent sessions).
fn factory() -> &'static OfflineEngineFactory {
    static F: OnceLock<OfflineEngineFactory> = OnceLock::new();
    F.get_or_init(|| pocketsphinx_factory().expect("offline engine available"))
}

fn pocketsphinx_factory() -> Result<OfflineEngineFactory, String> {
    OfflineEngineFactory::with_options(OfflineOptions {
        default_recognizer: RecognizerChoice::PocketSphinx,
        ..OfflineOptions::default()
    })
}

/// `text` spoken by flite's `slt` voice at 24 kHz.
fn speech(text: &str) -> Vec<i16> {
    let out = Command::new("flite")
        .args(["-voice", "slt", "-t", text, "-o", "/dev/stdout"])
        .output()
        .expect("flite installed");
    assert!(out.status.success());
    let pcm = parse_wav(&out.stdout).expect("flite WAV");
    resample(&pcm.samples, pcm.rate, RATE as u32)
}

fn silence(seconds: f64) -> Vec<i16> {
    vec![0; (seconds * RATE as f64) as usize]
}

/// What the engine returned, with the input position (in samples) after which it came.
struct Run {
    outputs: Vec<(usize, EngineOutput)>,
    wall: Duration,
}

impl Run {
    fn texts(&self, input: bool) -> Vec<String> {
        self.outputs
            .iter()
            .filter_map(|(_, o)| match o {
                EngineOutput::InputTranscript(t) if input => Some(t.clone()),
                EngineOutput::OutputTranscript(t) if !input => Some(t.clone()),
                _ => None,
            })
            .collect()
    }
    fn audio(&self) -> Vec<&Vec<i16>> {
        self.outputs
            .iter()
            .filter_map(|(_, o)| match o {
                EngineOutput::OutputAudio(a) => Some(a),
                _ => None,
            })
            .collect()
    }
}

fn run(engine: &mut dyn Engine, input: &[i16], finish: bool) -> Run {
    let mut outputs = Vec::new();
    let start = Instant::now();
    let mut pos = 0;
    for chunk in input.chunks(CHUNK) {
        pos += chunk.len();
        outputs.extend(engine.push_audio(chunk).into_iter().map(|o| (pos, o)));
    }
    if finish {
        outputs.extend(engine.finish().into_iter().map(|o| (pos, o)));
    }
    Run {
        outputs,
        wall: start.elapsed(),
    }
}

fn wer(reference: &str, hypothesis: &str) -> f64 {
    speech_metrics::wer(reference, hypothesis, speech_metrics::plain_words)
}

/// What `backend=local` does: nothing started with the factory, then only what a session needs.
#[test]
fn pocketsphinx_sessions_never_start_the_whisper_worker() {
    let f = OfflineEngineFactory::with_options(OfflineOptions {
        start_default: false,
        ..OfflineOptions::default()
    })
    .unwrap();
    f.prepare("pocketsphinx").unwrap();
    let options = SessionOptions {
        model: "pocketsphinx".into(),
        source_language: None,
    };
    let mut engine = f.create_for("es", true, &options).unwrap();
    let text = "where is the train station";
    let mut input = silence(0.5);
    input.extend(speech(text));
    input.extend(silence(1.5));
    let heard = run(engine.as_mut(), &input, false).texts(true).concat();
    assert!(wer(text, &heard) <= 0.2, "{heard:?}");
    assert_eq!(f.worker_pid(), None, "the Whisper worker started");
}

#[test]
fn factory_api() {
    let f = factory();
    assert_eq!(f.name(), "offline");
    assert!(f.supported_languages().contains(&"es"));
    assert!(f.create("ja", true).is_err());
}

#[test]
fn translates_a_sentence_first_time() {
    let text = "the weather today is sunny and warm";
    let spoken = speech(text);
    let speech_len = spoken.len();
    let mut input = silence(0.5);
    input.extend(&spoken);
    let end_of_speech = input.len();
    input.extend(silence(1.5));

    let factory = factory();
    let t = Instant::now();
    let mut engine = factory.create("es", true).unwrap();
    let created = t.elapsed();
    let r = run(engine.as_mut(), &input, false);

    let heard = r.texts(true).concat();
    let said = r.texts(false).concat();
    eprintln!("create {created:?}; heard {heard:?}; said {said:?}");
    assert_eq!(r.texts(true).len(), 1, "one utterance: {heard:?}");
    assert!(wer(text, &heard) <= 0.15, "recognised {heard:?}");
    assert!(heard.ends_with(' '));
    assert!(
        said.contains("El tiempo hoy es soleado"),
        "translated {said:?}"
    );
    assert!(said.ends_with(". "), "{said:?}");
    let audio = r.audio();
    assert_eq!(audio.len(), 1);
    let secs = audio[0].len() as f64 / RATE as f64;
    assert!((1.0..5.0).contains(&secs), "audio {secs} s");
    assert!(rms(audio[0]) > 500.0, "audio RMS {}", rms(audio[0]));
    // Order: input transcript, output transcript, audio.
    let kinds: Vec<u8> = r
        .outputs
        .iter()
        .map(|(_, o)| match o {
            EngineOutput::InputTranscript(_) => 0,
            EngineOutput::OutputTranscript(_) => 1,
            EngineOutput::OutputAudio(_) => 2,
        })
        .collect();
    assert_eq!(kinds, [0, 1, 2]);
    let at = r.outputs[0].0;
    let lag = (at - end_of_speech) as f64 / RATE as f64;
    eprintln!(
        "speech {:.2} s; output after {lag:.2} s of input past end of speech; wall {:?} for {:.1} s of audio (RTF {:.3}); Spanish audio {secs:.2} s",
        speech_len as f64 / RATE as f64,
        r.wall,
        input.len() as f64 / RATE as f64,
        r.wall.as_secs_f64() / (input.len() as f64 / RATE as f64),
    );
}

#[test]
fn fresh_factory_gets_its_first_sentence_right() {
    // A factory of its own, so that its decoder has only ever decoded the warm-up utterance.
    let factory = pocketsphinx_factory().unwrap();
    let text = "i would like a cup of coffee";
    let mut input = silence(0.5);
    input.extend(speech(text));
    input.extend(silence(1.0));
    let mut engine = factory.create("es", true).unwrap();
    let r = run(engine.as_mut(), &input, true);
    let heard = r.texts(true).concat();
    eprintln!("fresh factory heard {heard:?}, said {:?}", r.texts(false));
    assert!(wer(text, &heard) <= 0.15, "{heard:?}");
}

#[test]
fn two_sentences_give_two_outputs() {
    let mut input = silence(0.5);
    input.extend(speech("thank you very much"));
    input.extend(silence(1.0));
    input.extend(speech("i would like a cup of coffee"));
    input.extend(silence(1.0));
    let mut engine = factory().create("es", false).unwrap();
    let r = run(engine.as_mut(), &input, true);
    let heard = r.texts(true);
    let said = r.texts(false);
    eprintln!("heard {heard:?}; said {said:?}");
    assert_eq!(heard.len(), 2, "{heard:?}");
    assert_eq!(said.len(), 2, "{said:?}");
    assert_eq!(r.audio().len(), 2);
    assert!(wer("thank you very much", &heard[0]) <= 0.25, "{heard:?}");
    assert!(
        wer("i would like a cup of coffee", &heard[1]) <= 0.15,
        "{heard:?}"
    );
    // The first sentence's output came before the second sentence was over.
    assert!(r.outputs[0].0 < input.len() - RATE);
}

#[test]
fn english_target_gives_transcript_only() {
    let mut input = silence(0.5);
    input.extend(speech("the children are playing in the garden"));
    input.extend(silence(1.0));
    let mut engine = factory().create("en", true).unwrap();
    let r = run(engine.as_mut(), &input, true);
    eprintln!("heard {:?}", r.texts(true));
    assert_eq!(r.texts(true).len(), 1);
    assert!(r.texts(false).is_empty());
    assert!(r.audio().is_empty());
}

#[test]
fn silence_gives_nothing() {
    let mut engine = factory().create("es", true).unwrap();
    let r = run(engine.as_mut(), &silence(5.0), true);
    assert!(r.outputs.is_empty(), "{:?}", r.texts(true));
}

#[test]
fn finish_flushes_a_sentence_without_trailing_silence() {
    let mut input = silence(0.5);
    let spoken = speech("where is the train station");
    // Cut flite's own trailing silence too.
    let end = spoken
        .iter()
        .rposition(|s| s.unsigned_abs() > 300)
        .unwrap_or(spoken.len());
    input.extend(&spoken[..=end]);
    let mut engine = factory().create("es", true).unwrap();
    let r = run(engine.as_mut(), &input, false);
    assert!(
        r.outputs.is_empty(),
        "nothing before finish: {:?}",
        r.texts(true)
    );
    let flushed = engine.finish();
    let heard: String = flushed
        .iter()
        .filter_map(|o| match o {
            EngineOutput::InputTranscript(t) => Some(t.as_str()),
            _ => None,
        })
        .collect();
    eprintln!("flushed {flushed:?}", flushed = heard);
    assert!(
        wer("where is the train station", &heard) <= 0.2,
        "{heard:?}"
    );
    assert_eq!(flushed.len(), 3);
    assert!(
        engine.finish().is_empty(),
        "a second finish has nothing left"
    );
}

#[test]
fn odd_input_does_not_panic() {
    let mut engine = factory().create("es", true).unwrap();
    assert!(engine.push_audio(&[]).is_empty());
    for n in [1, 3, 7, 4799, 4801, 1, 0, 12345] {
        engine.push_audio(&vec![0; n]);
    }
    // 30 s of loud pseudo-random noise and full-scale square waves.
    let mut x: u32 = 1;
    let noise: Vec<i16> = (0..30 * RATE)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            if (i / RATE).is_multiple_of(2) {
                (x >> 16) as i16
            } else if (i / 40).is_multiple_of(2) {
                i16::MAX
            } else {
                i16::MIN
            }
        })
        .collect();
    for chunk in noise.chunks(3333) {
        engine.push_audio(chunk);
    }
    engine.finish();
    engine.finish();
    engine.push_audio(&silence(1.0));
}

#[test]
fn sessions_run_concurrently_and_start_fast() {
    let factory = factory();
    let text = "please open the window";
    let mut input = silence(0.5);
    input.extend(speech(text));
    input.extend(silence(1.0));
    // Let the pool refill after other tests took decoders.
    let deadline = Instant::now() + Duration::from_secs(20);
    while factory.idle_decoders() < 1 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let t = Instant::now();
    let first = factory.create("es", true).unwrap();
    let created = t.elapsed();
    // The pool keeps one spare: a second session at once may have to build its own decoder.
    let second = factory.create("es", true).unwrap();
    eprintln!(
        "engines created in {created:?}, then {:?}",
        t.elapsed() - created
    );
    assert!(created < Duration::from_millis(500), "{created:?}");
    let engines = [first, second];
    let handles: Vec<_> = engines
        .into_iter()
        .map(|mut e| {
            let input = input.clone();
            std::thread::spawn(move || run(e.as_mut(), &input, true).texts(true).concat())
        })
        .collect();
    for h in handles {
        let heard = h.join().unwrap();
        assert!(wer(text, &heard) <= 0.25, "{heard:?}");
    }
}

#[test]
fn apertium_pipeline_is_long_lived() {
    let a = Apertium::new("eng-spa").unwrap();
    let sentences = [
        "the weather today is sunny and warm",
        "i would like a cup of coffee",
        "where is the train station",
        "my brother lives in a big house",
    ];
    let first = a.translate(sentences[0]).unwrap();
    assert_eq!(first, "El tiempo hoy es soleado y tibio");
    let start = Instant::now();
    for i in 0..20 {
        let t = Instant::now();
        let out = a.translate(sentences[i % sentences.len()]).unwrap();
        assert!(!out.is_empty());
        assert!(
            t.elapsed() < Duration::from_millis(200),
            "{:?}",
            t.elapsed()
        );
    }
    eprintln!("20 translations in {:?}", start.elapsed());
    assert_eq!(
        a.translate(sentences[0]).unwrap(),
        first,
        "deterministic, not shifted"
    );
    let special = a
        .translate("I have [a] test ^ with $ and / and < > here")
        .unwrap();
    eprintln!("special: {special:?}");
    for c in ['[', ']', '^', '$', '/', '<', '>'] {
        assert!(special.contains(c), "{c} lost: {special:?}");
    }
    assert_eq!(a.translate("  ").unwrap(), "");
}

/// Frequency (by zero crossings) and SNR against the ideal sine, away from the edges.
fn sine_check(rate_in: u32, rate_out: u32, freq: f64) {
    let n = rate_in as usize * 2;
    let amp = 16000.0;
    let input: Vec<i16> = (0..n)
        .map(|i| {
            (amp * (2.0 * std::f64::consts::PI * freq * i as f64 / f64::from(rate_in)).sin())
                .round() as i16
        })
        .collect();
    // Stream in odd chunk sizes to exercise the state.
    let mut r = Resampler::new(rate_in, rate_out);
    let mut out = Vec::new();
    for chunk in input.chunks(1234) {
        out.extend(r.process(chunk));
    }
    out.extend(r.flush());
    let expected_len = (n as u64 * u64::from(rate_out)).div_ceil(u64::from(rate_in)) as usize;
    assert_eq!(out.len(), expected_len);
    assert_eq!(
        out,
        resample(&input, rate_in, rate_out),
        "streaming = one-shot"
    );
    let skip = rate_out as usize / 10;
    let body = &out[skip..out.len() - skip];
    let (mut sig, mut err) = (0.0, 0.0);
    for (k, &y) in body.iter().enumerate() {
        let t = (k + skip) as f64 / f64::from(rate_out);
        let ideal = amp * (2.0 * std::f64::consts::PI * freq * t).sin();
        sig += ideal * ideal;
        err += (f64::from(y) - ideal).powi(2);
    }
    let snr = 10.0 * (sig / err).log10();
    let crossings = body.windows(2).filter(|w| (w[0] < 0) != (w[1] < 0)).count();
    let measured = crossings as f64 / 2.0 / (body.len() as f64 / f64::from(rate_out));
    eprintln!("{rate_in}->{rate_out} {freq} Hz: SNR {snr:.1} dB, frequency {measured:.1} Hz");
    assert!(snr >= 50.0, "SNR {snr:.1} dB");
    assert!((measured - freq).abs() < freq * 0.01, "{measured} Hz");
}

#[test]
fn resampler_keeps_frequency_and_snr() {
    for f in [440.0, 1000.0, 3000.0, 6000.0] {
        sine_check(24_000, 16_000, f);
        sine_check(22_050, 24_000, f);
    }
    sine_check(22_050, 24_000, 9000.0);
}

#[test]
fn resampler_rejects_aliases() {
    // 10 kHz is above the 8 kHz Nyquist rate of 16 kHz output: it must vanish, not fold to 6 kHz.
    let input: Vec<i16> = (0..48_000)
        .map(|i| {
            (16000.0 * (2.0 * std::f64::consts::PI * 10_000.0 * i as f64 / 24_000.0).sin()) as i16
        })
        .collect();
    let out = resample(&input, 24_000, 16_000);
    let body = &out[1600..out.len() - 1600];
    let level = 20.0 * (rms(body) / (16000.0 / 2f64.sqrt())).log10();
    eprintln!("10 kHz alias level {level:.1} dB");
    assert!(level < -60.0, "{level:.1} dB");
}

#[test]
fn a_noisy_session_does_not_spoil_the_next() {
    let factory = factory();
    let mut x: u32 = 7;
    let noise: Vec<i16> = (0..20 * RATE)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 16) as i16
        })
        .collect();
    let mut engine = factory.create("es", true).unwrap();
    run(engine.as_mut(), &noise, true);
    drop(engine);
    let text = "my brother lives in a big house";
    let mut input = silence(0.5);
    input.extend(speech(text));
    input.extend(silence(1.0));
    let mut engine = factory.create("es", true).unwrap();
    let heard = run(engine.as_mut(), &input, true).texts(true).concat();
    eprintln!("after noise heard {heard:?}");
    assert!(wer(text, &heard) <= 0.15, "{heard:?}");
}
