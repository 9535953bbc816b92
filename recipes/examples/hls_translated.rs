//! Recipe: a video with speech → HLS with the original speech and, per target language, a
//! translated audio rendition and WebVTT subtitles, tied together by a master playlist that labels
//! each with its language. Players offer the choice in their audio and subtitle menus. One
//! `realtimetranslate` serves every language: the first on its always pads, the others on request
//! pads (`src_fr`, `subtitle_src_fr`), one session each over the speech converted once.
//!
//! ```text
//! cargo run --release -p realtimetranslate-recipes --example hls_translated -- \
//!     talk.mp4 out/ [--segment-duration 4] [--source-language en] [--video-bitrate 2000] \
//!     [--preset veryfast] [--languages es,fr | --language es] [--backend local|openai] [--url URL] \
//!     [--latency MS]
//! ```
//! Writes `out/master.m3u8` with `out/video/`, `out/audio-original/`, `out/audio-es/`,
//! `out/audio-fr/` … (each an `hlssink3` media playlist of MPEG-TS segments) and
//! `out/subtitles-es/`, `out/subtitles-fr/` … (WebVTT segments this program writes as the text
//! comes: no GStreamer 1.22 element segments WebVTT). Playlists are of type EVENT: they can be
//! played while being written, and end with `EXT-X-ENDLIST`.

use gst::prelude::*;
use gstrealtimetranslate::subtitle_file::TimedCue;
use recipes::cli::{self, Arg};
use recipes::hls::{self, Rendition, RenditionKind, SubtitleRenditionWriter, Variant};
use recipes::translator::TranslateOptions;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const USAGE: &str = "hls_translated INPUT OUTPUT_DIR [--segment-duration 4] [--source-language en] \
     [--video-bitrate 2000] [--preset veryfast] [--languages es,fr | --language es] \
     [--backend local|openai] [--url URL] [--latency MS]";

/// `avenc_aac`'s default bit rate, for the master playlist's BANDWIDTH.
const AUDIO_BITS_PER_SECOND: u64 = 128_000;

#[derive(Debug, Clone)]
pub struct Args {
    pub input: String,
    pub output_dir: PathBuf,
    pub segment_duration: u32,
    /// Language of the original speech (RFC 5646), for its rendition's label.
    pub source_language: String,
    pub video_kbps: u32,
    pub preset: String,
    /// Target languages, in menu order (`--languages`, else `--language` or its default).
    pub languages: Vec<String>,
    pub translate: TranslateOptions,
}

impl Args {
    pub fn parse(mut args: cli::Args) -> Result<Self, String> {
        let mut translate = TranslateOptions::default();
        let mut source_language = None;
        let mut languages = Vec::new();
        let (mut segment_duration, mut video_kbps, mut preset) = (4, 2000, "veryfast".to_owned());
        let mut positional = Vec::new();
        while let Some(arg) = args.next_arg() {
            match arg {
                Arg::Positional(value) => positional.push(value),
                Arg::Flag(flag) if translate.accept(&flag, &mut args)? => {}
                Arg::Flag(flag) => match flag.as_str() {
                    "--segment-duration" => segment_duration = args.parsed(&flag)?,
                    "--source-language" => source_language = Some(args.value(&flag)?),
                    "--video-bitrate" => video_kbps = args.parsed(&flag)?,
                    "--preset" => preset = args.value(&flag)?,
                    "--languages" => {
                        languages = cli::language_codes(&args.value(&flag)?)?;
                    }
                    _ => return Err(cli::unknown(&flag)),
                },
            }
        }
        if segment_duration == 0 {
            return Err("--segment-duration must be at least 1 second".into());
        }
        let [input, output_dir] = <[String; 2]>::try_from(positional)
            .map_err(|_| "give an INPUT file and an OUTPUT_DIR".to_owned())?;
        if languages.is_empty() {
            languages.push(translate.language().to_owned());
        } else if translate.language.is_some() {
            return Err("give --languages or --language, not both".into());
        }
        // The offline engine hears English only; other engines detect the language themselves.
        let source_language = source_language.unwrap_or_else(|| {
            let offline = translate.backend() == "local";
            (if offline { "en" } else { "und" }).to_owned()
        });
        Ok(Self {
            input,
            output_dir: output_dir.into(),
            segment_duration,
            source_language,
            video_kbps,
            preset,
            languages,
            translate,
        })
    }

