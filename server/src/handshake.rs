//! HTTP upgrade checks, before any session exists: path, `model`/`intent` query rules, API key.
//! Refusals are plain HTTP errors with an OpenAI-style JSON body.

use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request};
use tokio_tungstenite::tungstenite::http::{StatusCode, header};

/// The one path the translation endpoint serves.
pub const PATH: &str = "/v1/realtime/translations";

/// What an accepted handshake tells the session.
#[derive(Debug, Clone)]
pub(crate) struct Accepted {
    pub path_and_query: String,
    pub authorization: Option<String>,
    pub beta_header: bool,
    pub safety_identifier: Option<String>,
    pub model: String,
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

/// Accepts or refuses an upgrade request.
// The error type is tungstenite's handshake callback contract; it is built once per refusal.
#[allow(clippy::result_large_err)]
pub(crate) fn check(req: &Request, required_key: Option<&str>) -> Result<Accepted, ErrorResponse> {
    let uri = req.uri();
    if uri.path() != PATH {
        return Err(refuse(
            StatusCode::NOT_FOUND,
            "not_found",
            &format!("Invalid URL (GET {})", uri.path()),
        ));
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
    if params.iter().any(|(k, _)| *k == "intent") {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            "unknown_parameter",
            "Unknown parameter: 'intent'. Translation sessions take no intent.",
        ));
    }
    let model = match params.iter().find(|(k, _)| *k == "model") {
        Some((_, m)) if !m.is_empty() => (*m).to_owned(),
        _ => {
            return Err(refuse(
                StatusCode::BAD_REQUEST,
                "missing_required_parameter",
                "Missing required parameter: 'model'.",
            ));
        }
    };
    Ok(Accepted {
        path_and_query: uri
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_else(|| uri.path().to_owned()),
        authorization,
        beta_header: req.headers().contains_key("openai-beta"),
        safety_identifier: header_str(req, "openai-safety-identifier"),
        model,
    })
}
