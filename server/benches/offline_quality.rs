//! Quality and speed of the offline English → Spanish engine
//! (PocketSphinx → Apertium → eSpeak NG), on English speech synthesised by flite.
//!
//! `cargo bench -p realtimetranslate-server --bench offline_quality` runs 24 sentences (about a
//! minute and a half); `BENCH_QUICK=1` a 5-sentence smoke run.
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
//!   also this process's CPU time (including reaped eSpeak children, excluding the long-lived
//!   Apertium pipeline).
//! - Latency, real-time paced run on a subset (chunk k pushed when its last sample would have been
//!   captured, (k+1) × 200 ms after the start): wall time from the `push_audio` call whose chunk
//!   holds the last speech sample to the return of the call that yields the `OutputAudio`. Also
//!   shown: the same from the real-time instant speech ended (adds the chunk's buffering) and how
//!   much input past the end of speech the engine needed (its VAD hang-over).

use realtimetranslate_server::engine::offline::apertium::Apertium;
use realtimetranslate_server::engine::offline::{
    OfflineEngineFactory, capitalise_pronoun, tidy_translation as tidy,
};
use realtimetranslate_server::engine::{Engine, EngineFactory, EngineOutput};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

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
    /// Input position after this call.
    pos: usize,
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

/// CPU seconds of this process so far (its threads, plus children it has waited for).
fn process_cpu() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return f64::NAN;
    };
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return f64::NAN;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14..17 of stat(5) (utime, stime, cutime, cstime); `rest` starts at field 3.
    let ticks: f64 = fields[11..15]
        .iter()
        .map(|f| f.parse::<f64>().unwrap_or(0.0))
        .sum();
    ticks / 100.0
}

