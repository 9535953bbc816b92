//! Fault injection, so that a client's reconnection and rotation logic can be tested against
//! misbehaviour the live service shows only rarely (expiry, dropped sockets, stalls, refusals,
//! garbage frames, fatal errors).
//!
//! Faults are chosen per connection with `fault_*` query parameters on the WebSocket URL (next to
//! `model=`), or server-wide with [`crate::ServerConfig::faults`]; a query parameter overrides the
//! server-wide value of the same fault. A bad value refuses the handshake with HTTP 400, so that a
//! typo cannot make a test pass without its fault.
//!
//! Thresholds on input audio count the decoded samples of valid appends (24 kHz): the audio up to
//! the threshold is translated and its output delivered before the fault fires; audio past it is
//! discarded.
//!
//! `fault_answer_delay_ms` ends nothing: it makes a slow engine out of a fast one (every output goes
//! out that much wall time after the engine produced it, `elapsed_ms` unchanged). Nor do the hostile
//! outputs: `fault_huge_text_after_audio_ms` (one oversized transcript delta of each kind) and
//! `fault_audio_repeat` (an engine that speaks several times faster than real time).

use std::fmt;

pub(crate) mod wire;

/// Longest threshold accepted, in ms (a day): keeps sample arithmetic far from overflow.
const MAX_MS: u64 = 86_400_000;

/// One-off garbage sent right after `session.created` (`fault_send=KIND`); the session then goes on
/// normally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultSend {
    /// `malformed_json`: a text frame that is not JSON.
    MalformedJson,
    /// `unknown_event`: a JSON event of type `session.something_new`.
    UnknownEvent,
    /// `invalid_base64`: a `session.output_audio.delta` whose `delta` is not base64.
    InvalidBase64,
    /// `oversized`: one 20 MiB text frame holding a `session.output_audio.delta` (of silence).
    Oversized,
    /// `binary`: a binary frame of random bytes (never valid UTF-8).
    Binary,
}

impl FaultSend {
    /// Every kind with its parameter value.
    pub const ALL: [(FaultSend, &'static str); 5] = [
        (FaultSend::MalformedJson, "malformed_json"),
        (FaultSend::UnknownEvent, "unknown_event"),
        (FaultSend::InvalidBase64, "invalid_base64"),
        (FaultSend::Oversized, "oversized"),
        (FaultSend::Binary, "binary"),
    ];

    /// The parameter value (`malformed_json`, …).
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(k, _)| *k == self)
            .map(|(_, n)| *n)
            .unwrap_or("")
    }

    fn parse(value: &str) -> Option<FaultSend> {
        Self::ALL.iter().find(|(_, n)| *n == value).map(|(k, _)| *k)
    }
}

