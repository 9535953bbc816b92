//! Reads a subtitle pad's output at its sink: the cues, and how far the text timeline has got
//! (cues and GAP events both advance it), which is what lets a writer close a subtitle segment
//! while the stream is still running.

use gst::prelude::*;
use gstrealtimetranslate::subtitle_file::TimedCue;
use std::sync::{Arc, Mutex};

/// What a subtitle pad said, on the pipeline's running time (nanoseconds), in order.
#[derive(Debug, Clone, PartialEq)]
pub enum TextEvent {
    Cue(TimedCue),
    /// No cue starts before this time any more.
    Reached(u64),
}

fn running_time(segment: &gst::FormattedSegment<gst::ClockTime>, pts: gst::ClockTime) -> u64 {
    segment.to_running_time(pts).unwrap_or(pts).nseconds()
}

/// Calls `on_event` for every cue and every advance of the text timeline reaching `sink` (any
/// sink element, e.g. `fakesink sync=false`), from the streaming thread, in stream order.
pub fn watch(
    sink: &gst::Element,
    on_event: impl FnMut(TextEvent) + Send + 'static,
) -> Result<(), String> {
    let pad = sink
        .static_pad("sink")
        .ok_or_else(|| format!("{} has no sink pad", sink.name()))?;
    // A probe may be called from any thread; the stream's own order is kept by the lock.
    let state = Mutex::new((gst::FormattedSegment::<gst::ClockTime>::new(), on_event));
    pad.add_probe(
        gst::PadProbeType::BUFFER | gst::PadProbeType::EVENT_DOWNSTREAM,
        move |_pad, info| {
            let mut state = state.lock().unwrap();
            let (segment, on_event) = &mut *state;
            match &info.data {
                Some(gst::PadProbeData::Buffer(buffer)) => {
                    let pts = buffer.pts().unwrap_or_default();
                    let start = running_time(segment, pts);
                    let end = running_time(segment, pts + buffer.duration().unwrap_or_default());
                    if let Ok(map) = buffer.map_readable() {
                        on_event(TextEvent::Cue(TimedCue {
                            start_ns: start,
                            end_ns: end,
                            text: String::from_utf8_lossy(&map).into_owned(),
                        }));
                    }
                    on_event(TextEvent::Reached(end));
                }
                Some(gst::PadProbeData::Event(event)) => match event.view() {
                    gst::EventView::Segment(s) => {
                        if let Some(s) = s.segment().downcast_ref::<gst::ClockTime>() {
                            *segment = s.clone();
                        }
                    }
                    gst::EventView::Gap(gap) => {
                        let (pts, duration) = gap.get();
                        let end = running_time(segment, pts + duration.unwrap_or_default());
                        on_event(TextEvent::Reached(end));
                    }
                    _ => {}
                },
                _ => {}
            }
            gst::PadProbeReturn::Ok
        },
    )
    .ok_or_else(|| "cannot watch the subtitle pad".to_owned())?;
    Ok(())
}

/// Collects every cue `sink` receives; read the list once the pipeline has ended.
pub fn collect(sink: &gst::Element) -> Result<Arc<Mutex<Vec<TimedCue>>>, String> {
    let cues = Arc::new(Mutex::new(Vec::new()));
    let into = cues.clone();
    watch(sink, move |event| {
        if let TextEvent::Cue(cue) = event {
            into.lock().unwrap().push(cue);
        }
    })?;
    Ok(cues)
}

/// Prints cues one a line with their times, for the recipes' console output.
pub fn print(cues: &[TimedCue]) {
    for cue in cues {
        println!(
            "[{:7.2} s → {:7.2} s] {}",
            cue.start_ns as f64 / 1e9,
            cue.end_ns as f64 / 1e9,
            cue.text.replace('\n', " ")
        );
    }
}

/// Runs `pipeline` to its end and returns, per language, the cues its `cues_<language>` sink
/// received: the recipes with one caption or subtitle output per language name them so.
pub fn run_collecting_languages(
    pipeline: &gst::Pipeline,
    languages: &[String],
) -> Result<Vec<(String, Vec<TimedCue>)>, String> {
    let mut collected = Vec::new();
    for language in languages {
        let sink = pipeline
            .by_name(&format!("cues_{language}"))
            .ok_or_else(|| format!("no cues_{language} in the pipeline"))?;
        collected.push((language.clone(), collect(&sink)?));
    }
    crate::run::run_to_end(pipeline, &crate::run::Stop::new())?;
    Ok(collected
        .into_iter()
        .map(|(language, cues)| (language, cues.lock().unwrap().clone()))
        .collect())
}
