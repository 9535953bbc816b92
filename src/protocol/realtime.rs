//! OpenAI Realtime API (`/v1/realtime`), GA shapes, see `docs/protocol/realtime-interpreter.md` and
//! `docs/protocol/realtime-transcription.md`: a
//! conversation session driven as a simultaneous interpreter, and a transcription session for
//! captions only.
//!
//! Unlike the translation protocol the server sends dozens of event types; the ones the element
//! does not use become [`ServerEvent::Unknown`], so parsing never fails on an unknown `type`. The
//! retired beta names of the output events are accepted as aliases: harmless, and a proxy still
//! speaking them keeps working.

use super::translation::{
    NoiseReduction, ParseError, SAMPLE_RATE, ServiceError, SessionInfo, decode_pcm16, encode_pcm16,
};
use serde::Deserialize;
use serde_json::{Value, json};

/// Transcription model used when the `transcription-model` setting is empty and a transcript is
/// required (the transcription backend): the natively streaming one.
pub const DEFAULT_TRANSCRIPTION_MODEL: &str = "gpt-realtime-whisper";

/// English name of a target language, for the interpreter prompt (models follow "Spanish" more
/// reliably than "es"). Unknown codes are passed through.
pub fn language_name(code: &str) -> &str {
    match code {
        "es" => "Spanish",
        "pt" => "Portuguese",
        "fr" => "French",
        "ja" => "Japanese",
        "ru" => "Russian",
        "zh" => "Chinese (Mandarin)",
        "de" => "German",
        "ko" => "Korean",
        "hi" => "Hindi",
        "id" => "Indonesian",
        "vi" => "Vietnamese",
        "it" => "Italian",
        "en" => "English",
        other => other,
    }
}

/// The system prompt that turns the general conversation model into an interpreter. A chat model's
/// instinct is to answer; most of the prompt is about not doing that.
pub fn interpreter_instructions(target_language: &str) -> String {
    let language = language_name(target_language);
    format!(
        "You are a professional simultaneous interpreter. Translate everything the speaker says \
         into {language}, and nothing else.\n\
         - Speak only the translation, in {language}, in the first person, as the speaker would \
         say it in {language}.\n\
         - Never answer, comment, explain, summarise, greet or add words of your own. If the \
         speaker asks a question or gives an instruction, translate it; do not respond to it.\n\
         - Translate the full meaning faithfully; keep names of people, places, brands and \
         products as they are, and keep numbers, dates and units exact.\n\
         - If the speech is already in {language}, repeat it as it was said.\n\
         - If you hear no intelligible speech, say nothing.\n\
         - Match the speaker's tone and register, and speak at a natural, brisk pace."
    )
}

/// What a conversation session used as an interpreter is told (`session.update`, §2).
#[derive(Debug, Clone, PartialEq)]
pub struct InterpreterSession {
    pub instructions: String,
    pub voice: String,
    /// `None` sends `transcription: null` (no source-language transcript).
    pub transcription_model: Option<String>,
    pub noise_reduction: Option<NoiseReduction>,
}

/// What a transcription session is told (`session.update`, §3).
#[derive(Debug, Clone, PartialEq)]
pub struct TranscriptionSession {
    pub model: String,
    pub noise_reduction: Option<NoiseReduction>,
}

/// Events the client sends.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientEvent {
    Interpreter(InterpreterSession),
    Transcription(TranscriptionSession),
    /// 24 kHz mono PCM16 samples (`input_audio_buffer.append`).
    Append(Vec<i16>),
    /// Ends the current turn (`input_audio_buffer.commit`).
    Commit,
    /// Drops the audio not committed yet (`input_audio_buffer.clear`).
    Clear,
    /// Asks for a response to the turns not answered yet (`response.create`).
    CreateResponse,
}

fn pcm_format() -> Value {
    json!({ "type": "audio/pcm", "rate": SAMPLE_RATE })
}

