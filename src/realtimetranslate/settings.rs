//! What the properties set, in one place: defaults, validation, and the session they describe.

use super::enums::{Backend, Fallback, NoiseReduction, Pacing, SubtitleMode};
use crate::captions::CueSettings;
use crate::connection::ConnectionParams;
use crate::mix::MixSettings;
use crate::protocol::gpttranslator;
use crate::protocol::translation::{self, SessionConfig, TARGET_LANGUAGES};
use crate::secret::ApiKey;
use crate::session_types::{Endpoint, Protocol, SessionParams};
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
pub const DEFAULT_OUTAGE_BUFFER_MS: u32 = 10_000;
pub const DEFAULT_ROTATION_MARGIN_MS: u32 = 60_000;
pub const DEFAULT_BACKOFF_MAX_MS: u32 = 30_000;
/// First reconnection delay; doubles per failed attempt.
const BACKOFF_INITIAL: Duration = Duration::from_millis(500);
pub const DEFAULT_DUCK_LEVEL: f64 = 0.25;
pub const DEFAULT_DUCK_ATTACK_MS: u32 = 50;
pub const DEFAULT_DUCK_RELEASE_MS: u32 = 200;
pub const DEFAULT_STATS_INTERVAL_MS: u32 = 10_000;
pub const DEFAULT_SUBTITLE_LINE_CHARS: u32 = 42;
pub const DEFAULT_SUBTITLE_LINES: u32 = 2;
pub const DEFAULT_SUBTITLE_TIMEOUT_MS: u32 = 1_200;
/// A cue stays on screen at least this long, however short its speech.
const SUBTITLE_MIN_DURATION_MS: u64 = 1_000;
/// After a sentence end, how long its cue waits for the speech that goes with the text.
const SUBTITLE_SENTENCE_GRACE_MS: u64 = 400;
/// In `subtitle-mode=cues`, a cue open this long is closed and pushed whatever follows; the
/// reported latency includes it so that cues are on time in a live pipeline.
pub const CUE_ASSEMBLY_MS: u64 = 4_000;
/// Added to what the element holds in the latency it reports: room for the streaming thread
/// and the pad tasks to be scheduled late on a busy machine (bursts of 100+ ms are common
/// with two busy cores).
pub const JITTER_MARGIN_MS: u64 = 250;
/// Model name sent to the local engine while `model` keeps its cloud default: the engine's
/// default recogniser (Whisper base).
const LOCAL_MODEL: &str = "offline";
/// Recognisers `backend=local` takes as `model`, and its target languages.
#[cfg(feature = "local-engine")]
use realtimetranslate_server::engine::offline::languages::{
    RECOGNIZER_NAMES as LOCAL_RECOGNIZERS, TARGET_LANGUAGES as LOCAL_TARGET_LANGUAGES,
};
#[cfg(not(feature = "local-engine"))]
const LOCAL_RECOGNIZERS: [&str; 0] = [];
#[cfg(not(feature = "local-engine"))]
const LOCAL_TARGET_LANGUAGES: [&str; 0] = [];

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
    pub subtitle_mode: SubtitleMode,
    pub safety_identifier: String,
    pub drain_timeout_ms: u32,
    pub connect_timeout_ms: u32,
    pub keepalive_timeout_ms: u32,
    /// PEM file of extra CAs to trust (empty: the public roots only).
    pub tls_ca_file: String,
    pub outage_buffer_ms: u32,
    pub rotation_margin_ms: u32,
    pub backoff_max_ms: u32,
    /// Failed reconnection attempts in a row before stopping with an error; -1: never stop.
    pub reconnect_attempts: i32,
    pub fallback: Fallback,
    pub original_volume: f64,
    /// Fraction of `original_volume` left while translated speech plays.
    pub duck_level: f64,
    pub duck_attack_ms: u32,
    pub duck_release_ms: u32,
    pub stats_interval_ms: u32,
    pub subtitle_line_chars: u32,
    pub subtitle_lines: u32,
    pub subtitle_timeout_ms: u32,
    /// The interpreter's voice (`backend=openai-realtime` only; the translation model follows
    /// the speaker's voice).
    pub voice: String,
    /// `backend=local`: the spoken language (ISO 639-1), empty to detect it.
    pub source_language: String,
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
            subtitle_mode: SubtitleMode::default(),
            pacing: Pacing::default(),
            safety_identifier: String::new(),
            drain_timeout_ms: DEFAULT_DRAIN_TIMEOUT_MS,
            connect_timeout_ms: DEFAULT_CONNECT_TIMEOUT_MS,
            keepalive_timeout_ms: DEFAULT_KEEPALIVE_TIMEOUT_MS,
            tls_ca_file: String::new(),
            outage_buffer_ms: DEFAULT_OUTAGE_BUFFER_MS,
            rotation_margin_ms: DEFAULT_ROTATION_MARGIN_MS,
            backoff_max_ms: DEFAULT_BACKOFF_MAX_MS,
            reconnect_attempts: -1,
            fallback: Fallback::default(),
            original_volume: 0.0,
            duck_level: DEFAULT_DUCK_LEVEL,
            duck_attack_ms: DEFAULT_DUCK_ATTACK_MS,
            duck_release_ms: DEFAULT_DUCK_RELEASE_MS,
            stats_interval_ms: DEFAULT_STATS_INTERVAL_MS,
            subtitle_line_chars: DEFAULT_SUBTITLE_LINE_CHARS,
            subtitle_lines: DEFAULT_SUBTITLE_LINES,
            subtitle_timeout_ms: DEFAULT_SUBTITLE_TIMEOUT_MS,
            voice: DEFAULT_VOICE.into(),
            source_language: String::new(),
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

