//! Quality and speed of the offline engine for each recogniser (Whisper base, the default;
//! Whisper tiny.en; PocketSphinx), English → Spanish, on English speech synthesised by flite and
//! on five real LibriVox utterances (the pocketsphinx 5.1.1 sdist's, unpacked by
//! `scripts/setup.sh`); then the other directions: English → Catalan, Galician, Esperanto
//! (round trip through Apertium and back, and how well Whisper understands the eSpeak NG voice),
//! Spanish and French → English (Whisper's translate task) and the Piper voice.
//!
//! `cargo bench -p realtimetranslate-server --bench offline_quality` takes a few minutes on two
//! cores; `BENCH_QUICK=1` a 5-sentence smoke run; `BENCH_RECOGNIZERS=whisper-base` (a comma
//! list) measures only those recognisers and skips the other directions.
//!
//! LibriVox utterances go into one stream the same way (0.5 s of silence before, 1 s after), and
//! the translation is scored with chrF against Apertium's translation of the reference text:
//! how much recognition errors change the Spanish.
//!
//! Each sentence is spoken by `flite -voice slt` (16 kHz), converted by sox to 24 kHz mono S16,
//! trimmed of flite's own leading/trailing silence (|s| ≤ 300) and padded with 0.5 s of silence
//! before and 1 s after; the sentences are concatenated into one stream that goes to ONE engine
//! session (target `es`, transcribe) in 200 ms chunks. Outputs are attributed to the sentence
//! whose speech began last before the input position at which they came.
//!
//! Measured:
//! - Recognition WER of the input transcripts (lower case, punctuation removed, apostrophes kept;
//!   word-level Levenshtein; overall = total edits / total reference words).
//! - Translation quality of the output transcripts against hand-written Spanish references:
//!   corpus chrF (character 1..6-grams, β = 2, whitespace ignored, case-sensitive: sacrebleu's
//!   defaults) and corpus BLEU (4-gram, brevity penalty, sacrebleu's `exp` smoothing, on
//!   lower-cased tokens with punctuation split off). The same scores for Apertium alone on the
//!   reference English (as written, and in the form the engine would give it from a perfect
//!   transcript) separate recognition errors from translation errors.
//! - Speed, unpaced run: wall time in `push_audio` + `finish` / audio seconds (real-time factor);
//!   also CPU time: this process's (including reaped eSpeak children, excluding the long-lived
//!   Apertium pipeline) plus the Whisper worker process's.
//! - Memory: resident size of this process and of the Whisper worker (models loaded).
//! - Latency, real-time paced run on a subset (chunk k pushed when its last sample would have been
//!   captured, (k+1) × 200 ms after the start): wall time from the `push_audio` call whose chunk
//!   holds the last speech sample to the return of the call that yields the `OutputAudio`. Also
//!   shown: the same from the real-time instant speech ended (adds the chunk's buffering) and how
//!   much input past the end of speech the engine needed (its VAD hang-over).

use realtimetranslate_server::engine::offline::apertium::Apertium;
use realtimetranslate_server::engine::offline::espeak::{self, parse_wav};
use realtimetranslate_server::engine::offline::languages::apertium_target;
use realtimetranslate_server::engine::offline::model_files::ModelFiles;
use realtimetranslate_server::engine::offline::python_worker::{PythonWorker, Task};
use realtimetranslate_server::engine::offline::resample::resample;
use realtimetranslate_server::engine::offline::sentences::tidy_translation as tidy;
use realtimetranslate_server::engine::offline::whisper_session::UtteranceTimes;
use realtimetranslate_server::engine::offline::{OfflineEngineFactory, capitalise_pronoun};
use realtimetranslate_server::engine::{Engine, EngineFactory, EngineOutput, SessionOptions};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

#[path = "common/process_stats.rs"]
mod process_stats;
use process_stats::{cpu_seconds, load_average, percentile, rss_mb};

const RATE: usize = 24_000;
/// 200 ms.
const CHUNK: usize = 4_800;
const LEAD_SILENCE: f64 = 0.5;
const TRAIL_SILENCE: f64 = 1.0;
/// Extra silence after the last sentence, before `finish`.
const END_SILENCE: f64 = 1.0;
/// Target: end of utterance → translated audio, p50.
const LATENCY_TARGET: f64 = 1.0;
/// Target: times faster than real time.
const SPEED_TARGET: f64 = 2.0;