    fn translated_dir(language: &str) -> String {
        format!("audio-{language}")
    }

    fn subtitles_dir(language: &str) -> String {
        format!("subtitles-{language}")
    }

    /// The element's pads for `language`: the always pads for the first language, request pads
    /// named after it for the others.
    fn pads(&self, language: &str) -> (String, String) {
        if self.languages.first().map(String::as_str) == Some(language) {
            ("src".into(), "subtitle_src".into())
        } else {
            (
                format!("src_{language}"),
                format!("subtitle_src_{language}"),
            )
        }
    }
}

/// `hlssink3` writing `dir`'s segments and media playlist.
fn hls_sink(name: &str, dir: &Path, segment_duration: u32) -> String {
    format!(
        "hlssink3 name={name} location=\"{segments}\" playlist-location=\"{playlist}\" \
         target-duration={segment_duration} playlist-type=event playlist-length=0 max-files=0",
        segments = dir.join("segment%05d.ts").display(),
        playlist = dir.join("playlist.m3u8").display(),
    )
}

/// The pipeline: video → H.264 → its HLS; the speech → AAC → the original rendition, and →
/// one `realtimetranslate` → per language: AAC → its translated rendition, and its text → a sink
/// the program watches to write that language's WebVTT segments.
pub fn pipeline_description(args: &Args) -> String {
    let out = &args.output_dir;
    let t = args.segment_duration;
    let mut description = format!(
        "filesrc location=\"{input}\" ! decodebin name=decode \
         decode. ! video/x-raw ! queue ! videoconvert ! video/x-raw,format=I420 \
           ! x264enc speed-preset={preset} \
           bitrate={kbps} ! h264parse name=video_parse ! video_hls.video {video_hls} \
         decode. ! audio/x-raw ! queue ! audioconvert ! audioresample ! tee name=speech \
         speech. ! queue ! audioconvert ! avenc_aac ! aacparse ! original_hls.audio {original_hls} \
         speech. ! queue ! realtimetranslate name=translate subtitle-mode=cues backend={backend}",
        input = args.input,
        preset = args.preset,
        kbps = args.video_kbps,
        video_hls = hls_sink("video_hls", &out.join("video"), t),
        original_hls = hls_sink("original_hls", &out.join("audio-original"), t),
        // Here, not only applied later: the request pads' codes are checked against it.
        backend = args.translate.backend(),
    );
    for language in &args.languages {
        let (audio, text) = args.pads(language);
        let sink = format!("translated_hls_{language}");
        description.push_str(&format!(
            " translate.{audio} ! queue ! audioconvert ! audioresample ! avenc_aac ! aacparse \
               ! {sink}.audio {hls} \
             translate.{text} ! queue ! fakesink name=subtitles_{language} sync=false",
            hls = hls_sink(&sink, &out.join(Args::translated_dir(language)), t),
        ));
    }
    description
}

/// The master playlist for the video stream described by `caps` (from `h264parse`).
pub fn master_playlist(args: &Args, caps: &gst::StructureRef) -> String {
    let profile = caps.get::<&str>("profile").unwrap_or("high");
    let level = caps.get::<&str>("level").unwrap_or("4");
    let resolution = match (caps.get::<i32>("width"), caps.get::<i32>("height")) {
        (Ok(w), Ok(h)) => Some((w as u32, h as u32)),
        _ => None,
    };
    let source = args.source_language.as_str();
    let original_name = if source == "und" {
        "Original".to_owned()
    } else {
        format!("{} (original)", hls::language_name(source))
    };
    let rendition =
        |kind, group: &str, language: &str, name: String, default, dir: &str| Rendition {
            kind,
            group_id: group.into(),
            language: language.into(),
            name,
            default,
            uri: format!("{dir}/playlist.m3u8"),
        };
    let mut renditions = vec![rendition(
        RenditionKind::Audio,
        "audio",
        source,
        original_name,
        true,
        "audio-original",
    )];
    for language in &args.languages {
        renditions.push(rendition(
            RenditionKind::Audio,
            "audio",
            language,
            format!("{} (translation)", hls::language_name(language)),
            false,
            &Args::translated_dir(language),
        ));
    }
    for language in &args.languages {
        renditions.push(rendition(
            RenditionKind::Subtitles,
            "subtitles",
            language,
            hls::language_name(language).to_owned(),
            false,
            &Args::subtitles_dir(language),
        ));
    }
    let variant = Variant {
        uri: "video/playlist.m3u8".into(),
        // Rate control overshoots: 20 % of headroom over the nominal rates.
        bandwidth: (u64::from(args.video_kbps) * 1000 + AUDIO_BITS_PER_SECOND) * 6 / 5,
        codecs: format!("{},mp4a.40.2", hls::avc_codec(profile, level)),
        resolution,
        audio_group: Some("audio".into()),
        subtitles_group: Some("subtitles".into()),
    };
    hls::master_playlist(&variant, &renditions)
}

