//! Registers, inside the program, every plugin the recipes use that GStreamer 1.22 does not ship:
//! `realtimetranslate`, the Rust closed-caption elements (`tttocea608`, `cea608tott`) and
//! `hlssink3`. No `GST_PLUGIN_PATH` or plugin installation is needed to run a recipe.

use std::sync::OnceLock;

/// Initialises GStreamer and registers the plugins, once per process.
pub fn register() -> Result<(), String> {
    static RESULT: OnceLock<Result<(), String>> = OnceLock::new();
    RESULT
        .get_or_init(|| {
            gst::init().map_err(|e| format!("cannot initialise GStreamer: {e}"))?;
            gstrealtimetranslate::plugin_register_static()
                .map_err(|e| format!("cannot register realtimetranslate: {e}"))?;
            gstrsclosedcaption::plugin_register_static()
                .map_err(|e| format!("cannot register the closed-caption plugin: {e}"))?;
            gsthlssink3::plugin_register_static()
                .map_err(|e| format!("cannot register hlssink3: {e}"))?;
            Ok(())
        })
        .clone()
}
