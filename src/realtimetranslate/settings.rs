//! What the properties set, in one place: defaults, validation, and the session they describe.

use super::{Backend, NoiseReduction, Pacing};
use crate::protocol::translation::{self, SessionConfig, TARGET_LANGUAGES};
use crate::secret::ApiKey;
use crate::session::{Endpoint, Protocol, SessionParams};
use std::time::Duration;

pub const DEFAULT_URL: &str = "wss://api.openai.com/v1/realtime/translations";
pub const DEFAULT_MODEL: &str = "gpt-realtime-translate";
pub const DEFAULT_TARGET_LANGUAGE: &str = "es";
/// Endpoint and model of `backend=openai-realtime`, used while `url` / `model` keep the
/// translation defaults above.
pub const REALTIME_URL: &str = "wss://api.openai.com/v1/realtime";
pub const REALTIME_MODEL: &str = "gpt-realtime-2";
/// Endpoint of `backend=openai-transcription` (no model parameter: the transcription model is
/// chosen in the session), used while `url` keeps the translation default.
pub const TRANSCRIPTION_URL: &str = "wss://api.openai.com/v1/realtime?intent=transcription";
/// Voice of the interpreter (`backend=openai-realtime`).
pub const DEFAULT_VOICE: &str = "marin";
pub const DEFAULT_LATENCY_MS: u32 = 200;
pub const DEFAULT_DRAIN_TIMEOUT_MS: u32 = 10_000;
pub const DEFAULT_CONNECT_TIMEOUT_MS: u32 = 10_000;
pub const DEFAULT_KEEPALIVE_TIMEOUT_MS: u32 = 15_000;
/// Model name sent to the local engine (it ignores it, but the protocol requires one).
const LOCAL_MODEL: &str = "offline";

#[derive(Debug, Clone)]
pub struct Settings {
    /// From the `api-key` property; `OPENAI_API_KEY` is consulted when this is unset.
    pub api_key: Option<ApiKey>,
    pub backend: Backend,
    pub url: String,
    pub model: String,
    pub target_language: String,
    pub transcription_model: String,
    pub noise_reduction: NoiseReduction,
    pub latency_ms: u32,
    pub pacing: Pacing,
    pub safety_identifier: String,
    pub drain_timeout_ms: u32,
    pub connect_timeout_ms: u32,
    pub keepalive_timeout_ms: u32,
    /// The interpreter's voice (`backend=openai-realtime` only; the translation model follows
    /// the speaker's voice).
    pub voice: String,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            api_key: None,
            backend: Backend::default(),
            url: DEFAULT_URL.into(),
            model: DEFAULT_MODEL.into(),
            target_language: DEFAULT_TARGET_LANGUAGE.into(),
            transcription_model: String::new(),
            noise_reduction: NoiseReduction::default(),
            latency_ms: DEFAULT_LATENCY_MS,
            pacing: Pacing::default(),
            safety_identifier: String::new(),
            drain_timeout_ms: DEFAULT_DRAIN_TIMEOUT_MS,
            connect_timeout_ms: DEFAULT_CONNECT_TIMEOUT_MS,
            keepalive_timeout_ms: DEFAULT_KEEPALIVE_TIMEOUT_MS,
            voice: DEFAULT_VOICE.into(),
        }
    }
}

/// The message for a language the service does not accept.
pub fn invalid_language_message(code: &str) -> String {
    format!(
        "invalid target-language '{code}': use one of {} (plain ISO 639-1 codes)",
        TARGET_LANGUAGES.join(", ")
    )
}

pub fn is_valid_language(code: &str) -> bool {
    TARGET_LANGUAGES.contains(&code)
}

impl Settings {
    pub fn session_config(&self) -> SessionConfig {
        SessionConfig {
            target_language: self.target_language.clone(),
            transcription: (!self.transcription_model.is_empty()).then(|| {
                translation::Transcription {
                    model: self.transcription_model.clone(),
                }
            }),
            noise_reduction: match self.noise_reduction {
                NoiseReduction::None => None,
                NoiseReduction::NearField => Some(translation::NoiseReduction {
                    kind: translation::NoiseReductionType::NearField,
                }),
                NoiseReduction::FarField => Some(translation::NoiseReduction {
                    kind: translation::NoiseReductionType::FarField,
                }),
            },
        }
    }

    /// The endpoint for the backend: a `url` left at the translation default means the chosen
    /// backend's own default.
    fn effective_url(&self) -> &str {
        match self.backend {
            Backend::OpenaiRealtime if self.url == DEFAULT_URL => REALTIME_URL,
            Backend::OpenaiTranscription if self.url == DEFAULT_URL => TRANSCRIPTION_URL,
            _ => &self.url,
        }
    }

