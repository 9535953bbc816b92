//! HTTP upgrade checks of `/v1/realtime`: the API key, and the query that picks the session kind
//! (`?model=…` a conversation, `?intent=transcription` a transcription session).

use crate::handshake::{self, check_bearer, header_str, query_pairs};
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request};
use tokio_tungstenite::tungstenite::http::StatusCode;

/// The path of the Realtime API.
pub const PATH: &str = "/v1/realtime";

/// Which session a connection opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `?model=…`: a conversation (`session.type: realtime`).
    Conversation,
    /// `?intent=transcription`: captions only (`session.type: transcription`).
    Transcription,
}

/// The names the server gives its output events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventNames {
    /// The GA names (`response.output_audio.delta`, …).
    Ga,
    /// The retired beta names (`response.audio.delta`, …): a test-server extension, chosen with
    /// the query parameter `test_event_names=beta`, to check that clients still accept them.
    Beta,
}

/// What an accepted handshake tells the session.
#[derive(Debug, Clone)]
pub(crate) struct Accepted {
    pub kind: Kind,
    /// The conversation model (empty for transcription sessions).
    pub model: String,
    pub event_names: EventNames,
    pub path_and_query: String,
    pub authorization: Option<String>,
    pub beta_header: bool,
    pub safety_identifier: Option<String>,
}

/// A refusal as the HTTP response.
fn refuse(status: StatusCode, code: &str, message: &str) -> ErrorResponse {
    handshake::refuse(status, code, message).response()
}

/// `Ok(None)` when the request is not for `/v1/realtime` (another endpoint handles it).
// The error type is tungstenite's handshake callback contract.
#[allow(clippy::result_large_err)]
pub(crate) fn check(
    req: &Request,
    required_key: Option<&str>,
) -> Result<Option<Accepted>, ErrorResponse> {
    let uri = req.uri();
    if uri.path() != PATH {
        return Ok(None);
    }
    let authorization = check_bearer(req, required_key).map_err(|r| r.response())?;
    let params = query_pairs(uri.query());
    let get = |name: &str| params.iter().find(|(k, _)| *k == name).map(|(_, v)| *v);
    let event_names = match get("test_event_names") {
        None | Some("ga") => EventNames::Ga,
        Some("beta") => EventNames::Beta,
        Some(other) => {
            return Err(refuse(
                StatusCode::BAD_REQUEST,
                "invalid_value",
                &format!("Invalid value for 'test_event_names': '{other}' (use ga or beta)."),
            ));
        }
    };
    let (kind, model) = match (get("intent"), get("model")) {
        (Some("transcription"), None) => (Kind::Transcription, String::new()),
        (Some("transcription"), Some(_)) => {
            return Err(refuse(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "A transcription session takes no 'model' parameter: choose the transcription \
                 model in session.update (session.audio.input.transcription.model).",
            ));
        }
        (Some(other), _) => {
            return Err(refuse(
                StatusCode::BAD_REQUEST,
                "invalid_value",
                &format!("Invalid value for 'intent': '{other}'. Supported: 'transcription'."),
            ));
        }
        (None, Some(m)) if !m.is_empty() => (Kind::Conversation, m.to_owned()),
        (None, _) => {
            return Err(refuse(
                StatusCode::BAD_REQUEST,
                "missing_required_parameter",
                "Missing required parameter: 'model' (or intent=transcription).",
            ));
        }
    };
    Ok(Some(Accepted {
        kind,
        model,
        event_names,
        path_and_query: uri
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_else(|| uri.path().to_owned()),
        authorization,
        beta_header: req.headers().contains_key("openai-beta"),
        safety_identifier: header_str(req, "openai-safety-identifier"),
    }))
}
