//! Many channels across machines: two translation servers behind HAProxy (Debian's `haproxy`,
//! least connections, TCP health checks; the configuration the README gives), the element
//! connecting through it. The server serving the session is killed mid-stream (no close frame,
//! as a crashed machine); the element reconnects through the balancer, lands on the other server,
//! and every utterance is still answered exactly once: all a session's state is in its one
//! connection, and the element gives a new connection everything it needs (settings, and the
//! audio not yet answered).

mod common;

use common::*;
use realtimetranslate_server::BackgroundServer;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long the killed server serves the session before it dies (wall time).
const KILL_AFTER: Duration = Duration::from_millis(2500);

/// The README's HAProxy configuration, for two servers and a listening port.
fn haproxy_config(listen: u16, servers: [SocketAddr; 2]) -> String {
    format!(
        "global
    maxconn 4096
defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    # A WebSocket session is one long tunnel: its timeout replaces client/server once upgraded.
    timeout tunnel 2h
    # A refused connection is tried again on another server.
    retries 2
    option redispatch
frontend translate
    bind 127.0.0.1:{listen}
    default_backend engines
backend engines
    balance leastconn
    server a {} check inter 200ms fall 1 rise 2
    server b {} check inter 200ms fall 1 rise 2
",
        servers[0], servers[1]
    )
}

/// HAProxy in the foreground on `config`; killed on drop.
struct Haproxy(Child);

impl Haproxy {
    fn start(config: &Path, port: u16) -> Haproxy {
        let child = Command::new("haproxy")
            .args(["-db", "-f"])
            .arg(config)
            .stdout(Stdio::null())
            .spawn()
            .expect("haproxy is installed (scripts/setup.sh installs it)");
        let haproxy = Haproxy(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "haproxy does not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        haproxy
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Once one of the servers has a session, kills that server [`KILL_AFTER`] later; returns its
/// index.
fn kill_the_serving_one(servers: Arc<Mutex<[Option<BackgroundServer>; 2]>>) -> Option<usize> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut serving: Option<(usize, Instant)> = None;
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        let mut servers = servers.lock().unwrap();
        match serving {
            None => {
                serving = (0..2)
                    .find(|&i| {
                        servers[i]
                            .as_ref()
                            .is_some_and(|s| !s.records().sessions().is_empty())
                    })
                    .map(|i| (i, Instant::now()));
            }
            Some((i, since)) if since.elapsed() >= KILL_AFTER => {
                let server = servers[i].take();
                drop(servers);
                // Stops its runtime: every connection is dropped without a close frame.
                drop(server);
                return Some(i);
            }
            Some(_) => {}
        }
    }
    None
}

#[test]
fn a_server_killed_mid_stream_behind_haproxy_loses_no_translation() {
    init();
    let servers = [utterance_server(), utterance_server()];
    let addresses = [servers[0].local_addr(), servers[1].local_addr()];
    let records = [servers[0].records(), servers[1].records()];
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = dir.path().join("haproxy.cfg");
    std::fs::write(&config, haproxy_config(port, addresses)).unwrap();
    let _haproxy = Haproxy::start(&config, port);

    let durations = [600, 700, 800, 900, 1000];
    let wav = dir.path().join("bursts.wav");
    write_wav(&wav, 24_000, &bursts(&durations));
    let servers = Arc::new(Mutex::new(servers.map(Some)));
    let killer = {
        let servers = servers.clone();
        std::thread::spawn(move || kill_the_serving_one(servers))
    };
    let captured = run(
        &format!(
            "filesrc location={} ! wavparse ! realtimetranslate name=t \
             url=ws://127.0.0.1:{port}/v1/realtime/translations api-key={KEY} \
             t.src ! appsink name=audio sync=false \
             t.subtitle_src ! queue ! appsink name=text sync=false",
            wav.display(),
        ),
        Duration::from_secs(60),
    );
    let killed = killer.join().unwrap().expect("a server served the session");
    let survivor = 1 - killed;

    assert!(captured.errors.is_empty(), "{:?}", captured.errors);
    assert!(captured.eos);
    assert!(
        !captured.connection_messages("reconnecting").is_empty(),
        "the element noticed the dead server"
    );
    assert!(!records[killed].sessions().is_empty());
    assert!(
        !records[survivor].sessions().is_empty(),
        "the balancer sent the new session to the other server"
    );
    let answers = answered(&captured);
    println!(
        "killed server {killed} {KILL_AFTER:?} into its session; sessions: killed server {}, the other {}; reconnections {}; answers {answers:?}",
        records[killed].sessions().len(),
        records[survivor].sessions().len(),
        captured.connection_messages("reconnecting").len()
    );
    assert_eq!(
        answers.len(),
        durations.len(),
        "answers {answers:?} for bursts {durations:?}: {:?}",
        captured.text()
    );
    for (got, want) in answers.iter().zip(&durations) {
        assert!(got.abs_diff(*want) <= 20, "answers {answers:?}");
    }
    assert_eq!(untranslated_seconds(&captured), 0.0);
    // The output is one stream covering the input, across the cut.
    let input = bursts(&durations).len() as f64 / 24_000.0;
    assert!(captured.duration_seconds() >= input - 0.2);
    assert_eq!(captured.disconts, 1, "only the first buffer is DISCONT");
}
