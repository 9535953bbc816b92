//! What injected faults put on the wire, apart from ordinary events: the `fault_send` garbage frames,
//! the silent `fault_stall_after_audio_ms` connection and the `fault_huge_text_after_audio_ms` text.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::io::Interest;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

use super::FaultSend;
use crate::protocol::SAMPLE_RATE;

/// Longest stall when the client never closes.
const STALL_CAP: Duration = Duration::from_secs(600);
/// Size of the `fault_send=oversized` text frame.
pub const OVERSIZED_FRAME_BYTES: usize = 20 * 1024 * 1024;
/// Size of each `fault_huge_text_after_audio_ms` transcript delta.
pub const HUGE_TEXT_BYTES: usize = 2 * 1024 * 1024;
/// Size of the `fault_send=binary` frame.
const GARBAGE_FRAME_BYTES: usize = 1024;

/// The `fault_send` frame; `seed` varies the random bytes between sessions.
pub(crate) fn garbage_frame(kind: FaultSend, event_id: &str, seed: u64) -> Message {
    match kind {
        FaultSend::MalformedJson => Message::text(format!(
            r#"{{"type":"session.output_transcript.delta","event_id":"{event_id}","delta":"cut of"#
        )),
        FaultSend::UnknownEvent => Message::text(
            serde_json::json!({
                "type": "session.something_new",
                "event_id": event_id,
                "detail": "Injected fault: an event type clients do not know yet.",
            })
            .to_string(),
        ),
        FaultSend::InvalidBase64 => Message::text(
            serde_json::json!({
                "type": "session.output_audio.delta",
                "event_id": event_id,
                "delta": "%%% this is not base64 %%%",
                "sample_rate": SAMPLE_RATE,
                "channels": 1,
                "format": "pcm16",
                "elapsed_ms": 0,
            })
            .to_string(),
        ),
        FaultSend::Oversized => Message::text(oversized_audio_delta(event_id)),
        FaultSend::Binary => Message::binary(garbage_bytes(seed)),
    }
}

/// `fault_stall_after_audio_ms`: holds the connection without reading or writing (so no pongs, and
/// the client's writes back up once the socket buffers fill) until the client closes its end (FIN
/// or RST), at most [`STALL_CAP`].
pub(crate) async fn stall(tcp: &TcpStream) {
    let client_gone = async {
        loop {
            match tcp.ready(Interest::READABLE).await {
                // The peer's FIN/RST shows even while its earlier data stays unread.
                Ok(r) if r.is_read_closed() => return,
                // New data: leave it unread, and wait for the next readiness change.
                Ok(_) => {
                    let _ = tcp.try_io(Interest::READABLE, || {
                        Err::<(), _>(std::io::ErrorKind::WouldBlock.into())
                    });
                }
                Err(_) => return,
            }
        }
    };
    let _ = tokio::time::timeout(STALL_CAP, client_gone).await;
}

/// A `session.output_audio.delta` (of silence) padded to exactly [`OVERSIZED_FRAME_BYTES`].
fn oversized_audio_delta(event_id: &str) -> String {
    let head = format!(
        r#"{{"type":"session.output_audio.delta","event_id":"{event_id}","sample_rate":24000,"channels":1,"format":"pcm16","elapsed_ms":0,"delta":""#
    );
    let tail = "\"}";
    // A multiple of 8 base64 chars decodes to whole 16-bit samples; JSON whitespace fills the rest.
    let b64_len = (OVERSIZED_FRAME_BYTES - head.len() - tail.len()) / 8 * 8;
    let padding = OVERSIZED_FRAME_BYTES - head.len() - tail.len() - b64_len;
    let mut text = String::with_capacity(OVERSIZED_FRAME_BYTES);
    text.push_str(&head);
    text.extend(std::iter::repeat_n('A', b64_len));
    text.push('"');
    text.extend(std::iter::repeat_n(' ', padding));
    text.push('}');
    text
}

/// [`HUGE_TEXT_BYTES`] of words (`palabra0 palabra1 …`) with no sentence end: text a caption
/// track can neither show in time nor cut at a sentence.
pub(crate) fn huge_text() -> String {
    let mut text = String::with_capacity(HUGE_TEXT_BYTES + 16);
    let mut n = 0u64;
    while text.len() < HUGE_TEXT_BYTES {
        text.push_str("palabra");
        text.push_str(&(n % 10).to_string());
        text.push(' ');
        n += 1;
    }
    text.truncate(HUGE_TEXT_BYTES);
    text
}

/// Pseudo-random bytes (xorshift, seeded from the clock) starting with 0xFF, so never UTF-8.
fn garbage_bytes(seed: u64) -> Vec<u8> {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .subsec_nanos();
    let mut x = (seed ^ u64::from(nanos)).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut bytes: Vec<u8> = (0..GARBAGE_FRAME_BYTES)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    bytes[0] = 0xFF;
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oversized_frame_is_exactly_20_mib_of_valid_json() {
        let text = oversized_audio_delta("ev_2");
        assert_eq!(text.len(), OVERSIZED_FRAME_BYTES);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let pcm = crate::protocol::decode_audio(v["delta"].as_str().unwrap()).unwrap();
        assert!(pcm.len() * 2 > OVERSIZED_FRAME_BYTES / 2 && pcm.iter().all(|&s| s == 0));
    }

    #[test]
    fn huge_text_is_words_without_a_sentence_end() {
        let text = huge_text();
        assert_eq!(text.len(), HUGE_TEXT_BYTES);
        assert!(text.split_whitespace().count() > 200_000);
        assert!(!text.contains(['.', '!', '?']));
    }

    #[test]
    fn garbage_bytes_are_never_utf8() {
        for seed in 0..50 {
            let b = garbage_bytes(seed);
            assert_eq!(b.len(), GARBAGE_FRAME_BYTES);
            assert!(std::str::from_utf8(&b).is_err());
        }
    }
}
