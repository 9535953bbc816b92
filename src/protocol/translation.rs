//! OpenAI realtime translation protocol (`/v1/realtime/translations`), see
//! `docs/protocol/translation.md`.
//!
//! The client sends exactly three events; the server sends seven, and anything else must be ignored
//! for forward compatibility, so parsing never fails on an unknown `type`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};

/// Target languages the translation model accepts: plain ISO 639-1 only.
pub const TARGET_LANGUAGES: [&str; 13] = [
    "es", "pt", "fr", "ja", "ru", "zh", "de", "ko", "hi", "id", "vi", "it", "en",
];

/// Sample rate of audio both ways.
pub const SAMPLE_RATE: u32 = 24_000;
/// The engine consumes 200 ms frames; sending exactly that keeps its buffering predictable.
pub const CHUNK_SAMPLES: usize = 4_800;

/// Noise reduction the model applies to the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoiseReductionType {
    NearField,
    FarField,
}

/// `session.audio.input.noise_reduction`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NoiseReduction {
    #[serde(rename = "type")]
    pub kind: NoiseReductionType,
}

/// `session.audio.input.transcription`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transcription {
    pub model: String,
}

/// What a client can configure. `None` is sent as an explicit `null`, which is how the protocol
/// disables a feature (omitting the field would keep the server's current value).
#[derive(Debug, Clone, PartialEq)]
pub struct SessionConfig {
    pub target_language: String,
    pub transcription: Option<Transcription>,
    pub noise_reduction: Option<NoiseReduction>,
}

/// Events the client sends.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientEvent {
    Update(SessionConfig),
    /// 24 kHz mono PCM16 samples.
    Append(Vec<i16>),
    Close,
}

impl ClientEvent {
    /// The JSON text frame for this event.
    pub fn to_json(&self) -> String {
        let value = match self {
            ClientEvent::Update(config) => serde_json::json!({
                "type": "session.update",
                "session": {
                    "audio": {
                        "input": {
                            "transcription": config.transcription,
                            "noise_reduction": config.noise_reduction,
                        },
                        "output": { "language": config.target_language },
                    }
                }
            }),
            // Five of these a second per session: written directly, since base64 needs no
            // escaping, rather than copied into a JSON value and scanned for escapes.
            ClientEvent::Append(samples) => {
                return format!(
                    r#"{{"type":"session.input_audio_buffer.append","audio":"{}"}}"#,
                    encode_pcm16(samples)
                );
            }
            ClientEvent::Close => serde_json::json!({ "type": "session.close" }),
        };
        value.to_string()
    }
}

/// `error.error` of a server `error` event.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub struct ServiceError {
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub param: Option<String>,
}

impl ServiceError {
    /// Authentication, billing and permission problems: retrying cannot help.
    pub fn is_fatal(&self) -> bool {
        matches!(
            self.code.as_deref(),
            Some("invalid_api_key" | "insufficient_quota" | "account_deactivated")
        ) || self.kind == "authentication_error"
            || self.kind == "permission_error"
    }

    /// The service ended the session because it reached its lifetime.
    pub fn is_session_expired(&self) -> bool {
        self.code.as_deref() == Some("session_expired")
    }
}

/// Shown in warnings and errors, so every server-given part is cut to [`MAX_MESSAGE_CHARS`].
impl std::fmt::Display for ServiceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", excerpt(&self.kind))?;
        if let Some(code) = &self.code {
            write!(f, "/{}", excerpt(code))?;
        }
        if let Some(param) = &self.param {
            write!(f, " ({})", excerpt(param))?;
        }
        if !self.message.is_empty() {
            write!(f, ": {}", excerpt(&self.message))?;
        }
        Ok(())
    }
}

/// Server text quoted in a warning or error is cut to this many characters: enough for any real
/// service message, and a hostile frame cannot post megabytes to the bus.
pub const MAX_MESSAGE_CHARS: usize = 500;

