//! The `realtimetranslate` element: live speech in, translated speech and subtitles out.

use gst::glib;
use gst::prelude::*;

mod ear_voice;
mod enums;
mod imp;
mod lane;
mod output;
mod settings;

pub use enums::{Backend, Fallback, NoiseReduction, Pacing, SubtitleMode};
pub use settings::{
    CUE_ASSEMBLY_MS, DEFAULT_LATENCY_MS, DEFAULT_MODEL, DEFAULT_TARGET_LANGUAGE, DEFAULT_URL,
    JITTER_MARGIN_MS,
};

glib::wrapper! {
    pub struct RealtimeTranslate(ObjectSubclass<imp::RealtimeTranslate>) @extends gst::Element, gst::Object;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "realtimetranslate",
        gst::Rank::NONE,
        RealtimeTranslate::static_type(),
    )
}
