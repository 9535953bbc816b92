//! The connection's bounds and thresholds, in one place: queue sizes, what counts as a session
//! that worked, how far a replay reaches back, what counts as a pause.

use crate::protocol::translation::SAMPLE_RATE;
use std::time::Duration;

/// Chunks between the element and the supervisor: the supervisor takes them at once, so this
/// only fills when it is starved of CPU.
pub(super) const INPUT_CHUNKS: usize = 64;
/// Chunks kept for a connected session whose own queue is full (slow network): ~13 s.
pub(super) const BACKLOG_CHUNKS: usize = 64;
/// Output of a session waiting for its predecessor to finish, at most (audio samples): the
/// predecessor's drain timeout ends the wait long before this in practice.
pub(super) const MAX_HELD_SAMPLES: u64 = 120 * SAMPLE_RATE as u64;
/// A session that worked at least this long (or took this much audio) is replaced at once when
/// it ends; a shorter one counts as a failed attempt (back-off).
pub(super) const MIN_HEALTHY_SESSION: Duration = Duration::from_secs(2);
/// Input that can wait keeps at most this much audio unanswered by the session (5 s): what is
/// in flight is lost if the connection drops, so input faster than real time must not run far
/// ahead of the answers.
pub(super) const IN_FLIGHT_WINDOW: u64 = 5 * SAMPLE_RATE as u64;
/// An engine that answers only after a pause (turn-based) may keep silent longer than the window
/// lasts: with no answer for this long, audio flows again regardless.
pub(super) const ANSWER_GRACE: Duration = Duration::from_secs(2);
/// A session's start position before it has had any audio.
pub(super) const NOT_STARTED: u64 = u64::MAX;
/// A 200 ms chunk quieter than this (RMS) is a pause: a good moment to switch sessions.
pub(super) const QUIET_RMS: f64 = 200.0;
/// A lost session's unanswered audio is sent again from this far (200 ms, in samples) before
/// its last answer, for an engine that had heard the first syllable of the next words when it
/// answered. With `elapsed_ms` floored to 200 ms, at most about 0.4 s is translated twice (the
/// soak bench measures it per cut).
pub(super) const REPLAY_OVERLAP: u64 = 2 * SAMPLE_RATE as u64 / 10;

/// Whether a chunk is a pause (or digital silence).
pub(super) fn is_quiet(chunk: &[i16]) -> bool {
    if chunk.is_empty() {
        return true;
    }
    let energy: f64 = chunk.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    (energy / chunk.len() as f64).sqrt() < QUIET_RMS
}

/// Input that can wait: unanswered audio kept per session to send again, at most (10 minutes,
/// 29 MB). A session that stops answering is replaced long before (`keepalive-timeout`).
pub(super) const LOSSLESS_LEDGER_SAMPLES: u64 = 600 * SAMPLE_RATE as u64;
/// An engine that has been given audio may think this long before it says anything (the local
/// server speaks after 1 s of input with nothing to say; a loaded machine adds to that): the
/// engine-stall check waits at least this long, whatever `keepalive-timeout` says.
pub(super) const MIN_ENGINE_SILENCE: Duration = Duration::from_secs(3);