    /// The model for the backend, like [`Settings::effective_url`]. Transcription sessions take
    /// no model in the URL (the `transcription-model` setting picks theirs).
    fn effective_model(&self) -> &str {
        match self.backend {
            Backend::OpenaiRealtime if self.model == DEFAULT_MODEL => REALTIME_MODEL,
            Backend::OpenaiTranscription => "",
            _ => &self.model,
        }
    }

    /// Everything a session needs, or the message of a settings error a user can act on.
    pub fn session_params(&self) -> Result<SessionParams, String> {
        if !is_valid_language(&self.target_language) {
            return Err(invalid_language_message(&self.target_language));
        }
        let (endpoint, api_key) =
            match self.backend {
                Backend::Local => (
                    Endpoint::Local {
                        model: LOCAL_MODEL.into(),
                    },
                    None,
                ),
                Backend::Openai | Backend::OpenaiRealtime | Backend::OpenaiTranscription => {
                    let key = self.api_key.clone().or_else(ApiKey::from_env).ok_or_else(|| {
                    "no API key: set the api-key property or the OPENAI_API_KEY environment \
                     variable (or use backend=local for the offline engine)"
                        .to_owned()
                })?;
                    let url = self.effective_url();
                    if !(url.starts_with("ws://") || url.starts_with("wss://")) {
                        return Err(format!(
                            "invalid url '{url}': it must start with wss:// or ws://"
                        ));
                    }
                    (
                        Endpoint::Remote {
                            url: url.to_owned(),
                            model: self.effective_model().to_owned(),
                        },
                        Some(key),
                    )
                }
            };
        let protocol = match self.backend {
            Backend::Openai | Backend::Local => Protocol::Translation,
            Backend::OpenaiRealtime => Protocol::Interpreter {
                voice: if self.voice.is_empty() {
                    DEFAULT_VOICE.to_owned()
                } else {
                    self.voice.clone()
                },
            },
            Backend::OpenaiTranscription => Protocol::Transcription,
        };
        Ok(SessionParams {
            protocol,
            endpoint,
            api_key,
            safety_identifier: (!self.safety_identifier.is_empty())
                .then(|| self.safety_identifier.clone()),
            config: self.session_config(),
            connect_timeout: Duration::from_millis(self.connect_timeout_ms.into()),
            drain_timeout: Duration::from_millis(self.drain_timeout_ms.into()),
            keepalive_timeout: Duration::from_millis(self.keepalive_timeout_ms.into()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_language_lists_every_valid_code() {
        let settings = Settings {
            target_language: "pt-BR".into(),
            ..Default::default()
        };
        let err = settings.session_params().unwrap_err();
        for code in TARGET_LANGUAGES {
            assert!(err.contains(code), "{err}");
        }
        assert!(err.contains("pt-BR"));
    }

    #[test]
    fn local_backend_needs_no_key() {
        let settings = Settings {
            backend: Backend::Local,
            ..Default::default()
        };
        let params = settings.session_params().unwrap();
        assert!(params.api_key.is_none());
    }

    fn with_key(backend: Backend) -> Settings {
        Settings {
            backend,
            api_key: ApiKey::new("k"),
            ..Default::default()
        }
    }

    #[test]
    fn realtime_backends_have_their_own_endpoint_defaults() {
        let params = with_key(Backend::OpenaiRealtime).session_params().unwrap();
        assert_eq!(
            params.endpoint,
            Endpoint::Remote {
                url: REALTIME_URL.into(),
                model: REALTIME_MODEL.into()
            }
        );
        assert_eq!(
            params.protocol,
            Protocol::Interpreter {
                voice: DEFAULT_VOICE.into()
            }
        );
        let params = with_key(Backend::OpenaiTranscription)
            .session_params()
            .unwrap();
        assert_eq!(
            params.endpoint,
            Endpoint::Remote {
                url: TRANSCRIPTION_URL.into(),
                model: String::new()
            }
        );
        assert_eq!(params.protocol, Protocol::Transcription);
    }

    #[test]
    fn explicit_url_model_and_voice_are_kept() {
        let settings = Settings {
            url: "ws://127.0.0.1:1/v1/realtime".into(),
            model: "gpt-realtime".into(),
            voice: "cedar".into(),
            ..with_key(Backend::OpenaiRealtime)
        };
        let params = settings.session_params().unwrap();
        assert_eq!(
            params.endpoint,
            Endpoint::Remote {
                url: "ws://127.0.0.1:1/v1/realtime".into(),
                model: "gpt-realtime".into()
            }
        );
        assert_eq!(
            params.protocol,
            Protocol::Interpreter {
                voice: "cedar".into()
            }
        );
    }
}
