//! Recipe: a video with speech → the same video with the translation burned into the picture
//! (`textoverlay`) and the translated speech as its sound, in MP4 (or Matroska for `.mkv`).
//!
//! ```text
//! cargo run --release -p realtimetranslate-recipes --example burn_in_subtitles -- \
//!     talk.mp4 talk.es.mp4 [--srt talk.es.srt] [--preset veryfast] \
//!     [--language es] [--backend local|openai] [--url URL] [--latency MS]
//! ```
//! The input needs a video and an audio track. With the default offline engine no account is
//! needed (English speech → Spanish). `--srt` also writes the cues as a SubRip file.
//!
//! Each subtitle is shown while its translated speech plays. For captions that line up with the
//! original speaker instead, raise `--latency` to about the engine's delay (see the README).

use gst::prelude::*;
use gstrealtimetranslate::subtitle_file::{TimedCue, to_srt};
use recipes::cli::{self, Arg};
use recipes::translator::TranslateOptions;
use std::process::ExitCode;

const USAGE: &str = "burn_in_subtitles INPUT OUTPUT.mp4|OUTPUT.mkv [--srt FILE] [--preset veryfast] \
     [--language es] [--backend local|openai] [--url URL] [--latency MS]";

/// How the subtitles are drawn. Public so the test can draw the text it expects the same way.
pub const OVERLAY_PROPERTIES: &str =
    "valignment=bottom halignment=center font-desc=\"Sans 16\" wait-text=true";

#[derive(Debug, Clone)]
pub struct Args {
    pub input: String,
    pub output: String,
    pub srt: Option<String>,
    /// x264 speed preset (`ultrafast` … `veryslow`).
    pub preset: String,
    pub translate: TranslateOptions,
}

impl Args {
    pub fn parse(mut args: cli::Args) -> Result<Self, String> {
        let mut translate = TranslateOptions::default();
        let (mut srt, mut preset, mut positional) = (None, "veryfast".to_owned(), Vec::new());
        while let Some(arg) = args.next_arg() {
            match arg {
                Arg::Positional(value) => positional.push(value),
                Arg::Flag(flag) if translate.accept(&flag, &mut args)? => {}
                Arg::Flag(flag) => match flag.as_str() {
                    "--srt" => srt = Some(args.value(&flag)?),
                    "--preset" => preset = args.value(&flag)?,
                    _ => return Err(cli::unknown(&flag)),
                },
            }
        }
        let [input, output] = <[String; 2]>::try_from(positional)
            .map_err(|_| "give an INPUT and an OUTPUT file".to_owned())?;
        Ok(Self {
            input,
            output,
            srt,
            preset,
            translate,
        })
    }
}

fn muxer_for(output: &str) -> &'static str {
    if output.to_ascii_lowercase().ends_with(".mkv") {
        "matroskamux"
    } else {
        "mp4mux"
    }
}

/// The pipeline: video → overlay (text from `subtitle_src`) → H.264; translated speech → AAC.
pub fn pipeline_description(args: &Args) -> String {
    format!(
        "filesrc location=\"{input}\" ! decodebin name=decode \
         decode. ! video/x-raw ! queue ! videoconvert ! textoverlay name=overlay {OVERLAY_PROPERTIES} \
           ! videoconvert ! video/x-raw,format=I420 ! x264enc speed-preset={preset} ! h264parse ! queue \
           ! {muxer} name=mux ! filesink location=\"{output}\" \
         decode. ! audio/x-raw ! queue ! audioconvert ! audioresample ! realtimetranslate name=translate subtitle-mode=cues \
         translate.src ! audioconvert ! audioresample ! avenc_aac ! aacparse ! queue ! mux. \
         translate.subtitle_src ! tee name=subtitles ! queue ! overlay.text_sink \
         subtitles. ! queue ! fakesink name=cues sync=false",
        input = args.input,
        output = args.output,
        preset = args.preset,
        muxer = muxer_for(&args.output),
    )
}

/// Writes the output file (and the SRT when asked); returns the cues that were burned in.
pub fn run(args: &Args) -> Result<Vec<TimedCue>, String> {
    recipes::plugins::register()?;
    let pipeline = recipes::run::launch(&pipeline_description(args))?;
    args.translate
        .apply_to(pipeline.upcast_ref(), "translate")?;
    let cues = recipes::cues::collect(&pipeline.by_name("cues").expect("in the description"))?;
    recipes::run::run_to_end(&pipeline, &recipes::run::Stop::new())?;
    let cues = cues.lock().unwrap().clone();
    if let Some(srt) = &args.srt {
        std::fs::write(srt, to_srt(&cues)).map_err(|e| format!("cannot write {srt}: {e}"))?;
    }
    Ok(cues)
}

fn main() -> ExitCode {
    let args = match Args::parse(cli::Args::from_env()) {
        Ok(args) => args,
        Err(err) => return cli::usage_error("burn_in_subtitles", USAGE, &err),
    };
    match run(&args) {
        Ok(cues) => {
            recipes::cues::print(&cues);
            println!("wrote {}", args.output);
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("burn_in_subtitles: {err}");
            ExitCode::FAILURE
        }
    }
}
