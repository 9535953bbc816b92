//! Wire format of the translation protocol, server side: strict validation of the three client
//! events and builders for the seven server events (`docs/protocol/translation.md`). No I/O here,
//! so it is easy to test.

use base64::Engine as _;
use serde_json::{Map, Value, json};

/// The 13 target languages the service accepts (plain ISO 639-1).
pub const TARGET_LANGUAGES: [&str; 13] = [
    "es", "pt", "fr", "ja", "ru", "zh", "de", "ko", "hi", "id", "vi", "it", "en",
];

/// Targets the cloud service lacks but this server's offline engine has (Apertium pairs from
/// English); engines without them refuse them when the session asks (`session.rs`).
pub const OFFLINE_ONLY_TARGETS: [&str; 3] = ["ca", "gl", "eo"];

/// Longest `event_id` a client may send, in characters.
pub const MAX_EVENT_ID_CHARS: usize = 512;

/// Output audio: sample rate and the longest delta the server sends (200 ms).
pub const SAMPLE_RATE: u32 = 24_000;
/// Most samples in one `session.output_audio.delta`.
pub const MAX_DELTA_SAMPLES: usize = 4_800;

/// The session object as the server advertises it in `session.created` / `session.updated`.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionConfig {
    pub id: String,
    pub model: String,
    pub expires_at: u64,
    /// Target language code.
    pub language: String,
    /// `null` or `{"model": …}`.
    pub transcription: Value,
    /// `null` or `{"type": …, "strength": …}`.
    pub noise_reduction: Value,
}

impl SessionConfig {
    /// Defaults of a fresh session: no transcription, no noise reduction, English output.
    pub fn new(id: String, model: String, expires_at: u64) -> Self {
        Self {
            id,
            model,
            expires_at,
            language: "en".into(),
            transcription: Value::Null,
            noise_reduction: Value::Null,
        }
    }

    /// Whether input transcript deltas are wanted.
    pub fn transcribe(&self) -> bool {
        !self.transcription.is_null()
    }

    /// Applies an already validated patch.
    pub fn merge(&mut self, patch: &SessionPatch) {
        if let Some(t) = &patch.transcription {
            self.transcription = t.clone();
        }
        if let Some(n) = &patch.noise_reduction {
            self.noise_reduction = n.clone();
        }
        if let Some(l) = &patch.language {
            self.language = l.clone();
        }
    }

    /// The `session` object.
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "type": "translation",
            "model": self.model,
            "expires_at": self.expires_at,
            "audio": {
                "input": {
                    "noise_reduction": self.noise_reduction,
                    "transcription": self.transcription,
                },
                "output": { "language": self.language },
            },
        })
    }
}

/// The settable part of a `session.update`; `None` leaves a setting as it is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SessionPatch {
    /// `Some(Value::Null)` disables transcription.
    pub transcription: Option<Value>,
    /// Normalised: `strength` filled in (1.0) when absent.
    pub noise_reduction: Option<Value>,
    pub language: Option<String>,
}

/// A schema-valid client event.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientEvent {
    Update(SessionPatch),
    /// Base64 text, not yet decoded (see [`decode_audio`]).
    Append(String),
    Close,
}

/// Why a client event was refused; becomes an `error` event.
#[derive(Debug, Clone, PartialEq)]
pub struct ProtocolError {
    /// `invalid_event` (shape) or `invalid_value` (a value out of range).
    pub code: &'static str,
    pub message: String,
    pub param: Option<String>,
}

impl ProtocolError {
    fn event(message: impl Into<String>, param: Option<&str>) -> Self {
        Self {
            code: "invalid_event",
            message: message.into(),
            param: param.map(str::to_owned),
        }
    }
    fn value(message: impl Into<String>, param: &str) -> Self {
        Self {
            code: "invalid_value",
            message: message.into(),
            param: Some(param.to_owned()),
        }
    }
}

/// JSON type name for messages ("got a number instead").
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
    ProtocolError::event(
        format!(
            "Invalid type for '{param}': expected {expected}, but got {} instead.",
            kind_of(got)
        ),
        Some(param),
    )
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_owned()
    } else {
        format!("{prefix}.{key}")
    }
}

/// Rejects any key of `obj` outside `allowed`.
fn only_keys(
    obj: &Map<String, Value>,
    prefix: &str,
    allowed: &[&str],
) -> Result<(), ProtocolError> {
    match obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => {
            let param = join(prefix, k);
            Err(ProtocolError::event(
                format!("Unknown parameter: '{param}'."),
                Some(&param),
            ))
        }
        None => Ok(()),
    }
}