impl ClientEvent {
    /// The JSON text frame for this event.
    pub fn to_json(&self) -> String {
        let value = match self {
            ClientEvent::Interpreter(session) => json!({
                "type": "session.update",
                "session": {
                    "type": "realtime",
                    "instructions": session.instructions,
                    "output_modalities": ["audio"],
                    "audio": {
                        "input": {
                            "format": pcm_format(),
                            "transcription": session
                                .transcription_model
                                .as_ref()
                                .map(|model| json!({ "model": model })),
                            "noise_reduction": session.noise_reduction,
                            // The interpreter speaks after each pause. It must never be cut
                            // off by the next sentence (interrupt_response false), and it
                            // must answer every turn on its own (create_response true).
                            "turn_detection": {
                                "type": "server_vad",
                                "threshold": 0.5,
                                "prefix_padding_ms": 300,
                                "silence_duration_ms": 500,
                                "create_response": true,
                                "interrupt_response": false,
                            },
                        },
                        "output": {
                            "format": pcm_format(),
                            "voice": session.voice,
                        },
                    },
                }
            }),
            ClientEvent::Transcription(session) => json!({
                "type": "session.update",
                "session": {
                    "type": "transcription",
                    "audio": {
                        "input": {
                            "format": pcm_format(),
                            "transcription": { "model": session.model },
                            "noise_reduction": session.noise_reduction,
                            // Streaming models (gpt-realtime-whisper) take no VAD here; the
                            // client ends turns with commits, which works for every model.
                            "turn_detection": null,
                        },
                    },
                }
            }),
            ClientEvent::Append(samples) => json!({
                "type": "input_audio_buffer.append",
                "audio": encode_pcm16(samples),
            }),
            ClientEvent::Commit => json!({ "type": "input_audio_buffer.commit" }),
            ClientEvent::Clear => json!({ "type": "input_audio_buffer.clear" }),
            ClientEvent::CreateResponse => json!({ "type": "response.create" }),
        };
        value.to_string()
    }
}

/// Events the server sends that the element acts on. Unknown types become
/// [`ServerEvent::Unknown`].
#[derive(Debug, Clone, PartialEq)]
pub enum ServerEvent {
    Created(SessionInfo),
    Updated(SessionInfo),
    /// Translated speech, 24 kHz mono PCM16 (`response.output_audio.delta`, beta
    /// `response.audio.delta`).
    OutputAudio(Vec<i16>),
    /// Translated text fragment (`response.output_audio_transcript.delta`,
    /// `response.output_text.delta`, beta `response.audio_transcript.delta`,
    /// `response.text.delta`).
    OutputTranscript(String),
    /// Source-language text fragment of one input item.
    InputTranscriptDelta {
        item_id: String,
        delta: String,
    },
    /// The whole source-language transcript of one input item.
    InputTranscriptCompleted {
        item_id: String,
        transcript: String,
    },
    /// Transcription of an item failed: no `completed` will follow.
    InputTranscriptFailed {
        item_id: String,
    },
    SpeechStarted,
    SpeechStopped,
    /// The input buffer became a conversation item (by server VAD or a client commit).
    Committed {
        item_id: String,
    },
    ResponseCreated {
        response_id: String,
    },
    ResponseDone {
        response_id: String,
        status: String,
    },
    Error(ServiceError),
    Unknown(String),
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
    transcript: Option<String>,
    #[serde(default)]
    item_id: Option<String>,
    #[serde(default)]
    response: Option<RawResponse>,
    #[serde(default)]
    error: Option<ServiceError>,
}

#[derive(Deserialize, Default)]
struct RawResponse {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    status: Option<String>,
}

