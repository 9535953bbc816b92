//! Plumbing shared by the recipe programs in `examples/`: plugin registration, the translator's
//! command-line options, running a pipeline to its end, collecting subtitle cues, and the HLS
//! playlist and WebVTT segment writers. Each recipe's pipeline stays in its own example file so
//! it can be read in one place.

pub mod cli;
pub mod cues;
pub mod hls;
pub mod plugins;
pub mod run;
pub mod translator;
