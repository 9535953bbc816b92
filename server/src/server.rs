//! Listening socket and connection tasks: [`Server`] for async callers, [`BackgroundServer`] for
//! synchronous ones (GStreamer tests, benches).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::handshake::{self, PATH};
use crate::record::{Records, RefusedHandshake, SessionRecord};
use crate::shared::Shared;
use crate::{ServerConfig, session};

/// How long a client may take to complete the WebSocket upgrade.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How much a socket read asks for at a time: tungstenite zeroes that much before every read,
/// and its 128 KiB default made zeroing a large share of serving hundreds of sessions (an audio
/// frame is about 13 KB; larger ones take several reads).
const READ_BUFFER_BYTES: usize = 16 << 10;

fn socket_config() -> WebSocketConfig {
    WebSocketConfig::default().read_buffer_size(READ_BUFFER_BYTES)
}

/// A bound, not yet serving, translation endpoint.
pub struct Server {
    listener: TcpListener,
    shared: Arc<Shared>,
}

impl Server {
    /// Binds (use `127.0.0.1:0` in tests) and returns before serving.
    pub async fn bind(addr: SocketAddr, config: ServerConfig) -> std::io::Result<Server> {
        let listener = TcpListener::bind(addr).await?;
        Ok(Server {
            listener,
            shared: Arc::new(Shared::new(config)),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound TCP listener has an address")
    }

    /// `ws://ADDR/v1/realtime/translations` (no query).
    pub fn url(&self) -> String {
        format!("ws://{}{PATH}", self.local_addr())
    }

    /// Cheap clone handle on what the server saw.
    pub fn records(&self) -> Records {
        self.shared.records.clone()
    }

    /// Serves connections until dropped / cancelled; each connection is its own tokio task, and
    /// cancelling this future aborts them all.
    pub async fn serve(self) {
        let mut tasks = JoinSet::new();
        loop {
            tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        tasks.spawn(connection(stream, peer, self.shared.clone()));
                    }
                    // Out of descriptors and the like: back off instead of spinning.
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                },
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            }
        }
    }
}

/// One TCP connection: upgrade, then run the session.
// The callback's error type is tungstenite's contract.
#[allow(clippy::result_large_err)]
async fn connection(stream: TcpStream, peer: SocketAddr, shared: Arc<Shared>) {
    let _ = stream.set_nodelay(true);
    let mut accepted = None;
    let mut realtime = None;
    let key = shared.config.required_api_key.clone();
    let callback = |req: &tokio_tungstenite::tungstenite::handshake::server::Request, resp| {
        if let Some(r) = crate::realtime::check(req, key.as_deref())? {
            realtime = Some(r);
            return Ok(resp);
        }
        match handshake::check(req, &shared) {
            Ok(a) => {
                accepted = Some(a);
                Ok(resp)
            }
            Err(refusal) => {
                shared.records.push_refused(RefusedHandshake {
                    path_and_query: req
                        .uri()
                        .path_and_query()
                        .map(|p| p.as_str().to_owned())
                        .unwrap_or_default(),
                    status: refusal.status.as_u16(),
                    code: refusal.code.clone(),
                    at: Instant::now(),
                });
                Err(refusal.response())
            }
        }
    };
    let upgraded = tokio::time::timeout(
        HANDSHAKE_TIMEOUT,
        tokio_tungstenite::accept_hdr_async_with_config(stream, callback, Some(socket_config())),
    )
    .await;
    let ws = match upgraded {
        Ok(Ok(ws)) => ws,
        Ok(Err(e)) => {
            shared
                .config
                .log(|| format!("{peer}: handshake refused: {e}"));
            return;
        }
        Err(_) => {
            shared.config.log(|| format!("{peer}: handshake timed out"));
            return;
        }
    };
    if let Some(realtime) = realtime {
        return crate::realtime::run(ws, peer, realtime, shared).await;
    }
    let Some(accepted) = accepted else {
        return;
    };
    let record = shared.records.open(SessionRecord {
        path_and_query: accepted.path_and_query.clone(),
        authorization: accepted.authorization.clone(),
        beta_header: accepted.beta_header,
        safety_identifier: accepted.safety_identifier.clone(),
        faults: accepted.faults.clone(),
        ..SessionRecord::default()
    });
    session::run(ws, peer, accepted, shared, record).await;
}

/// A [`Server`] on its own thread with its own tokio runtime; stops (and joins) on drop.
pub struct BackgroundServer {
    url: String,
    local_addr: SocketAddr,
    records: Records,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl BackgroundServer {
    /// Binds `127.0.0.1:0` and starts serving.
    pub fn start(config: ServerConfig) -> std::io::Result<BackgroundServer> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("realtimetranslate-server-rt")
            .enable_all()
            .build()?;
        let server = rt.block_on(Server::bind(SocketAddr::from(([127, 0, 0, 1], 0)), config))?;
        let (url, local_addr, records) = (server.url(), server.local_addr(), server.records());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("realtimetranslate-server".into())
            .spawn(move || {
                rt.block_on(async {
                    tokio::select! {
                        _ = server.serve() => {}
                        _ = stopped => {}
                    }
                });
                rt.shutdown_timeout(Duration::from_secs(5));
            })?;
        Ok(BackgroundServer {
            url,
            local_addr,
            records,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// `ws://127.0.0.1:PORT/v1/realtime/translations`.
    pub fn url(&self) -> String {
        self.url.clone()
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn records(&self) -> Records {
        self.records.clone()
    }
}

impl Drop for BackgroundServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
