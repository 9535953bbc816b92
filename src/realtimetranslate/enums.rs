//! The element's enumerated properties, as GObject enum types (shown by `gst-inspect-1.0`).

use gst::glib;

/// Which engine translates.
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, glib::Enum, Default)]
#[repr(u32)]
#[enum_type(name = "GstRealtimeTranslateBackend")]
#[non_exhaustive]
pub enum Backend {
    /// OpenAI's realtime translation model (needs an API key).
    #[default]
    #[enum_value(
        name = "OpenAI realtime translation (cloud, needs an API key)",
        nick = "openai"
    )]
    Openai = 0,
    /// The offline engine (PocketSphinx → Apertium → eSpeak NG) inside this process.
    #[enum_value(
        name = "Offline engine in this process (English → Spanish, no account)",
        nick = "local"
    )]
    Local = 1,
    /// OpenAI's general Realtime model prompted as an interpreter: turn based (it speaks after
    /// each pause), any voice.
    #[enum_value(
        name = "OpenAI Realtime model as an interpreter (cloud, turn based, needs an API key)",
        nick = "openai-realtime"
    )]
    OpenaiRealtime = 2,
    /// OpenAI realtime transcription: source-language captions only, no translation.
    #[enum_value(
        name = "OpenAI realtime transcription (captions only, cloud, needs an API key)",
        nick = "openai-transcription"
    )]
    OpenaiTranscription = 3,
    /// The GPT Translator realtime API over Socket.IO (needs a GPT Translator API key).
    #[enum_value(
        name = "GPT Translator realtime API (cloud, Socket.IO, needs a GPT Translator API key)",
        nick = "gpttranslator"
    )]
    Gpttranslator = 4,
}

/// Noise reduction the service applies to the input.
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, glib::Enum, Default)]
#[repr(u32)]
#[enum_type(name = "GstRealtimeTranslateNoiseReduction")]
pub enum NoiseReduction {
    #[default]
    #[enum_value(name = "None", nick = "none")]
    None = 0,
    #[enum_value(name = "Near field (close microphone, headset)", nick = "near-field")]
    NearField = 1,
    #[enum_value(name = "Far field (room or laptop microphone)", nick = "far-field")]
    FarField = 2,
}

/// How text leaves the subtitle pads.
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, glib::Enum, Default)]
#[repr(u32)]
#[enum_type(name = "GstRealtimeTranslateSubtitleMode")]
pub enum SubtitleMode {
    /// Words as they arrive, each a timed buffer at its speech, a line end after each sentence:
    /// live captioning (`tttocea608` roll-up). Adds nothing to the latency.
    #[default]
    #[enum_value(name = "Live: words as they arrive (roll-up captions)", nick = "live")]
    Live = 0,
    /// Whole pop-on cues (at most `subtitle-lines` × `subtitle-line-chars`), for files and
    /// pop-on captions; the reported latency grows by the cue assembly time (4 s).
    #[enum_value(
        name = "Cues: complete pop-on cues (files, pop-on captions)",
        nick = "cues"
    )]
    Cues = 1,
}

/// How non-live input is fed to the engine.
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, glib::Enum, Default)]
#[repr(u32)]
#[enum_type(name = "GstRealtimeTranslatePacing")]
pub enum Pacing {
    /// At the pace of the pipeline clock, as live speech would come: engines work in real time
    /// and bill per second, so faster gains nothing and spoils the timing.
    #[default]
    #[enum_value(name = "Real time (follow the pipeline clock)", nick = "realtime")]
    Realtime = 0,
    /// As fast as upstream delivers (benchmarks, offline batch work). The element waits for the
    /// engine's answers, so translations land on the timeline as they would in real time.
    #[enum_value(name = "None (as fast as upstream delivers)", nick = "none")]
    None = 1,
}

/// What `src` carries while no session is connected.
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, glib::Enum, Default)]
#[repr(u32)]
#[enum_type(name = "GstRealtimeTranslateFallback")]
pub enum Fallback {
    /// The original audio at full level: viewers keep hearing the speaker.
    #[default]
    #[enum_value(name = "Original audio", nick = "original")]
    Original = 0,
    /// Silence (translation-only outputs that must never carry the source language).
    #[enum_value(name = "Silence", nick = "silence")]
    Silence = 1,
}