/// Writes the master playlist once the video's format is known (its caps name the codec
/// profile, level and size the playlist declares).
fn write_master_when_video_starts(args: &Args, pipeline: &gst::Pipeline) {
    let parse = pipeline.by_name("video_parse").expect("in the description");
    let pad = parse.static_pad("src").expect("h264parse has a src pad");
    let args = args.clone();
    pad.add_probe(gst::PadProbeType::EVENT_DOWNSTREAM, move |_, info| {
        let Some(gst::PadProbeData::Event(event)) = &info.data else {
            return gst::PadProbeReturn::Ok;
        };
        let gst::EventView::Caps(caps) = event.view() else {
            return gst::PadProbeReturn::Ok;
        };
        let Some(structure) = caps.caps().structure(0) else {
            return gst::PadProbeReturn::Ok;
        };
        let path = args.output_dir.join("master.m3u8");
        if let Err(err) = std::fs::write(&path, master_playlist(&args, structure)) {
            eprintln!("cannot write {}: {err}", path.display());
        }
        gst::PadProbeReturn::Remove
    });
}

/// Writes the HLS presentation; returns each language's translated cues, in the order given.
pub fn run(args: &Args) -> Result<Vec<(String, Vec<TimedCue>)>, String> {
    recipes::plugins::register()?;
    // hlssink3 does not create its directory.
    let mut dirs = vec!["video".to_owned(), "audio-original".to_owned()];
    dirs.extend(args.languages.iter().map(|l| Args::translated_dir(l)));
    for dir in dirs {
        let dir = args.output_dir.join(dir);
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let pipeline = recipes::run::launch(&pipeline_description(args))?;
    let options = TranslateOptions {
        language: args.languages.first().cloned(),
        ..args.translate.clone()
    };
    options.apply_to(pipeline.upcast_ref(), "translate")?;
    write_master_when_video_starts(args, &pipeline);
    let segment = Duration::from_secs(args.segment_duration.into());
    let mut languages = Vec::new();
    for language in &args.languages {
        let subtitles_dir = args.output_dir.join(Args::subtitles_dir(language));
        let writer = SubtitleRenditionWriter::new(&subtitles_dir, segment)
            .map_err(|e| format!("cannot write to {}: {e}", subtitles_dir.display()))?;
        let writer = Arc::new(Mutex::new(writer));
        let cues = Arc::new(Mutex::new(Vec::new()));
        let (into_writer, into_cues) = (writer.clone(), cues.clone());
        recipes::cues::watch(
            &pipeline
                .by_name(&format!("subtitles_{language}"))
                .expect("in the description"),
            move |event| {
                if let recipes::cues::TextEvent::Cue(cue) = &event {
                    into_cues.lock().unwrap().push(cue.clone());
                }
                into_writer.lock().unwrap().on_event(event);
            },
        )?;
        languages.push((language.clone(), writer, cues));
    }
    recipes::run::run_to_end(&pipeline, &recipes::run::Stop::new())?;
    let mut results = Vec::new();
    for (language, writer, cues) in languages {
        writer.lock().unwrap().finish(0)?;
        let cues = cues.lock().unwrap().clone();
        results.push((language, cues));
    }
    Ok(results)
}

fn main() -> ExitCode {
    let args = match Args::parse(cli::Args::from_env()) {
        Ok(args) => args,
        Err(err) => return cli::usage_error("hls_translated", USAGE, &err),
    };
    match run(&args) {
        Ok(results) => {
            for (language, cues) in &results {
                println!("{language}:");
                recipes::cues::print(cues);
            }
            println!("wrote {}", args.output_dir.join("master.m3u8").display());
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("hls_translated: {err}");
            ExitCode::FAILURE
        }
    }
}