/// The environment variable a backend reads its key from when `api-key` is unset.
pub fn api_key_variable(backend: Backend) -> &'static str {
    match backend {
        Backend::Gpttranslator => gpttranslator::API_KEY_ENV,
        _ => "OPENAI_API_KEY",
    }
}

/// Milliseconds as 24 kHz samples.
fn ms_to_samples(ms: u64) -> u64 {
    ms * translation::SAMPLE_RATE as u64 / 1000
}

/// The message for a target language `backend` cannot take, if it cannot: OpenAI takes its 13
/// plain codes; GPT Translator takes BCP-47 tags (`es`, `pt-BR`, `zh-CN`) and judges support itself.
pub fn language_problem(backend: Backend, code: &str) -> Option<String> {
    match backend {
        Backend::Gpttranslator => (!gpttranslator::is_language_tag(code)).then(|| {
            format!(
                "invalid target-language '{code}': the gpttranslator backend takes a BCP-47 \
                 language tag such as es, pt-BR or zh-CN"
            )
        }),
        Backend::Local => (!LOCAL_TARGET_LANGUAGES.contains(&code)).then(|| {
            format!(
                "invalid target-language '{code}': the local engine translates into {}",
                LOCAL_TARGET_LANGUAGES.join(", ")
            )
        }),
        _ => (!is_valid_language(code)).then(|| invalid_language_message(code)),
    }
}

/// The GPT Translator key: the property, else `GPTTRANSLATOR_API_KEY`. Never `OPENAI_API_KEY`:
/// a key for one provider must not be sent to another.
fn gpttranslator_key(property: Option<ApiKey>, env: Option<String>) -> Result<ApiKey, String> {
    property
        .or_else(|| env.and_then(ApiKey::new))
        .ok_or_else(|| {
            format!(
                "no API key for the gpttranslator backend: set the api-key property or the {} \
             environment variable",
                gpttranslator::API_KEY_ENV
            )
        })
}

impl Settings {
    pub fn mix_settings(&self) -> MixSettings {
        MixSettings {
            original_volume: self.original_volume,
            duck_level: self.duck_level,
            attack: ms_to_samples(self.duck_attack_ms.into()),
            release: ms_to_samples(self.duck_release_ms.into()),
            fallback_original: self.fallback == Fallback::Original,
            captions_only: self.backend == Backend::OpenaiTranscription,
        }
    }