/// English sentence (as spoken) and a natural Spanish reference translation.
const SENTENCES: &[(&str, &str)] = &[
    (
        "Good morning, how are you today?",
        "Buenos días, ¿cómo estás hoy?",
    ),
    (
        "I would like a cup of coffee, please.",
        "Quisiera una taza de café, por favor.",
    ),
    (
        "Where is the train station?",
        "¿Dónde está la estación de tren?",
    ),
    (
        "The weather is very nice today.",
        "Hoy hace muy buen tiempo.",
    ),
    (
        "My brother lives in a big house.",
        "Mi hermano vive en una casa grande.",
    ),
    (
        "Can you help me find my keys?",
        "¿Puedes ayudarme a encontrar mis llaves?",
    ),
    (
        "We are going to the beach on Saturday.",
        "Vamos a la playa el sábado.",
    ),
    (
        "I don't understand the question.",
        "No entiendo la pregunta.",
    ),
    (
        "The children are playing in the garden.",
        "Los niños están jugando en el jardín.",
    ),
    (
        "How much does this shirt cost?",
        "¿Cuánto cuesta esta camisa?",
    ),
    (
        "She reads a book every night.",
        "Ella lee un libro cada noche.",
    ),
    (
        "Please close the door when you leave.",
        "Por favor, cierra la puerta cuando salgas.",
    ),
    (
        "The restaurant opens at seven o'clock.",
        "El restaurante abre a las siete.",
    ),
    (
        "I am learning to speak Spanish.",
        "Estoy aprendiendo a hablar español.",
    ),
    (
        "Thank you very much for your help.",
        "Muchas gracias por tu ayuda.",
    ),
    (
        "My phone battery is almost empty.",
        "La batería de mi teléfono está casi vacía.",
    ),
    (
        "We need to buy bread and milk.",
        "Necesitamos comprar pan y leche.",
    ),
    (
        "The meeting starts in ten minutes.",
        "La reunión empieza en diez minutos.",
    ),
    (
        "Do you want to have dinner with us?",
        "¿Quieres cenar con nosotros?",
    ),
    (
        "It is raining and the streets are wet.",
        "Está lloviendo y las calles están mojadas.",
    ),
    (
        "My sister works at the hospital.",
        "Mi hermana trabaja en el hospital.",
    ),
    (
        "I will call you tomorrow morning.",
        "Te llamaré mañana por la mañana.",
    ),
    (
        "The dog is sleeping under the table.",
        "El perro está durmiendo debajo de la mesa.",
    ),
    (
        "What time does the bus arrive?",
        "¿A qué hora llega el autobús?",
    ),
];

// ---------------------------------------------------------------------------------------------
// Input audio