fn as_object<'a>(v: &'a Value, param: &str) -> Result<&'a Map<String, Value>, ProtocolError> {
    v.as_object()
        .ok_or_else(|| wrong_type(param, "an object", v))
}

fn missing(param: &str) -> ProtocolError {
    ProtocolError::event(
        format!("Missing required parameter: '{param}'."),
        Some(param),
    )
}

/// The client's `event_id` if it sent a string one (used to point errors at the event).
pub fn client_event_id(v: &Value) -> Option<String> {
    v.get("event_id")
        .and_then(Value::as_str)
        .map(|s| s.chars().take(MAX_EVENT_ID_CHARS).collect())
}

/// Parses a text frame into JSON; failure is an `invalid_event`.
pub fn parse_json(text: &str) -> Result<Value, ProtocolError> {
    serde_json::from_str(text).map_err(|e| {
        ProtocolError::event(
            format!("We could not parse the JSON body of your event: {e}"),
            None,
        )
    })
}

/// Validates one client event strictly against the three allowed shapes.
pub fn validate_client_event(v: &Value) -> Result<ClientEvent, ProtocolError> {
    let obj = v.as_object().ok_or_else(|| {
        ProtocolError::event(
            format!("An event must be a JSON object, but got {}.", kind_of(v)),
            None,
        )
    })?;
    let ty = match obj.get("type") {
        None => return Err(missing("type")),
        Some(Value::String(s)) => s.as_str(),
        Some(other) => return Err(wrong_type("type", "a string", other)),
    };
    if let Some(id) = obj.get("event_id") {
        match id {
            Value::String(s) if s.chars().count() > MAX_EVENT_ID_CHARS => {
                return Err(ProtocolError::event(
                    format!(
                        "Invalid 'event_id': string too long. Expected a maximum length of \
                         {MAX_EVENT_ID_CHARS}, but got a string with length {} instead.",
                        s.chars().count()
                    ),
                    Some("event_id"),
                ));
            }
            Value::String(_) => {}
            other => return Err(wrong_type("event_id", "a string", other)),
        }
    }
    match ty {
        "session.update" => {
            only_keys(obj, "", &["type", "event_id", "session"])?;
            let session = obj.get("session").ok_or_else(|| missing("session"))?;
            validate_session(session).map(ClientEvent::Update)
        }
        "session.input_audio_buffer.append" => {
            only_keys(obj, "", &["type", "event_id", "audio"])?;
            match obj.get("audio") {
                None => Err(missing("audio")),
                Some(Value::String(s)) => Ok(ClientEvent::Append(s.clone())),
                Some(other) => Err(wrong_type("audio", "a string", other)),
            }
        }
        "session.close" => {
            only_keys(obj, "", &["type", "event_id"])?;
            Ok(ClientEvent::Close)
        }
        other => Err(ProtocolError::event(
            format!(
                "Invalid value: '{other}'. Supported values are: 'session.update', \
                 'session.input_audio_buffer.append', and 'session.close'."
            ),
            Some("type"),
        )),
    }
}

