//! Strict validation of Realtime client events (GA shapes, from the SDK types): unknown fields,
//! wrong types and out-of-range values are refused as the service refuses them, and beta shapes
//! get `beta_api_shape_disabled`. A client that passes here sends what the live API accepts.

use serde_json::{Map, Value};

use super::handshake::Kind;
use crate::protocol::{ProtocolError, decode_audio};

/// Largest decoded `audio` accepted in one append (the service documents 15 MiB).
const MAX_APPEND_BYTES: usize = 15 << 20;

/// A schema-valid client event.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientEvent {
    /// The `session` object, valid for this session's kind.
    SessionUpdate(Map<String, Value>),
    Append(Vec<i16>),
    Commit,
    Clear,
    ResponseCreate,
    ResponseCancel(Option<String>),
    /// Valid in the API but not modelled by this server (conversation item editing, WebRTC
    /// output buffer control): answered with an error that says so.
    Unmodelled(String),
}

fn invalid_event(message: impl Into<String>, param: Option<String>) -> ProtocolError {
    ProtocolError {
        code: "invalid_event",
        message: message.into(),
        param,
    }
}

fn invalid_value(message: impl Into<String>, param: &str) -> ProtocolError {
    ProtocolError {
        code: "invalid_value",
        message: message.into(),
        param: Some(param.to_owned()),
    }
}

fn beta_shape(param: &str) -> ProtocolError {
    ProtocolError {
        code: "beta_api_shape_disabled",
        message: format!(
            "The Realtime Beta API is no longer supported: '{param}' is a beta field. Use the GA \
             shape (session.type, session.output_modalities, session.audio.input / \
             session.audio.output)."
        ),
        param: Some(param.to_owned()),
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn wrong_type(param: &str, expected: &str, got: &Value) -> ProtocolError {
    invalid_event(
        format!(
            "Invalid type for '{param}': expected {expected}, but got {} instead.",
            kind_of(got)
        ),
        Some(param.to_owned()),
    )
}

fn object<'a>(v: &'a Value, param: &str) -> Result<&'a Map<String, Value>, ProtocolError> {
    v.as_object()
        .ok_or_else(|| wrong_type(param, "an object", v))
}

fn only_keys(
    obj: &Map<String, Value>,
    prefix: &str,
    allowed: &[&str],
) -> Result<(), ProtocolError> {
    match obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => {
            let param = format!("{prefix}.{k}");
            Err(invalid_event(
                format!("Unknown parameter: '{param}'."),
                Some(param),
            ))
        }
        None => Ok(()),
    }
}

fn string<'a>(v: &'a Value, param: &str) -> Result<&'a str, ProtocolError> {
    v.as_str().ok_or_else(|| wrong_type(param, "a string", v))
}

fn boolean(v: &Value, param: &str) -> Result<(), ProtocolError> {
    v.as_bool()
        .map(|_| ())
        .ok_or_else(|| wrong_type(param, "a boolean", v))
}

fn number_in(v: &Value, param: &str, min: f64, max: f64) -> Result<(), ProtocolError> {
    let n = v.as_f64().ok_or_else(|| wrong_type(param, "a number", v))?;
    if !(min..=max).contains(&n) {
        return Err(invalid_value(
            format!("Invalid '{param}': {n} is out of range [{min}, {max}]."),
            param,
        ));
    }
    Ok(())
}

fn non_negative_integer(v: &Value, param: &str) -> Result<(), ProtocolError> {
    v.as_u64()
        .map(|_| ())
        .ok_or_else(|| wrong_type(param, "a non-negative integer", v))
}