/// `text` spoken by flite's slt voice, converted by sox to 24 kHz mono S16, silence trimmed.
fn speak(text: &str, dir: &Path, n: usize) -> Vec<i16> {
    let wav = dir.join(format!("s{n}.wav"));
    let status = Command::new("flite")
        .args(["-voice", "slt", "-t", text, "-o"])
        .arg(&wav)
        .status()
        .expect("flite installed");
    assert!(status.success(), "flite failed on {text:?}");
    let out = Command::new("sox")
        .arg(&wav)
        .args(["-r", "24000", "-c", "1", "-b", "16", "-e", "signed-integer"])
        .args(["-t", "raw", "-"])
        .output()
        .expect("sox installed");
    assert!(
        out.status.success(),
        "sox failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_file(&wav);
    let pcm: Vec<i16> = out
        .stdout
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    let loud = |s: &i16| s.unsigned_abs() > 300;
    let first = pcm.iter().position(loud).expect("flite produced speech");
    let last = pcm.iter().rposition(loud).expect("flite produced speech");
    pcm[first..=last].to_vec()
}

fn silence(seconds: f64) -> Vec<i16> {
    vec![0; (seconds * RATE as f64).round() as usize]
}

/// Sentences laid out in one input stream.
struct Stream {
    pcm: Vec<i16>,
    /// Per sentence: sample positions of its first and one-past-last speech sample.
    speech: Vec<(usize, usize)>,
}

fn build_stream(clips: &[&Vec<i16>]) -> Stream {
    let mut pcm = Vec::new();
    let mut speech = Vec::new();
    for clip in clips {
        pcm.extend(silence(LEAD_SILENCE));
        let start = pcm.len();
        pcm.extend_from_slice(clip);
        speech.push((start, pcm.len()));
        pcm.extend(silence(TRAIL_SILENCE));
    }
    pcm.extend(silence(END_SILENCE));
    Stream { pcm, speech }
}

// ---------------------------------------------------------------------------------------------
// Running the engine

/// One engine output, with the input position (samples pushed) after which it came and the time
/// the call that returned it returned.
struct Event {
    pos: usize,
    at: Instant,
    output: EngineOutput,
}

struct Push {
    start: Instant,
    took: Duration,
}

struct RunLog {
    events: Vec<Event>,
    pushes: Vec<Push>,
    finish: Duration,
    cpu: f64,
}

impl RunLog {
    fn engine_time(&self) -> Duration {
        self.pushes.iter().map(|p| p.took).sum::<Duration>() + self.finish
    }
}

/// Feeds `pcm` in 200 ms chunks, as fast as possible or paced in real time.
fn run(engine: &mut dyn Engine, pcm: &[i16], paced: bool) -> RunLog {
    let mut events = Vec::new();
    let mut pushes = Vec::new();
    let cpu0 = cpu_seconds("self", true);
    let t0 = Instant::now();
    let mut pos = 0;
    for (k, chunk) in pcm.chunks(CHUNK).enumerate() {
        if paced {
            // A live source has the chunk once its last sample is captured.
            let due = t0 + Duration::from_millis(200 * (k as u64 + 1));
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
        }
        pos += chunk.len();
        let start = Instant::now();
        let outs = engine.push_audio(chunk);
        let at = Instant::now();
        pushes.push(Push {
            start,
            took: at - start,
        });
        events.extend(outs.into_iter().map(|output| Event { pos, at, output }));
    }
    let start = Instant::now();
    let outs = engine.finish();
    let at = Instant::now();
    events.extend(outs.into_iter().map(|output| Event { pos, at, output }));
    RunLog {
        events,
        pushes,
        finish: at - start,
        cpu: cpu_seconds("self", true) - cpu0,
    }
}

/// What came out for one sentence.
#[derive(Default)]
struct Heard {
    input: String,
    output: String,
    input_fragments: usize,
    audio: usize,
    audio_seconds: f64,
    /// First `OutputAudio`: input position and time.
    first_audio: Option<(usize, Instant)>,
}

/// Attributes outputs to sentences: to the last sentence whose speech began before the position.
fn attribute(log: &RunLog, speech: &[(usize, usize)]) -> Vec<Heard> {
    let mut heard: Vec<Heard> = speech.iter().map(|_| Heard::default()).collect();
    for e in &log.events {
        let i = speech
            .iter()
            .rposition(|&(start, _)| start < e.pos)
            .unwrap_or(0);
        let h = &mut heard[i];
        match &e.output {
            EngineOutput::InputTranscript(t) => {
                h.input.push_str(t);
                h.input_fragments += 1;
            }
            EngineOutput::OutputTranscript(t) => h.output.push_str(t),
            EngineOutput::OutputAudio(a) => {
                h.audio += 1;
                h.audio_seconds += a.len() as f64 / RATE as f64;
                h.first_audio.get_or_insert((e.pos, e.at));
            }
        }
    }
    for h in &mut heard {
        h.input = h.input.trim().to_string();
        h.output = h.output.trim().to_string();
    }
    heard
}

// ---------------------------------------------------------------------------------------------
// Metrics

/// Lower case, punctuation removed (apostrophes inside words kept).
fn asr_words(s: &str) -> Vec<String> {
    s.to_lowercase()
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '\'' {
                c
            } else {
                ' '
            }
        })
        .collect::<String>()
        .split_whitespace()
        .map(|w| w.trim_matches('\'').to_string())
        .filter(|w| !w.is_empty())
        // The LibriVox references spell titles out.
        .map(|w| if w == "mr" { "mister".to_string() } else { w })
        .collect()
}

fn edit_distance<T: PartialEq>(r: &[T], h: &[T]) -> usize {
    let mut row: Vec<usize> = (0..=h.len()).collect();
    for i in 1..=r.len() {
        let mut diag = row[0];
        row[0] = i;
        for j in 1..=h.len() {
            let up = row[j];
            row[j] = (up + 1)
                .min(row[j - 1] + 1)
                .min(diag + usize::from(r[i - 1] != h[j - 1]));
            diag = up;
        }
    }
    row[h.len()]
}

/// Per order n = 1..=6: (hypothesis n-grams, reference n-grams, matches).
type ChrfStats = [[usize; 3]; 6];

fn chrf_stats(hyp: &str, reference: &str) -> ChrfStats {
    let strip = |s: &str| -> Vec<char> { s.chars().filter(|c| !c.is_whitespace()).collect() };
    let (h, r) = (strip(hyp), strip(reference));
    let mut stats = [[0; 3]; 6];
    for (i, st) in stats.iter_mut().enumerate() {
        let n = i + 1;
        let hc = counts(h.windows(n));
        let rc = counts(r.windows(n));
        st[0] = hc.values().sum();
        st[1] = rc.values().sum();
        st[2] = clipped(&hc, &rc);
    }
    stats
}

fn counts<T: std::hash::Hash + Eq>(items: impl Iterator<Item = T>) -> HashMap<T, usize> {
    let mut m = HashMap::new();
    for it in items {
        *m.entry(it).or_insert(0) += 1;
    }
    m
}

fn clipped<T: std::hash::Hash + Eq>(h: &HashMap<T, usize>, r: &HashMap<T, usize>) -> usize {
    h.iter()
        .map(|(k, &c)| c.min(r.get(k).copied().unwrap_or(0)))
        .sum()
}

