//! `realtimetranslate-eval`: runs the `realtimetranslate` element on recordings with time-aligned
//! references and measures what the listener gets: what the engine heard, what it said, what it
//! should have said (chrF, BLEU), and how late (ear-voice span, caption delay). Writes
//! `report.json` and a self-contained `index.html` to read, look at and listen to.
//!
//! Dependencies go one way: `metrics`, `subtitles`, `audio` know nothing of the rest; `align`
//! and `terms` use `metrics`; `evaluate` joins them into a `report`; `html` draws a report;
//! `run` drives GStreamer; `set` and `flite_set` find and make inputs.

pub mod align;
pub mod audio;
pub mod batch;
pub mod evaluate;
pub mod flite_set;
pub mod html;
pub mod metrics;
pub mod report;
pub mod run;
pub mod set;
pub mod subtitles;
pub mod svg;
pub mod terms;
