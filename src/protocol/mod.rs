//! Wire formats of the engines, as plain serde types: no GStreamer, no I/O, so they can be
//! unit tested and fuzzed on their own.

pub mod gpttranslator;
pub mod realtime;
pub mod socketio;
pub mod translation;