/// chrF2 from summed statistics, as sacrebleu: precision and recall averaged over the orders
/// present, then the F-β score (×100).
fn chrf_score(stats: &ChrfStats) -> f64 {
    let (mut p, mut r, mut orders) = (0.0, 0.0, 0);
    for &[nh, nr, m] in stats {
        if nh > 0 && nr > 0 {
            p += m as f64 / nh as f64;
            r += m as f64 / nr as f64;
            orders += 1;
        }
    }
    if orders == 0 {
        return 0.0;
    }
    let (p, r) = (p / f64::from(orders), r / f64::from(orders));
    if p + r == 0.0 {
        return 0.0;
    }
    let b2 = 4.0;
    100.0 * (1.0 + b2) * p * r / (b2 * p + r)
}

fn corpus_chrf<S: AsRef<str>>(pairs: &[(S, S)]) -> f64 {
    let mut total = [[0; 3]; 6];
    for (h, r) in pairs {
        let s = chrf_stats(h.as_ref(), r.as_ref());
        for (t, s) in total.iter_mut().zip(s) {
            for k in 0..3 {
                t[k] += s[k];
            }
        }
    }
    chrf_score(&total)
}

/// Lower-cased tokens, each punctuation character a token of its own.
fn bleu_tokens(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    for c in s.to_lowercase().chars() {
        if c.is_alphanumeric() {
            word.push(c);
        } else {
            if !word.is_empty() {
                out.push(std::mem::take(&mut word));
            }
            if !c.is_whitespace() {
                out.push(c.to_string());
            }
        }
    }
    if !word.is_empty() {
        out.push(word);
    }
    out
}

/// Corpus BLEU-4 (×100) with brevity penalty and sacrebleu's default `exp` smoothing of zero
/// matches.
fn corpus_bleu<S: AsRef<str>>(pairs: &[(S, S)]) -> f64 {
    let (mut matches, mut totals) = ([0usize; 4], [0usize; 4]);
    let (mut hyp_len, mut ref_len) = (0, 0);
    for (h, r) in pairs {
        let (h, r) = (bleu_tokens(h.as_ref()), bleu_tokens(r.as_ref()));
        hyp_len += h.len();
        ref_len += r.len();
        for n in 1..=4 {
            let hc = counts(h.windows(n));
            let rc = counts(r.windows(n));
            totals[n - 1] += hc.values().sum::<usize>();
            matches[n - 1] += clipped(&hc, &rc);
        }
    }
    if hyp_len == 0 {
        return 0.0;
    }
    let mut log_sum = 0.0;
    let mut smooth = 1.0;
    for n in 0..4 {
        if totals[n] == 0 {
            return 0.0;
        }
        let p = if matches[n] == 0 {
            smooth *= 2.0;
            1.0 / (smooth * totals[n] as f64)
        } else {
            matches[n] as f64 / totals[n] as f64
        };
        log_sum += p.ln();
    }
    let bp = if hyp_len >= ref_len {
        1.0
    } else {
        (1.0 - ref_len as f64 / hyp_len as f64).exp()
    };
    100.0 * bp * (log_sum / 4.0).exp()
}

// ---------------------------------------------------------------------------------------------
// Apertium alone

/// What the engine hands Apertium for a perfect recognition: lower case, no punctuation, the
/// pronoun "I" capitalised (as the engine does).
fn engine_form(english: &str) -> String {
    capitalise_pronoun(&asr_words(english).join(" "))
}

// ---------------------------------------------------------------------------------------------

fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("offline_quality.{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temporary directory");
    dir
}

fn self_check() {
    // sacrebleu 2.x: CHRF().sentence_score(...) = 61.576 (its documentation's example).
    let c = corpus_chrf(&[(
        "The relationship between Obama and Netanyahu is not exactly friendly.",
        "The ties between Obama and Netanyahu are not particularly friendly.",
    )]);
    assert!((c - 61.576).abs() < 0.01, "chrF self-check: {c}");
    let same = "el gato está en la casa .";
    assert!((corpus_bleu(&[(same, same)]) - 100.0).abs() < 1e-9);
    assert_eq!(
        edit_distance(&asr_words("a b c d"), &asr_words("A, x c d e")),
        2
    );
}

/// The five LibriVox utterances at 24 kHz (silence trimmed as flite's) and their references.
fn librivox() -> Vec<(Vec<i16>, String)> {
    let dir = ModelFiles::locate().librivox();
    let refs = std::fs::read_to_string(dir.join("transcription"))
        .expect("LibriVox utterances (run scripts/setup.sh)");
    refs.lines()
        .filter_map(|line| {
            let (text, id) = line.split_once("</s>")?;
            let id = id.trim().trim_matches(['(', ')']);
            let wav = std::fs::read(dir.join(format!("{id}.wav"))).ok()?;
            let pcm = parse_wav(&wav).ok()?;
            let pcm = resample(&pcm.samples, pcm.rate, RATE as u32);
            let loud = |s: &i16| s.unsigned_abs() > 300;
            let first = pcm.iter().position(loud)?;
            let last = pcm.iter().rposition(loud)?;
            Some((
                pcm[first..=last].to_vec(),
                text.replace("<s>", "").trim().to_string(),
            ))
        })
        .collect()
}

