//! The GPT Translator realtime API (`docs/protocol/gpttranslator.md`): its events on top of
//! Socket.IO, the connection URL that carries the key, and its language codes.
//!
//! Only the event names and fields come from the provider's page; the exact shape of the status
//! events is not published, so both shapes a Socket.IO service commonly uses are accepted: a
//! `status` event (`{"status": "ready_for_audio"}` or a bare string) and an event named after the
//! status itself.

use super::socketio::{self, placeholder};
use super::translation::{ParseError, decode_pcm16, encode_pcm16};
use serde_json::{Value, json};

/// The service's origin; a path on it would name the namespace, as in socket.io-client.
pub const DEFAULT_URL: &str = "wss://api.gpttranslator.co";
/// The Socket.IO namespace of the realtime translator.
pub const NAMESPACE: &str = "/api/realtime-translator";
/// The environment variable holding the key when the `api-key` property is unset.
pub const API_KEY_ENV: &str = "GPTTRANSLATOR_API_KEY";
/// Audio both ways: 24 kHz mono PCM16.
pub const SAMPLE_RATE: u32 = 24_000;
/// The provider asks for ~100 ms chunks: 2400 samples.
pub const CHUNK_SAMPLES: usize = 2_400;

/// Events the client emits.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientEvent<'a> {
    Start {
        target_language: &'a str,
    },
    /// 24 kHz mono samples, at most [`CHUNK_SAMPLES`] of them.
    AudioChunk(&'a [i16]),
    Stop,
}

impl ClientEvent<'_> {
    /// The WebSocket text frame of this event in `namespace`.
    pub fn frame(&self, namespace: &str) -> String {
        match self {
            ClientEvent::Start { target_language } => socketio::event(
                namespace,
                "translation_start",
                Some(json!({ "targetLanguage": target_language })),
            ),
            ClientEvent::AudioChunk(samples) => socketio::event(
                namespace,
                "audio_chunk",
                Some(json!({ "audioData": encode_pcm16(samples) })),
            ),
            ClientEvent::Stop => socketio::event(namespace, "translation_stop", None),
        }
    }
}

/// Where the service is in setting up a translation; audio may be sent from `ReadyForAudio` on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    SessionInitializing,
    TranslationReady,
    ReadyForAudio,
    Other(String),
}

impl Status {
    fn named(name: &str) -> Option<Status> {
        Some(match name {
            "session_initializing" => Status::SessionInitializing,
            "translation_ready" => Status::TranslationReady,
            "ready_for_audio" => Status::ReadyForAudio,
            _ => return None,
        })
    }
}

/// Events the server emits. Unknown names become [`ServerEvent::Unknown`].
#[derive(Debug, Clone, PartialEq)]
pub enum ServerEvent {
    Status(Status),
    /// Mono PCM16 at `sample_rate`.
    OutputAudio {
        samples: Vec<i16>,
        sample_rate: u32,
    },
    OutputTranscript(String),
    InputTranscript(String),
    /// The service reports a problem; the session may go on.
    TranslationError(String),
    /// The account ran out of tokens; the service closes the session.
    InsufficientTokens {
        message: String,
        remaining_tokens: Option<String>,
    },
    /// The answer to `translation_stop`: all output has been sent.
    Closed,
    Unknown(String),
}