/// The faults of one connection (or, in [`crate::ServerConfig`], of every connection). `None`
/// means "no such fault". Field `x` is query parameter `fault_x` and command-line flag `--fault-x`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Faults {
    /// Session lives this many ms of session time (max of wall time since `session.created` and
    /// input audio received); `expires_at` announces it (created + ceil(N/1000) s). Then `error`
    /// `session_expired` and close 1001 `invalid_request_error.session_expired`.
    pub expire_after_ms: Option<u64>,
    /// Like `expire_after_ms`, but `expires_at` announces the usual far-away value.
    pub expire_early_ms: Option<u64>,
    /// After this much input audio, the TCP connection is dropped without a close frame.
    pub drop_after_audio_ms: Option<u64>,
    /// After this much input audio, the server neither reads nor writes (no pongs) but keeps the
    /// socket open until the client closes it (at most 10 min).
    pub stall_after_audio_ms: Option<u64>,
    /// After this much input audio, the engine says nothing more: the server keeps reading
    /// (pings are answered, audio is discarded) until the client closes. A live socket with a
    /// dead engine behind it, which only the client's own stall detection notices.
    pub mute_after_audio_ms: Option<u64>,
    /// The handshake is refused with this HTTP status (400..=599) and an OpenAI-style JSON body.
    pub refuse_status: Option<u16>,
    /// Garbage sent once right after `session.created`.
    pub send: Option<FaultSend>,
    /// The first K handshakes with this same fault set are refused with HTTP 429.
    pub rate_limit_first: Option<u32>,
    /// After this much input audio: `error` `server_error`, close 1011 `server_error.server_error`.
    pub server_error_after_audio_ms: Option<u64>,
    /// After this much input audio: `error` with [`Faults::error_code`], close 3000 `<type>.<code>`.
    pub error_after_audio_ms: Option<u64>,
    /// Code of the `error_after_audio_ms` error (`insufficient_quota`, `invalid_api_key`, …); its
    /// type follows from it (see [`error_type_for`]).
    pub error_code: Option<String>,
    /// Every engine output (transcript deltas, audio deltas) is sent this many ms of wall time after
    /// the engine produced it, in order, with its `elapsed_ms` unchanged; input is still read
    /// meanwhile, and `session.closed` comes after the last delayed output. A slow engine, without
    /// slowing the test engine's decisions down.
    pub answer_delay_ms: Option<u64>,
    /// Once this much input audio has arrived: one `session.output_transcript.delta` and one
    /// `session.input_transcript.delta` of [`wire::HUGE_TEXT_BYTES`] each (words, no sentence
    /// end), then the session goes on.
    pub huge_text_after_audio_ms: Option<u64>,
    /// Every output audio delta is sent this many times (2..=10): an engine producing that many
    /// times more audio than real time.
    pub audio_repeat: Option<u32>,
    /// The audio-triggered faults (expiry, drop, stall, mute, errors) fire only in a session
    /// translating into this language: one client's sessions for other languages, on the same
    /// URL, go on unharmed.
    pub language: Option<String>,
}

/// Why fault parameters were refused; the text names the parameter and what it accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultError(pub String);

impl fmt::Display for FaultError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for FaultError {}

/// Every query parameter name this module understands.
pub const FAULT_PARAMETERS: [&str; 15] = [
    "fault_expire_after_ms",
    "fault_expire_early_ms",
    "fault_drop_after_audio_ms",
    "fault_stall_after_audio_ms",
    "fault_mute_after_audio_ms",
    "fault_refuse_status",
    "fault_send",
    "fault_rate_limit_first",
    "fault_server_error_after_audio_ms",
    "fault_error_after_audio_ms",
    "fault_error_code",
    "fault_answer_delay_ms",
    "fault_huge_text_after_audio_ms",
    "fault_audio_repeat",
    "fault_language",
];

fn parse_ms(name: &str, value: &str) -> Result<u64, FaultError> {
    match value.parse::<u64>() {
        Ok(v) if v <= MAX_MS => Ok(v),
        _ => Err(FaultError(format!(
            "Invalid value for '{name}': '{value}'. Expected a whole number of milliseconds \
             from 0 to {MAX_MS}."
        ))),
    }
}

/// The error `type` that goes with an error `code`, as the live service pairs them.
pub fn error_type_for(code: &str) -> &'static str {
    match code {
        "rate_limit_exceeded" => "rate_limit_error",
        "insufficient_quota" => "insufficient_quota",
        "server_error" => "server_error",
        _ => "invalid_request_error",
    }
}

/// `(type, code)` of the JSON body of a handshake refused with `status`.
pub fn refusal_error_for(status: u16) -> (&'static str, &'static str) {
    match status {
        401 => ("invalid_request_error", "invalid_api_key"),
        429 => ("rate_limit_error", "rate_limit_exceeded"),
        500..=599 => ("server_error", "server_error"),
        _ => ("invalid_request_error", "invalid_request_error"),
    }
}

impl Faults {
    /// No fault at all.
    pub fn is_empty(&self) -> bool {
        *self == Faults::default()
    }