/// One recogniser's figures.
struct Figures {
    name: &'static str,
    flite_wer: f64,
    real_wer: f64,
    chrf: f64,
    bleu: f64,
    real_chrf: f64,
    rtf: f64,
    cpu_per_second: f64,
    lat_p50: f64,
    lat_p95: f64,
    lat_real_p50: f64,
    lat_real_p95: f64,
    lat_missing: usize,
}

fn options(model: &str) -> SessionOptions {
    SessionOptions {
        model: model.into(),
        source_language: None,
    }
}

fn session(factory: &OfflineEngineFactory, model: &str, target: &str) -> Box<dyn Engine> {
    factory
        .create_for(target, true, &options(model))
        .expect("session")
}

/// Where the end of utterance → audio time went in the paced run: input waited for (the
/// segmenter's hang-over and the 200 ms chunk), then per stage of the engine (medians).
fn print_stages(
    name: &str,
    lat_real: &[f64],
    lat_input: &[f64],
    stages: &[UtteranceTimes],
    load: &str,
) {
    let ms = |v: &[f64]| 1000.0 * percentile(v, 50.0);
    println!(
        "\n-- {name}: end of utterance → audio, real-time paced, {} utterances, load {load} --",
        lat_real.len()
    );
    println!(
        "  total p50 {:.0} ms / p95 {:.0} ms; input past the end of speech before the answer p50 {:.0} ms",
        ms(lat_real),
        1000.0 * percentile(lat_real, 95.0),
        ms(lat_input)
    );
    if stages.is_empty() {
        return;
    }
    let median =
        |f: &dyn Fn(&UtteranceTimes) -> f64| ms(&stages.iter().map(f).collect::<Vec<_>>()) / 1000.0;
    let worker = |stage: &'static str| {
        move |t: &UtteranceTimes| t.worker_ms.get(stage).copied().unwrap_or(0.0)
    };
    let mut line = format!(
        "  stages (ms, p50): recognition {:.0} [",
        median(&|t| 1000.0 * t.recognition.as_secs_f64())
    );
    for stage in [
        "vad",
        "features",
        "encode",
        "language",
        "transcribe",
        "translate",
        "short_window_doubtful",
    ] {
        line += &format!(" {stage} {:.0}", median(&worker(stage)));
    }
    line += &format!(
        " ] translation {:.0} speech {:.0}",
        median(&|t| 1000.0 * t.translation.as_secs_f64()),
        median(&|t| 1000.0 * t.speech.as_secs_f64())
    );
    println!("{line}");
    let ahead = stages.iter().filter(|t| t.ahead).count();
    let windows: Vec<f64> = stages.iter().filter_map(|t| t.window_s).collect();
    println!(
        "  decoded ahead during the pause: {ahead} of {}; encoder window p50 {:.0} s",
        stages.len(),
        percentile(&windows, 50.0)
    );
}

/// WER (%) of the input transcripts against the references.
fn wer_of(heard: &[Heard], references: &[&str]) -> f64 {
    let (mut edits, mut words) = (0, 0);
    for (h, r) in heard.iter().zip(references) {
        let r = asr_words(r);
        edits += edit_distance(&r, &asr_words(&h.input));
        words += r.len();
    }
    100.0 * edits as f64 / words.max(1) as f64
}

