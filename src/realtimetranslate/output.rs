//! Turns the timeline's output into GStreamer buffers and events for the three src pads.
//!
//! Positions are 24 kHz sample counts from `origin`, the PTS of the first input sample, so the
//! output shares the input's timeline and never drifts from it by rounding.

use super::Pacing;
use crate::pad_queue::Item;
use crate::protocol::translation::SAMPLE_RATE;
use crate::timeline::{Cue, CueSettings, Emitted, Timeline};

/// Translated speech kept waiting at most: 2 minutes, far beyond any real backlog in real time.
const MAX_PENDING_SAMPLES: usize = 120 * SAMPLE_RATE as usize;
/// With `pacing=none` the input runs ahead of the translation by whatever the connection holds
/// in flight (queues and socket buffers, minutes of audio), and it all comes back later: keep
/// up to 20 minutes (55 MB) rather than drop any.
const MAX_PENDING_SAMPLES_UNPACED: usize = 1200 * SAMPLE_RATE as usize;
/// Text pads announce silence (GAP) in steps of at least this much, not once per input buffer.
const MIN_GAP_SAMPLES: u64 = SAMPLE_RATE as u64 / 10;
/// Longest audio buffer pushed.
const MAX_BUFFER_SAMPLES: usize = SAMPLE_RATE as usize / 10;

pub fn samples_to_time(samples: u64) -> gst::ClockTime {
    gst::ClockTime::from_nseconds((samples as u128 * 1_000_000_000 / SAMPLE_RATE as u128) as u64)
}

pub fn time_to_samples(time: gst::ClockTime) -> u64 {
    (time.nseconds() as u128 * SAMPLE_RATE as u128 / 1_000_000_000) as u64
}

/// Items for each src pad, in push order.
#[derive(Debug, Default)]
pub struct PadItems {
    pub audio: Vec<Item>,
    pub text: Vec<Item>,
    pub source_text: Vec<Item>,
}

/// The output side of one stream (reset by flushes).
#[derive(Debug)]
pub struct Output {
    pub timeline: Timeline,
    /// PTS of the first input sample; `None` until the first buffer.
    pub origin: Option<gst::ClockTime>,
    /// End of the input so far (samples from origin): output may be written up to here at once.
    pub input_end: Option<u64>,
    /// Where each text pad stands (samples from origin).
    text_position: u64,
    source_text_position: u64,
    discont: bool,
}

impl Output {
    pub fn new(cues: CueSettings, pacing: Pacing) -> Self {
        let max_pending = match pacing {
            Pacing::Realtime => MAX_PENDING_SAMPLES,
            Pacing::None => MAX_PENDING_SAMPLES_UNPACED,
        };
        Self {
            timeline: Timeline::new(cues, max_pending),
            origin: None,
            input_end: None,
            text_position: 0,
            source_text_position: 0,
            discont: true,
        }
    }

    fn time(&self, samples: u64) -> gst::ClockTime {
        self.origin.unwrap_or(gst::ClockTime::ZERO) + samples_to_time(samples)
    }

    /// Converts what the timeline emitted, plus the GAPs the text pads may now announce.
    pub fn items(&mut self, emitted: Emitted) -> PadItems {
        let mut items = PadItems::default();
        let mut position = emitted.start;
        let mut arrivals = emitted.arrivals;
        for piece in emitted.audio.chunks(MAX_BUFFER_SAMPLES) {
            let bytes: Vec<u8> = piece.iter().flat_map(|s| s.to_le_bytes()).collect();
            let mut buffer = gst::Buffer::from_mut_slice(bytes);
            {
                let buffer = buffer.get_mut().expect("new buffer");
                let pts = self.time(position);
                buffer.set_pts(pts);
                buffer.set_duration(self.time(position + piece.len() as u64) - pts);
                buffer.set_offset(position);
                buffer.set_offset_end(position + piece.len() as u64);
                if std::mem::take(&mut self.discont) {
                    buffer.set_flags(gst::BufferFlags::DISCONT);
                }
            }
            items
                .audio
                .push(Item::Buffer(buffer, std::mem::take(&mut arrivals)));
            position += piece.len() as u64;
        }
        for cue in &emitted.cues {
            let position = &mut self.text_position;
            items.text.extend(cue_items(self.origin, cue, position));
        }
        for cue in &emitted.source_cues {
            let position = &mut self.source_text_position;
            items
                .source_text
                .extend(cue_items(self.origin, cue, position));
        }
        self.gaps(&mut items, false);
        items
    }

