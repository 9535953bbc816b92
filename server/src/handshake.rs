//! HTTP upgrade checks, before any session exists: path, injected faults, API key, `model`/`intent`
//! query rules. Refusals are plain HTTP errors with an OpenAI-style JSON body.

use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request};
use tokio_tungstenite::tungstenite::http::{StatusCode, header};

use crate::faults::{self, Faults};
use crate::shared::Shared;

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
    /// `source_language`: the spoken language, when the client fixes it (engines that detect
    /// it use it; others ignore it).
    pub source_language: Option<String>,
    /// Server-wide faults with this connection's `fault_*` parameters over them.
    pub faults: Faults,
}

/// Why a handshake is refused; becomes an HTTP error response.
#[derive(Debug, Clone)]
pub(crate) struct Refusal {
    pub status: StatusCode,
    pub error_type: &'static str,
    pub code: String,
    pub message: String,
}

impl Refusal {
    /// The HTTP response, with an OpenAI-style body `{"error": {type, code, message, param}}`.
    pub(crate) fn response(&self) -> ErrorResponse {
        let body = serde_json::json!({
            "error": {
                "type": self.error_type,
                "code": self.code,
                "message": self.message,
                "param": null,
            }
        });
        let mut resp = ErrorResponse::new(Some(body.to_string()));
        *resp.status_mut() = self.status;
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("application/json"),
        );
        resp
    }
}

/// An `invalid_request_error` refusal.
pub(crate) fn refuse(status: StatusCode, code: &str, message: &str) -> Refusal {
    Refusal {
        status,
        error_type: "invalid_request_error",
        code: code.to_owned(),
        message: message.to_owned(),
    }
}

/// The `fault_refuse_status` / `fault_rate_limit_first` refusals, if one applies.
fn injected_refusal(faults: &Faults, shared: &Shared) -> Option<Refusal> {
    if let Some(status) = faults.refuse_status {
        let (error_type, code) = faults::refusal_error_for(status);
        return Some(Refusal {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            error_type,
            code: code.to_owned(),
            message: format!("Injected fault: fault_refuse_status={status}."),
        });
    }
    let k = faults.rate_limit_first?;
    if shared.count_rate_limited_handshake(&faults.to_query()) > k {
        return None;
    }
    let (error_type, code) = faults::refusal_error_for(429);
    Some(Refusal {
        status: StatusCode::TOO_MANY_REQUESTS,
        error_type,
        code: code.to_owned(),
        message: format!(
            "Rate limit reached for realtime sessions (injected fault: the first {k} handshakes \
             with {} are refused).",
            faults.to_query()
        ),
    })
}

pub(crate) fn header_str(req: &Request, name: &str) -> Option<String> {
    req.headers()
        .get(name)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}

/// Checks the bearer key when the server requires one, with the service's messages; returns the
/// `Authorization` header as sent.
pub(crate) fn check_bearer(
    req: &Request,
    required_key: Option<&str>,
) -> Result<Option<String>, Refusal> {
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
    Ok(authorization)
}

/// The query's `name=value` pairs, in order (a bare `name` has an empty value).
pub(crate) fn query_pairs(query: Option<&str>) -> Vec<(&str, &str)> {
    query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")))
        .collect()
}

/// Accepts or refuses an upgrade request. Faults are checked before the API key so that an injected
/// refusal does not depend on the client's credentials.
pub(crate) fn check(req: &Request, shared: &Shared) -> Result<Accepted, Refusal> {
    let uri = req.uri();
    if uri.path() != PATH {
        return Err(refuse(
            StatusCode::NOT_FOUND,
            "not_found",
            &format!("Invalid URL (GET {})", uri.path()),
        ));
    }
    let faults = Faults::from_query(uri.query().unwrap_or(""))
        .map(|f| shared.config.faults.overridden_by(&f))
        .and_then(|f| f.validate().map(|()| f))
        .map_err(|e| refuse(StatusCode::BAD_REQUEST, "invalid_fault_parameter", &e.0))?;
    if let Some(refusal) = injected_refusal(&faults, shared) {
        return Err(refusal);
    }
    let authorization = check_bearer(req, shared.config.required_api_key.as_deref())?;
    let params = query_pairs(uri.query());
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
        source_language: params
            .iter()
            .find(|(k, _)| *k == "source_language")
            .map(|(_, v)| (*v).to_owned())
            .filter(|v| !v.is_empty()),
        faults,
    })
}