    pub fn cue_settings(&self) -> CueSettings {
        CueSettings {
            line_chars: self.subtitle_line_chars as usize,
            max_lines: self.subtitle_lines as usize,
            idle: ms_to_samples(self.subtitle_timeout_ms.into()),
            min_duration: ms_to_samples(SUBTITLE_MIN_DURATION_MS),
            sentence_grace: ms_to_samples(SUBTITLE_SENTENCE_GRACE_MS),
            max_assembly: ms_to_samples(CUE_ASSEMBLY_MS),
            cues: self.subtitle_mode == SubtitleMode::Cues,
        }
    }

    /// The latency the element adds, as reported in the LATENCY query: output is written
    /// `latency` behind the input, plus a margin for scheduling, plus (cues) cue assembly.
    pub fn reported_latency(&self) -> gst::ClockTime {
        let cues = if self.subtitle_mode == SubtitleMode::Cues {
            CUE_ASSEMBLY_MS
        } else {
            0
        };
        gst::ClockTime::from_mseconds(u64::from(self.latency_ms) + JITTER_MARGIN_MS + cues)
    }

    /// The session parameters plus how to keep the stream connected.
    pub fn connection_params(&self) -> Result<ConnectionParams, String> {
        Ok(ConnectionParams {
            session: self.session_params()?,
            outage_buffer_samples: ms_to_samples(self.outage_buffer_ms.into()),
            rotation_margin: Duration::from_millis(self.rotation_margin_ms.into()),
            backoff_initial: BACKOFF_INITIAL,
            backoff_max: Duration::from_millis(self.backoff_max_ms.into()),
            max_retries: u32::try_from(self.reconnect_attempts).ok(),
        })
    }

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

    /// `backend=local`: the recogniser named by `model` (its cloud default means the engine's
    /// default).
    fn local_model(&self) -> Result<String, String> {
        if self.model == DEFAULT_MODEL {
            return Ok(LOCAL_MODEL.into());
        }
        if !LOCAL_RECOGNIZERS.contains(&self.model.as_str()) {
            return Err(format!(
                "invalid model '{}' for backend=local: use one of {}",
                self.model,
                LOCAL_RECOGNIZERS.join(", ")
            ));
        }
        Ok(self.model.clone())
    }

    fn local_source_language(&self) -> Result<Option<String>, String> {
        let code = self.source_language.trim();
        if code.is_empty() || code == "auto" {
            return Ok(None);
        }
        if !(2..=3).contains(&code.len()) || !code.bytes().all(|b| b.is_ascii_lowercase()) {
            return Err(format!(
                "invalid source-language '{code}': use an ISO 639-1 code such as en, fr, de, or \
                 leave it empty to detect the language"
            ));
        }
        Ok(Some(code.to_owned()))
    }