    /// Sets one fault from its parameter name (`fault_…`) and text value.
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), FaultError> {
        match name {
            "fault_expire_after_ms" => self.expire_after_ms = Some(parse_ms(name, value)?),
            "fault_expire_early_ms" => self.expire_early_ms = Some(parse_ms(name, value)?),
            "fault_drop_after_audio_ms" => self.drop_after_audio_ms = Some(parse_ms(name, value)?),
            "fault_mute_after_audio_ms" => self.mute_after_audio_ms = Some(parse_ms(name, value)?),
            "fault_stall_after_audio_ms" => {
                self.stall_after_audio_ms = Some(parse_ms(name, value)?)
            }
            "fault_server_error_after_audio_ms" => {
                self.server_error_after_audio_ms = Some(parse_ms(name, value)?)
            }
            "fault_error_after_audio_ms" => {
                self.error_after_audio_ms = Some(parse_ms(name, value)?)
            }
            "fault_answer_delay_ms" => self.answer_delay_ms = Some(parse_ms(name, value)?),
            "fault_huge_text_after_audio_ms" => {
                self.huge_text_after_audio_ms = Some(parse_ms(name, value)?)
            }
            "fault_language" => {
                let ok = (2..=12).contains(&value.len())
                    && value
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-');
                if !ok {
                    return Err(FaultError(format!(
                        "Invalid value for '{name}': '{value}'. Expected a language code such as \
                         fr or pt-BR."
                    )));
                }
                self.language = Some(value.to_owned());
            }
            "fault_audio_repeat" => match value.parse::<u32>() {
                Ok(k @ 2..=10) => self.audio_repeat = Some(k),
                _ => {
                    return Err(FaultError(format!(
                        "Invalid value for '{name}': '{value}'. Expected how many times each \
                         audio delta is sent, from 2 to 10."
                    )));
                }
            },
            "fault_refuse_status" => match value.parse::<u16>() {
                Ok(s @ 400..=599) => self.refuse_status = Some(s),
                _ => {
                    return Err(FaultError(format!(
                        "Invalid value for '{name}': '{value}'. Expected an HTTP error status \
                         from 400 to 599."
                    )));
                }
            },
            "fault_rate_limit_first" => match value.parse::<u32>() {
                Ok(k) => self.rate_limit_first = Some(k),
                Err(_) => {
                    return Err(FaultError(format!(
                        "Invalid value for '{name}': '{value}'. Expected a whole number of \
                         handshakes."
                    )));
                }
            },
            "fault_send" => match FaultSend::parse(value) {
                Some(k) => self.send = Some(k),
                None => {
                    let kinds: Vec<&str> = FaultSend::ALL.iter().map(|(_, n)| *n).collect();
                    return Err(FaultError(format!(
                        "Invalid value for '{name}': '{value}'. Expected one of: {}.",
                        kinds.join(", ")
                    )));
                }
            },
            "fault_error_code" => {
                let ok = !value.is_empty()
                    && value.len() <= 64
                    && value
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
                if !ok {
                    return Err(FaultError(format!(
                        "Invalid value for '{name}': '{value}'. Expected an error code such as \
                         insufficient_quota (lowercase letters, digits and '_')."
                    )));
                }
                self.error_code = Some(value.to_owned());
            }
            _ => {
                return Err(FaultError(format!(
                    "Unknown fault parameter: '{name}'. Known: {}.",
                    FAULT_PARAMETERS.join(", ")
                )));
            }
        }
        Ok(())
    }

    /// The `fault_*` parameters of a URL query (other parameters are left alone); each may appear
    /// once. The result is not yet [`Faults::validate`]d (server-wide faults may complete it).
    pub fn from_query(query: &str) -> Result<Faults, FaultError> {
        let mut faults = Faults::default();
        let mut seen: Vec<&str> = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            if !name.starts_with("fault_") {
                continue;
            }
            if seen.contains(&name) {
                return Err(FaultError(format!("Duplicate fault parameter: '{name}'.")));
            }
            seen.push(name);
            faults.set(name, value)?;
        }
        Ok(faults)
    }

    /// These faults, with every fault `over` sets replacing ours.
    pub fn overridden_by(&self, over: &Faults) -> Faults {
        Faults {
            expire_after_ms: over.expire_after_ms.or(self.expire_after_ms),
            expire_early_ms: over.expire_early_ms.or(self.expire_early_ms),
            drop_after_audio_ms: over.drop_after_audio_ms.or(self.drop_after_audio_ms),
            stall_after_audio_ms: over.stall_after_audio_ms.or(self.stall_after_audio_ms),
            mute_after_audio_ms: over.mute_after_audio_ms.or(self.mute_after_audio_ms),
            refuse_status: over.refuse_status.or(self.refuse_status),
            send: over.send.or(self.send),
            rate_limit_first: over.rate_limit_first.or(self.rate_limit_first),
            server_error_after_audio_ms: over
                .server_error_after_audio_ms
                .or(self.server_error_after_audio_ms),
            error_after_audio_ms: over.error_after_audio_ms.or(self.error_after_audio_ms),
            error_code: over.error_code.clone().or_else(|| self.error_code.clone()),
            answer_delay_ms: over.answer_delay_ms.or(self.answer_delay_ms),
            huge_text_after_audio_ms: over
                .huge_text_after_audio_ms
                .or(self.huge_text_after_audio_ms),
            audio_repeat: over.audio_repeat.or(self.audio_repeat),
            language: over.language.clone().or_else(|| self.language.clone()),
        }
    }

    /// Rejects combinations that cannot mean anything.
    pub fn validate(&self) -> Result<(), FaultError> {
        if self.expire_after_ms.is_some() && self.expire_early_ms.is_some() {
            return Err(FaultError(
                "'fault_expire_after_ms' and 'fault_expire_early_ms' exclude each other.".into(),
            ));
        }
        match (self.error_after_audio_ms, &self.error_code) {
            (Some(_), None) => Err(FaultError(
                "'fault_error_after_audio_ms' needs 'fault_error_code' (e.g. insufficient_quota)."
                    .into(),
            )),
            (None, Some(_)) => Err(FaultError(
                "'fault_error_code' needs 'fault_error_after_audio_ms'.".into(),
            )),
            _ => Ok(()),
        }
    }

    /// The set as a canonical query string (fixed order), e.g. for logs and as the key of the
    /// `rate_limit_first` counter.
    pub fn to_query(&self) -> String {
        let mut parts = Vec::new();
        let mut num = |name: &str, v: Option<u64>| {
            if let Some(v) = v {
                parts.push(format!("{name}={v}"));
            }
        };
        num("fault_expire_after_ms", self.expire_after_ms);
        num("fault_expire_early_ms", self.expire_early_ms);
        num("fault_drop_after_audio_ms", self.drop_after_audio_ms);
        num("fault_stall_after_audio_ms", self.stall_after_audio_ms);
        num("fault_mute_after_audio_ms", self.mute_after_audio_ms);
        num("fault_refuse_status", self.refuse_status.map(u64::from));
        num(
            "fault_rate_limit_first",
            self.rate_limit_first.map(u64::from),
        );
        num(
            "fault_server_error_after_audio_ms",
            self.server_error_after_audio_ms,
        );
        num("fault_error_after_audio_ms", self.error_after_audio_ms);
        num("fault_answer_delay_ms", self.answer_delay_ms);
        num(
            "fault_huge_text_after_audio_ms",
            self.huge_text_after_audio_ms,
        );
        num("fault_audio_repeat", self.audio_repeat.map(u64::from));
        if let Some(k) = self.send {
            parts.push(format!("fault_send={}", k.name()));
        }
        if let Some(c) = &self.error_code {
            parts.push(format!("fault_error_code={c}"));
        }
        if let Some(language) = &self.language {
            parts.push(format!("fault_language={language}"));
        }
        parts.join("&")
    }

    /// How long every engine output is held back (`fault_answer_delay_ms`).
    pub(crate) fn answer_delay(&self) -> Option<std::time::Duration> {
        self.answer_delay_ms.map(std::time::Duration::from_millis)
    }

    /// The session-time expiry: `(ms, parameter name, announced in expires_at)`.
    pub(crate) fn expiry(&self) -> Option<(u64, &'static str, bool)> {
        if let Some(ms) = self.expire_after_ms {
            Some((ms, "fault_expire_after_ms", true))
        } else {
            self.expire_early_ms
                .map(|ms| (ms, "fault_expire_early_ms", false))
        }
    }

    /// Faults triggered by input audio, earliest threshold first (ties: the order listed here).
    pub(crate) fn audio_triggers(&self) -> Vec<AudioTrigger> {
        let mut t = Vec::new();
        let mut add = |ms: Option<u64>, action: AudioAction| {
            if let Some(ms) = ms {
                t.push(AudioTrigger {
                    samples: ms * 24,
                    action,
                });
            }
        };
        if let Some((ms, name, _)) = self.expiry() {
            add(Some(ms), AudioAction::Expire(name));
        }
        add(self.server_error_after_audio_ms, AudioAction::ServerError);
        if let Some(code) = &self.error_code {
            add(self.error_after_audio_ms, AudioAction::Error(code.clone()));
        }
        add(self.drop_after_audio_ms, AudioAction::Drop);
        add(self.stall_after_audio_ms, AudioAction::Stall);
        add(self.mute_after_audio_ms, AudioAction::Mute);
        // Stable: equal thresholds keep the order above.
        t.sort_by_key(|a| a.samples);
        t
    }
}