fn validate_session(session: &Value) -> Result<SessionPatch, ProtocolError> {
    let mut patch = SessionPatch::default();
    let session = as_object(session, "session")?;
    only_keys(session, "session", &["audio"])?;
    let Some(audio) = session.get("audio") else {
        return Ok(patch);
    };
    let audio = as_object(audio, "session.audio")?;
    only_keys(audio, "session.audio", &["input", "output"])?;
    if let Some(input) = audio.get("input") {
        let input = as_object(input, "session.audio.input")?;
        only_keys(
            input,
            "session.audio.input",
            &["transcription", "noise_reduction"],
        )?;
        if let Some(t) = input.get("transcription") {
            patch.transcription = Some(validate_transcription(t)?);
        }
        if let Some(n) = input.get("noise_reduction") {
            patch.noise_reduction = Some(validate_noise_reduction(n)?);
        }
    }
    if let Some(output) = audio.get("output") {
        let output = as_object(output, "session.audio.output")?;
        only_keys(output, "session.audio.output", &["language"])?;
        if let Some(l) = output.get("language") {
            const P: &str = "session.audio.output.language";
            let l = l.as_str().ok_or_else(|| wrong_type(P, "a string", l))?;
            if !TARGET_LANGUAGES.contains(&l) && !OFFLINE_ONLY_TARGETS.contains(&l) {
                return Err(ProtocolError::value(
                    format!(
                        "Invalid value: '{l}'. Supported values are: {}.",
                        TARGET_LANGUAGES
                            .iter()
                            .map(|c| format!("'{c}'"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    P,
                ));
            }
            patch.language = Some(l.to_owned());
        }
    }
    Ok(patch)
}

fn validate_transcription(t: &Value) -> Result<Value, ProtocolError> {
    const P: &str = "session.audio.input.transcription";
    if t.is_null() {
        return Ok(Value::Null);
    }
    let obj = as_object(t, P)?;
    only_keys(obj, P, &["model"])?;
    match obj.get("model") {
        None => Err(missing(&format!("{P}.model"))),
        Some(Value::String(m)) => Ok(json!({ "model": m })),
        Some(other) => Err(wrong_type(&format!("{P}.model"), "a string", other)),
    }
}

fn validate_noise_reduction(n: &Value) -> Result<Value, ProtocolError> {
    const P: &str = "session.audio.input.noise_reduction";
    if n.is_null() {
        return Ok(Value::Null);
    }
    let obj = as_object(n, P)?;
    only_keys(obj, P, &["type", "strength"])?;
    let ty = match obj.get("type") {
        None => return Err(missing(&format!("{P}.type"))),
        Some(Value::String(t)) if t == "near_field" || t == "far_field" => t.clone(),
        Some(Value::String(t)) => {
            return Err(ProtocolError::value(
                format!(
                    "Invalid value: '{t}'. Supported values are: 'near_field' and 'far_field'."
                ),
                &format!("{P}.type"),
            ));
        }
        Some(other) => return Err(wrong_type(&format!("{P}.type"), "a string", other)),
    };
    let strength = match obj.get("strength") {
        None => 1.0,
        Some(Value::Number(s)) => {
            let s = s.as_f64().unwrap_or(f64::NAN);
            if !(0.0..=1.0).contains(&s) {
                return Err(ProtocolError::value(
                    format!("Invalid '{P}.strength': expected a number between 0 and 1, got {s}."),
                    &format!("{P}.strength"),
                ));
            }
            s
        }
        Some(other) => return Err(wrong_type(&format!("{P}.strength"), "a number", other)),
    };
    Ok(json!({ "type": ty, "strength": strength }))
}

/// Decodes the `audio` of an append: base64 of an even number of bytes, PCM16 little endian.
pub fn decode_audio(b64: &str) -> Result<Vec<i16>, ProtocolError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|e| {
            ProtocolError::value(format!("Invalid 'audio': not valid base64 ({e})."), "audio")
        })?;
    if bytes.len() % 2 != 0 {
        return Err(ProtocolError::value(
            format!(
                "Invalid 'audio': PCM16 audio must have an even number of bytes, got {}.",
                bytes.len()
            ),
            "audio",
        ));
    }
    Ok(bytes
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect())
}

/// Base64 of PCM16 little endian.
pub fn encode_audio(pcm: &[i16]) -> String {
    let bytes: Vec<u8> = pcm.iter().flat_map(|s| s.to_le_bytes()).collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Server event builders. `event_id` comes from the session's counter.
pub mod server {
    use super::*;

    pub fn session_created(event_id: &str, session: &SessionConfig) -> Value {
        json!({ "type": "session.created", "event_id": event_id, "session": session.to_json() })
    }

    pub fn session_updated(event_id: &str, session: &SessionConfig) -> Value {
        json!({ "type": "session.updated", "event_id": event_id, "session": session.to_json() })
    }

    pub fn session_closed(event_id: &str) -> Value {
        json!({ "type": "session.closed", "event_id": event_id })
    }

    pub fn input_transcript_delta(event_id: &str, delta: &str, elapsed_ms: u64) -> Value {
        json!({
            "type": "session.input_transcript.delta",
            "event_id": event_id,
            "delta": delta,
            "elapsed_ms": elapsed_ms,
        })
    }

    pub fn output_transcript_delta(event_id: &str, delta: &str, elapsed_ms: u64) -> Value {
        json!({
            "type": "session.output_transcript.delta",
            "event_id": event_id,
            "delta": delta,
            "elapsed_ms": elapsed_ms,
        })
    }

    /// One audio delta; callers keep `pcm` at most [`MAX_DELTA_SAMPLES`] long.
    /// The event's JSON text, written directly: the bulk of what a session sends, and base64
    /// and an event id need no escaping, so building a JSON value and scanning the audio for
    /// characters to escape is wasted work.
    pub fn output_audio_delta(event_id: &str, pcm: &[i16], elapsed_ms: u64) -> String {
        debug_assert!(
            event_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        );
        format!(
            r#"{{"type":"session.output_audio.delta","event_id":"{event_id}","delta":"{}","sample_rate":{SAMPLE_RATE},"channels":1,"format":"pcm16","elapsed_ms":{elapsed_ms}}}"#,
            encode_audio(pcm)
        )
    }

    /// An `error` event; `client_event_id` points at the offending client event, if it had one.
    pub fn error(
        event_id: &str,
        error_type: &str,
        code: &str,
        message: &str,
        param: Option<&str>,
        client_event_id: Option<&str>,
    ) -> Value {
        json!({
            "type": "error",
            "event_id": event_id,
            "error": {
                "type": error_type,
                "code": code,
                "message": message,
                "param": param,
                "event_id": client_event_id,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(v: Value) -> Result<ClientEvent, ProtocolError> {
        validate_client_event(&v)
    }

    #[test]
    fn accepts_the_three_events() {
        assert_eq!(
            check(json!({"type": "session.close", "event_id": "x"})),
            Ok(ClientEvent::Close)
        );
        assert_eq!(
            check(json!({"type": "session.input_audio_buffer.append", "audio": ""})),
            Ok(ClientEvent::Append(String::new()))
        );
        let ev = check(json!({"type": "session.update", "session": {"audio": {
            "input": {"transcription": {"model": "m"}, "noise_reduction": {"type": "far_field"}},
            "output": {"language": "es"}}}}))
        .unwrap();
        assert_eq!(
            ev,
            ClientEvent::Update(SessionPatch {
                transcription: Some(json!({"model": "m"})),
                noise_reduction: Some(json!({"type": "far_field", "strength": 1.0})),
                language: Some("es".into()),
            })
        );
    }

    #[test]
    fn rejects_shapes() {
        let p = |v| check(v).unwrap_err().param;
        assert_eq!(
            p(json!({"type": "session.close", "x": 1})),
            Some("x".into())
        );
        assert_eq!(
            p(json!({"type": "session.update", "session": {"audio": {"output": {"voice": "a"}}}})),
            Some("session.audio.output.voice".into())
        );
        assert_eq!(
            p(json!({"type": "session.update", "session": {"model": "x"}})),
            Some("session.model".into())
        );
        assert_eq!(p(json!({"type": "session.update"})), Some("session".into()));
        assert_eq!(
            p(json!({"type": "session.close", "event_id": 3})),
            Some("event_id".into())
        );
        assert_eq!(
            p(json!({"type": "session.close", "event_id": "a".repeat(513)})),
            Some("event_id".into())
        );
        assert!(check(json!({"type": "session.close", "event_id": "a".repeat(512)})).is_ok());
        assert_eq!(p(json!({"type": "response.create"})), Some("type".into()));
        assert_eq!(p(json!({"event_id": "a"})), Some("type".into()));
        let e = check(json!({"type": "session.update", "session": {"audio": {"output": {"language": "pt-BR"}}}}))
            .unwrap_err();
        assert_eq!(e.code, "invalid_value");
        assert!(e.message.contains("'zh'"));
        let e = check(
            json!({"type": "session.update", "session": {"audio": {"input": {
            "noise_reduction": {"type": "near_field", "strength": 2}}}}}),
        )
        .unwrap_err();
        assert_eq!(e.code, "invalid_value");
        assert!(check(json!([1])).is_err());
    }

    #[test]
    fn an_audio_delta_written_directly_is_the_json_event() {
        let pcm: Vec<i16> = (0..4800).map(|i| (i * 37 % 65536 - 32768) as i16).collect();
        for pcm in [&pcm[..], &pcm[..1], &[]] {
            let text = server::output_audio_delta("ev_12", pcm, 1400);
            let v: Value = serde_json::from_str(&text).expect("valid JSON");
            assert_eq!(
                v,
                json!({
                    "type": "session.output_audio.delta",
                    "event_id": "ev_12",
                    "delta": encode_audio(pcm),
                    "sample_rate": SAMPLE_RATE,
                    "channels": 1,
                    "format": "pcm16",
                    "elapsed_ms": 1400,
                })
            );
            assert_eq!(decode_audio(v["delta"].as_str().unwrap()).unwrap(), pcm);
        }
    }

    #[test]
    fn audio_codec() {
        assert_eq!(
            decode_audio(&encode_audio(&[1, -2, 32767])),
            Ok(vec![1, -2, 32767])
        );
        assert_eq!(decode_audio("AAE="), Ok(vec![256]));
        assert_eq!(decode_audio("AAEC").unwrap_err().code, "invalid_value"); // 3 bytes
        assert_eq!(
            decode_audio("not base64!").unwrap_err().param,
            Some("audio".into())
        );
    }
}