/// `value` as text cut to [`MAX_MESSAGE_CHARS`] characters, marked with `…` when cut. Formatting
/// stops at the cut, so quoting a huge value costs no more than the excerpt.
fn excerpt(value: &(impl std::fmt::Display + ?Sized)) -> String {
    struct Bounded {
        text: String,
        chars: usize,
        cut: bool,
    }
    impl std::fmt::Write for Bounded {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            for c in s.chars() {
                if self.chars == MAX_MESSAGE_CHARS {
                    self.cut = true;
                    return Err(std::fmt::Error);
                }
                self.text.push(c);
                self.chars += 1;
            }
            Ok(())
        }
    }
    let mut out = Bounded {
        text: String::new(),
        chars: 0,
        cut: false,
    };
    // An error here only means the cut was reached.
    let _ = std::fmt::Write::write_fmt(&mut out, format_args!("{value}"));
    if out.cut {
        out.text.push('…');
    }
    out.text
}

/// The `session` object of `session.created` / `session.updated`, the parts the client uses.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub struct SessionInfo {
    #[serde(default)]
    pub id: String,
    /// Unix seconds at which the service ends the session.
    #[serde(default)]
    pub expires_at: Option<i64>,
}

/// Events the server sends. Unknown types become [`ServerEvent::Unknown`].
#[derive(Debug, Clone, PartialEq)]
pub enum ServerEvent {
    Created(SessionInfo),
    Updated(SessionInfo),
    Closed,
    InputTranscript {
        delta: String,
    },
    OutputTranscript {
        delta: String,
    },
    /// Decoded PCM16 at `sample_rate` with `channels` interleaved channels.
    OutputAudio {
        samples: Vec<i16>,
        sample_rate: u32,
        channels: u16,
    },
    Error(ServiceError),
    Unknown(String),
}

/// Why a frame could not be understood. Never fatal: the caller warns and carries on. Server
/// text in it is cut with [`excerpt`].
#[derive(Debug, Clone, PartialEq)]
pub struct ParseError(pub String);

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Deserialize)]
struct RawEvent {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    session: Option<SessionInfo>,
    #[serde(default)]
    delta: Option<String>,
    #[serde(default)]
    sample_rate: Option<u32>,
    #[serde(default)]
    channels: Option<u16>,
    #[serde(default)]
    format: Option<String>,
    #[serde(default)]
    error: Option<ServiceError>,
    /// Input audio (ms) the model had heard when it produced the event.
    #[serde(default)]
    elapsed_ms: Option<u64>,
}

/// Longest audio a delta may hold, at its own rate and channel count.
pub const MAX_AUDIO_DELTA_SECONDS: u64 = 10;
/// Largest audio delta accepted whatever its format (10 s at 24 kHz mono), checked before
/// decoding so a hostile frame cannot balloon memory.
const MAX_AUDIO_DELTA_BYTES: usize = MAX_AUDIO_DELTA_SECONDS as usize * SAMPLE_RATE as usize * 2;

/// Bytes of PCM16 a delta in this format may hold: 10 s of it, within [`MAX_AUDIO_DELTA_BYTES`].
fn max_audio_delta_bytes(sample_rate: u32, channels: u16) -> usize {
    let ten_seconds = MAX_AUDIO_DELTA_SECONDS * u64::from(sample_rate) * u64::from(channels) * 2;
    MAX_AUDIO_DELTA_BYTES.min(ten_seconds as usize)
}

impl ServerEvent {
    /// Parses one text (or binary UTF-8) frame.
    pub fn parse(text: &str) -> Result<ServerEvent, ParseError> {
        Self::parse_timed(text).map(|(event, _)| event)
    }

