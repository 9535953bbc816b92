//! `realtimetranslate-eval`: evaluates a translation backend on recordings with time-aligned
//! references (see the README section "Evaluating a backend").

use rteval::align::Window;
use rteval::batch::run_set;
use rteval::evaluate::Criteria;
use rteval::run::RunConfig;
use rteval::{flite_set, set};
use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "\
usage:
  realtimetranslate-eval --input TALK.wav --reference TALK.es.srt [--source-reference TALK.en.srt] --out DIR [options]
  realtimetranslate-eval --set DIR|MANIFEST.tsv [--audio-dir DIR] [--limit N] --out DIR [options]
  realtimetranslate-eval flite-set --out DIR [--count N] [--voice slt]
options:
  --language es            target language (the references' language)
  --source-language en     the source references' language in a --set directory
  --backend local          local | openai | openai-realtime | gpttranslator (keys from the environment)
  --url URL                an endpoint speaking the backend's protocol
  --latency MS             the element's latency setting (default 200)
  --fast                   pacing=none: as fast as the engine answers, not in real time
  --transcription-model M  source transcript model (default per backend; `none` for no transcript)
  --max-delay S            how late a translation may still answer its segment (default 10)
  --aligned-chrf X         segment chrF from which delays are counted (default 30)
  --reconnect-attempts N   failed connections in a row before giving up (default 5; -1 never)";

#[derive(Default)]
struct Args {
    input: Option<PathBuf>,
    reference: Option<PathBuf>,
    source_reference: Option<PathBuf>,
    set: Option<PathBuf>,
    audio_dir: Option<PathBuf>,
    limit: Option<usize>,
    out: Option<PathBuf>,
    language: Option<String>,
    source_language: Option<String>,
    backend: Option<String>,
    url: Option<String>,
    latency: Option<u32>,
    fast: bool,
    transcription_model: Option<String>,
    max_delay: Option<f64>,
    aligned_chrf: Option<f64>,
    reconnect_attempts: Option<i32>,
    count: Option<usize>,
    voice: Option<String>,
}

fn parse(args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut args = args.peekable();
    let mut a = Args::default();
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        let number = |v: String| v.parse::<f64>().map_err(|_| format!("not a number: {v}"));
        match arg.as_str() {
            "--input" => a.input = Some(value()?.into()),
            "--reference" => a.reference = Some(value()?.into()),
            "--source-reference" => a.source_reference = Some(value()?.into()),
            "--set" => a.set = Some(value()?.into()),
            "--audio-dir" => a.audio_dir = Some(value()?.into()),
            "--limit" => a.limit = Some(number(value()?)? as usize),
            "--out" => a.out = Some(value()?.into()),
            "--language" => a.language = Some(value()?),
            "--source-language" => a.source_language = Some(value()?),
            "--backend" => a.backend = Some(value()?),
            "--url" => a.url = Some(value()?),
            "--latency" => a.latency = Some(number(value()?)? as u32),
            "--fast" => a.fast = true,
            "--transcription-model" => a.transcription_model = Some(value()?),
            "--max-delay" => a.max_delay = Some(number(value()?)?),
            "--aligned-chrf" => a.aligned_chrf = Some(number(value()?)?),
            "--reconnect-attempts" => a.reconnect_attempts = Some(number(value()?)? as i32),
            "--count" => a.count = Some(number(value()?)? as usize),
            "--voice" => a.voice = Some(value()?),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(a)
}

fn main() -> ExitCode {
    let mut argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.iter().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let make_flite = argv.first().is_some_and(|a| a == "flite-set");
    if make_flite {
        argv.remove(0);
    }
    let args = match parse(argv.into_iter()) {
        Ok(args) => args,
        Err(e) => {
            eprintln!("realtimetranslate-eval: {e}\n\n{USAGE}");
            return ExitCode::FAILURE;
        }
    };
    let result = if make_flite {
        make_flite_set(args)
    } else {
        evaluate(args)
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("realtimetranslate-eval: {e}");
            ExitCode::FAILURE
        }
    }
}

fn make_flite_set(args: Args) -> Result<(), String> {
    let out = args.out.ok_or(format!("--out is required\n\n{USAGE}"))?;
    let triple = flite_set::make(
        &out,
        args.count.unwrap_or(usize::MAX),
        args.voice.as_deref().unwrap_or("slt"),
    )?;
    println!(
        "{}\t{}\t{}",
        triple.input.display(),
        triple.reference.display(),
        triple.source_reference.unwrap().display()
    );
    Ok(())
}

fn evaluate(args: Args) -> Result<(), String> {
    let out = args.out.ok_or(format!("--out is required\n\n{USAGE}"))?;
    let language = args.language.unwrap_or_else(|| "es".into());
    let backend = args.backend.unwrap_or_else(|| "local".into());
    let mut triples = match (&args.set, &args.input, &args.reference) {
        (Some(path), None, None) if path.is_dir() => set::from_dir(
            path,
            args.audio_dir.as_deref(),
            &language,
            args.source_language.as_deref().unwrap_or("en"),
        )?,
        (Some(path), None, None) => set::from_manifest(path)?,
        (None, Some(input), Some(reference)) => vec![set::single(
            input,
            reference,
            args.source_reference.as_deref(),
        )],
        _ => {
            return Err(format!(
                "give either --input and --reference, or --set\n\n{USAGE}"
            ));
        }
    };
    triples.truncate(args.limit.unwrap_or(usize::MAX));
    let transcription_model = match args.transcription_model.as_deref() {
        Some("none") => None,
        Some(model) => Some(model.to_owned()),
        None => RunConfig::default_transcription_model(&backend).map(str::to_owned),
    };
    let config = RunConfig {
        backend,
        language,
        url: args.url,
        latency_ms: args.latency.unwrap_or(200),
        fast: args.fast,
        transcription_model,
        // An evaluation that cannot reach its engine should say so, not wait for it.
        reconnect_attempts: args.reconnect_attempts.unwrap_or(5),
    };
    let defaults = Criteria::default();
    let criteria = Criteria {
        window: Window {
            max_delay_s: args.max_delay.unwrap_or(defaults.window.max_delay_s),
            ..defaults.window
        },
        aligned_chrf: args.aligned_chrf.unwrap_or(defaults.aligned_chrf),
    };
    let report = run_set(&triples, &config, criteria, &out)?;
    let s = &report.summary;
    let fmt = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.2}"));
    println!(
        "segments {} translated {} missed {} extra {} | chrF {:.1} BLEU {:.1} | heard WER {} % | ear-voice span p50 {} p90 {} max {} s | caption delay p50 {} p90 {} max {} s | aligned {} | {}",
        s.segments,
        s.translated,
        s.missed,
        s.extra,
        s.chrf,
        s.bleu,
        s.heard_wer.map_or("-".into(), |w| format!("{w:.1}")),
        fmt(s.ear_voice_span_s.p50),
        fmt(s.ear_voice_span_s.p90),
        fmt(s.ear_voice_span_s.max),
        fmt(s.caption_delay_s.p50),
        fmt(s.caption_delay_s.p90),
        fmt(s.caption_delay_s.max),
        s.aligned,
        out.join("index.html").display()
    );
    Ok(())
}