    /// Everything a session needs, or the message of a settings error a user can act on.
    pub fn session_params(&self) -> Result<SessionParams, String> {
        if let Some(message) = language_problem(self.backend, &self.target_language) {
            return Err(message);
        }
        let (endpoint, api_key) =
            match self.backend {
                Backend::Local => (
                    Endpoint::Local {
                        model: self.local_model()?,
                        source_language: self.local_source_language()?,
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
                Backend::Gpttranslator => {
                    let key = gpttranslator_key(
                        self.api_key.clone(),
                        std::env::var(gpttranslator::API_KEY_ENV).ok(),
                    )?;
                    // The url property's default is OpenAI's: left unset, it means the service's own.
                    let url = if self.url == DEFAULT_URL {
                        gpttranslator::DEFAULT_URL
                    } else {
                        &self.url
                    };
                    gpttranslator::connection_target(url, "")?;
                    (
                        Endpoint::Remote {
                            url: url.to_owned(),
                            model: String::new(),
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
            Backend::Gpttranslator => Protocol::GptTranslator,
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
            tls_ca_file: (!self.tls_ca_file.is_empty())
                .then(|| std::path::PathBuf::from(&self.tls_ca_file)),
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

    #[cfg(feature = "local-engine")]
    #[test]
    fn local_backend_takes_its_recogniser_source_language_and_targets() {
        let local = |model: &str, source: &str, target: &str| Settings {
            backend: Backend::Local,
            model: model.into(),
            source_language: source.into(),
            target_language: target.into(),
            ..Default::default()
        };
        let params = local("whisper-tiny.en", "en", "ca")
            .session_params()
            .unwrap();
        assert_eq!(
            params.endpoint,
            Endpoint::Local {
                model: "whisper-tiny.en".into(),
                source_language: Some("en".into())
            }
        );
        let default = local(DEFAULT_MODEL, "", "es").session_params().unwrap();
        assert_eq!(
            default.endpoint,
            Endpoint::Local {
                model: LOCAL_MODEL.into(),
                source_language: None
            }
        );
        let err = local(DEFAULT_MODEL, "", "de").session_params().unwrap_err();
        assert!(
            err.contains("'de'") && err.contains("es, ca, gl, eo, en"),
            "{err}"
        );
        let err = local("gpt-4o", "", "es").session_params().unwrap_err();
        assert!(
            err.contains("whisper-base, whisper-tiny.en, pocketsphinx"),
            "{err}"
        );
        let err = local(DEFAULT_MODEL, "French", "es")
            .session_params()
            .unwrap_err();
        assert!(err.contains("source-language"), "{err}");
    }

    fn gpttranslator(language: &str, url: &str) -> Settings {
        Settings {
            backend: Backend::Gpttranslator,
            target_language: language.into(),
            url: url.into(),
            api_key: ApiKey::new("gt-key"),
            ..Default::default()
        }
    }

    fn with_key(backend: Backend) -> Settings {
        Settings {
            backend,
            api_key: ApiKey::new("k"),
            ..Default::default()
        }
    }

    #[test]
    fn gpttranslator_takes_bcp47_tags_and_its_own_default_url() {
        let params = gpttranslator("pt-BR", DEFAULT_URL)
            .session_params()
            .unwrap();
        assert_eq!(params.protocol, Protocol::GptTranslator);
        assert_eq!(
            params.endpoint,
            Endpoint::Remote {
                url: gpttranslator::DEFAULT_URL.into(),
                model: String::new()
            }
        );
        assert_eq!(params.config.target_language, "pt-BR");
        for code in ["zh-CN", "es", "es-419"] {
            assert!(gpttranslator(code, DEFAULT_URL).session_params().is_ok());
        }
        let err = gpttranslator("zh_CN", DEFAULT_URL)
            .session_params()
            .unwrap_err();
        assert!(err.contains("BCP-47") && err.contains("zh_CN"), "{err}");
        // OpenAI keeps its 13 plain codes.
        assert!(language_problem(Backend::Openai, "pt-BR").is_some());
        assert!(language_problem(Backend::Gpttranslator, "pt-BR").is_none());
    }

    #[test]
    fn gpttranslator_url_is_checked_up_front() {
        let own = gpttranslator("es", "ws://127.0.0.1:1234")
            .session_params()
            .unwrap();
        assert!(
            matches!(own.endpoint, Endpoint::Remote { url, .. } if url == "ws://127.0.0.1:1234")
        );
        let err = gpttranslator("es", "ftp://h").session_params().unwrap_err();
        assert!(err.contains("wss://"), "{err}");
    }

    #[test]
    fn gpttranslator_key_comes_from_its_own_variable_only() {
        let from_env = gpttranslator_key(None, Some("env-key".into())).unwrap();
        assert_eq!(from_env.expose(), "env-key");
        let property = gpttranslator_key(ApiKey::new("prop"), Some("env-key".into())).unwrap();
        assert_eq!(property.expose(), "prop");
        let err = gpttranslator_key(None, Some("  ".into())).unwrap_err();
        assert!(
            err.contains("GPTTRANSLATOR_API_KEY") && !err.contains("OPENAI"),
            "{err}"
        );
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
