//! Opening a session's WebSocket: the endpoint's URL, TCP with a bounded send buffer, TLS for
//! `wss://`, the key as a bearer token, and a refusal classified into a [`SessionError`].

use crate::session_types::{Endpoint, SessionError, SessionParams, url_with_model};
use std::time::Duration;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self};

/// A network write that takes longer than this means the peer is gone.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest frame accepted from a server: audio deltas are tens of kilobytes, so anything near
/// this is a broken peer, and the bound keeps one frame from taking unbounded memory.
pub const MAX_FRAME_BYTES: usize = 8 << 20;
/// How much a socket read asks for at a time. tungstenite zeroes that much of its buffer before
/// every read: its 128 KiB default made zeroing the largest single cost of receiving at hundreds
/// of sessions (one 200 ms audio frame is about 13 KB). Larger frames take several reads.
pub const READ_BUFFER_BYTES: usize = 16 << 10;

/// The URL a session connects to (starting the in-process engine for [`Endpoint::Local`]).
pub async fn resolve(endpoint: &Endpoint) -> Result<String, SessionError> {
    match endpoint {
        Endpoint::Remote { url, model } => Ok(url_with_model(url, model)),
        Endpoint::Local {
            model,
            source_language,
        } => crate::local_engine::url(model)
            .await
            .map(|url| {
                let url = url_with_model(&url, model);
                match source_language {
                    Some(code) => {
                        let separator = if url.contains('?') { '&' } else { '?' };
                        format!("{url}{separator}source_language={code}")
                    }
                    None => url,
                }
            })
            .map_err(SessionError::Connection),
    }
}

pub type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens the WebSocket, with the key as a bearer token, and classifies a refusal.
pub async fn connect(params: &SessionParams) -> Result<Socket, SessionError> {
    let url = resolve(&params.endpoint).await?;
    connect_url(params, &url, true).await
}

/// Opens the WebSocket at `url`; `bearer` sends the key in an `Authorization` header (some
/// services take it in the URL instead).
pub async fn connect_url(
    params: &SessionParams,
    url: &str,
    bearer: bool,
) -> Result<Socket, SessionError> {
    let mut request = url
        .into_client_request()
        .map_err(|err| SessionError::Connection(format!("invalid url: {err}")))?;
    let headers = request.headers_mut();
    if bearer && let Some(key) = &params.api_key {
        let value = key.bearer().parse().map_err(|_| {
            SessionError::Authentication("the API key has characters a header cannot carry".into())
        })?;
        headers.insert("Authorization", value);
    }
    if let Some(id) = &params.safety_identifier
        && let Ok(value) = id.parse()
    {
        headers.insert("OpenAI-Safety-Identifier", value);
    }
    let host = request.uri().host().unwrap_or_default().to_owned();
    // Only `wss://` reads `tls-ca-file`: a plain or local connection does not depend on it.
    let connector = if request.uri().scheme_str() == Some("wss") {
        crate::tls::connector(params.tls_ca_file.as_deref())?
    } else {
        tokio_tungstenite::Connector::Plain
    };
    let port = request
        .uri()
        .port_u16()
        .unwrap_or(if request.uri().scheme_str() == Some("wss") {
            443
        } else {
            80
        });
    let connecting = async {
        let stream = open_tcp(&host, port)
            .await
            .map_err(tungstenite::Error::Io)?;
        tokio_tungstenite::client_async_tls_with_config(
            request,
            stream,
            Some(
                WebSocketConfig::default()
                    .read_buffer_size(READ_BUFFER_BYTES)
                    .max_message_size(Some(MAX_FRAME_BYTES))
                    .max_frame_size(Some(MAX_FRAME_BYTES)),
            ),
            Some(connector),
        )
        .await
    };
    match timeout(params.connect_timeout, connecting).await {
        Err(_) => Err(SessionError::Connection(format!(
            "no answer from the server within {} s",
            params.connect_timeout.as_secs()
        ))),
        Ok(Ok((socket, _response))) => Ok(socket),
        Ok(Err(tungstenite::Error::Http(response))) => {
            let status = response.status();
            let body = response
                .body()
                .as_deref()
                .map(|b| String::from_utf8_lossy(&b[..b.len().min(300)]).into_owned())
                .unwrap_or_default();
            let why = format!("the server answered HTTP {status} {body}");
            Err(match status.as_u16() {
                401 | 403 => SessionError::Authentication(why),
                429 => SessionError::RateLimited(why),
                // Another client error (wrong path, unknown model) will not go away by retrying.
                400..=499 => SessionError::Refused(why),
                _ => SessionError::Connection(why),
            })
        }
        Ok(Err(err)) => Err(crate::tls::handshake_refusal(&host, &err)
            .unwrap_or_else(|| SessionError::Connection(err.to_string()))),
    }
}

/// Audio a connection may hold in its socket's send buffer: about 3 s of base64 PCM. The default
/// (auto-tuned to megabytes) would let input that is faster than real time put minutes of audio
/// in flight, all lost if the connection drops; live audio needs only 64 kB/s.
const SEND_BUFFER_BYTES: u32 = 192 * 1024;

/// Connects to the first address of `host` that answers, with a bounded send buffer.
async fn open_tcp(host: &str, port: u16) -> std::io::Result<tokio::net::TcpStream> {
    let mut last_error = None;
    for address in tokio::net::lookup_host((host.trim_matches(['[', ']']), port)).await? {
        let socket = if address.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        socket.set_send_buffer_size(SEND_BUFFER_BYTES)?;
        match socket.connect(address).await {
            Ok(stream) => {
                stream.set_nodelay(true)?;
                return Ok(stream);
            }
            Err(err) => last_error = Some(err),
        }
    }
    Err(last_error.unwrap_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("{host} has no address"),
        )
    }))
}