    /// Parses one frame, with its `elapsed_ms` (how much input the model had heard) if any.
    pub fn parse_timed(text: &str) -> Result<(ServerEvent, Option<u64>), ParseError> {
        let raw: RawEvent = serde_json::from_str(text)
            // serde_json quotes the offending value, which the server chose.
            .map_err(|err| ParseError(format!("malformed server event: {}", excerpt(&err))))?;
        let elapsed_ms = raw.elapsed_ms;
        let delta = |raw: RawEvent| {
            raw.delta
                .ok_or_else(|| ParseError(format!("`{}` without `delta`", excerpt(&raw.kind))))
        };
        let event = match raw.kind.as_str() {
            "session.created" => ServerEvent::Created(raw.session.unwrap_or_default()),
            "session.updated" => ServerEvent::Updated(raw.session.unwrap_or_default()),
            "session.closed" => ServerEvent::Closed,
            "session.input_transcript.delta" => ServerEvent::InputTranscript { delta: delta(raw)? },
            "session.output_transcript.delta" => {
                ServerEvent::OutputTranscript { delta: delta(raw)? }
            }
            "session.output_audio.delta" => {
                if let Some(format) = raw.format.as_deref()
                    && format != "pcm16"
                {
                    return Err(ParseError(format!(
                        "unsupported output audio format `{}`",
                        excerpt(format)
                    )));
                }
                let sample_rate = raw.sample_rate.unwrap_or(SAMPLE_RATE);
                let channels = raw.channels.unwrap_or(1);
                if !(8_000..=192_000).contains(&sample_rate) || !(1..=8).contains(&channels) {
                    return Err(ParseError(format!(
                        "unsupported output audio: {sample_rate} Hz, {channels} channels"
                    )));
                }
                let samples = decode_pcm16_frames(
                    &delta(raw)?,
                    channels,
                    max_audio_delta_bytes(sample_rate, channels),
                )?;
                ServerEvent::OutputAudio {
                    samples,
                    sample_rate,
                    channels,
                }
            }
            "error" => ServerEvent::Error(raw.error.unwrap_or_default()),
            other => ServerEvent::Unknown(other.to_owned()),
        };
        Ok((event, elapsed_ms))
    }
}

/// Base64 of little-endian PCM16, as `audio`/`delta` fields carry it.
pub fn encode_pcm16(samples: &[i16]) -> String {
    let bytes: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
    BASE64.encode(bytes)
}

/// Inverse of [`encode_pcm16`] for 24 kHz mono, bounded and strict.
pub fn decode_pcm16(text: &str) -> Result<Vec<i16>, ParseError> {
    decode_pcm16_frames(text, 1, MAX_AUDIO_DELTA_BYTES)
}

