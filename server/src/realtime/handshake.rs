//! HTTP upgrade checks of `/v1/realtime`: the API key, and the query that picks the session kind
//! (`?model=…` a conversation, `?intent=transcription` a transcription session).

use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request};
use tokio_tungstenite::tungstenite::http::{StatusCode, header};

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

fn refuse(status: StatusCode, code: &str, message: &str) -> ErrorResponse {
    let body = serde_json::json!({
        "error": { "type": "invalid_request_error", "code": code, "message": message, "param": null }
    });
    let mut resp = ErrorResponse::new(Some(body.to_string()));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    resp
}

fn header_str(req: &Request, name: &str) -> Option<String> {
    req.headers()
        .get(name)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
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
    let authorization = header_str(req, "authorization");
    if let Some(key) = required_key {
        let ok = authorization
            .as_deref()
            .and_then(|a| a.strip_prefix("Bearer "))
            .is_some_and(|k| k == key);
        if !ok {
            let msg = if authorization.is_none() {
                "You didn't provide an API key. You need to provide your API key in an \
                 Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
            } else {
                "Incorrect API key provided."
            };
            return Err(refuse(StatusCode::UNAUTHORIZED, "invalid_api_key", msg));
        }
    }
    let params: Vec<(&str, &str)> = uri
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")))
        .collect();
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