fn one_of(v: &Value, param: &str, values: &[&str]) -> Result<(), ProtocolError> {
    let s = string(v, param)?;
    if values.contains(&s) {
        Ok(())
    } else {
        Err(invalid_value(
            format!(
                "Invalid value: '{s}'. Supported values are: {}.",
                values
                    .iter()
                    .map(|v| format!("'{v}'"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            param,
        ))
    }
}

/// Validates one parsed client frame for a session of `kind`.
pub fn client_event(v: &Value, kind: Kind) -> Result<ClientEvent, ProtocolError> {
    let obj = v.as_object().ok_or_else(|| {
        invalid_event(
            format!(
                "Invalid client event: expected an object, but got {} instead.",
                kind_of(v)
            ),
            None,
        )
    })?;
    let ty = match obj.get("type") {
        Some(Value::String(t)) => t.as_str(),
        Some(other) => return Err(wrong_type("type", "a string", other)),
        None => {
            return Err(invalid_event(
                "Missing required parameter: 'type'.",
                Some("type".into()),
            ));
        }
    };
    if let Some(id) = obj.get("event_id") {
        let id = string(id, "event_id")?;
        if id.chars().count() > crate::protocol::MAX_EVENT_ID_CHARS {
            return Err(invalid_value(
                "Invalid 'event_id': string too long (maximum 512 characters).",
                "event_id",
            ));
        }
    }
    let conversation = kind == Kind::Conversation;
    match ty {
        "session.update" => {
            only_keys(obj, "", &["type", "event_id", "session"]).map_err(strip_dot)?;
            let session = obj.get("session").ok_or_else(|| {
                invalid_event(
                    "Missing required parameter: 'session'.",
                    Some("session".into()),
                )
            })?;
            Ok(ClientEvent::SessionUpdate(self::session(session, kind)?))
        }
        "input_audio_buffer.append" => {
            only_keys(obj, "", &["type", "event_id", "audio"]).map_err(strip_dot)?;
            let audio = obj.get("audio").ok_or_else(|| {
                invalid_event("Missing required parameter: 'audio'.", Some("audio".into()))
            })?;
            let audio = string(audio, "audio")?;
            if audio.len() / 4 * 3 > MAX_APPEND_BYTES {
                return Err(invalid_value(
                    "Invalid 'audio': larger than 15 MiB; send smaller chunks.",
                    "audio",
                ));
            }
            Ok(ClientEvent::Append(decode_audio(audio)?))
        }
        "input_audio_buffer.commit" | "input_audio_buffer.clear" => {
            only_keys(obj, "", &["type", "event_id"]).map_err(strip_dot)?;
            Ok(if ty.ends_with("commit") {
                ClientEvent::Commit
            } else {
                ClientEvent::Clear
            })
        }
        "response.create" if conversation => {
            only_keys(obj, "", &["type", "event_id", "response"]).map_err(strip_dot)?;
            if let Some(response) = obj.get("response") {
                let response = object(response, "response")?;
                only_keys(
                    response,
                    "response",
                    &[
                        "audio",
                        "conversation",
                        "input",
                        "instructions",
                        "max_output_tokens",
                        "metadata",
                        "output_modalities",
                        "prompt",
                        "tool_choice",
                        "tools",
                    ],
                )?;
            }
            Ok(ClientEvent::ResponseCreate)
        }
        "response.cancel" if conversation => {
            only_keys(obj, "", &["type", "event_id", "response_id"]).map_err(strip_dot)?;
            let id = match obj.get("response_id") {
                Some(id) => Some(string(id, "response_id")?.to_owned()),
                None => None,
            };
            Ok(ClientEvent::ResponseCancel(id))
        }
        "conversation.item.create"
        | "conversation.item.retrieve"
        | "conversation.item.truncate"
        | "conversation.item.delete"
        | "output_audio_buffer.clear"
            if conversation =>
        {
            Ok(ClientEvent::Unmodelled(ty.to_owned()))
        }
        "transcription_session.update" => Err(beta_shape("transcription_session.update")),
        "session.input_audio_buffer.append" | "session.close" => Err(invalid_event(
            format!(
                "Invalid value: '{ty}'. That is an event of the translation endpoint \
                 (/v1/realtime/translations); this endpoint takes 'input_audio_buffer.append'."
            ),
            Some("type".into()),
        )),
        other => {
            let supported: &[&str] = if conversation {
                &[
                    "session.update",
                    "input_audio_buffer.append",
                    "input_audio_buffer.commit",
                    "input_audio_buffer.clear",
                    "response.create",
                    "response.cancel",
                    "conversation.item.create",
                    "conversation.item.retrieve",
                    "conversation.item.truncate",
                    "conversation.item.delete",
                    "output_audio_buffer.clear",
                ]
            } else {
                &[
                    "session.update",
                    "input_audio_buffer.append",
                    "input_audio_buffer.commit",
                    "input_audio_buffer.clear",
                ]
            };
            Err(invalid_event(
                format!(
                    "Invalid value: '{other}'. Supported values are: {}.",
                    supported.join(", ")
                ),
                Some("type".into()),
            ))
        }
    }
}

/// Top-level keys come out of `only_keys` as `.key`; at the top they are just `key`.
fn strip_dot(mut err: ProtocolError) -> ProtocolError {
    if let Some(param) = &mut err.param
        && let Some(stripped) = param.strip_prefix('.')
    {
        err.message = err
            .message
            .replace(&format!("'.{stripped}'"), &format!("'{stripped}'"));
        *param = stripped.to_owned();
    }
    err
}

/// Fields of the beta `session` object, gone in GA.
const BETA_SESSION_FIELDS: [&str; 9] = [
    "modalities",
    "voice",
    "input_audio_format",
    "output_audio_format",
    "input_audio_transcription",
    "input_audio_noise_reduction",
    "turn_detection",
    "temperature",
    "max_response_output_tokens",
];

/// The `session` of a `session.update`.
fn session(v: &Value, kind: Kind) -> Result<Map<String, Value>, ProtocolError> {
    let obj = object(v, "session")?;
    if let Some(beta) = obj
        .keys()
        .find(|k| BETA_SESSION_FIELDS.contains(&k.as_str()))
    {
        return Err(beta_shape(&format!("session.{beta}")));
    }
    let expected = match kind {
        Kind::Conversation => "realtime",
        Kind::Transcription => "transcription",
    };
    match obj.get("type") {
        None => {
            return Err(invalid_event(
                "Missing required parameter: 'session.type'.",
                Some("session.type".into()),
            ));
        }
        Some(t) => {
            one_of(t, "session.type", &["realtime", "transcription"])?;
            if t != expected {
                return Err(invalid_value(
                    format!(
                        "This is a '{expected}' session; its type cannot change (connect with{} \
                         intent=transcription for the other kind).",
                        if expected == "realtime" { "" } else { "out" }
                    ),
                    "session.type",
                ));
            }
        }
    }
    match kind {
        Kind::Conversation => {
            only_keys(
                obj,
                "session",
                &[
                    "type",
                    "model",
                    "instructions",
                    "output_modalities",
                    "audio",
                    "include",
                    "max_output_tokens",
                    "prompt",
                    "tool_choice",
                    "tools",
                    "tracing",
                    "truncation",
                    "reasoning",
                    "parallel_tool_calls",
                ],
            )?;
            if let Some(m) = obj.get("model") {
                string(m, "session.model")?;
            }
            if let Some(i) = obj.get("instructions") {
                string(i, "session.instructions")?;
            }
            if let Some(m) = obj.get("output_modalities") {
                let list = m
                    .as_array()
                    .ok_or_else(|| wrong_type("session.output_modalities", "an array", m))?;
                if list.len() != 1 {
                    return Err(invalid_value(
                        "Invalid 'session.output_modalities': give exactly one of 'audio' or \
                         'text'.",
                        "session.output_modalities",
                    ));
                }
                one_of(&list[0], "session.output_modalities", &["audio", "text"])?;
            }
            if let Some(t) = obj.get("max_output_tokens")
                && t != "inf"
            {
                number_in(t, "session.max_output_tokens", 1.0, 4096.0)?;
            }
            if let Some(t) = obj.get("tools") {
                t.as_array()
                    .ok_or_else(|| wrong_type("session.tools", "an array", t))?;
            }
        }
        Kind::Transcription => only_keys(obj, "session", &["type", "audio", "include"])?,
    }
    if let Some(include) = obj.get("include") {
        let list = include
            .as_array()
            .ok_or_else(|| wrong_type("session.include", "an array", include))?;
        for item in list {
            one_of(
                item,
                "session.include",
                &["item.input_audio_transcription.logprobs"],
            )?;
        }
    }
    if let Some(audio) = obj.get("audio") {
        let audio = object(audio, "session.audio")?;
        match kind {
            Kind::Conversation => only_keys(audio, "session.audio", &["input", "output"])?,
            Kind::Transcription => only_keys(audio, "session.audio", &["input"])?,
        }
        if let Some(input) = audio.get("input") {
            audio_input(input)?;
        }
        if let Some(output) = audio.get("output") {
            audio_output(output)?;
        }
    }
    Ok(obj.clone())
}

fn audio_input(v: &Value) -> Result<(), ProtocolError> {
    const P: &str = "session.audio.input";
    let input = object(v, P)?;
    only_keys(
        input,
        P,
        &[
            "format",
            "noise_reduction",
            "transcription",
            "turn_detection",
        ],
    )?;
    if let Some(f) = input.get("format") {
        format(f, &format!("{P}.format"))?;
    }
    match input.get("noise_reduction") {
        None | Some(Value::Null) => {}
        Some(nr) => {
            let nr = object(nr, &format!("{P}.noise_reduction"))?;
            only_keys(nr, &format!("{P}.noise_reduction"), &["type"])?;
            if let Some(t) = nr.get("type") {
                one_of(
                    t,
                    &format!("{P}.noise_reduction.type"),
                    &["near_field", "far_field"],
                )?;
            }
        }
    }
    match input.get("transcription") {
        None | Some(Value::Null) => {}
        Some(t) => transcription(t)?,
    }
    match input.get("turn_detection") {
        None | Some(Value::Null) => {}
        Some(td) => turn_detection(td)?,
    }
    Ok(())
}

fn format(v: &Value, param: &str) -> Result<(), ProtocolError> {
    let f = object(v, param)?;
    only_keys(f, param, &["type", "rate"])?;
    let ty = match f.get("type") {
        Some(t) => {
            one_of(
                t,
                &format!("{param}.type"),
                &["audio/pcm", "audio/pcmu", "audio/pcma"],
            )?;
            t.as_str().unwrap_or_default()
        }
        None => "audio/pcm",
    };
    if ty != "audio/pcm" {
        return Err(invalid_value(
            format!("This test server handles only 'audio/pcm', not '{ty}'."),
            &format!("{param}.type"),
        ));
    }
    if let Some(rate) = f.get("rate")
        && rate.as_u64() != Some(24_000)
    {
        return Err(invalid_value(
            format!("Invalid '{param}.rate': only 24000 is supported."),
            &format!("{param}.rate"),
        ));
    }
    Ok(())
}

fn transcription(v: &Value) -> Result<(), ProtocolError> {
    const P: &str = "session.audio.input.transcription";
    let t = object(v, P)?;
    only_keys(
        t,
        P,
        &[
            "model",
            "language",
            "prompt",
            "delay",
            "keywords",
            "languages",
        ],
    )?;
    let model = match t.get("model") {
        Some(m) => string(m, &format!("{P}.model"))?,
        None => "",
    };
    if let Some(l) = t.get("language") {
        string(l, &format!("{P}.language"))?;
    }
    if let Some(p) = t.get("prompt") {
        string(p, &format!("{P}.prompt"))?;
        if model == "gpt-realtime-whisper" {
            return Err(invalid_value(
                "'prompt' is not supported with gpt-realtime-whisper.",
                &format!("{P}.prompt"),
            ));
        }
    }
    if let Some(d) = t.get("delay") {
        one_of(
            d,
            &format!("{P}.delay"),
            &["minimal", "low", "medium", "high", "xhigh"],
        )?;
        if model != "gpt-realtime-whisper" {
            return Err(invalid_value(
                "'delay' is only supported with gpt-realtime-whisper.",
                &format!("{P}.delay"),
            ));
        }
    }
    for list in ["keywords", "languages"] {
        if let Some(l) = t.get(list) {
            let items = l
                .as_array()
                .ok_or_else(|| wrong_type(&format!("{P}.{list}"), "an array", l))?;
            for item in items {
                string(item, &format!("{P}.{list}"))?;
            }
        }
    }
    Ok(())
}

fn turn_detection(v: &Value) -> Result<(), ProtocolError> {
    const P: &str = "session.audio.input.turn_detection";
    let td = object(v, P)?;
    let ty = td.get("type").ok_or_else(|| {
        invalid_event(
            format!("Missing required parameter: '{P}.type'."),
            Some(format!("{P}.type")),
        )
    })?;
    one_of(ty, &format!("{P}.type"), &["server_vad", "semantic_vad"])?;
    if ty == "server_vad" {
        only_keys(
            td,
            P,
            &[
                "type",
                "threshold",
                "prefix_padding_ms",
                "silence_duration_ms",
                "idle_timeout_ms",
                "create_response",
                "interrupt_response",
            ],
        )?;
        if let Some(t) = td.get("threshold") {
            number_in(t, &format!("{P}.threshold"), 0.0, 1.0)?;
        }
        for ms in ["prefix_padding_ms", "silence_duration_ms"] {
            if let Some(v) = td.get(ms) {
                non_negative_integer(v, &format!("{P}.{ms}"))?;
            }
        }
        match td.get("idle_timeout_ms") {
            None | Some(Value::Null) => {}
            Some(v) => non_negative_integer(v, &format!("{P}.idle_timeout_ms"))?,
        }
    } else {
        only_keys(
            td,
            P,
            &["type", "eagerness", "create_response", "interrupt_response"],
        )?;
        if let Some(e) = td.get("eagerness") {
            one_of(
                e,
                &format!("{P}.eagerness"),
                &["low", "medium", "high", "auto"],
            )?;
        }
    }
    for flag in ["create_response", "interrupt_response"] {
        if let Some(v) = td.get(flag) {
            boolean(v, &format!("{P}.{flag}"))?;
        }
    }
    Ok(())
}

fn audio_output(v: &Value) -> Result<(), ProtocolError> {
    const P: &str = "session.audio.output";
    let output = object(v, P)?;
    only_keys(output, P, &["format", "voice", "speed"])?;
    if let Some(f) = output.get("format") {
        format(f, &format!("{P}.format"))?;
    }
    match output.get("voice") {
        None | Some(Value::String(_)) => {}
        Some(Value::Object(custom)) => {
            only_keys(custom, &format!("{P}.voice"), &["id"])?;
            string(
                custom.get("id").unwrap_or(&Value::Null),
                &format!("{P}.voice.id"),
            )?;
        }
        Some(other) => {
            return Err(wrong_type(
                &format!("{P}.voice"),
                "a string or an object",
                other,
            ));
        }
    }
    if let Some(s) = output.get("speed") {
        number_in(s, &format!("{P}.speed"), 0.25, 1.5)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn conv(v: Value) -> Result<ClientEvent, ProtocolError> {
        client_event(&v, Kind::Conversation)
    }

    fn code(r: Result<ClientEvent, ProtocolError>) -> (&'static str, Option<String>) {
        let e = r.unwrap_err();
        (e.code, e.param)
    }

    #[test]
    fn accepts_the_interpreter_update_of_protocol_md() {
        let update = json!({"type":"session.update","session":{"type":"realtime","instructions":"x",
            "output_modalities":["audio"],"audio":{"input":{"format":{"type":"audio/pcm","rate":24000},
            "transcription":{"model":"gpt-realtime-whisper"},"noise_reduction":null,
            "turn_detection":{"type":"server_vad","threshold":0.5,"prefix_padding_ms":300,
            "silence_duration_ms":500,"create_response":true,"interrupt_response":false}},
            "output":{"format":{"type":"audio/pcm","rate":24000},"voice":"marin"}}}});
        assert!(matches!(conv(update), Ok(ClientEvent::SessionUpdate(_))));
    }

    #[test]
    fn beta_shapes_are_refused_as_such() {
        assert_eq!(
            code(conv(
                json!({"type":"session.update","session":{"modalities":["audio","text"]}})
            )),
            ("beta_api_shape_disabled", Some("session.modalities".into()))
        );
        assert_eq!(
            code(conv(
                json!({"type":"session.update","session":{"type":"realtime","voice":"marin"}})
            )),
            ("beta_api_shape_disabled", Some("session.voice".into()))
        );
        assert_eq!(
            code(client_event(
                &json!({"type":"transcription_session.update","session":{}}),
                Kind::Transcription
            ))
            .0,
            "beta_api_shape_disabled"
        );
    }

    #[test]
    fn session_shape_errors() {
        assert_eq!(
            code(conv(json!({"type":"session.update","session":{}}))),
            ("invalid_event", Some("session.type".into()))
        );
        assert_eq!(
            code(conv(
                json!({"type":"session.update","session":{"type":"transcription"}})
            )),
            ("invalid_value", Some("session.type".into()))
        );
        assert_eq!(
            code(conv(
                json!({"type":"session.update","session":{"type":"realtime","audio":{"input":{"turn_detection":{"type":"server_vad","interrupt":false}}}}})
            )),
            (
                "invalid_event",
                Some("session.audio.input.turn_detection.interrupt".into())
            )
        );
        assert_eq!(
            code(conv(
                json!({"type":"session.update","session":{"type":"realtime","audio":{"output":{"format":{"type":"audio/pcm","rate":16000}}}}})
            )),
            (
                "invalid_value",
                Some("session.audio.output.format.rate".into())
            )
        );
        assert_eq!(
            code(conv(
                json!({"type":"session.update","session":{"type":"realtime","output_modalities":["audio","text"]}})
            )),
            ("invalid_value", Some("session.output_modalities".into()))
        );
        assert_eq!(
            code(client_event(
                &json!({"type":"session.update","session":{"type":"transcription","instructions":"x"}}),
                Kind::Transcription
            )),
            ("invalid_event", Some("session.instructions".into()))
        );
        assert_eq!(
            code(client_event(
                &json!({"type":"session.update","session":{"type":"transcription","audio":{"input":{"transcription":{"model":"gpt-4o-transcribe","delay":"low"}}}}}),
                Kind::Transcription
            )),
            (
                "invalid_value",
                Some("session.audio.input.transcription.delay".into())
            )
        );
    }

    #[test]
    fn buffer_and_response_events() {
        assert_eq!(
            conv(json!({"type":"input_audio_buffer.append","audio":"AQD//w=="})),
            Ok(ClientEvent::Append(vec![1, -1]))
        );
        assert_eq!(
            code(conv(
                json!({"type":"input_audio_buffer.append","audio":"AQD"})
            ))
            .0,
            "invalid_value"
        );
        assert_eq!(
            code(conv(json!({"type":"input_audio_buffer.append"}))),
            ("invalid_event", Some("audio".into()))
        );
        assert_eq!(
            code(conv(json!({"type":"input_audio_buffer.commit","x":1}))),
            ("invalid_event", Some("x".into()))
        );
        assert_eq!(
            conv(json!({"type":"response.create","event_id":"e1"})),
            Ok(ClientEvent::ResponseCreate)
        );
        assert_eq!(
            code(client_event(
                &json!({"type":"response.create"}),
                Kind::Transcription
            )),
            ("invalid_event", Some("type".into()))
        );
        assert_eq!(
            code(conv(
                json!({"type":"session.input_audio_buffer.append","audio":""})
            )),
            ("invalid_event", Some("type".into()))
        );
        assert_eq!(
            code(conv(
                json!({"type":"input_audio_buffer.commit","event_id":"x".repeat(513)})
            )),
            ("invalid_value", Some("event_id".into()))
        );
    }
}