#[allow(clippy::too_many_arguments)]
fn bench_recognizer(
    factory: &OfflineEngineFactory,
    name: &'static str,
    sentences: &[(&str, &str)],
    clips: &[Vec<i16>],
    real: &[(Vec<i16>, String)],
    real_apertium: &[String],
    latency_idx: &[usize],
) -> Figures {
    // Warm up: loads the model (tiny.en on first use) and the session's path.
    let warm = build_stream(&[&clips[0]]);
    run(session(factory, name, "es").as_mut(), &warm.pcm, false);

    let stream = build_stream(&clips.iter().collect::<Vec<_>>());
    let audio_seconds = stream.pcm.len() as f64 / RATE as f64;
    let worker = factory.worker_pid();
    let worker_cpu0 = worker.map_or(0.0, |p| cpu_seconds(&p.to_string(), false));
    let log = run(session(factory, name, "es").as_mut(), &stream.pcm, false);
    let worker_cpu = worker.map_or(0.0, |p| cpu_seconds(&p.to_string(), false)) - worker_cpu0;
    let heard = attribute(&log, &stream.speech);
    let english: Vec<&str> = sentences.iter().map(|(en, _)| *en).collect();
    let outputs: Vec<(String, String)> = heard
        .iter()
        .zip(sentences)
        .map(|(h, (_, es))| (h.output.clone(), es.to_string()))
        .collect();

    println!("\n-- {name}: flite sentences misheard --");
    for (h, r) in heard.iter().zip(&english) {
        if edit_distance(&asr_words(r), &asr_words(&h.input)) > 0 {
            println!("  REF {r}\n  ASR {}", h.input);
        }
    }
    let real_clips: Vec<&Vec<i16>> = real.iter().map(|(pcm, _)| pcm).collect();
    let real_stream = build_stream(&real_clips);
    let real_log = run(
        session(factory, name, "es").as_mut(),
        &real_stream.pcm,
        false,
    );
    let real_heard = attribute(&real_log, &real_stream.speech);
    let real_refs: Vec<&str> = real.iter().map(|(_, r)| r.as_str()).collect();
    println!("\n-- {name}: LibriVox (real read speech) --");
    for (h, r) in real_heard.iter().zip(&real_refs) {
        println!(
            "  REF {r}\n  ASR {}  (WER {:.1}%)\n  ES  {}",
            h.input,
            wer_of(std::slice::from_ref(h), &[r]),
            h.output
        );
    }
    let real_pairs: Vec<(String, String)> = real_heard
        .iter()
        .zip(real_apertium)
        .map(|(h, a)| (h.output.clone(), a.clone()))
        .collect();

    let lat_clips: Vec<&Vec<i16>> = latency_idx.iter().map(|&i| &clips[i]).collect();
    let lat_stream = build_stream(&lat_clips);
    let load_before = load_average();
    let (lat_log, stages, voided) = if name.starts_with("whisper") {
        let mut engine = factory
            .whisper_session("es", true, &options(name))
            .expect("session");
        let log = run(&mut engine, &lat_stream.pcm, true);
        (log, engine.times().to_vec(), engine.voided_ahead())
    } else {
        let log = run(session(factory, name, "es").as_mut(), &lat_stream.pcm, true);
        (log, Vec::new(), 0)
    };
    let lat_load = format!("{load_before} → {}", load_average());
    let lat_heard = attribute(&lat_log, &lat_stream.speech);
    let paced_start = lat_log.pushes.first().expect("pushed").start;
    let (mut lat_push, mut lat_real, mut lat_input) = (Vec::new(), Vec::new(), Vec::new());
    for (j, h) in lat_heard.iter().enumerate() {
        let s1 = lat_stream.speech[j].1;
        let eos_push = lat_log.pushes[(s1 - 1) / CHUNK].start;
        let eos_real = paced_start - Duration::from_millis(200)
            + Duration::from_secs_f64(s1 as f64 / RATE as f64);
        if let Some((pos, at)) = h.first_audio {
            lat_push.push(at.saturating_duration_since(eos_push).as_secs_f64());
            lat_real.push(at.saturating_duration_since(eos_real).as_secs_f64());
            lat_input.push(pos.saturating_sub(s1) as f64 / RATE as f64);
        }
    }
    print_stages(name, &lat_real, &lat_input, &stages, &lat_load);
    if !stages.is_empty() {
        println!("  answers decoded ahead and dropped (speech went on): {voided}");
    }
    Figures {
        name,
        flite_wer: wer_of(&heard, &english),
        real_wer: wer_of(&real_heard, &real_refs),
        chrf: corpus_chrf(&outputs),
        bleu: corpus_bleu(&outputs),
        real_chrf: corpus_chrf(&real_pairs),
        rtf: log.engine_time().as_secs_f64() / audio_seconds,
        cpu_per_second: (log.cpu + worker_cpu) / audio_seconds,
        lat_p50: percentile(&lat_push, 50.0),
        lat_p95: percentile(&lat_push, 95.0),
        lat_real_p50: percentile(&lat_real, 50.0),
        lat_real_p95: percentile(&lat_real, 95.0),
        lat_missing: lat_heard.len() - lat_push.len(),
    }
}

/// chrF of a round trip English → X → English (Apertium both ways) against the English, and of
/// Whisper's (unfiltered) reading of the eSpeak NG voice against the text it spoke: translation
/// adequacy and voice intelligibility, where no reference translation exists.
fn bench_directions(worker: &PythonWorker, english: &[&str]) {
    println!(
        "\n== Directions from English (Apertium, eSpeak NG), {} sentences ==",
        english.len()
    );
    println!(
        "target  pair    back    round-trip chrF  voice  Whisper reads the voice: chrF   example"
    );
    println!(
        "(Whisper has no Esperanto: its reading of the eo voice says nothing about the voice)"
    );
    // Galician twice: eSpeak NG has no Galician voice; the engine uses the Spanish one, the
    // Portuguese one is the alternative.
    let cases = [
        ("es", "spa-eng", None),
        ("ca", "cat-eng", None),
        ("gl", "gl-en", None),
        ("gl", "gl-en", Some("pt")),
        ("eo", "eo-en", None),
    ];
    for (code, back_pair, other_voice) in cases {
        let mut target = apertium_target(code).expect("target");
        if let Some(voice) = other_voice {
            target.voice = voice;
        }
        let (Ok(there), Ok(back)) = (Apertium::new(target.pair), Apertium::new(back_pair)) else {
            println!("{code:<6}  {}: not installed", target.pair);
            continue;
        };
        let (mut round, mut read) = (Vec::new(), Vec::new());
        let mut example = String::new();
        for en in english {
            let x = tidy(&there.translate(en).unwrap_or_default());
            let again = tidy(&back.translate(&x).unwrap_or_default());
            round.push((again, en.to_string()));
            let speech = espeak::synthesize(target.voice, &x).expect("espeak-ng");
            let pcm = resample(&speech.samples, speech.rate, 16_000);
            let heard = worker
                .transcribe_unfiltered("whisper-base", &pcm, Some(code), &[Task::Transcribe])
                .map(|t| t.texts.get("transcribe").cloned().unwrap_or_default())
                .unwrap_or_default();
            if example.is_empty() {
                example = format!("{x:?} → heard {heard:?}");
            }
            read.push((heard, x));
        }
        println!(
            "{code:<6}  {:<7} {back_pair:<7} {:>15.1}  {:<5}  {:>30.1}   {example}",
            target.pair,
            corpus_chrf(&round),
            target.voice,
            corpus_chrf(&read)
        );
    }
}

