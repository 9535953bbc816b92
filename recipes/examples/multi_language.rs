//! Recipe: one recording translated into several languages at once, by one `realtimetranslate`:
//! the first language on its always pads, each further one on request pads (`src_fr`,
//! `subtitle_src_fr`). The speech is converted once; each language has its own session with the
//! engine and writes its own translated speech (WAV) and subtitles (SRT and WebVTT).
//!
//! ```text
//! cargo run --release -p realtimetranslate-recipes --example multi_language -- \
//!     talk.mp4 --languages es,fr,de [--out talk] [--backend local|openai] [--url URL] [--latency MS]
//! ```
//! Writes `talk.es.wav`, `talk.es.srt`, `talk.es.vtt`, `talk.fr.wav`, … Each language is a separate
//! session (billed separately by a cloud service). The offline engine (the default) translates
//! English into Spanish, Catalan, Galician and Esperanto; its default languages here are `es,en`
//! (`en`: the English transcript as subtitles).

use gst::prelude::*;
use gstrealtimetranslate::subtitle_file::{TimedCue, to_srt, to_webvtt};
use recipes::cli::{self, Arg};
use recipes::translator::TranslateOptions;
use std::process::ExitCode;

const USAGE: &str = "multi_language INPUT --languages es,fr [--out PREFIX] [--backend local|openai] \
     [--url URL] [--latency MS]";

#[derive(Debug, Clone)]
pub struct Args {
    pub input: String,
    /// Output files are `PREFIX.LANGUAGE.wav` / `.srt` / `.vtt`.
    pub out: String,
    pub languages: Vec<String>,
    /// Shared by every language's translator (`--language` is replaced by `--languages`).
    pub translate: TranslateOptions,
}

impl Args {
    pub fn parse(mut args: cli::Args) -> Result<Self, String> {
        let mut translate = TranslateOptions::default();
        let (mut out, mut languages, mut positional) = (None, Vec::new(), Vec::new());
        while let Some(arg) = args.next_arg() {
            match arg {
                Arg::Positional(value) => positional.push(value),
                Arg::Flag(flag) if flag == "--language" => {
                    return Err("use --languages (a comma-separated list)".into());
                }
                Arg::Flag(flag) if translate.accept(&flag, &mut args)? => {}
                Arg::Flag(flag) => match flag.as_str() {
                    "--languages" => {
                        languages = cli::language_codes(&args.value(&flag)?)?;
                    }
                    "--out" => out = Some(args.value(&flag)?),
                    _ => return Err(cli::unknown(&flag)),
                },
            }
        }
        let [input] =
            <[String; 1]>::try_from(positional).map_err(|_| "give one INPUT file".to_owned())?;
        if languages.is_empty() {
            let offline = translate.backend() == "local";
            if !offline {
                return Err("give the target languages with --languages, e.g. es,fr".into());
            }
            languages = vec!["es".into(), "en".into()];
        }
        let out = out.unwrap_or_else(|| {
            input
                .rsplit_once('.')
                .map_or(input.as_str(), |(stem, _)| stem)
                .to_owned()
        });
        Ok(Self {
            input,
            out,
            languages,
            translate,
        })
    }

    pub fn output(&self, language: &str, extension: &str) -> String {
        format!("{}.{language}.{extension}", self.out)
    }
}

/// The element's pads for `language`: the always pads for the first language, request pads
/// named after it for the others.
fn pads(args: &Args, language: &str) -> (String, String) {
    if args.languages.first().map(String::as_str) == Some(language) {
        ("src".into(), "subtitle_src".into())
    } else {
        (
            format!("src_{language}"),
            format!("subtitle_src_{language}"),
        )
    }
}

/// The pipeline: decoded speech → one `realtimetranslate` → per language: its audio pad → WAV,
/// and its subtitle pad → a sink the program reads the cues from.
pub fn pipeline_description(args: &Args) -> String {
    let mut description = format!(
        "filesrc location=\"{}\" ! decodebin ! audio/x-raw ! audioconvert ! audioresample \
         ! realtimetranslate name=translate subtitle-mode=cues backend={}",
        args.input,
        // Here, not only applied later: the request pads' codes are checked against it.
        args.translate.backend(),
    );
    for language in &args.languages {
        let (audio, text) = pads(args, language);
        description.push_str(&format!(
            " translate.{audio} ! queue ! audioconvert ! wavenc ! filesink location=\"{wav}\" \
             translate.{text} ! queue ! fakesink name=cues_{language} sync=false",
            wav = args.output(language, "wav"),
        ));
    }
    description
}

/// Writes every language's files; returns each language's cues, in the order given.
pub fn run(args: &Args) -> Result<Vec<(String, Vec<TimedCue>)>, String> {
    recipes::plugins::register()?;
    let options = TranslateOptions {
        language: args.languages.first().cloned(),
        ..args.translate.clone()
    };
    let pipeline = recipes::run::launch(&pipeline_description(args))?;
    options.apply_to(pipeline.upcast_ref(), "translate")?;
    let mut results = Vec::new();
    for (language, cues) in recipes::cues::run_collecting_languages(&pipeline, &args.languages)? {
        for (extension, text) in [("srt", to_srt(&cues)), ("vtt", to_webvtt(&cues))] {
            let path = args.output(&language, extension);
            std::fs::write(&path, text).map_err(|e| format!("cannot write {path}: {e}"))?;
        }
        results.push((language, cues));
    }
    Ok(results)
}

fn main() -> ExitCode {
    let args = match Args::parse(cli::Args::from_env()) {
        Ok(args) => args,
        Err(err) => return cli::usage_error("multi_language", USAGE, &err),
    };
    match run(&args) {
        Ok(results) => {
            for (language, cues) in &results {
                println!("{language}:");
                recipes::cues::print(cues);
                let [wav, srt, vtt] = ["wav", "srt", "vtt"].map(|e| args.output(language, e));
                println!("wrote {wav}, {srt}, {vtt}");
            }
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("multi_language: {err}");
            ExitCode::FAILURE
        }
    }
}