/// Decodes whole frames of `channels` interleaved samples, refusing more than `max_bytes` before
/// allocating anything.
fn decode_pcm16_frames(
    text: &str,
    channels: u16,
    max_bytes: usize,
) -> Result<Vec<i16>, ParseError> {
    // Canonical base64 (the only kind the decoder takes) decodes to exactly this many bytes.
    let padding = text
        .bytes()
        .rev()
        .take(2)
        .take_while(|&b| b == b'=')
        .count();
    let decoded_len = (text.len().div_ceil(4) * 3).saturating_sub(padding);
    if decoded_len > max_bytes {
        return Err(ParseError(format!(
            "audio delta of {decoded_len} bytes is too large: at most {max_bytes} \
             ({MAX_AUDIO_DELTA_SECONDS} s) are accepted in this format"
        )));
    }
    let bytes = BASE64
        .decode(text)
        .map_err(|err| ParseError(format!("invalid base64 audio: {err}")))?;
    let frame_bytes = 2 * usize::from(channels);
    if !bytes.len().is_multiple_of(frame_bytes) {
        return Err(ParseError(format!(
            "audio delta of {} bytes is not whole frames of {channels} × 16-bit samples",
            bytes.len()
        )));
    }
    Ok(bytes
        .chunks_exact(2)
        .map(|pair| i16::from_le_bytes([pair[0], pair[1]]))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_keeps_explicit_nulls() {
        let json = ClientEvent::Update(SessionConfig {
            target_language: "es".into(),
            transcription: None,
            noise_reduction: Some(NoiseReduction {
                kind: NoiseReductionType::FarField,
            }),
        })
        .to_json();
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value["type"], "session.update");
        let audio = &value["session"]["audio"];
        assert!(audio["input"]["transcription"].is_null());
        assert!(
            audio["input"]
                .as_object()
                .unwrap()
                .contains_key("transcription")
        );
        assert_eq!(audio["input"]["noise_reduction"]["type"], "far_field");
        assert_eq!(audio["output"]["language"], "es");
    }

    #[test]
    fn append_round_trips_samples() {
        let samples = vec![0, 1, -1, i16::MAX, i16::MIN, 1234];
        let json = ClientEvent::Append(samples.clone()).to_json();
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value["type"], "session.input_audio_buffer.append");
        assert_eq!(
            decode_pcm16(value["audio"].as_str().unwrap()).unwrap(),
            samples
        );
    }

    #[test]
    fn a_full_chunk_is_12800_base64_characters() {
        assert_eq!(encode_pcm16(&[0; CHUNK_SAMPLES]).len(), 12_800);
    }

    #[test]
    fn parses_every_server_event() {
        let created = r#"{"type":"session.created","event_id":"ev_1","session":{"id":"sess_1","type":"translation","model":"m","expires_at":1779990000,"audio":{}}}"#;
        assert_eq!(
            ServerEvent::parse(created).unwrap(),
            ServerEvent::Created(SessionInfo {
                id: "sess_1".into(),
                expires_at: Some(1779990000)
            })
        );
        assert_eq!(
            ServerEvent::parse(r#"{"type":"session.output_transcript.delta","delta":"Buenos días","elapsed_ms":1600}"#).unwrap(),
            ServerEvent::OutputTranscript { delta: "Buenos días".into() }
        );
        let audio = format!(
            r#"{{"type":"session.output_audio.delta","delta":"{}","sample_rate":24000,"channels":1,"format":"pcm16"}}"#,
            encode_pcm16(&[5, -5])
        );
        assert_eq!(
            ServerEvent::parse(&audio).unwrap(),
            ServerEvent::OutputAudio {
                samples: vec![5, -5],
                sample_rate: 24000,
                channels: 1
            }
        );
        let error = r#"{"type":"error","error":{"type":"invalid_request_error","code":"invalid_api_key","message":"bad"}}"#;
        match ServerEvent::parse(error).unwrap() {
            ServerEvent::Error(err) => assert!(err.is_fatal()),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            ServerEvent::parse(r#"{"type":"session.closed"}"#).unwrap(),
            ServerEvent::Closed
        );
        assert_eq!(
            ServerEvent::parse(r#"{"type":"rate_limits.updated","x":1}"#).unwrap(),
            ServerEvent::Unknown("rate_limits.updated".into())
        );
    }

    #[test]
    fn excerpts_cut_long_server_text_on_a_character_boundary() {
        let exact = "é".repeat(MAX_MESSAGE_CHARS);
        assert_eq!(excerpt(&exact), exact);
        assert_eq!(excerpt(&format!("{exact}é")), format!("{exact}…"));
    }

    #[test]
    fn rejects_bad_frames_without_panicking() {
        for bad in [
            "",
            "null",
            "[]",
            "{",
            r#"{"type":5}"#,
            r#"{"type":"session.output_audio.delta"}"#,
            r#"{"type":"session.output_audio.delta","delta":"!!!"}"#,
            r#"{"type":"session.output_audio.delta","delta":"AAEC"}"#,
            r#"{"type":"session.output_audio.delta","delta":"AAAA","format":"g711"}"#,
            r#"{"type":"session.output_audio.delta","delta":"AAAA","channels":0}"#,
        ] {
            assert!(ServerEvent::parse(bad).is_err(), "{bad}");
        }
    }
}