/// Feeds `pcm` in 200 ms chunks, as fast as possible or paced in real time.
fn run(engine: &mut dyn Engine, pcm: &[i16], paced: bool) -> RunLog {
    let mut events = Vec::new();
    let mut pushes = Vec::new();
    let cpu0 = process_cpu();
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
            pos,
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
        cpu: process_cpu() - cpu0,
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

/// Nearest-rank percentile.
fn percentile(values: &[f64], p: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * v.len() as f64).ceil().max(1.0) as usize;
    v[rank.min(v.len()) - 1]
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
    // Latency subset: spread over the set.
    let latency_idx: Vec<usize> = if quick {
        vec![0, 2, 4]
    } else {
        (0..n).step_by(3).take(8).collect()
    };

    println!(
        "offline engine quality benchmark: {n} sentences{}",
        if quick { " (BENCH_QUICK)" } else { "" }
    );
    let dir = temp_dir();
    let t = Instant::now();
    let clips: Vec<Vec<i16>> = sentences
        .iter()
        .enumerate()
        .map(|(i, (en, _))| speak(en, &dir, i))
        .collect();
    let _ = std::fs::remove_dir_all(&dir);
    println!(
        "synthesised with flite in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    let t = Instant::now();
    let factory = OfflineEngineFactory::new().expect("offline engine available");
    println!("factory ready in {:.1} s", t.elapsed().as_secs_f64());

    // --- Quality + speed: all sentences, unpaced, one session.
    let stream = build_stream(&clips.iter().collect::<Vec<_>>());
    let audio_seconds = stream.pcm.len() as f64 / RATE as f64;
    let speech_seconds: f64 = stream
        .speech
        .iter()
        .map(|&(a, b)| (b - a) as f64 / RATE as f64)
        .sum();
    let t = Instant::now();
    let mut engine = factory.create("es", true).expect("session");
    let created = t.elapsed();
    let log = run(engine.as_mut(), &stream.pcm, false);
    drop(engine);
    let heard = attribute(&log, &stream.speech);

    // --- Apertium alone on the reference English.
    let apertium = Apertium::new("eng-spa").expect("apertium eng-spa");
    let mut apertium_times = Vec::new();
    let mut ape_written = Vec::new();
    let mut ape_form = Vec::new();
    for (en, _) in sentences {
        let t = Instant::now();
        ape_written.push(tidy(&apertium.translate(en).expect("apertium")));
        apertium_times.push(t.elapsed().as_secs_f64());
        ape_form.push(tidy(
            &apertium.translate(&engine_form(en)).expect("apertium"),
        ));
    }

    // --- Latency: subset, real-time paced, one session.
    let lat_clips: Vec<&Vec<i16>> = latency_idx.iter().map(|&i| &clips[i]).collect();
    let lat_stream = build_stream(&lat_clips);
    // Let the pool refill after the first session.
    let deadline = Instant::now() + Duration::from_secs(10);
    while factory.idle_decoders() < 1 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut engine = factory.create("es", true).expect("session");
    let t = Instant::now();
    let lat_log = run(engine.as_mut(), &lat_stream.pcm, true);
    let paced_wall = t.elapsed();
    drop(engine);
    let lat_heard = attribute(&lat_log, &lat_stream.speech);

    // ---------------------------------------------------------------- per-sentence report
    println!();
    println!(
        "== Per sentence (quality run: one session, unpaced, {:.1} s of audio) ==",
        audio_seconds
    );
    let (mut edits, mut ref_words, mut exact) = (0, 0, 0);
    let (mut one_output, mut missing, mut split) = (0, 0, 0);
    for (i, ((en, es), h)) in sentences.iter().zip(&heard).enumerate() {
        let r = asr_words(en);
        let e = edit_distance(&r, &asr_words(&h.input));
        edits += e;
        ref_words += r.len();
        exact += usize::from(e == 0);
        match (h.input_fragments, h.audio) {
            (1, 1) => one_output += 1,
            (0, _) => missing += 1,
            _ => split += 1,
        }
        let lag = h
            .first_audio
            .map(|(pos, _)| {
                format!(
                    "{:.1} s",
                    (pos as f64 - stream.speech[i].1 as f64) / RATE as f64
                )
            })
            .unwrap_or_else(|| "-".into());
        println!(
            "[{:2}] EN : {en}\n     ASR: {:<48} WER {:5.1}% ({e}/{})\n     ES : {:<48} chrF {:5.1}\n     REF: {es}\n     APE: {:<48} chrF {:5.1}  (Apertium on the English as written)\n     out: {} transcript(s), {} audio ({:.1} s), input past end of speech {lag}",
            i + 1,
            if h.input.is_empty() {
                "(nothing)"
            } else {
                &h.input
            },
            100.0 * e as f64 / r.len() as f64,
            r.len(),
            if h.output.is_empty() {
                "(nothing)"
            } else {
                &h.output
            },
            corpus_chrf(&[(h.output.as_str(), *es)]),
            ape_written[i],
            corpus_chrf(&[(ape_written[i].as_str(), *es)]),
            h.input_fragments,
            h.audio,
            h.audio_seconds,
        );
    }

    println!();
    println!(
        "== Latency run: one session, real-time paced ({} sentences, {:.1} s of audio in {:.1} s) ==",
        latency_idx.len(),
        lat_stream.pcm.len() as f64 / RATE as f64,
        paced_wall.as_secs_f64()
    );
    println!(
        "{:>4}  {:>8}  {:>10}  {:>10}  {:>9}  {:>9}  heard",
        "#", "speech", "EOS push→", "EOS real→", "input", "emitting"
    );
    println!(
        "{:>4}  {:>8}  {:>10}  {:>10}  {:>9}  {:>9}",
        "", "", "audio out", "audio out", "past EOS", "call"
    );
    let (mut lat_push, mut lat_real, mut lat_input, mut emit_calls) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let paced_start = lat_log
        .pushes
        .first()
        .map(|p| p.start)
        .expect("pushed something");
    for (j, (&i, h)) in latency_idx.iter().zip(&lat_heard).enumerate() {
        let (s0, s1) = lat_stream.speech[j];
        let eos_chunk = (s1 - 1) / CHUNK;
        let eos_push = lat_log.pushes[eos_chunk].start;
        // When speech ended in real time: chunk k's push was due (k+1) × 200 ms after the start
        // of pacing; the first push happened at 200 ms.
        let eos_real = paced_start - Duration::from_millis(200)
            + Duration::from_secs_f64(s1 as f64 / RATE as f64);
        let row = match h.first_audio {
            Some((pos, at)) => {
                let a = at.saturating_duration_since(eos_push).as_secs_f64();
                let b = at.saturating_duration_since(eos_real).as_secs_f64();
                let c = (pos as f64 - s1 as f64) / RATE as f64;
                let call = lat_log
                    .pushes
                    .iter()
                    .find(|p| p.pos == pos)
                    .map_or(lat_log.finish, |p| p.took)
                    .as_secs_f64();
                lat_push.push(a);
                lat_real.push(b);
                lat_input.push(c);
                emit_calls.push(call);
                format!("{:>10.3}  {:>10.3}  {:>9.2}  {:>9.3}", a, b, c, call)
            }
            None => format!("{:>10}  {:>10}  {:>9}  {:>9}", "none", "none", "-", "-"),
        };
        println!(
            "{:>4}  {:>7.2}s  {row}  {}",
            i + 1,
            (s1 - s0) as f64 / RATE as f64,
            h.input
        );
    }
    let lat_missing = lat_heard.iter().filter(|h| h.first_audio.is_none()).count();

    // ---------------------------------------------------------------- summary
    let outputs: Vec<&str> = heard.iter().map(|h| h.output.as_str()).collect();
    let refs: Vec<&str> = sentences.iter().map(|(_, es)| *es).collect();
    let pairs = |hyps: &[&str]| -> Vec<(String, String)> {
        hyps.iter()
            .zip(&refs)
            .map(|(h, r)| (h.to_string(), r.to_string()))
            .collect()
    };
    let ape_w: Vec<&str> = ape_written.iter().map(String::as_str).collect();
    let ape_f: Vec<&str> = ape_form.iter().map(String::as_str).collect();
    let engine_pairs = pairs(&outputs);
    let written_pairs = pairs(&ape_w);
    let form_pairs = pairs(&ape_f);

    let engine_time = log.engine_time().as_secs_f64();
    let rtf = engine_time / audio_seconds;
    let speedup = 1.0 / rtf;
    let push_ms: Vec<f64> = log
        .pushes
        .iter()
        .map(|p| p.took.as_secs_f64() * 1e3)
        .collect();
    let emitting: Vec<f64> = log
        .pushes
        .iter()
        .filter(|p| log.events.iter().any(|e| e.pos == p.pos))
        .map(|p| p.took.as_secs_f64() * 1e3)
        .collect();
    let quiet: Vec<f64> = log
        .pushes
        .iter()
        .filter(|p| !log.events.iter().any(|e| e.pos == p.pos))
        .map(|p| p.took.as_secs_f64() * 1e3)
        .collect();
    let lat_p50 = percentile(&lat_push, 50.0);

    println!();
    println!("== Summary ==");
    println!(
        "sentences            {n} in the quality run (one session, unpaced), {} in the latency run (one session, real-time paced)",
        latency_idx.len()
    );
    println!(
        "audio                {audio_seconds:.1} s ({speech_seconds:.1} s of speech; 0.5 s silence before and 1 s after each sentence)"
    );
    println!(
        "segmentation         {one_output}/{n} sentences gave exactly one transcript + one audio; {missing} gave nothing; {split} split or merged"
    );
    println!(
        "recognition WER      {:.1}% ({edits} edits / {ref_words} words); {exact}/{n} sentences recognised exactly",
        100.0 * edits as f64 / ref_words.max(1) as f64
    );
    println!(
        "translation, engine  chrF2 {:5.1}   BLEU {:5.1}   (speech → recognition → Apertium)",
        corpus_chrf(&engine_pairs),
        corpus_bleu(&engine_pairs)
    );
    println!(
        "Apertium alone       chrF2 {:5.1}   BLEU {:5.1}   (reference English as written, with case and punctuation)",
        corpus_chrf(&written_pairs),
        corpus_bleu(&written_pairs)
    );
    println!(
        "Apertium alone       chrF2 {:5.1}   BLEU {:5.1}   (reference English as a perfect recognition would give it: lower case, no punctuation)",
        corpus_chrf(&form_pairs),
        corpus_bleu(&form_pairs)
    );
    println!(
        "Apertium call        p50 {:.1} ms, max {:.1} ms",
        percentile(&apertium_times, 50.0) * 1e3,
        percentile(&apertium_times, 100.0) * 1e3
    );
    println!(
        "speed (unpaced)      engine wall {engine_time:.2} s (push_audio {:.2} s + finish {:.3} s) for {audio_seconds:.1} s of audio: RTF {rtf:.3}, {speedup:.1}x faster than real time",
        engine_time - log.finish.as_secs_f64(),
        log.finish.as_secs_f64()
    );
    println!(
        "                     process CPU {:.2} s = {:.3} s per audio second (decoder + reaped espeak-ng; the Apertium pipeline's CPU not included)",
        log.cpu,
        log.cpu / audio_seconds
    );
    println!(
        "push_audio (200 ms)  p50 {:.2} ms, p95 {:.2} ms, max {:.2} ms; calls that emitted output ({}): p50 {:.1} ms, max {:.1} ms; others p95 {:.2} ms",
        percentile(&push_ms, 50.0),
        percentile(&push_ms, 95.0),
        percentile(&push_ms, 100.0),
        emitting.len(),
        percentile(&emitting, 50.0),
        percentile(&emitting, 100.0),
        percentile(&quiet, 95.0),
    );
    println!("session creation     {:.1} ms", created.as_secs_f64() * 1e3);
    println!(
        "latency (paced, n={}) end of speech pushed → OutputAudio returned: p50 {:.3} s, p95 {:.3} s, max {:.3} s{}",
        lat_push.len(),
        lat_p50,
        percentile(&lat_push, 95.0),
        percentile(&lat_push, 100.0),
        if lat_missing > 0 {
            format!(" ({lat_missing} sentence(s) without audio)")
        } else {
            String::new()
        }
    );
    println!(
        "                     from end of speech in real time (adds chunk buffering): p50 {:.3} s, p95 {:.3} s",
        percentile(&lat_real, 50.0),
        percentile(&lat_real, 95.0)
    );
    println!(
        "                     input the engine needed past end of speech: p50 {:.2} s, max {:.2} s; emitting push_audio call: p50 {:.3} s, max {:.3} s",
        percentile(&lat_input, 50.0),
        percentile(&lat_input, 100.0),
        percentile(&emit_calls, 50.0),
        percentile(&emit_calls, 100.0)
    );
    println!();
    println!("== Targets ==");
    let lat_ok = lat_missing == 0 && lat_p50 <= LATENCY_TARGET;
    println!(
        "[{}] end of utterance → translated audio p50 ≤ {LATENCY_TARGET:.1} s: {lat_p50:.3} s",
        if lat_ok { "PASS" } else { "FAIL" }
    );
    println!(
        "[{}] engine ≥ {SPEED_TARGET:.0}x faster than real time: {speedup:.1}x",
        if speedup >= SPEED_TARGET {
            "PASS"
        } else {
            "FAIL"
        }
    );
    println!(
        "\n(total benchmark time {:.1} s)",
        total_start.elapsed().as_secs_f64()
    );
}
