//! Recipe: a live translation relay for OBS (or any encoder that streams MPEG-TS over SRT).
//! OBS streams to this program over SRT; the program replaces the speech with its translation,
//! adds the translation as CEA-608 captions in the video, and publishes the result over SRT (or
//! RTMP, or into a file).
//!
//! ```text
//! cargo run --release -p realtimetranslate-recipes --example srt_relay -- \
//!     [--input srt://:8890?mode=listener] [--output srt://:8891?mode=listener] [--fps 30] \
//!     [--preset veryfast] [--language es] [--backend local|openai] \
//!     [--url URL] [--latency MS]
//! ```
//! `--output` may be an `srt://` URI (MPEG-TS), an `rtmp://` URL (FLV, e.g. YouTube or Twitch
//! ingest) or a file (`.ts` or `.flv`). The input must carry H.264 video and AAC audio (OBS's
//! defaults). The video is re-encoded (`x264enc tune=zerolatency`) to carry the captions, at
//! `--fps` (24, 25, 30, 50 or 60). The relay runs until the input stream ends.
//!
//! The captions are pop-on: `realtimetranslate subtitle-mode=cues` hands each cue downstream
//! once it is complete, and reports the time that takes in its latency (see the README's
//! "Timing"), so the live pipeline holds picture and sound for exactly that long and every
//! caption lands on the frames where its speech is heard. No delay needs setting by hand.

use gst::prelude::*;
use gstrealtimetranslate::realtimetranslate::{
    CUE_ASSEMBLY_MS, DEFAULT_LATENCY_MS, JITTER_MARGIN_MS,
};
use gstrealtimetranslate::subtitle_file::TimedCue;
use recipes::cli::{self, Arg};
use recipes::run::Stop;
use recipes::translator::TranslateOptions;
use std::process::ExitCode;

const USAGE: &str = "srt_relay [--input srt://:8890?mode=listener] [--output srt://:8891?mode=listener|rtmp://…|FILE.ts|FILE.flv] \
     [--fps 30] [--preset veryfast] [--language es] [--backend local|openai] \
     [--url URL] [--latency MS]";

pub const DEFAULT_INPUT: &str = "srt://:8890?mode=listener";
pub const DEFAULT_OUTPUT: &str = "srt://:8891?mode=listener";
const CAPTION_FRAME_RATES: [u32; 5] = [24, 25, 30, 50, 60];
/// What the element adds to `latency` in the latency it reports, with whole cues: its jitter
/// margin and the cue assembly time (see the README's "Timing").
const CUES_LATENCY_MS: u64 = JITTER_MARGIN_MS + CUE_ASSEMBLY_MS;

#[derive(Debug, Clone)]
pub struct Args {
    pub input: String,
    pub output: String,
    pub fps: u32,
    pub preset: String,
    pub translate: TranslateOptions,
}

impl Args {
    pub fn parse(mut args: cli::Args) -> Result<Self, String> {
        let mut parsed = Self {
            input: DEFAULT_INPUT.into(),
            output: DEFAULT_OUTPUT.into(),
            fps: 30,
            preset: "veryfast".into(),
            translate: TranslateOptions::default(),
        };
        while let Some(arg) = args.next_arg() {
            match arg {
                Arg::Positional(value) => return Err(format!("unexpected argument {value}")),
                Arg::Flag(flag) if parsed.translate.accept(&flag, &mut args)? => {}
                Arg::Flag(flag) => match flag.as_str() {
                    "--input" => parsed.input = args.value(&flag)?,
                    "--output" => parsed.output = args.value(&flag)?,
                    "--fps" => parsed.fps = args.parsed(&flag)?,
                    "--preset" => parsed.preset = args.value(&flag)?,
                    _ => return Err(cli::unknown(&flag)),
                },
            }
        }
        if !parsed.input.starts_with("srt://") {
            return Err(format!("--input {}: give an srt:// URI", parsed.input));
        }
        if !CAPTION_FRAME_RATES.contains(&parsed.fps) {
            return Err(format!(
                "--fps {}: captions need one of {CAPTION_FRAME_RATES:?}",
                parsed.fps
            ));
        }
        Ok(parsed)
    }
}

