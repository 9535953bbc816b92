//! Translates a speech recording: writes the translated speech (WAV) and subtitles (SRT and
//! WebVTT), and prints the translated text with its timing.
//!
//! ```text
//! cargo run --release --example translate_file -- INPUT [--out PREFIX] [--language es]
//!     [--backend local|openai] [--url URL] [--transcript]
//! ```
//! With `--backend local` (the default here) it needs no account: the offline engine translates
//! English into Spanish on this machine.

use gst::prelude::*;
use gstrealtimetranslate::subtitle_file::{TimedCue, to_srt, to_webvtt};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

struct Args {
    input: String,
    out: String,
    language: String,
    backend: String,
    url: Option<String>,
    transcript: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let mut parsed = Args {
        input: String::new(),
        out: String::new(),
        language: "es".into(),
        backend: "local".into(),
        url: None,
        transcript: false,
    };
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--out" => parsed.out = value("--out")?,
            "--language" => parsed.language = value("--language")?,
            "--backend" => parsed.backend = value("--backend")?,
            "--url" => parsed.url = Some(value("--url")?),
            "--transcript" => parsed.transcript = true,
            "-h" | "--help" => return Err(String::new()),
            other if other.starts_with('-') => return Err(format!("unknown option {other}")),
            input => parsed.input = input.to_owned(),
        }
    }
    if parsed.input.is_empty() {
        return Err("no input file".into());
    }
    if parsed.out.is_empty() {
        let stem = parsed
            .input
            .rsplit_once('.')
            .map_or(parsed.input.as_str(), |(stem, _)| stem);
        parsed.out = format!("{stem}.{}", parsed.language);
    }
    Ok(parsed)
}

/// Collects the cues a text pad produces, timed from the start of the recording (stream time).
fn collect_cues(sink: gst_app::AppSink) -> Arc<Mutex<Vec<TimedCue>>> {
    let cues = Arc::new(Mutex::new(Vec::new()));
    let into = cues.clone();
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                let buffer = sample.buffer().ok_or(gst::FlowError::Error)?;
                let segment = sample
                    .segment()
                    .and_then(|s| s.downcast_ref::<gst::ClockTime>().cloned());
                let pts = buffer.pts().unwrap_or_default();
                let start = segment.and_then(|s| s.to_stream_time(pts)).unwrap_or(pts);
                let map = buffer.map_readable().map_err(|_| gst::FlowError::Error)?;
                into.lock().unwrap().push(TimedCue {
                    start_ns: start.nseconds(),
                    end_ns: (start + buffer.duration().unwrap_or_default()).nseconds(),
                    text: String::from_utf8_lossy(&map).into_owned(),
                });
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
    cues
}

fn run(args: &Args) -> Result<(), String> {
    gst::init().map_err(|e| e.to_string())?;
    gstrealtimetranslate::plugin_register_static().map_err(|e| e.to_string())?;
    let url = args
        .url
        .as_ref()
        .map(|u| format!("url={u}"))
        .unwrap_or_default();
    let transcription = if args.transcript {
        "transcription-model=gpt-realtime-whisper"
    } else {
        ""
    };
    let description = format!(
        "filesrc location=\"{input}\" ! decodebin ! audioconvert ! audioresample ! \
         realtimetranslate name=t backend={backend} target-language={language} subtitle-mode=cues {url} {transcription} ! \
         wavenc ! filesink location=\"{out}.wav\" \
         t.subtitle_src ! queue ! appsink name=subtitles sync=false \
         t.source_subtitle_src ! queue ! appsink name=source sync=false",
        input = args.input,
        backend = args.backend,
        language = args.language,
        out = args.out,
    );
    let pipeline = gst::parse::launch(&description)
        .map_err(|e| format!("cannot build the pipeline: {e}"))?
        .downcast::<gst::Pipeline>()
        .map_err(|_| "not a pipeline")?;
    let by_name = |name: &str| {
        pipeline
            .by_name(name)
            .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
    };
    let cues = collect_cues(by_name("subtitles").ok_or("no subtitle sink")?);
    let source_cues = collect_cues(by_name("source").ok_or("no source sink")?);

    pipeline.set_state(gst::State::Playing).map_err(|_| {
        let bus = pipeline.bus().expect("pipeline bus");
        let message = bus.pop_filtered(&[gst::MessageType::Error]);
        match message.as_ref().map(|m| m.view()) {
            Some(gst::MessageView::Error(err)) => err.error().to_string(),
            _ => "the pipeline did not start".to_owned(),
        }
    })?;
    let bus = pipeline.bus().expect("pipeline bus");
    let mut result = Ok(());
    for message in bus.iter_timed(gst::ClockTime::NONE) {
        match message.view() {
            gst::MessageView::Eos(_) => break,
            gst::MessageView::Error(err) => {
                result = Err(format!("{}", err.error()));
                break;
            }
            gst::MessageView::Warning(w) => eprintln!("warning: {}", w.error()),
            _ => {}
        }
    }
    let _ = pipeline.set_state(gst::State::Null);
    result?;

    let cues = cues.lock().unwrap().clone();
    let source_cues = source_cues.lock().unwrap().clone();
    std::fs::write(format!("{}.srt", args.out), to_srt(&cues)).map_err(|e| e.to_string())?;
    std::fs::write(format!("{}.vtt", args.out), to_webvtt(&cues)).map_err(|e| e.to_string())?;
    if !source_cues.is_empty() {
        std::fs::write(format!("{}.source.srt", args.out), to_srt(&source_cues))
            .map_err(|e| e.to_string())?;
    }
    let print = |label: &str, cues: &[TimedCue]| {
        for cue in cues {
            let (start, end) = (cue.start_ns as f64 / 1e9, cue.end_ns as f64 / 1e9);
            println!(
                "{label:<10} [{start:7.2} s → {end:7.2} s] {}",
                cue.text.replace('\n', " ")
            );
        }
    };
    print("heard", &source_cues);
    print("translated", &cues);
    println!("wrote {0}.wav, {0}.srt and {0}.vtt", args.out);
    if cues.is_empty() {
        return Err("no translation came back (was there speech in the input?)".into());
    }
    Ok(())
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(err) => {
            if !err.is_empty() {
                eprintln!("translate_file: {err}");
            }
            eprintln!(
                "usage: translate_file INPUT [--out PREFIX] [--language es] [--backend local|openai] [--url URL] [--transcript]"
            );
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("translate_file: {err}");
            ExitCode::FAILURE
        }
    }
}
