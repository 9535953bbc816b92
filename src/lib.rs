//! `realtimetranslate`: live speech translation for GStreamer.
#![allow(clippy::new_without_default)]

use gst::glib;

pub mod convert;
pub mod protocol;
pub mod timeline;

gst::plugin_define!(
    realtimetranslate,
    env!("CARGO_PKG_DESCRIPTION"),
    plugin_init,
    concat!(env!("CARGO_PKG_VERSION"), "-", env!("COMMIT_ID")),
    "MPL",
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_REPOSITORY"),
    env!("BUILD_REL_DATE")
);

fn plugin_init(_plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    Ok(())
}