impl ServerEvent {
    /// Reads one Socket.IO event, with the binary attachments its placeholders point to.
    pub fn parse(
        name: &str,
        args: &[Value],
        attachments: &[Vec<u8>],
    ) -> Result<ServerEvent, ParseError> {
        let first = args.first();
        let text_field = |field: &str| -> Result<String, ParseError> {
            match first {
                Some(Value::String(text)) => Ok(text.clone()),
                Some(Value::Object(object)) => match object.get(field) {
                    Some(Value::String(text)) => Ok(text.clone()),
                    _ => Err(ParseError(format!("`{name}` without a `{field}` string"))),
                },
                _ => Err(ParseError(format!("`{name}` without a payload"))),
            }
        };
        let message = || text_field("message").unwrap_or_else(|_| "no details given".into());
        Ok(match name {
            "status" => {
                let status = match first {
                    Some(Value::Object(object)) => object
                        .get("status")
                        .or_else(|| object.get("state"))
                        .and_then(Value::as_str),
                    Some(Value::String(status)) => Some(status.as_str()),
                    _ => None,
                }
                .ok_or_else(|| ParseError("`status` without a status name".into()))?;
                ServerEvent::Status(Status::named(status).unwrap_or(Status::Other(status.into())))
            }
            "output_audio" => {
                let delta = match first {
                    Some(Value::Object(object)) => object.get("delta"),
                    other => other,
                }
                .ok_or_else(|| ParseError("`output_audio` without `delta`".into()))?;
                let samples = match (delta, placeholder(delta)) {
                    (Value::String(text), _) => decode_pcm16(text)?,
                    (_, Some(index)) => {
                        let bytes = attachments.get(index).ok_or_else(|| {
                            ParseError(format!("`output_audio` names missing attachment {index}"))
                        })?;
                        pcm16_from_bytes(bytes)?
                    }
                    _ => {
                        return Err(ParseError(
                            "`output_audio` delta is neither base64 nor binary".into(),
                        ));
                    }
                };
                let sample_rate = first
                    .and_then(|arg| arg.get("sampleRate").or_else(|| arg.get("sample_rate")))
                    .and_then(Value::as_u64)
                    .map_or(Ok(SAMPLE_RATE), |rate| match u32::try_from(rate) {
                        Ok(rate) if (8_000..=192_000).contains(&rate) => Ok(rate),
                        _ => Err(ParseError(format!("unsupported output sample rate {rate}"))),
                    })?;
                ServerEvent::OutputAudio {
                    samples,
                    sample_rate,
                }
            }
            "output_transcript" => ServerEvent::OutputTranscript(text_field("delta")?),
            "input_transcript" => ServerEvent::InputTranscript(text_field("delta")?),
            "translation_error" => ServerEvent::TranslationError(message()),
            "insufficient_tokens" => ServerEvent::InsufficientTokens {
                message: message(),
                remaining_tokens: first.and_then(|arg| arg.get("remainingTokens")).and_then(
                    |value| match value {
                        Value::Number(n) => Some(n.to_string()),
                        Value::String(s) => Some(s.clone()),
                        _ => None,
                    },
                ),
            },
            "translation_closed" => ServerEvent::Closed,
            other => match Status::named(other) {
                Some(status) => ServerEvent::Status(status),
                None => ServerEvent::Unknown(other.to_owned()),
            },
        })
    }
}

/// Binary audio is raw little-endian PCM16, like the base64 form decoded.
fn pcm16_from_bytes(bytes: &[u8]) -> Result<Vec<i16>, ParseError> {
    if !bytes.len().is_multiple_of(2) {
        return Err(ParseError("binary audio has an odd number of bytes".into()));
    }
    Ok(bytes
        .chunks_exact(2)
        .map(|pair| i16::from_le_bytes([pair[0], pair[1]]))
        .collect())
}

/// The text of a namespace refusal (`44/ns,{"message":…}` or a bare string).
pub fn refusal_message(data: Option<&Value>) -> String {
    match data {
        Some(Value::String(text)) => text.clone(),
        Some(value) => match value.get("message") {
            Some(Value::String(text)) => text.clone(),
            _ => value.to_string(),
        },
        None => "no reason given".into(),
    }
}

/// Whether a refusal is about the key (so retrying cannot help and the user must fix the key).
pub fn is_key_problem(message: &str) -> bool {
    let message = message.to_lowercase();
    [
        "api key",
        "apikey",
        "api_key",
        "auth",
        "credential",
        "jwt",
        "invalid key",
        "forbidden",
    ]
    .iter()
    .any(|needle| message.contains(needle))
}

/// Whether `code` is shaped like a BCP-47 language tag: a language subtag of 2–8 letters, then
/// subtags of 1–8 letters or digits (`es`, `pt-BR`, `zh-CN`, `zh-Hant-TW`, `es-419`). Whether the
/// service supports the language is for the service to say.
pub fn is_language_tag(code: &str) -> bool {
    let mut subtags = code.split('-');
    let language_ok = subtags
        .next()
        .is_some_and(|s| (2..=8).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphabetic()));
    language_ok
        && code.len() <= 35
        && subtags
            .all(|s| (1..=8).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// Where to connect: the Engine.IO WebSocket URL (holding the key) and the namespace to join.
#[derive(Clone, PartialEq, Eq)]
pub struct Target {
    /// Secret: contains the key. Never print it; see [`redact`].
    pub url: String,
    pub namespace: String,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("url", &"<contains the key>")
            .field("namespace", &self.namespace)
            .finish()
    }
}

