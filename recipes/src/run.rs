//! Runs a pipeline to its end: PLAYING, then the bus until end of stream, an error, or a stop
//! request (which ends the stream cleanly so files and playlists are finalised).

use gst::prelude::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Asks a running pipeline to finish: it is sent EOS, so every sink closes its output properly.
#[derive(Debug, Clone, Default)]
pub struct Stop(Arc<AtomicBool>);

impl Stop {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn request(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn requested(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Builds a pipeline from a `gst-launch-1.0` style description.
pub fn launch(description: &str) -> Result<gst::Pipeline, String> {
    gst::parse::launch(description)
        .map_err(|e| format!("cannot build the pipeline: {e}"))?
        .downcast::<gst::Pipeline>()
        .map_err(|_| "the description is not a pipeline".to_owned())
}

fn error_text(err: &gst::message::Error) -> String {
    let source = err
        .src()
        .map(|s| format!("{}: ", s.name()))
        .unwrap_or_default();
    match err.debug() {
        Some(debug) => format!("{source}{} ({debug})", err.error()),
        None => format!("{source}{}", err.error()),
    }
}

/// Plays `pipeline` until end of stream, the first error, or `stop`; warnings are printed.
/// The pipeline is back in NULL when this returns.
pub fn run_to_end(pipeline: &gst::Pipeline, stop: &Stop) -> Result<(), String> {
    let bus = pipeline.bus().expect("a pipeline has a bus");
    let result = play(pipeline, &bus, stop);
    let _ = pipeline.set_state(gst::State::Null);
    result
}

fn play(pipeline: &gst::Pipeline, bus: &gst::Bus, stop: &Stop) -> Result<(), String> {
    if pipeline.set_state(gst::State::Playing).is_err() {
        // The element that failed says why on the bus.
        return Err(match bus.pop_filtered(&[gst::MessageType::Error]) {
            Some(message) => match message.view() {
                gst::MessageView::Error(err) => error_text(err),
                _ => unreachable!("filtered on errors"),
            },
            None => "the pipeline did not start".to_owned(),
        });
    }
    let mut eos_sent = false;
    loop {
        if stop.requested() && !eos_sent {
            eos_sent = true;
            pipeline.send_event(gst::event::Eos::new());
        }
        let Some(message) = bus.timed_pop(gst::ClockTime::from_mseconds(100)) else {
            continue;
        };
        match message.view() {
            gst::MessageView::Eos(_) => return Ok(()),
            gst::MessageView::Error(err) => return Err(error_text(err)),
            gst::MessageView::Warning(w) => {
                let source = w.src().map(|s| s.name().to_string()).unwrap_or_default();
                let debug = w.debug().map(|d| format!(" ({d})")).unwrap_or_default();
                eprintln!("warning from {source}: {}{debug}", w.error());
            }
            _ => {}
        }
    }
}
