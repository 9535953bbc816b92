//! `realtimetranslate`: live speech translation for GStreamer.
//!
//! Any raw audio goes in; it is converted to 24 kHz mono PCM16, streamed over a WebSocket to a
//! realtime translation engine, and the translated speech comes out on `src` and timed subtitles
//! on `subtitle_src` (the source transcript on `source_subtitle_src`).

use gst::glib;

pub mod backends;
pub mod captions;
pub mod connection;
pub mod convert;
pub mod input_gaps;
pub mod local_engine;
pub mod mix;
pub mod onsets;
pub mod overproduction;
pub mod pad_queue;
pub mod placement;
pub mod protocol;
pub mod realtimetranslate;
pub mod runtime;
pub mod secret;
pub mod session;
pub mod session_types;
pub mod subtitle_file;
pub mod timeline;
pub mod tls;
pub mod transport;

fn plugin_init(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    realtimetranslate::register(plugin)
}

// The origin (last but one) is where GStreamer expects the provider's URL; the project has no
// public address yet, so it says where the build came from rather than naming a placeholder URL.
gst::plugin_define!(
    realtimetranslate,
    env!("CARGO_PKG_DESCRIPTION"),
    plugin_init,
    concat!(env!("CARGO_PKG_VERSION"), "-", env!("COMMIT_ID")),
    "MPL",
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_NAME"),
    "no public URL yet: built from the realtimetranslate source tree (see its README.md)",
    env!("BUILD_REL_DATE")
);