    /// The input now reaches `input_end`: output is due up to `input_end − latency`.
    pub fn input_reached(&mut self, input_end: u64, latency: u64) -> PadItems {
        self.input_end = Some(input_end);
        let emitted = self.timeline.advance(input_end.saturating_sub(latency));
        self.items(emitted)
    }

    /// Translated speech arrived: what is queued goes out at once, up to the input's end, rather
    /// than with the next input buffer. When it is heard does not change, only how soon
    /// downstream has it.
    pub fn write_arrived(&mut self) -> PadItems {
        let Some(input_end) = self.input_end else {
            return PadItems::default();
        };
        let emitted = self
            .timeline
            .advance(self.timeline.speech_end().min(input_end));
        self.items(emitted)
    }

    /// End of stream: everything out (translation may run past the input's end), every cue
    /// closed, the text pads covered to the end, then EOS on every pad.
    pub fn finish(&mut self) -> PadItems {
        let mut items = PadItems::default();
        if self.origin.is_some() {
            let emitted = self.timeline.finish(self.input_end.unwrap_or(0));
            items = self.items(emitted);
            self.gaps(&mut items, true);
        }
        self.input_end = None;
        for queued in [&mut items.audio, &mut items.text, &mut items.source_text] {
            queued.push(Item::Event(gst::event::Eos::new()));
        }
        items
    }

    /// Cues closed outside an advance (a text fragment ended the previous sentence).
    pub fn cue_items(&mut self, cues: &[Cue], source: bool) -> Vec<Item> {
        let position = if source {
            &mut self.source_text_position
        } else {
            &mut self.text_position
        };
        cues.iter()
            .flat_map(|cue| cue_items(self.origin, cue, position))
            .collect()
    }

    /// GAP events up to where the timeline lets each text pad advance; `all` ignores the minimum
    /// step (end of stream).
    pub fn gaps(&mut self, items: &mut PadItems, all: bool) {
        let min = if all { 1 } else { MIN_GAP_SAMPLES };
        let hold = self.timeline.text_hold();
        if let Some(gap) = gap_item(self.origin, &mut self.text_position, hold, min) {
            items.text.push(gap);
        }
        let hold = self.timeline.source_text_hold();
        if let Some(gap) = gap_item(self.origin, &mut self.source_text_position, hold, min) {
            items.source_text.push(gap);
        }
    }
}

fn gap_item(
    origin: Option<gst::ClockTime>,
    position: &mut u64,
    hold: u64,
    min: u64,
) -> Option<Item> {
    let origin = origin?;
    if hold < *position + min {
        return None;
    }
    let start = origin + samples_to_time(*position);
    let end = origin + samples_to_time(hold);
    *position = hold;
    Some(Item::Event(
        gst::event::Gap::builder(start)
            .duration(end - start)
            .build(),
    ))
}

/// A text buffer for the cue, then the event caption encoders take as the end of a line.
fn cue_items(origin: Option<gst::ClockTime>, cue: &Cue, position: &mut u64) -> Vec<Item> {
    let origin = origin.unwrap_or(gst::ClockTime::ZERO);
    let start = cue.start.max(*position);
    let end = cue.end.max(start + 1);
    let mut items = Vec::new();
    if start > *position {
        let gap_start = origin + samples_to_time(*position);
        let gap_end = origin + samples_to_time(start);
        items.push(Item::Event(
            gst::event::Gap::builder(gap_start)
                .duration(gap_end - gap_start)
                .build(),
        ));
    }
    let mut buffer = gst::Buffer::from_mut_slice(cue.text.clone().into_bytes());
    {
        let buffer = buffer.get_mut().expect("new buffer");
        let pts = origin + samples_to_time(start);
        buffer.set_pts(pts);
        buffer.set_duration(origin + samples_to_time(end) - pts);
    }
    items.push(Item::Buffer(buffer, Vec::new()));
    items.push(Item::Event(
        gst::event::CustomDownstream::builder(gst::Structure::new_empty(
            "rstranscribe/final-transcript",
        ))
        .build(),
    ));
    *position = end;
    items
}
