//! Shared by the recipe tests: a short video with real speech (flite), the local utterance
//! server, translator options pointing at it, and decoders that read the recipes' outputs back.
#![allow(dead_code)]

#[path = "../../../tests/common/mod.rs"]
mod element;

// Each test binary uses its own subset.
#[allow(unused_imports)]
pub use element::{KEY, launch, rms, run, run_pipeline, speech_wav, utterance_server};
use gst::prelude::*;
use gstrealtimetranslate::secret::ApiKey;
use realtimetranslate_server::BackgroundServer;
use recipes::translator::TranslateOptions;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub fn init() {
    recipes::plugins::register().unwrap();
}

/// One spoken sentence in the test video, in seconds from its start.
#[derive(Debug, Clone, Copy)]
pub struct Sentence {
    pub start: f64,
    /// Length of flite's recording of it (a little silence included at both ends).
    pub duration: f64,
}

impl Sentence {
    pub fn end(&self) -> f64 {
        self.start + self.duration
    }
}

/// A test video: 320x240 SMPTE bars (a still picture, so frames compare exactly) and two English
/// sentences with a pause between them, as H.264 + AAC.
#[derive(Debug, Clone)]
pub struct SpeechVideo {
    pub path: PathBuf,
    pub sentences: [Sentence; 2],
    pub duration: f64,
    pub fps: u32,
}

const LEAD: f64 = 0.4;
const PAUSE: f64 = 2.4;
const TRAIL: f64 = 3.0;

/// Makes the test video in `dir` as `name` (`.mp4` or `.ts`, from the name).
pub fn speech_video(dir: &Path, name: &str, fps: u32) -> SpeechVideo {
    let (first, first_len) = speech_wav(dir, "first", "Good morning everyone.", LEAD, PAUSE);
    let (second, second_len) = speech_wav(dir, "second", "Thank you very much.", 0.0, TRAIL);
    let speech = dir.join("speech.wav");
    let status = Command::new("sox")
        .arg(&first)
        .arg(&second)
        .arg(&speech)
        .status()
        .unwrap();
    assert!(status.success());
    let duration = LEAD + first_len + PAUSE + second_len + TRAIL;
    let path = dir.join(name);
    let muxer = if name.ends_with(".ts") {
        "mpegtsmux"
    } else {
        "mp4mux"
    };
    let frames = (duration * fps as f64).ceil() as u32;
    let captured = run(
        &format!(
            "filesrc location={speech} ! wavparse ! audioconvert ! audioresample ! avenc_aac \
             ! aacparse ! queue ! mux. \
             videotestsrc pattern=smpte75 num-buffers={frames} \
             ! video/x-raw,width=320,height=240,framerate={fps}/1 \
             ! x264enc speed-preset=ultrafast tune=zerolatency key-int-max={fps} ! h264parse ! queue \
             ! {muxer} name=mux ! filesink location={path}",
            speech = speech.display(),
            path = path.display()
        ),
        Duration::from_secs(30),
    );
    assert!(captured.errors.is_empty(), "{:?}", captured.errors);
    SpeechVideo {
        path,
        sentences: [
            Sentence {
                start: LEAD,
                duration: first_len,
            },
            Sentence {
                start: LEAD + first_len + PAUSE,
                duration: second_len,
            },
        ],
        duration,
        fps,
    }
}

/// Translator options for the utterance server (key set directly, as an embedding program would).
pub fn server_options(server: &BackgroundServer, language: &str) -> TranslateOptions {
    TranslateOptions {
        url: Some(server.url()),
        language: Some(language.into()),
        api_key: ApiKey::new(KEY),
        ..Default::default()
    }
}

