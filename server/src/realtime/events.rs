//! Builders of the server events of the Realtime API (GA names and shapes, from the SDK types),
//! without `event_id`: the connection numbers events as it sends them, and renames the output
//! events to their retired beta names when asked to.

use serde_json::{Value, json};

use crate::protocol::encode_audio;

/// The beta name of a GA event that was renamed, for the `test_event_names=beta` mode.
pub fn beta_name(ga: &str) -> Option<&'static str> {
    Some(match ga {
        "response.output_audio.delta" => "response.audio.delta",
        "response.output_audio.done" => "response.audio.done",
        "response.output_audio_transcript.delta" => "response.audio_transcript.delta",
        "response.output_audio_transcript.done" => "response.audio_transcript.done",
        "response.output_text.delta" => "response.text.delta",
        "response.output_text.done" => "response.text.done",
        "conversation.item.added" => "conversation.item.created",
        _ => return None,
    })
}

pub fn session_created(session: &Value) -> Value {
    json!({ "type": "session.created", "session": session })
}

pub fn session_updated(session: &Value) -> Value {
    json!({ "type": "session.updated", "session": session })
}

pub fn speech_started(audio_start_ms: u64, item_id: &str) -> Value {
    json!({
        "type": "input_audio_buffer.speech_started",
        "audio_start_ms": audio_start_ms,
        "item_id": item_id,
    })
}

pub fn speech_stopped(audio_end_ms: u64, item_id: &str) -> Value {
    json!({
        "type": "input_audio_buffer.speech_stopped",
        "audio_end_ms": audio_end_ms,
        "item_id": item_id,
    })
}

pub fn committed(item_id: &str, previous_item_id: Option<&str>) -> Value {
    json!({
        "type": "input_audio_buffer.committed",
        "item_id": item_id,
        "previous_item_id": previous_item_id,
    })
}

pub fn cleared() -> Value {
    json!({ "type": "input_audio_buffer.cleared" })
}

/// A user message holding committed audio; its transcript comes in transcription events.
pub fn user_item(item_id: &str) -> Value {
    json!({
        "id": item_id,
        "object": "realtime.item",
        "type": "message",
        "status": "completed",
        "role": "user",
        "content": [{ "type": "input_audio", "transcript": null }],
    })
}

/// The assistant message of a response; `content` is empty while it is in progress.
pub fn assistant_item(item_id: &str, status: &str, content: Vec<Value>) -> Value {
    json!({
        "id": item_id,
        "object": "realtime.item",
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": content,
    })
}

pub fn item_added(item: &Value, previous_item_id: Option<&str>) -> Value {
    json!({
        "type": "conversation.item.added",
        "previous_item_id": previous_item_id,
        "item": item,
    })
}

pub fn item_done(item: &Value, previous_item_id: Option<&str>) -> Value {
    json!({
        "type": "conversation.item.done",
        "previous_item_id": previous_item_id,
        "item": item,
    })
}

pub fn transcription_delta(item_id: &str, delta: &str) -> Value {
    json!({
        "type": "conversation.item.input_audio_transcription.delta",
        "item_id": item_id,
        "content_index": 0,
        "delta": delta,
    })
}

pub fn transcription_completed(item_id: &str, transcript: &str, seconds: f64) -> Value {
    json!({
        "type": "conversation.item.input_audio_transcription.completed",
        "item_id": item_id,
        "content_index": 0,
        "transcript": transcript,
        "usage": { "type": "duration", "seconds": seconds },
    })
}

/// The `response` resource in `response.created` / `response.done`.
pub fn response(
    id: &str,
    status: &str,
    status_details: Value,
    output: Vec<Value>,
    session: &Value,
) -> Value {
    let usage = if status == "in_progress" {
        Value::Null
    } else {
        json!({ "total_tokens": 0, "input_tokens": 0, "output_tokens": 0 })
    };
    json!({
        "id": id,
        "object": "realtime.response",
        "status": status,
        "status_details": status_details,
        "output": output,
        "conversation_id": "conv_1",
        "output_modalities": session["output_modalities"],
        "max_output_tokens": session["max_output_tokens"],
        "audio": { "output": {
            "format": session["audio"]["output"]["format"],
            "voice": session["audio"]["output"]["voice"],
        }},
        "usage": usage,
        "metadata": null,
    })
}

pub fn response_created(response: Value) -> Value {
    json!({ "type": "response.created", "response": response })
}

pub fn response_done(response: Value) -> Value {
    json!({ "type": "response.done", "response": response })
}

pub fn output_item_added(response_id: &str, item: &Value) -> Value {
    json!({
        "type": "response.output_item.added",
        "response_id": response_id,
        "output_index": 0,
        "item": item,
    })
}

pub fn output_item_done(response_id: &str, item: &Value) -> Value {
    json!({
        "type": "response.output_item.done",
        "response_id": response_id,
        "output_index": 0,
        "item": item,
    })
}

/// `response.content_part.added` / `.done` (`suffix` "added" or "done").
pub fn content_part(suffix: &str, response_id: &str, item_id: &str, part: Value) -> Value {
    json!({
        "type": format!("response.content_part.{suffix}"),
        "response_id": response_id,
        "item_id": item_id,
        "output_index": 0,
        "content_index": 0,
        "part": part,
    })
}

/// One of the per-content events (`response.output_audio.delta`, `…_transcript.delta`,
/// `….done`, …): `extra` holds its own fields (`delta`, `transcript`, `text`).
pub fn content_event(kind: &str, response_id: &str, item_id: &str, extra: Value) -> Value {
    let mut event = json!({
        "type": kind,
        "response_id": response_id,
        "item_id": item_id,
        "output_index": 0,
        "content_index": 0,
    });
    if let (Some(event), Value::Object(extra)) = (event.as_object_mut(), extra) {
        event.extend(extra);
    }
    event
}

pub fn audio_delta(response_id: &str, item_id: &str, pcm: &[i16]) -> Value {
    content_event(
        "response.output_audio.delta",
        response_id,
        item_id,
        json!({ "delta": encode_audio(pcm) }),
    )
}

pub fn rate_limits_updated() -> Value {
    json!({
        "type": "rate_limits.updated",
        "rate_limits": [
            { "name": "requests", "limit": 1000, "remaining": 999, "reset_seconds": 60.0 },
            { "name": "tokens", "limit": 100000, "remaining": 99000, "reset_seconds": 60.0 },
        ],
    })
}

/// An `error`; `client_event_id` points at the offending client event, if it had one.
pub fn error(
    error_type: &str,
    code: &str,
    message: &str,
    param: Option<&str>,
    client_event_id: Option<&str>,
) -> Value {
    json!({
        "type": "error",
        "error": {
            "type": error_type,
            "code": code,
            "message": message,
            "param": param,
            "event_id": client_event_id,
        },
    })
}