/// Builds the connection target from a server URL given the socket.io-client way: its origin
/// (`wss://api.gpttranslator.co`; `https://` and `http://` mean `wss://` and `ws://`) and an
/// optional path naming the namespace (default [`NAMESPACE`]). The Engine.IO path is
/// `/socket.io/`; the URL's own query parameters are kept and the key goes in `apiKey`.
pub fn connection_target(server_url: &str, key: &str) -> Result<Target, String> {
    let invalid = |why: &str| format!("invalid url '{server_url}': {why}");
    let (scheme, rest) = server_url
        .split_once("://")
        .ok_or_else(|| invalid("it must start with wss:// or ws://"))?;
    let scheme = match scheme.to_ascii_lowercase().as_str() {
        "wss" | "https" => "wss",
        "ws" | "http" => "ws",
        _ => return Err(invalid("it must start with wss:// or ws://")),
    };
    let rest = rest.split('#').next().unwrap_or_default();
    let (before_query, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (authority, path) = before_query
        .find('/')
        .map_or((before_query, ""), |i| before_query.split_at(i));
    if authority.is_empty() {
        return Err(invalid("no host"));
    }
    let path = path.trim_end_matches('/');
    let namespace = if path.is_empty() { NAMESPACE } else { path };
    let mut url = format!("{scheme}://{authority}/socket.io/?");
    if !query.is_empty() {
        url.push_str(query);
        url.push('&');
    }
    url.push_str(&format!(
        "apiKey={}&EIO=4&transport=websocket",
        percent_encode(key)
    ));
    Ok(Target {
        url,
        namespace: namespace.to_owned(),
    })
}

/// Query-string encoding: everything but unreserved characters as `%XX`.
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// `text` with the key removed: as written, as URL-encoded, and any `apiKey=` query value.
pub fn redact(text: &str, key: &str) -> String {
    const HIDDEN: &str = "<redacted>";
    let mut text = text.to_owned();
    for form in [key.to_owned(), percent_encode(key)] {
        if !form.is_empty() {
            text = text.replace(&form, HIDDEN);
        }
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(at) = rest.find("apiKey=") {
        let value_start = at + "apiKey=".len();
        out.push_str(&rest[..value_start]);
        let value_len = rest[value_start..]
            .find(|c: char| c == '&' || c == '#' || c.is_whitespace() || c == '"' || c == '\'')
            .unwrap_or(rest.len() - value_start);
        if value_len > 0 {
            out.push_str(HIDDEN);
        }
        rest = &rest[value_start + value_len..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::socketio::{EnginePacket, Packet, Reassembly, parse_engine};
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    #[test]
    fn client_events_as_frames() {
        assert_eq!(
            ClientEvent::Start {
                target_language: "zh-CN"
            }
            .frame(NAMESPACE),
            r#"42/api/realtime-translator,["translation_start",{"targetLanguage":"zh-CN"}]"#
        );
        assert_eq!(
            ClientEvent::Stop.frame(NAMESPACE),
            r#"42/api/realtime-translator,["translation_stop"]"#
        );
        let frame = ClientEvent::AudioChunk(&[0; CHUNK_SAMPLES]).frame(NAMESPACE);
        let EnginePacket::Message(inner) = parse_engine(&frame).unwrap() else {
            panic!("not a message");
        };
        let packet = Packet::parse(inner).unwrap();
        let (name, args) = packet.event().unwrap();
        assert_eq!(name, "audio_chunk");
        // 100 ms of 24 kHz PCM16 is 4800 bytes, 6400 base64 characters.
        assert_eq!(args[0]["audioData"].as_str().unwrap().len(), 6_400);
    }

    fn parse(name: &str, arg: Value) -> ServerEvent {
        ServerEvent::parse(name, &[arg], &[]).unwrap()
    }

    #[test]
    fn status_in_both_shapes() {
        assert_eq!(
            parse("status", json!({"status": "session_initializing"})),
            ServerEvent::Status(Status::SessionInitializing)
        );
        assert_eq!(
            parse("status", json!("ready_for_audio")),
            ServerEvent::Status(Status::ReadyForAudio)
        );
        assert_eq!(
            parse("status", json!({"state": "warming_up"})),
            ServerEvent::Status(Status::Other("warming_up".into()))
        );
        assert_eq!(
            ServerEvent::parse("translation_ready", &[], &[]).unwrap(),
            ServerEvent::Status(Status::TranslationReady)
        );
        assert_eq!(
            ServerEvent::parse("ready_for_audio", &[json!({"message": "go"})], &[]).unwrap(),
            ServerEvent::Status(Status::ReadyForAudio)
        );
        assert!(ServerEvent::parse("status", &[json!({"x": 1})], &[]).is_err());
    }

    #[test]
    fn output_audio_as_base64_or_binary_attachment() {
        assert_eq!(
            parse(
                "output_audio",
                json!({"delta": encode_pcm16(&[1, -2, 300])})
            ),
            ServerEvent::OutputAudio {
                samples: vec![1, -2, 300],
                sample_rate: 24_000
            }
        );
        let attachment = vec![vec![0xFF, 0xFF, 0x02, 0x00]];
        let delta = json!({"delta": {"_placeholder": true, "num": 0}, "sampleRate": 16000});
        assert_eq!(
            ServerEvent::parse("output_audio", std::slice::from_ref(&delta), &attachment).unwrap(),
            ServerEvent::OutputAudio {
                samples: vec![-1, 2],
                sample_rate: 16_000
            }
        );
        assert!(ServerEvent::parse("output_audio", &[delta], &[]).is_err());
        assert!(ServerEvent::parse("output_audio", &[json!({"delta": 5})], &[]).is_err());
        assert!(ServerEvent::parse("output_audio", &[json!({"delta": "A"})], &[]).is_err());
        let odd = vec![vec![1, 2, 3]];
        let binary = json!({"delta": {"_placeholder": true, "num": 0}});
        assert!(ServerEvent::parse("output_audio", &[binary], &odd).is_err());
    }

    #[test]
    fn transcripts_errors_and_the_end() {
        assert_eq!(
            parse("output_transcript", json!({"delta": "Buenos"})),
            ServerEvent::OutputTranscript("Buenos".into())
        );
        assert_eq!(
            parse("input_transcript", json!({"delta": "Good"})),
            ServerEvent::InputTranscript("Good".into())
        );
        assert!(ServerEvent::parse("output_transcript", &[json!({})], &[]).is_err());
        assert_eq!(
            parse("translation_error", json!({"message": "model overloaded"})),
            ServerEvent::TranslationError("model overloaded".into())
        );
        assert_eq!(
            parse(
                "insufficient_tokens",
                json!({"message": "Out of tokens", "remainingTokens": 0})
            ),
            ServerEvent::InsufficientTokens {
                message: "Out of tokens".into(),
                remaining_tokens: Some("0".into())
            }
        );
        assert_eq!(
            ServerEvent::parse("translation_closed", &[], &[]).unwrap(),
            ServerEvent::Closed
        );
        assert_eq!(
            ServerEvent::parse("usage", &[json!({})], &[]).unwrap(),
            ServerEvent::Unknown("usage".into())
        );
    }

    #[test]
    fn refusals_about_the_key_are_recognised() {
        let message = refusal_message(Some(&json!({"message": "Invalid API key"})));
        assert_eq!(message, "Invalid API key");
        assert!(is_key_problem(&message));
        assert!(is_key_problem(&refusal_message(Some(&json!(
            "Unauthorized"
        )))));
        assert!(!is_key_problem(&refusal_message(Some(
            &json!({"message": "Unable to connect"})
        ))));
        assert_eq!(refusal_message(None), "no reason given");
    }

    #[test]
    fn language_tags() {
        for good in ["es", "pt-BR", "zh-CN", "zh-Hant-TW", "es-419", "fil", "EN"] {
            assert!(is_language_tag(good), "{good}");
        }
        for bad in [
            "",
            "e",
            "zh_CN",
            "pt-",
            "-BR",
            "es--MX",
            "1a",
            "español",
            "pt-BRAZILIAN1",
        ] {
            assert!(!is_language_tag(bad), "{bad}");
        }
    }

    #[test]
    fn target_follows_socketio_client_conventions() {
        let target = connection_target("wss://api.gpttranslator.co", "k&y=1").unwrap();
        assert_eq!(
            target.url,
            "wss://api.gpttranslator.co/socket.io/?apiKey=k%26y%3D1&EIO=4&transport=websocket"
        );
        assert_eq!(target.namespace, NAMESPACE);
        let with_path =
            connection_target("https://h:8443/api/realtime-translator/?region=eu", "k").unwrap();
        assert_eq!(
            with_path.url,
            "wss://h:8443/socket.io/?region=eu&apiKey=k&EIO=4&transport=websocket"
        );
        assert_eq!(with_path.namespace, "/api/realtime-translator");
        assert_eq!(
            connection_target("ws://127.0.0.1:5/other", "k")
                .unwrap()
                .namespace,
            "/other"
        );
        assert_eq!(
            connection_target("http://127.0.0.1:5/", "k").unwrap().url,
            "ws://127.0.0.1:5/socket.io/?apiKey=k&EIO=4&transport=websocket"
        );
        for bad in ["api.gpttranslator.co", "ftp://h", "wss://", "wss:///ns"] {
            assert!(connection_target(bad, "k").is_err(), "{bad}");
        }
        assert!(!format!("{target:?}").contains("k%26y"));
    }

    #[test]
    fn redact_removes_the_key_in_every_form() {
        let key = "sk-live+SECRET/42";
        let target = connection_target("ws://127.0.0.1:9", key).unwrap();
        let message = format!(
            "cannot connect to {}: key {key} refused; see ws://x/?apiKey=other-secret&EIO=4",
            target.url
        );
        let clean = redact(&message, key);
        assert!(!clean.contains("SECRET"), "{clean}");
        assert!(!clean.contains("other-secret"), "{clean}");
        assert!(clean.contains("apiKey=<redacted>&EIO=4"), "{clean}");
        assert!(clean.contains("key <redacted> refused"), "{clean}");
        assert_eq!(redact("nothing secret", key), "nothing secret");
        assert_eq!(redact("apiKey=", key), "apiKey=");
    }

    /// Whole receive path on mutated service frames: framing, reassembly and events never panic.
    #[test]
    fn service_events_never_panic_on_mutated_frames() {
        const CASES: usize = 100_000;
        let seeds = [
            r#"42/api/realtime-translator,["status",{"status":"ready_for_audio"}]"#.to_owned(),
            format!(
                r#"42/api/realtime-translator,["output_audio",{{"delta":"{}"}}]"#,
                encode_pcm16(&[1, 2, 3, 4])
            ),
            r#"42/api/realtime-translator,["output_transcript",{"delta":"Hola"}]"#.into(),
            r#"42/api/realtime-translator,["insufficient_tokens",{"message":"m","remainingTokens":3}]"#
                .into(),
            r#"42/api/realtime-translator,["translation_error",{"message":"m"}]"#.into(),
            r#"451-/api/realtime-translator,["output_audio",{"delta":{"_placeholder":true,"num":0}}]"#
                .into(),
        ];
        let mut rng = StdRng::seed_from_u64(0x6e7_7a1);
        let mut reassembly = Reassembly::default();
        let mut events = 0;
        for case in 0..CASES {
            let mut bytes = seeds[case % seeds.len()].as_bytes().to_vec();
            for _ in 0..rng.random_range(1..=3) {
                let at = rng.random_range(0..bytes.len());
                match rng.random_range(0..3) {
                    0 => bytes[at] = b"0123456789-/,[]{}\":_"[rng.random_range(0..20)],
                    1 => {
                        bytes.remove(at);
                    }
                    _ => bytes.insert(at, rng.random()),
                }
                if bytes.is_empty() {
                    break;
                }
            }
            let text = String::from_utf8_lossy(&bytes);
            let Ok(EnginePacket::Message(inner)) = parse_engine(&text) else {
                continue;
            };
            let Ok(packet) = Packet::parse(inner) else {
                continue;
            };
            let mut complete = reassembly.text(packet).0;
            if complete.is_none() {
                let attachment = (0..rng.random_range(0..6)).map(|_| rng.random()).collect();
                complete = reassembly.binary(attachment).ok().flatten();
            }
            if let Some(complete) = complete
                && let Some((name, args)) = complete.packet.event()
            {
                events +=
                    usize::from(ServerEvent::parse(name, args, &complete.attachments).is_ok());
            }
        }
        assert!(
            events > CASES / 10,
            "only {events} of {CASES} events understood"
        );
    }
}