/// Muxer and sink for the output. Over SRT, MPEG-TS goes in 7-packet (1316-byte) buffers: one
/// SRT live-mode message each; larger buffers would be cut and the video broken. Live sinks do
/// not wait for preroll (`async=false`): a branch that has nothing yet must not hold the others.
fn output_for(output: &str) -> String {
    let flv = |sink: String| format!("flvmux name=mux streamable=true ! {sink}");
    let ts = |sink: String| format!("mpegtsmux name=mux alignment=7 ! {sink}");
    if output.starts_with("srt://") {
        ts(format!(
            "srtsink uri=\"{output}\" wait-for-connection=false async=false"
        ))
    } else if output.starts_with("rtmp://") || output.starts_with("rtmps://") {
        flv(format!("rtmp2sink location=\"{output}\" async=false"))
    } else if output.to_ascii_lowercase().ends_with(".flv") {
        flv(format!("filesink location=\"{output}\" async=false"))
    } else {
        ts(format!("filesink location=\"{output}\" async=false"))
    }
}

/// The pipeline: SRT in → MPEG-TS demux; H.264 decoded, captioned, re-encoded; AAC decoded,
/// translated, re-encoded; muxed and sent out. The pipeline's latency is what the element
/// reports (with whole cues, their assembly time); every branch's queue can hold that much media
/// and 2 s more, so nothing upstream stalls.
pub fn pipeline_description(args: &Args) -> String {
    let latency_ms = u64::from(args.translate.latency_ms.unwrap_or(DEFAULT_LATENCY_MS));
    let hold = format!(
        "queue max-size-time={} max-size-buffers=0 max-size-bytes=0",
        (latency_ms + CUES_LATENCY_MS + 2_000) * 1_000_000
    );
    format!(
        "srtsrc uri=\"{input}\" ! tsdemux name=demux \
         demux. ! video/x-h264 ! {hold} ! h264parse ! avdec_h264 ! videoconvert ! videorate \
           ! video/x-raw,format=I420,framerate={fps}/1 ! cccombiner name=captions \
           ! x264enc speed-preset={preset} tune=zerolatency key-int-max={keyframes} ! h264parse \
           ! {hold} ! {output} \
         demux. ! audio/mpeg ! {hold} ! aacparse ! avdec_aac ! audioconvert ! audioresample \
           ! realtimetranslate name=translate subtitle-mode=cues \
         translate.src ! audioconvert ! audioresample ! audio/x-raw,rate=48000,channels=2 \
           ! avenc_aac ! aacparse ! {hold} ! mux. \
         translate.subtitle_src ! tee name=subtitles ! {hold} ! tttocea608 mode=pop-on \
           ! closedcaption/x-cea-608,framerate={fps}/1 ! ccconverter \
           ! closedcaption/x-cea-708,format=cc_data,framerate={fps}/1 ! captions.caption \
         subtitles. ! queue ! fakesink name=cues sync=false async=false",
        input = args.input,
        fps = args.fps,
        preset = args.preset,
        keyframes = 2 * args.fps,
        output = output_for(&args.output),
    )
}

/// Relays until the input stream ends or `stop` is requested; returns the cues captioned.
pub fn run(args: &Args, stop: &Stop) -> Result<Vec<TimedCue>, String> {
    recipes::plugins::register()?;
    let pipeline = recipes::run::launch(&pipeline_description(args))?;
    args.translate
        .apply_to(pipeline.upcast_ref(), "translate")?;
    let cues_sink = pipeline.by_name("cues").expect("in the description");
    let cues = recipes::cues::collect(&cues_sink)?;
    // Live: show each translation as it comes.
    recipes::cues::watch(&cues_sink, |event| {
        if let recipes::cues::TextEvent::Cue(cue) = event {
            recipes::cues::print(std::slice::from_ref(&cue));
        }
    })?;
    println!(
        "relaying {} → {} (translating into {})",
        args.input,
        args.output,
        args.translate.language()
    );
    recipes::run::run_to_end(&pipeline, stop)?;
    let cues = cues.lock().unwrap().clone();
    Ok(cues)
}

fn main() -> ExitCode {
    let args = match Args::parse(cli::Args::from_env()) {
        Ok(args) => args,
        Err(err) => return cli::usage_error("srt_relay", USAGE, &err),
    };
    match run(&args, &Stop::new()) {
        Ok(_) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("srt_relay: {err}");
            ExitCode::FAILURE
        }
    }
}