/// The target language each of the server's sessions asked for, sorted.
pub fn session_languages(server: &BackgroundServer) -> Vec<String> {
    let mut languages: Vec<String> = server
        .records()
        .sessions()
        .iter()
        .filter_map(|s| {
            s.events.iter().find(|e| e.kind == "session.update")?.json["session"]["audio"]["output"]
                ["language"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    languages.sort();
    languages
}

/// "Frase n de D ms." → (n, D in seconds); panics on anything else.
pub fn parse_translation(text: &str) -> (u32, f64) {
    let parsed = text
        .trim()
        .strip_prefix("Frase ")
        .and_then(|t| t.strip_suffix(" ms."))
        .and_then(|t| t.split_once(" de "))
        .and_then(|(n, d)| Some((n.parse().ok()?, d.parse::<f64>().ok()? / 1000.0)));
    parsed.unwrap_or_else(|| panic!("not a translation from the utterance engine: {text:?}"))
}

/// Checks the engine heard each sentence: cue n says "Frase n de D ms." with D the sentence's
/// length (flite's recording has a little silence at its ends, hence the tolerance).
pub fn assert_translations_of(texts: &[String], video: &SpeechVideo) {
    assert_eq!(texts.len(), 2, "{texts:?}");
    for (i, (text, sentence)) in texts.iter().zip(&video.sentences).enumerate() {
        let (n, spoken) = parse_translation(text);
        assert_eq!(n as usize, i + 1, "{texts:?}");
        assert!(
            (spoken - sentence.duration).abs() < 0.5,
            "{text:?} for a sentence of {:.2} s",
            sentence.duration
        );
    }
}

/// Spans (start, end) in seconds from the first sample where 24 kHz audio is audible, judged in
/// 20 ms frames (a last, partial frame ending where its samples end); silences shorter than
/// 300 ms do not split a span.
pub fn audible_spans(samples: &[i16]) -> Vec<(f64, f64)> {
    let mut spans: Vec<(f64, f64)> = Vec::new();
    for (i, frame) in samples.chunks(480).enumerate() {
        if rms(frame) <= 300.0 {
            continue;
        }
        let start = i as f64 * 0.02;
        let end = (i * 480 + frame.len()) as f64 / 24_000.0;
        match spans.last_mut() {
            Some(last) if start - last.1 < 0.3 => last.1 = end,
            _ => spans.push((start, end)),
        }
    }
    spans
}

/// Dominant frequency of a 24 kHz stretch, from its zero crossings.
pub fn zero_crossing_hz(samples: &[i16]) -> f64 {
    let crossings = samples
        .windows(2)
        .filter(|w| (w[0] < 0) != (w[1] < 0))
        .count();
    crossings as f64 / 2.0 / (samples.len() as f64 / 24_000.0)
}

/// The translated speech in decoded 24 kHz audio: the engine's 440 Hz tone, heard `count` times
/// and nothing else (the original speech must be gone). Returns each tone's (start, end) in
/// seconds on the audio's timeline (`audio_start` is its first sample's time).
pub fn translated_speech_spans(samples: &[i16], audio_start: f64, count: usize) -> Vec<(f64, f64)> {
    let spans = audible_spans(samples);
    assert_eq!(spans.len(), count, "audible: {spans:?}");
    for &(start, end) in &spans {
        let a = ((start + 0.1) * 24_000.0) as usize;
        let b = ((end - 0.1) * 24_000.0) as usize;
        let hz = zero_crossing_hz(&samples[a..b]);
        assert!((hz - 440.0).abs() < 15.0, "translated tone at {hz:.0} Hz");
    }
    spans
        .iter()
        .map(|&(start, end)| (audio_start + start, audio_start + end))
        .collect()
}

/// Checks that each cue (start, end in seconds) is shown while its translated speech is heard.
pub fn assert_tones_match_cues(samples: &[i16], audio_start: f64, cues: &[(f64, f64)], slack: f64) {
    let tones = translated_speech_spans(samples, audio_start, cues.len());
    for (&(start, end), &(cue_start, cue_end)) in tones.iter().zip(cues) {
        assert!(
            (start - cue_start).abs() < slack && (end - cue_end).abs() < slack,
            "tone {start:.2}–{end:.2} s, cue {cue_start:.2}–{cue_end:.2} s"
        );
    }
}

/// Decoded audio: `description` must end in raw audio; it is captured as 24 kHz mono S16LE.
/// Returns the first buffer's PTS (seconds) and the samples.
pub fn decode_audio(description: &str) -> (f64, Vec<i16>) {
    let captured = run(
        &format!(
            "{description} ! audioconvert ! audioresample \
             ! audio/x-raw,format=S16LE,rate=24000,channels=1 ! appsink name=audio sync=false"
        ),
        Duration::from_secs(60),
    );
    assert!(captured.errors.is_empty(), "{:?}", captured.errors);
    assert!(captured.eos);
    (captured.first_pts().seconds_f64(), captured.samples())
}

/// A decoded picture in 8-bit grey.
#[derive(Debug, Clone)]
pub struct Frame {
    pub pts: f64,
    pub width: usize,
    pub height: usize,
    pub luma: Vec<u8>,
}

impl Frame {
    /// How many pixels in the rows `from_row..height` differ clearly (by more than 40 of 255 in
    /// luma) from `other`: text drawn on one and not the other counts, coding noise does not.
    pub fn pixels_changed_below(&self, other: &Frame, from_row: usize) -> usize {
        assert_eq!((self.width, self.height), (other.width, other.height));
        let start = from_row * self.width;
        self.luma[start..]
            .iter()
            .zip(&other.luma[start..])
            .filter(|&(&x, &y)| x.abs_diff(y) > 40)
            .count()
    }
}

/// Decoded video frames: `description` must end in raw video. `overlay_text` sets the `text` of
/// an element named `overlay` in it, if any.
pub fn decode_frames(description: &str, overlay_text: Option<&str>) -> Vec<Frame> {
    let pipeline = gst::parse::launch(&format!(
        "{description} ! videoconvert ! video/x-raw,format=GRAY8 ! appsink name=frames sync=false"
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    if let Some(text) = overlay_text {
        pipeline
            .by_name("overlay")
            .unwrap()
            .set_property("text", text);
    }
    let frames = Arc::new(Mutex::new(Vec::new()));
    let into = frames.clone();
    pipeline
        .by_name("frames")
        .unwrap()
        .downcast::<gst_app::AppSink>()
        .unwrap()
        .set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |sink| {
                    let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                    let caps = sample.caps().unwrap().structure(0).unwrap().to_owned();
                    let (width, height) = (
                        caps.get::<i32>("width").unwrap() as usize,
                        caps.get::<i32>("height").unwrap() as usize,
                    );
                    let buffer = sample.buffer().unwrap();
                    let map = buffer.map_readable().unwrap();
                    // GRAY8 rows are padded to 4 bytes.
                    let stride = width.div_ceil(4) * 4;
                    let luma = map
                        .chunks(stride)
                        .take(height)
                        .flat_map(|row| row[..width].iter().copied())
                        .collect();
                    into.lock().unwrap().push(Frame {
                        pts: buffer.pts().unwrap().seconds_f64(),
                        width,
                        height,
                        luma,
                    });
                    Ok(gst::FlowSuccess::Ok)
                })
                .build(),
        );
    let captured = run_pipeline(&pipeline, Duration::from_secs(60), |_, _| {});
    assert!(captured.errors.is_empty(), "{:?}", captured.errors);
    let frames = std::mem::take(&mut *frames.lock().unwrap());
    assert!(!frames.is_empty());
    frames
}

/// The frame shown at `time` (the last one starting at or before it).
pub fn frame_at(frames: &[Frame], time: f64) -> &Frame {
    frames
        .iter()
        .rev()
        .find(|f| f.pts <= time + 1e-6)
        .unwrap_or(&frames[0])
}

/// Text buffers: `description` must end in `text/x-raw`.
pub fn decode_text(description: &str) -> Vec<element::Cue> {
    let captured = run(
        &format!("{description} ! appsink name=text sync=false async=false"),
        Duration::from_secs(60),
    );
    assert!(captured.errors.is_empty(), "{:?}", captured.errors);
    captured.cues
}
