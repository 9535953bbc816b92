//! Recipe: a video with speech → H.264 + AAC in FLV, the translated speech as the sound and the
//! translation as CEA-608 closed captions inside the video (what YouTube, Twitch and most RTMP
//! ingest servers read), in up to two languages: CC1 for the first, CC3 for the second. Give an
//! `rtmp://` URL instead of a file to stream it (`rtmp2sink`).
//!
//! ```text
//! cargo run --release -p realtimetranslate-recipes --example captions_flv -- \
//!     talk.mp4 talk.flv|rtmp://live.example.com/app/KEY [--fps 30] [--preset veryfast] \
//!     [--languages es,fr | --language es] [--backend local|openai] [--url URL] [--latency MS]
//! ```
//! One `realtimetranslate` serves both languages: the first on its always pads (its speech is the
//! sound), the second on request pads (`subtitle_src_fr`). Each language's text becomes pop-on
//! captions (`tttocea708`, with CEA-608 compatibility bytes on its channel), `cea708mux` joins
//! them, and `cccombiner` attaches them to the frames, which `x264enc` writes into the H.264 SEI:
//! the video is re-encoded, converted to `--fps` (24, 25, 30, 50 or 60), the frame rates CEA-608
//! captions are defined for. CEA-708 services 1 and 2 carry the same captions.

use gst::prelude::*;
use gstrealtimetranslate::subtitle_file::TimedCue;
use recipes::cli::{self, Arg};
use recipes::translator::TranslateOptions;
use std::process::ExitCode;

const USAGE: &str = "captions_flv INPUT OUTPUT.flv|rtmp://… [--fps 30] [--preset veryfast] \
     [--languages es,fr | --language es] [--backend local|openai] [--url URL] [--latency MS]";

/// CEA-608 channels for the first and second language: CC1 (field 1) and CC3 (field 2), the two
/// a decoder shows as separate caption tracks.
const CEA608_CHANNELS: [u32; 2] = [1, 3];

const CAPTION_FRAME_RATES: [u32; 5] = [24, 25, 30, 50, 60];

#[derive(Debug, Clone)]
pub struct Args {
    pub input: String,
    /// A file, or an `rtmp://` / `rtmps://` URL.
    pub output: String,
    pub fps: u32,
    pub preset: String,
    /// Captioned languages: CC1, then CC3; the first is also the sound.
    pub languages: Vec<String>,
    pub translate: TranslateOptions,
}

impl Args {
    pub fn parse(mut args: cli::Args) -> Result<Self, String> {
        let mut translate = TranslateOptions::default();
        let (mut fps, mut preset, mut positional) = (30, "veryfast".to_owned(), Vec::new());
        let mut languages = Vec::new();
        while let Some(arg) = args.next_arg() {
            match arg {
                Arg::Positional(value) => positional.push(value),
                Arg::Flag(flag) if translate.accept(&flag, &mut args)? => {}
                Arg::Flag(flag) => match flag.as_str() {
                    "--fps" => fps = args.parsed(&flag)?,
                    "--preset" => preset = args.value(&flag)?,
                    "--languages" => {
                        languages = cli::language_codes(&args.value(&flag)?)?;
                    }
                    _ => return Err(cli::unknown(&flag)),
                },
            }
        }
        if !CAPTION_FRAME_RATES.contains(&fps) {
            return Err(format!(
                "--fps {fps}: captions need one of {CAPTION_FRAME_RATES:?}"
            ));
        }
        if languages.is_empty() {
            languages.push(translate.language().to_owned());
        } else if translate.language.is_some() {
            return Err("give --languages or --language, not both".into());
        }
        if languages.len() > CEA608_CHANNELS.len() {
            return Err(format!(
                "--languages: at most {} (CEA-608 CC1 and CC3)",
                CEA608_CHANNELS.len()
            ));
        }
        let [input, output] = <[String; 2]>::try_from(positional)
            .map_err(|_| "give an INPUT file and an OUTPUT file or rtmp:// URL".to_owned())?;
        Ok(Self {
            input,
            output,
            fps,
            preset,
            languages,
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

/// The pipeline: each language's text → pop-on CEA-708 with CEA-608 bytes on its channel →
/// `cea708mux` → cc_data, attached to each video frame by `cccombiner` before the encoder writes
/// it into the SEI; the first language's speech → AAC 48 kHz stereo (what RTMP services accept);
/// both muxed in FLV.
pub fn pipeline_description(args: &Args) -> String {
    let mut description = format!(
        "filesrc location=\"{input}\" ! decodebin name=decode \
         decode. ! video/x-raw ! queue ! videoconvert ! videorate \
           ! video/x-raw,format=I420,framerate={fps}/1 ! cccombiner name=captions \
           ! x264enc speed-preset={preset} key-int-max={keyframes} ! h264parse ! queue \
           ! flvmux name=mux streamable=true ! {sink} \
         decode. ! audio/x-raw ! queue ! audioconvert ! audioresample \
           ! realtimetranslate name=translate subtitle-mode=cues backend={backend} \
         translate.src ! audioconvert ! audioresample ! audio/x-raw,rate=48000,channels=2 \
           ! avenc_aac ! aacparse ! queue ! mux. \
         cea708mux name=ccmux ! closedcaption/x-cea-708,format=cc_data,framerate={fps}/1 \
           ! captions.caption",
        input = args.input,
        fps = args.fps,
        preset = args.preset,
        keyframes = 2 * args.fps,
        sink = sink_for(&args.output),
        // Here, not only applied later: the request pad's code is checked against it.
        backend = args.translate.backend(),
    );
    for (index, language) in args.languages.iter().enumerate() {
        let text = if index == 0 {
            "subtitle_src".to_owned()
        } else {
            format!("subtitle_src_{language}")
        };
        description.push_str(&format!(
            " translate.{text} ! tee name=subtitles_{language} ! queue \
               ! tttocea708 mode=pop-on service-number={service} cea608-channel={channel} \
               ! closedcaption/x-cea-708,format=cc_data,framerate={fps}/1 ! ccmux. \
             subtitles_{language}. ! queue ! fakesink name=cues_{language} sync=false",
            service = index + 1,
            channel = CEA608_CHANNELS[index],
            fps = args.fps,
        ));
    }
    description
}

/// Writes (or streams) the FLV; returns each language's captioned cues, CC1's first.
pub fn run(args: &Args) -> Result<Vec<(String, Vec<TimedCue>)>, String> {
    recipes::plugins::register()?;
    let pipeline = recipes::run::launch(&pipeline_description(args))?;
    let options = TranslateOptions {
        language: args.languages.first().cloned(),
        ..args.translate.clone()
    };
    options.apply_to(pipeline.upcast_ref(), "translate")?;
    recipes::cues::run_collecting_languages(&pipeline, &args.languages)
}

fn main() -> ExitCode {
    let args = match Args::parse(cli::Args::from_env()) {
        Ok(args) => args,
        Err(err) => return cli::usage_error("captions_flv", USAGE, &err),
    };
    match run(&args) {
        Ok(results) => {
            for ((language, cues), channel) in results.iter().zip(CEA608_CHANNELS) {
                println!("{language} (CC{channel}):");
                recipes::cues::print(cues);
            }
            println!("wrote {}", args.output);
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("captions_flv: {err}");
            ExitCode::FAILURE
        }
    }
}
