//! The `session` object a Realtime server advertises, its defaults, how a validated
//! `session.update` merges into it, and the settings the dialogues read from it.

use serde_json::{Map, Value, json};

use super::vad::VadParams;

fn pcm() -> Value {
    json!({ "type": "audio/pcm", "rate": 24000 })
}

/// `server_vad` with every field at its documented default.
fn default_server_vad() -> Value {
    json!({
        "type": "server_vad",
        "threshold": 0.5,
        "prefix_padding_ms": 300,
        "silence_duration_ms": 500,
        "idle_timeout_ms": null,
        "create_response": true,
        "interrupt_response": true,
    })
}

/// A fresh conversation session (`type: realtime`).
pub fn conversation(id: &str, model: &str, expires_at: u64) -> Value {
    json!({
        "type": "realtime",
        "object": "realtime.session",
        "id": id,
        "model": model,
        "expires_at": expires_at,
        "output_modalities": ["audio"],
        "instructions": "You are a helpful assistant.",
        "tools": [],
        "tool_choice": "auto",
        "max_output_tokens": "inf",
        "tracing": null,
        "truncation": "auto",
        "prompt": null,
        "include": null,
        "audio": {
            "input": {
                "format": pcm(),
                "transcription": null,
                "noise_reduction": null,
                "turn_detection": default_server_vad(),
            },
            "output": { "format": pcm(), "voice": "alloy", "speed": 1.0 },
        },
    })
}

/// A fresh transcription session (`type: transcription`).
pub fn transcription(id: &str, expires_at: u64) -> Value {
    json!({
        "type": "transcription",
        "object": "realtime.transcription_session",
        "id": id,
        "expires_at": expires_at,
        "include": null,
        "audio": {
            "input": {
                "format": pcm(),
                "transcription": null,
                "noise_reduction": null,
                "turn_detection": default_server_vad(),
            },
        },
    })
}

/// Applies a validated `session` patch: fields present replace the current ones (nested
/// settings objects such as `turn_detection` as a whole, with defaults filled in); absent ones
/// stay.
pub fn merge(session: &mut Value, patch: &Map<String, Value>) {
    for (key, value) in patch {
        if key == "audio" {
            for (direction, settings) in value.as_object().into_iter().flatten() {
                for (name, setting) in settings.as_object().into_iter().flatten() {
                    session["audio"][direction][name] = normalised(name, setting);
                }
            }
        } else {
            session[key] = value.clone();
        }
    }
}

fn normalised(name: &str, setting: &Value) -> Value {
    match (name, setting) {
        ("turn_detection", Value::Object(given)) if given["type"] == "server_vad" => {
            let mut full = default_server_vad();
            for (k, v) in given {
                full[k] = v.clone();
            }
            full
        }
        ("format", Value::Object(given)) if given.get("type").is_none_or(|t| t == "audio/pcm") => {
            pcm()
        }
        _ => setting.clone(),
    }
}

/// What the turn detection of a session asks for; `None` when it is off (`null`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TurnDetection {
    pub vad: VadParams,
    pub create_response: bool,
    pub interrupt_response: bool,
}

pub fn turn_detection(session: &Value) -> Option<TurnDetection> {
    let td = &session["audio"]["input"]["turn_detection"];
    if td.is_null() {
        return None;
    }
    let defaults = VadParams::default();
    Some(TurnDetection {
        vad: VadParams {
            threshold: td["threshold"].as_f64().unwrap_or(defaults.threshold),
            prefix_padding_ms: td["prefix_padding_ms"]
                .as_u64()
                .unwrap_or(defaults.prefix_padding_ms),
            silence_duration_ms: td["silence_duration_ms"]
                .as_u64()
                .unwrap_or(defaults.silence_duration_ms),
        },
        create_response: td["create_response"].as_bool().unwrap_or(true),
        interrupt_response: td["interrupt_response"].as_bool().unwrap_or(true),
    })
}

/// The transcription model when input transcription is on.
pub fn transcription_model(session: &Value) -> Option<String> {
    let t = &session["audio"]["input"]["transcription"];
    if t.is_null() {
        return None;
    }
    Some(t["model"].as_str().unwrap_or("").to_owned())
}

/// Whether responses are spoken (`["audio"]`) rather than written (`["text"]`).
pub fn speaks(session: &Value) -> bool {
    session["output_modalities"] != json!(["text"])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_replaces_given_fields_and_fills_vad_defaults() {
        let mut s = conversation("sess_1", "gpt-realtime", 10);
        let patch = json!({
            "type": "realtime",
            "instructions": "Translate.",
            "audio": {
                "input": {
                    "transcription": {"model": "gpt-realtime-whisper"},
                    "turn_detection": {"type": "server_vad", "interrupt_response": false},
                },
                "output": {"voice": "marin"},
            },
        });
        merge(&mut s, patch.as_object().unwrap());
        assert_eq!(s["instructions"], "Translate.");
        assert_eq!(s["audio"]["output"]["voice"], "marin");
        assert_eq!(s["audio"]["output"]["speed"], 1.0, "untouched");
        let td = turn_detection(&s).unwrap();
        assert!(!td.interrupt_response);
        assert!(td.create_response);
        assert_eq!(td.vad, VadParams::default());
        assert_eq!(
            transcription_model(&s).as_deref(),
            Some("gpt-realtime-whisper")
        );
        assert!(speaks(&s));
        merge(
            &mut s,
            json!({"audio": {"input": {"turn_detection": null}}})
                .as_object()
                .unwrap(),
        );
        assert!(turn_detection(&s).is_none());
    }
}
