//! Recipe: a video with speech → H.264 + AAC in FLV, the translated speech as the sound and the
//! translation as CEA-608 closed captions inside the video (what YouTube, Twitch and most RTMP
//! ingest servers read). Give an `rtmp://` URL instead of a file to stream it (`rtmp2sink`).
//!
//! ```text
//! cargo run --release -p realtimetranslate-recipes --example captions_flv -- \
//!     talk.mp4 talk.es.flv|rtmp://live.example.com/app/KEY [--fps 30] [--preset veryfast] \
//!     [--language es] [--backend local|openai] [--url URL] [--latency MS]
//! ```
//! Captions (`tttocea608`, pop-on mode) are carried in the H.264 SEI by `x264enc`, so the video
//! is re-encoded; it is also converted to `--fps` (24, 25, 30, 50 or 60), the frame rates CEA-608
//! captions are defined for.

use gst::prelude::*;
use gstrealtimetranslate::subtitle_file::TimedCue;
use recipes::cli::{self, Arg};
use recipes::translator::TranslateOptions;
use std::process::ExitCode;

const USAGE: &str = "captions_flv INPUT OUTPUT.flv|rtmp://… [--fps 30] [--preset veryfast] \
     [--language es] [--backend local|openai] [--url URL] [--latency MS]";

const CAPTION_FRAME_RATES: [u32; 5] = [24, 25, 30, 50, 60];

#[derive(Debug, Clone)]
pub struct Args {
    pub input: String,
    /// A file, or an `rtmp://` / `rtmps://` URL.
    pub output: String,
    pub fps: u32,
    pub preset: String,
    pub translate: TranslateOptions,
}

impl Args {
    pub fn parse(mut args: cli::Args) -> Result<Self, String> {
        let mut translate = TranslateOptions::default();
        let (mut fps, mut preset, mut positional) = (30, "veryfast".to_owned(), Vec::new());
        while let Some(arg) = args.next_arg() {
            match arg {
                Arg::Positional(value) => positional.push(value),
                Arg::Flag(flag) if translate.accept(&flag, &mut args)? => {}
                Arg::Flag(flag) => match flag.as_str() {
                    "--fps" => fps = args.parsed(&flag)?,
                    "--preset" => preset = args.value(&flag)?,
                    _ => return Err(cli::unknown(&flag)),
                },
            }
        }
        if !CAPTION_FRAME_RATES.contains(&fps) {
            return Err(format!(
                "--fps {fps}: captions need one of {CAPTION_FRAME_RATES:?}"
            ));
        }
        let [input, output] = <[String; 2]>::try_from(positional)
            .map_err(|_| "give an INPUT file and an OUTPUT file or rtmp:// URL".to_owned())?;
        Ok(Self {
            input,
            output,
            fps,
            preset,
            translate,
        })
    }
}

fn sink_for(output: &str) -> String {
    if output.starts_with("rtmp://") || output.starts_with("rtmps://") {
        format!("rtmp2sink location=\"{output}\"")
    } else {
        format!("filesink location=\"{output}\"")
    }
}

/// The pipeline: text → CEA-608 → cc_data, attached to each video frame by `cccombiner` before
/// the encoder writes it into the SEI; translated speech → AAC 48 kHz stereo (what RTMP services
/// accept); both muxed in FLV.
pub fn pipeline_description(args: &Args) -> String {
    format!(
        "filesrc location=\"{input}\" ! decodebin name=decode \
         decode. ! video/x-raw ! queue ! videoconvert ! videorate \
           ! video/x-raw,format=I420,framerate={fps}/1 ! cccombiner name=captions \
           ! x264enc speed-preset={preset} key-int-max={keyframes} ! h264parse ! queue \
           ! flvmux name=mux streamable=true ! {sink} \
         decode. ! audio/x-raw ! queue ! audioconvert ! audioresample ! realtimetranslate name=translate subtitle-mode=cues \
         translate.src ! audioconvert ! audioresample ! audio/x-raw,rate=48000,channels=2 \
           ! avenc_aac ! aacparse ! queue ! mux. \
         translate.subtitle_src ! tee name=subtitles ! queue ! tttocea608 mode=pop-on \
           ! closedcaption/x-cea-608,framerate={fps}/1 ! ccconverter \
           ! closedcaption/x-cea-708,format=cc_data,framerate={fps}/1 ! captions.caption \
         subtitles. ! queue ! fakesink name=cues sync=false",
        input = args.input,
        fps = args.fps,
        preset = args.preset,
        keyframes = 2 * args.fps,
        sink = sink_for(&args.output),
    )
}

/// Writes (or streams) the FLV; returns the cues that were captioned.
pub fn run(args: &Args) -> Result<Vec<TimedCue>, String> {
    recipes::plugins::register()?;
    let pipeline = recipes::run::launch(&pipeline_description(args))?;
    args.translate
        .apply_to(pipeline.upcast_ref(), "translate")?;
    let cues = recipes::cues::collect(&pipeline.by_name("cues").expect("in the description"))?;
    recipes::run::run_to_end(&pipeline, &recipes::run::Stop::new())?;
    let cues = cues.lock().unwrap().clone();
    Ok(cues)
}

fn main() -> ExitCode {
    let args = match Args::parse(cli::Args::from_env()) {
        Ok(args) => args,
        Err(err) => return cli::usage_error("captions_flv", USAGE, &err),
    };
    match run(&args) {
        Ok(cues) => {
            recipes::cues::print(&cues);
            println!("wrote {}", args.output);
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("captions_flv: {err}");
            ExitCode::FAILURE
        }
    }
}