impl ServerEvent {
    /// Parses one text (or binary UTF-8) frame.
    pub fn parse(text: &str) -> Result<ServerEvent, ParseError> {
        let raw: RawEvent = serde_json::from_str(text)
            .map_err(|err| ParseError(format!("malformed server event: {err}")))?;
        let kind = raw.kind.as_str();
        let missing = |field: &str| ParseError(format!("`{kind}` without `{field}`"));
        let item_id = || raw.item_id.clone().unwrap_or_default();
        Ok(match kind {
            "session.created" => ServerEvent::Created(raw.session.unwrap_or_default()),
            "session.updated" => ServerEvent::Updated(raw.session.unwrap_or_default()),
            "response.output_audio.delta" | "response.audio.delta" => {
                let delta = raw.delta.as_deref().ok_or_else(|| missing("delta"))?;
                ServerEvent::OutputAudio(decode_pcm16(delta)?)
            }
            "response.output_audio_transcript.delta"
            | "response.output_text.delta"
            | "response.audio_transcript.delta"
            | "response.text.delta" => {
                ServerEvent::OutputTranscript(raw.delta.clone().ok_or_else(|| missing("delta"))?)
            }
            "conversation.item.input_audio_transcription.delta" => {
                ServerEvent::InputTranscriptDelta {
                    item_id: item_id(),
                    // The SDK marks `delta` optional: an empty fragment is not an error.
                    delta: raw.delta.clone().unwrap_or_default(),
                }
            }
            "conversation.item.input_audio_transcription.completed" => {
                ServerEvent::InputTranscriptCompleted {
                    item_id: item_id(),
                    transcript: raw
                        .transcript
                        .clone()
                        .ok_or_else(|| missing("transcript"))?,
                }
            }
            "conversation.item.input_audio_transcription.failed" => {
                ServerEvent::InputTranscriptFailed { item_id: item_id() }
            }
            "input_audio_buffer.speech_started" => ServerEvent::SpeechStarted,
            "input_audio_buffer.speech_stopped" => ServerEvent::SpeechStopped,
            "input_audio_buffer.committed" => ServerEvent::Committed { item_id: item_id() },
            "response.created" => ServerEvent::ResponseCreated {
                response_id: raw.response.and_then(|r| r.id).unwrap_or_default(),
            },
            "response.done" => {
                let response = raw.response.unwrap_or_default();
                ServerEvent::ResponseDone {
                    response_id: response.id.unwrap_or_default(),
                    status: response.status.unwrap_or_default(),
                }
            }
            "error" => ServerEvent::Error(raw.error.unwrap_or_default()),
            other => ServerEvent::Unknown(other.to_owned()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::translation::NoiseReductionType;

    fn parse_json(text: &str) -> Value {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn interpreter_update_is_the_ga_shape() {
        let json = ClientEvent::Interpreter(InterpreterSession {
            instructions: interpreter_instructions("de"),
            voice: "marin".into(),
            transcription_model: Some("gpt-realtime-whisper".into()),
            noise_reduction: None,
        })
        .to_json();
        let value = parse_json(&json);
        assert_eq!(value["type"], "session.update");
        let session = &value["session"];
        assert_eq!(session["type"], "realtime");
        assert!(session["instructions"].as_str().unwrap().contains("German"));
        assert_eq!(session["output_modalities"], json!(["audio"]));
        let input = &session["audio"]["input"];
        assert_eq!(input["format"], json!({"type": "audio/pcm", "rate": 24000}));
        assert_eq!(input["transcription"]["model"], "gpt-realtime-whisper");
        assert!(input.as_object().unwrap().contains_key("noise_reduction"));
        assert!(input["noise_reduction"].is_null());
        let vad = &input["turn_detection"];
        assert_eq!(vad["type"], "server_vad");
        assert_eq!(vad["interrupt_response"], false);
        assert_eq!(vad["create_response"], true);
        assert_eq!(vad["silence_duration_ms"], 500);
        assert_eq!(session["audio"]["output"]["voice"], "marin");
        assert_eq!(
            session["audio"]["output"]["format"],
            json!({"type": "audio/pcm", "rate": 24000})
        );
        // No beta-only keys.
        for beta in [
            "modalities",
            "voice",
            "input_audio_format",
            "turn_detection",
        ] {
            assert!(session.get(beta).is_none(), "{beta}");
        }
    }

    #[test]
    fn transcription_update_has_no_vad_and_the_model() {
        let json = ClientEvent::Transcription(TranscriptionSession {
            model: DEFAULT_TRANSCRIPTION_MODEL.into(),
            noise_reduction: Some(NoiseReduction {
                kind: NoiseReductionType::NearField,
            }),
        })
        .to_json();
        let value = parse_json(&json);
        let input = &value["session"]["audio"]["input"];
        assert_eq!(value["session"]["type"], "transcription");
        assert_eq!(input["transcription"]["model"], "gpt-realtime-whisper");
        assert_eq!(input["noise_reduction"]["type"], "near_field");
        assert!(input["turn_detection"].is_null());
        assert!(
            input.as_object().unwrap().contains_key("turn_detection"),
            "turn_detection must be an explicit null"
        );
    }

    #[test]
    fn append_commit_and_response_create() {
        let value = parse_json(&ClientEvent::Append(vec![1, -1]).to_json());
        assert_eq!(value["type"], "input_audio_buffer.append");
        assert_eq!(
            decode_pcm16(value["audio"].as_str().unwrap()).unwrap(),
            vec![1, -1]
        );
        assert_eq!(
            parse_json(&ClientEvent::Commit.to_json()),
            json!({"type": "input_audio_buffer.commit"})
        );
        assert_eq!(
            parse_json(&ClientEvent::Clear.to_json()),
            json!({"type": "input_audio_buffer.clear"})
        );
        assert_eq!(
            parse_json(&ClientEvent::CreateResponse.to_json()),
            json!({"type": "response.create"})
        );
    }

    #[test]
    fn instructions_name_the_language_and_forbid_answers() {
        let text = interpreter_instructions("ja");
        assert!(text.contains("into Japanese"));
        assert!(text.contains("Never answer"));
        assert_eq!(language_name("xx"), "xx");
    }

    #[test]
    fn ga_and_beta_output_names_parse_alike() {
        let audio = encode_pcm16(&[7, -7]);
        for kind in ["response.output_audio.delta", "response.audio.delta"] {
            let text = format!(r#"{{"type":"{kind}","delta":"{audio}","response_id":"r"}}"#);
            assert_eq!(
                ServerEvent::parse(&text).unwrap(),
                ServerEvent::OutputAudio(vec![7, -7])
            );
        }
        for kind in [
            "response.output_audio_transcript.delta",
            "response.output_text.delta",
            "response.audio_transcript.delta",
            "response.text.delta",
        ] {
            let text = format!(r#"{{"type":"{kind}","delta":"Hola "}}"#);
            assert_eq!(
                ServerEvent::parse(&text).unwrap(),
                ServerEvent::OutputTranscript("Hola ".into())
            );
        }
    }

    #[test]
    fn parses_the_turn_events() {
        let parse = |t: &str| ServerEvent::parse(t).unwrap();
        assert_eq!(
            parse(
                r#"{"type":"conversation.item.input_audio_transcription.delta","item_id":"i1","content_index":0,"delta":"Good"}"#
            ),
            ServerEvent::InputTranscriptDelta {
                item_id: "i1".into(),
                delta: "Good".into()
            }
        );
        assert_eq!(
            parse(
                r#"{"type":"conversation.item.input_audio_transcription.completed","item_id":"i1","content_index":0,"transcript":"Good day","usage":{"type":"duration","seconds":1.2}}"#
            ),
            ServerEvent::InputTranscriptCompleted {
                item_id: "i1".into(),
                transcript: "Good day".into()
            }
        );
        assert_eq!(
            parse(
                r#"{"type":"input_audio_buffer.committed","item_id":"i2","previous_item_id":null}"#
            ),
            ServerEvent::Committed {
                item_id: "i2".into()
            }
        );
        assert_eq!(
            parse(
                r#"{"type":"response.created","response":{"id":"resp_1","status":"in_progress"}}"#
            ),
            ServerEvent::ResponseCreated {
                response_id: "resp_1".into()
            }
        );
        assert_eq!(
            parse(r#"{"type":"response.done","response":{"id":"resp_1","status":"cancelled"}}"#),
            ServerEvent::ResponseDone {
                response_id: "resp_1".into(),
                status: "cancelled".into()
            }
        );
        assert_eq!(
            parse(
                r#"{"type":"session.created","session":{"type":"realtime","id":"sess_9","expires_at":5}}"#
            ),
            ServerEvent::Created(SessionInfo {
                id: "sess_9".into(),
                expires_at: Some(5)
            })
        );
        assert_eq!(
            parse(r#"{"type":"rate_limits.updated","rate_limits":[]}"#),
            ServerEvent::Unknown("rate_limits.updated".into())
        );
        match parse(
            r#"{"type":"error","error":{"type":"invalid_request_error","code":"session_expired","message":"m"}}"#,
        ) {
            ServerEvent::Error(err) => assert!(err.is_session_expired()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn rejects_bad_frames_without_panicking() {
        for bad in [
            "",
            "{}",
            r#"{"type":1}"#,
            r#"{"type":"response.output_audio.delta"}"#,
            r#"{"type":"response.output_audio.delta","delta":"%%%"}"#,
            r#"{"type":"response.output_audio_transcript.delta"}"#,
            r#"{"type":"conversation.item.input_audio_transcription.completed","item_id":"x"}"#,
        ] {
            assert!(ServerEvent::parse(bad).is_err(), "{bad}");
        }
    }
}