/// A fault that fires once the input audio reaches `samples`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct AudioTrigger {
    pub samples: u64,
    pub action: AudioAction,
}

/// What a session-ending fault does.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum AudioAction {
    /// `session_expired`, close 1001; the name is the parameter that asked for it.
    Expire(&'static str),
    ServerError,
    Error(String),
    Drop,
    Stall,
    Mute,
}

impl AudioAction {
    /// The query parameter behind this action, as recorded when it fires.
    pub(crate) fn parameter(&self) -> &'static str {
        match self {
            AudioAction::Expire(name) => name,
            AudioAction::ServerError => "fault_server_error_after_audio_ms",
            AudioAction::Error(_) => "fault_error_after_audio_ms",
            AudioAction::Drop => "fault_drop_after_audio_ms",
            AudioAction::Stall => "fault_stall_after_audio_ms",
            AudioAction::Mute => "fault_mute_after_audio_ms",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_parameter_and_ignores_others() {
        let f = Faults::from_query(
            "model=m&fault_expire_after_ms=1500&fault_drop_after_audio_ms=3000\
             &fault_stall_after_audio_ms=7&fault_mute_after_audio_ms=8&fault_refuse_status=503\
             &fault_send=oversized\
             &fault_rate_limit_first=2&fault_server_error_after_audio_ms=0\
             &fault_error_after_audio_ms=900&fault_error_code=insufficient_quota\
             &fault_answer_delay_ms=3000&fault_huge_text_after_audio_ms=2000\
             &fault_audio_repeat=3&fault_language=pt-BR&x=",
        )
        .unwrap();
        assert_eq!(
            f,
            Faults {
                expire_after_ms: Some(1500),
                expire_early_ms: None,
                drop_after_audio_ms: Some(3000),
                stall_after_audio_ms: Some(7),
                mute_after_audio_ms: Some(8),
                refuse_status: Some(503),
                send: Some(FaultSend::Oversized),
                rate_limit_first: Some(2),
                server_error_after_audio_ms: Some(0),
                error_after_audio_ms: Some(900),
                error_code: Some("insufficient_quota".into()),
                answer_delay_ms: Some(3000),
                huge_text_after_audio_ms: Some(2000),
                audio_repeat: Some(3),
                language: Some("pt-BR".into()),
            }
        );
        assert!(f.validate().is_ok());
        // The canonical query parses back to the same set.
        assert_eq!(Faults::from_query(&f.to_query()).unwrap(), f);
        assert!(Faults::from_query("model=m").unwrap().is_empty());
        for (kind, name) in FaultSend::ALL {
            let q = format!("fault_send={name}");
            assert_eq!(Faults::from_query(&q).unwrap().send, Some(kind));
            assert_eq!(kind.name(), name);
        }
    }

    #[test]
    fn bad_values_name_the_parameter() {
        for (q, needle) in [
            (
                "fault_drop_after_audio_ms=abc",
                "'fault_drop_after_audio_ms': 'abc'",
            ),
            ("fault_expire_after_ms=-1", "'fault_expire_after_ms'"),
            ("fault_expire_after_ms=", "'fault_expire_after_ms'"),
            ("fault_stall_after_audio_ms=86400001", "86400000"),
            (
                "fault_answer_delay_ms=1.5",
                "'fault_answer_delay_ms': '1.5'",
            ),
            ("fault_refuse_status=200", "400 to 599"),
            ("fault_audio_repeat=1", "from 2 to 10"),
            ("fault_language=fr_FR", "language code"),
            ("fault_audio_repeat=11", "from 2 to 10"),
            (
                "fault_huge_text_after_audio_ms=x",
                "'fault_huge_text_after_audio_ms'",
            ),
            ("fault_refuse_status=600", "400 to 599"),
            ("fault_send=bogus", "malformed_json, unknown_event"),
            ("fault_rate_limit_first=x", "'fault_rate_limit_first'"),
            ("fault_error_code=Bad-Code", "'fault_error_code'"),
            (
                "fault_unknown=1",
                "Unknown fault parameter: 'fault_unknown'",
            ),
            ("fault_send=binary&fault_send=binary", "Duplicate"),
        ] {
            let e = Faults::from_query(q).unwrap_err();
            assert!(e.0.contains(needle), "{q}: {e}");
        }
    }

    #[test]
    fn validation_and_override() {
        let both = Faults::from_query("fault_expire_after_ms=1&fault_expire_early_ms=2").unwrap();
        assert!(both.validate().unwrap_err().0.contains("exclude"));
        let no_code = Faults::from_query("fault_error_after_audio_ms=5").unwrap();
        assert!(no_code.validate().unwrap_err().0.contains("needs"));
        let no_after = Faults::from_query("fault_error_code=x").unwrap();
        assert!(no_after.validate().is_err());

        let server = Faults {
            error_code: Some("insufficient_quota".into()),
            drop_after_audio_ms: Some(100),
            answer_delay_ms: Some(500),
            ..Faults::default()
        };
        let merged = server.overridden_by(
            &Faults::from_query("fault_error_after_audio_ms=5&fault_drop_after_audio_ms=9")
                .unwrap(),
        );
        assert_eq!(merged.drop_after_audio_ms, Some(9));
        assert_eq!(merged.error_code.as_deref(), Some("insufficient_quota"));
        assert_eq!(merged.answer_delay_ms, Some(500));
        let faster = server.overridden_by(&Faults::from_query("fault_answer_delay_ms=0").unwrap());
        assert_eq!(faster.answer_delay_ms, Some(0));
        assert!(merged.validate().is_ok());
    }

    #[test]
    fn audio_triggers_earliest_first() {
        let f = Faults::from_query(
            "fault_stall_after_audio_ms=100&fault_drop_after_audio_ms=100\
             &fault_expire_early_ms=50&fault_error_after_audio_ms=300&fault_error_code=c",
        )
        .unwrap();
        let t = f.audio_triggers();
        let got: Vec<(u64, &str)> = t
            .iter()
            .map(|a| (a.samples, a.action.parameter()))
            .collect();
        assert_eq!(
            got,
            [
                (1200, "fault_expire_early_ms"),
                (2400, "fault_drop_after_audio_ms"),
                (2400, "fault_stall_after_audio_ms"),
                (7200, "fault_error_after_audio_ms"),
            ]
        );
        assert_eq!(f.expiry(), Some((50, "fault_expire_early_ms", false)));
    }

    #[test]
    fn error_types() {
        assert_eq!(error_type_for("invalid_api_key"), "invalid_request_error");
        assert_eq!(error_type_for("rate_limit_exceeded"), "rate_limit_error");
        assert_eq!(error_type_for("insufficient_quota"), "insufficient_quota");
        assert_eq!(error_type_for("server_error"), "server_error");
        assert_eq!(refusal_error_for(401).1, "invalid_api_key");
        assert_eq!(refusal_error_for(429).1, "rate_limit_exceeded");
        assert_eq!(refusal_error_for(502), ("server_error", "server_error"));
        assert_eq!(refusal_error_for(403).0, "invalid_request_error");
    }
}