/// Speech in Spanish (eSpeak NG) → English text (Whisper's translate task), scored against the
/// English the sentences came from; and Piper's English read back by Whisper. Unfiltered: the
/// engine drops unsure text, which would score as nothing here.
fn bench_into_english(worker: &PythonWorker, sentences: &[(&str, &str)]) {
    println!("\n== Into English (Whisper base translate task; Piper voice) ==");
    let mut pairs = Vec::new();
    let mut detected = 0;
    for (en, es) in sentences {
        let speech = espeak::synthesize("es", es).expect("espeak-ng");
        let pcm = resample(&speech.samples, speech.rate, 16_000);
        let t = worker
            .transcribe_unfiltered("whisper-base", &pcm, None, &[Task::Translate])
            .unwrap_or_default();
        detected += usize::from(t.language.as_deref() == Some("es"));
        pairs.push((
            t.texts.get("translate").cloned().unwrap_or_default(),
            en.to_string(),
        ));
    }
    println!(
        "Spanish (eSpeak NG es) → English: chrF {:.1}, BLEU {:.1}; language detected as es {detected}/{}; e.g. {:?} → {:?}",
        corpus_chrf(&pairs),
        corpus_bleu(&pairs),
        sentences.len(),
        sentences[0].1,
        pairs[0].0
    );
    let (mut words, mut edits, mut seconds, mut took) = (0, 0, 0.0, 0.0);
    for (en, _) in sentences {
        let t = Instant::now();
        let speech = worker.speak(en).expect("piper");
        took += t.elapsed().as_secs_f64();
        seconds += speech.samples.len() as f64 / f64::from(speech.rate);
        let pcm = resample(&speech.samples, speech.rate, 16_000);
        let heard = worker
            .transcribe_unfiltered("whisper-base", &pcm, Some("en"), &[Task::Transcribe])
            .map(|t| t.texts.get("transcribe").cloned().unwrap_or_default())
            .unwrap_or_default();
        let r = asr_words(en);
        edits += edit_distance(&r, &asr_words(&heard));
        words += r.len();
    }
    println!(
        "Piper joe (English voice): Whisper base reads it back at {:.1}% WER; synthesis RTF {:.3}",
        100.0 * edits as f64 / words.max(1) as f64,
        took / seconds
    );
}

fn main() {
    let quick = std::env::var_os("BENCH_QUICK").is_some_and(|v| v != "0" && !v.is_empty())
        || std::env::args().any(|a| a == "--quick");
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    self_check();
    let total_start = Instant::now();
    let n = if quick { 5 } else { SENTENCES.len() };
    let sentences = &SENTENCES[..n];
    let latency_idx: Vec<usize> = if quick {
        vec![0, 2, 4]
    } else {
        (0..n).step_by(2).take(10).collect()
    };
    println!(
        "offline engine quality benchmark: {n} flite sentences, 5 LibriVox utterances{}",
        if quick { " (BENCH_QUICK)" } else { "" }
    );
    let dir = temp_dir();
    let clips: Vec<Vec<i16>> = sentences
        .iter()
        .enumerate()
        .map(|(i, (en, _))| speak(en, &dir, i))
        .collect();
    let _ = std::fs::remove_dir_all(&dir);
    let real = librivox();
    assert_eq!(real.len(), 5, "LibriVox utterances (run scripts/setup.sh)");

    let rss_before = rss_mb("self");
    let t = Instant::now();
    let factory = OfflineEngineFactory::new().expect("offline engine available");
    let worker_pid = factory.worker_pid();
    let worker_rss = |_: ()| worker_pid.map_or(f64::NAN, |p| rss_mb(&p.to_string()));
    println!(
        "factory ready in {:.1} s (Whisper base and the Piper voice loaded, hashes checked); worker RSS {:.0} MB",
        t.elapsed().as_secs_f64(),
        worker_rss(())
    );

    let apertium = Apertium::new("eng-spa").expect("apertium eng-spa");
    let real_apertium: Vec<String> = real
        .iter()
        .map(|(_, r)| tidy(&apertium.translate(&engine_form(r)).expect("apertium")))
        .collect();
    let written: Vec<(String, String)> = sentences
        .iter()
        .map(|(en, es)| {
            (
                tidy(&apertium.translate(en).expect("apertium")),
                es.to_string(),
            )
        })
        .collect();

    let mut figures = Vec::new();
    // BENCH_RECOGNIZERS=whisper-base,… measures only those (the default recogniser first).
    let chosen = std::env::var("BENCH_RECOGNIZERS").unwrap_or_default();
    for name in ["whisper-base", "whisper-tiny.en", "pocketsphinx"]
        .into_iter()
        .filter(|n| chosen.is_empty() || chosen.split(',').any(|c| c.trim() == *n))
    {
        figures.push(bench_recognizer(
            &factory,
            name,
            sentences,
            &clips,
            &real,
            &real_apertium,
            &latency_idx,
        ));
        println!(
            "   memory after {name}: this process {:.0} MB (was {rss_before:.0} MB before the engine), worker {:.0} MB",
            rss_mb("self"),
            worker_rss(())
        );
    }

    let worker = factory.whisper_worker().expect("worker");
    // The other directions need Whisper base; a run limited to some recognisers skips them.
    let direction_sentences: Vec<&str> = sentences.iter().take(8).map(|(en, _)| *en).collect();
    if chosen.is_empty() {
        bench_directions(&worker, &direction_sentences);
        bench_into_english(&worker, &sentences[..sentences.len().min(8)]);
    }

    println!();
    println!("== Summary: English → Spanish, per recogniser ==");
    println!(
        "{:<16} {:>9} {:>10} {:>6} {:>6} {:>10} {:>6} {:>8} {:>17} {:>17}",
        "recogniser",
        "WER flite",
        "WER real",
        "chrF2",
        "BLEU",
        "chrF real",
        "RTF",
        "CPU/s",
        "EoS push→audio",
        "EoS real→audio"
    );
    println!(
        "{:<16} {:>9} {:>10} {:>6} {:>6} {:>10} {:>6} {:>8} {:>17} {:>17}",
        "", "", "LibriVox", "", "", "vs ref", "", "", "p50 / p95 (s)", "p50 / p95 (s)"
    );
    for f in &figures {
        println!(
            "{:<16} {:>8.1}% {:>9.1}% {:>6.1} {:>6.1} {:>10.1} {:>6.3} {:>8.3} {:>8.2} / {:<6.2} {:>8.2} / {:<6.2}{}",
            f.name,
            f.flite_wer,
            f.real_wer,
            f.chrf,
            f.bleu,
            f.real_chrf,
            f.rtf,
            f.cpu_per_second,
            f.lat_p50,
            f.lat_p95,
            f.lat_real_p50,
            f.lat_real_p95,
            if f.lat_missing > 0 {
                format!("  ({} without audio)", f.lat_missing)
            } else {
                String::new()
            }
        );
    }
    println!(
        "{:<16} {:>9} {:>10} {:>6.1} {:>6.1}   (baseline: Apertium on the English as written)",
        "Apertium alone",
        "-",
        "-",
        corpus_chrf(&written),
        corpus_bleu(&written)
    );
    println!(
        "chrF real: the engine's Spanish on LibriVox against Apertium's Spanish of the reference text.\n\
         EoS push→audio: wall time from pushing the chunk with the last speech sample to the output audio (real-time paced);\n\
         EoS real→audio: from the moment speech ended in real time (adds up to 200 ms of chunk buffering)."
    );
    println!();
    if let Some(default) = figures.iter().find(|f| f.name == "whisper-base") {
        print_targets(default);
    }
    println!(
        "(machine load at the end: {}; total benchmark time {:.1} s)",
        load_average(),
        total_start.elapsed().as_secs_f64()
    );
}

fn print_targets(default: &Figures) {
    println!("== Targets (Whisper base, the default) ==");
    let pass = |ok: bool| if ok { "PASS" } else { "FAIL" };
    println!(
        "[{}] end of utterance → translated audio p50 ≤ {LATENCY_TARGET:.1} s: {:.2} s",
        pass(default.lat_missing == 0 && default.lat_real_p50 <= LATENCY_TARGET),
        default.lat_real_p50
    );
    println!(
        "[{}] end of utterance → translated audio p95 ≤ 1.5 s: {:.2} s",
        pass(default.lat_real_p95 <= 1.5),
        default.lat_real_p95
    );
    println!(
        "[{}] engine ≥ {SPEED_TARGET:.0}x faster than real time: {:.1}x",
        pass(1.0 / default.rtf >= SPEED_TARGET),
        1.0 / default.rtf
    );
}
