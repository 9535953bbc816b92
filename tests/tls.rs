//! `wss://` against a private certificate authority made at test time: certificates are always
//! verified, `tls-ca-file` adds trust, and every TLS refusal is one clear error that is not retried.

mod common;

use common::*;
use gstrealtimetranslate::protocol::translation::SessionConfig;
use gstrealtimetranslate::secret::ApiKey;
use gstrealtimetranslate::session_types::{Endpoint, Protocol, SessionError, SessionParams};
use gstrealtimetranslate::transport;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// A private CA, written as PEM where `tls-ca-file` can point at it.
struct PrivateCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
    pem_file: PathBuf,
}

impl PrivateCa {
    fn new(dir: &Path) -> PrivateCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "realtimetranslate test CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let pem_file = dir.join("ca.pem");
        std::fs::write(&pem_file, issuer.pem()).unwrap();
        PrivateCa { issuer, pem_file }
    }

    /// A server certificate for `names` (an IP literal becomes an IP address name).
    fn server_certificate(&self, names: &[&str]) -> ServerIdentity {
        let key = KeyPair::generate().unwrap();
        let params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        let certificate = params.signed_by(&key, &self.issuer).unwrap();
        ServerIdentity {
            chain: vec![certificate.der().clone()],
            key: PrivatePkcs8KeyDer::from(key.serialize_der()).into(),
        }
    }
}

struct ServerIdentity {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

/// A `wss://` front: terminates TLS on 127.0.0.1, then relays the bytes to a plain `ws://`
/// server, so the project's own server speaks the protocol behind it.
struct TlsFront {
    address: SocketAddr,
    /// TCP connections accepted, i.e. connection attempts by the client.
    attempts: Arc<AtomicUsize>,
    /// TLS handshakes that completed.
    handshakes: Arc<AtomicUsize>,
    _runtime: tokio::runtime::Runtime,
}

impl TlsFront {
    fn start(backend: SocketAddr, identity: ServerIdentity) -> TlsFront {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(identity.chain, identity.key)
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let address = listener.local_addr().unwrap();
        let attempts = Arc::new(AtomicUsize::new(0));
        let handshakes = Arc::new(AtomicUsize::new(0));
        let (attempt_count, handshake_count) = (attempts.clone(), handshakes.clone());
        runtime.spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                attempt_count.fetch_add(1, Ordering::SeqCst);
                let acceptor = acceptor.clone();
                let handshake_count = handshake_count.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(stream).await else {
                        return;
                    };
                    handshake_count.fetch_add(1, Ordering::SeqCst);
                    let mut plain = tokio::net::TcpStream::connect(backend).await.unwrap();
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                });
            }
        });
        TlsFront {
            address,
            attempts,
            handshakes,
            _runtime: runtime,
        }
    }

    fn url(&self) -> String {
        format!("wss://{}/v1/realtime/translations", self.address)
    }
}

/// A live tone into the element at `url`; the element's extra properties in `extra`.
fn live_tone_into(url: &str, extra: &str) -> Captured {
    run(
        &format!(
            "audiotestsrc is-live=true ! audio/x-raw,rate=48000,channels=2 ! \
             realtimetranslate url={url} api-key={KEY} {extra} ! fakesink"
        ),
        Duration::from_secs(10),
    )
}

/// The one error of `captured`, checked to hold every needle and never the key.
fn single_error<'a>(captured: &'a Captured, needles: &[&str]) -> &'a str {
    assert_eq!(captured.errors.len(), 1, "{:?}", captured.errors);
    let error = &captured.errors[0];
    for needle in needles {
        assert!(error.contains(needle), "{needle:?} missing from {error}");
    }
    assert!(!error.contains(KEY), "the API key leaked: {error}");
    error
}

fn params(url: String, tls_ca_file: Option<PathBuf>) -> SessionParams {
    SessionParams {
        protocol: Protocol::Translation,
        endpoint: Endpoint::Remote {
            url,
            model: "gpt-realtime-translate".into(),
        },
        api_key: ApiKey::new(KEY),
        safety_identifier: None,
        config: SessionConfig {
            target_language: "es".into(),
            transcription: None,
            noise_reduction: None,
        },
        connect_timeout: Duration::from_secs(5),
        drain_timeout: Duration::from_secs(1),
        keepalive_timeout: Duration::from_secs(5),
        tls_ca_file,
    }
}

/// Connects the session layer directly; the refusal it must give, checked for the key.
fn connect_refusal(params: &SessionParams) -> SessionError {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let err = match runtime.block_on(transport::connect(params)) {
        Ok(_) => panic!("connected to {:?}", params.endpoint),
        Err(err) => err,
    };
    let debug = format!("{err:?} {err}");
    assert!(!debug.contains(KEY), "the API key leaked: {debug}");
    err
}

#[test]
fn untrusted_certificate_is_one_fatal_error_that_names_tls_ca_file() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let ca = PrivateCa::new(dir.path());
    let server = utterance_server();
    let front = TlsFront::start(server.local_addr(), ca.server_certificate(&["127.0.0.1"]));

    let captured = live_tone_into(&front.url(), "");
    single_error(
        &captured,
        &[
            "TLS certificate of 127.0.0.1 not trusted",
            "set tls-ca-file",
        ],
    );
    // Not retried: one attempt, no handshake completed, the server never saw a session.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(front.attempts.load(Ordering::SeqCst), 1);
    assert_eq!(front.handshakes.load(Ordering::SeqCst), 0);
    assert!(server.records().sessions().is_empty());

    let err = connect_refusal(&params(front.url(), None));
    assert!(
        matches!(&err, SessionError::Refused(why) if why.contains("UnknownIssuer") || why.contains("unknown issuer")),
        "{err:?}"
    );
    assert!(!err.is_recoverable());
}

#[test]
fn private_ca_in_tls_ca_file_lets_the_translation_through() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let ca = PrivateCa::new(dir.path());
    let server = utterance_server();
    let front = TlsFront::start(server.local_addr(), ca.server_certificate(&["127.0.0.1"]));
    // One second of 440 Hz, then silence so the utterance engine answers.
    let wav = dir.path().join("tone.wav");
    let status = std::process::Command::new("sox")
        .args(["-n", "-r", "24000", "-c", "1"])
        .arg(&wav)
        .args([
            "synth", "1", "sine", "440", "vol", "0.5", "pad", "0.5", "1.5",
        ])
        .status()
        .expect("sox is installed (see README)");
    assert!(status.success());

    let captured = run(
        &format!(
            "filesrc location={} ! wavparse ! audioconvert ! audioresample ! \
             realtimetranslate name=t url={} api-key={KEY} tls-ca-file={} \
             t.src ! appsink name=audio sync=false \
             t.subtitle_src ! queue ! appsink name=text sync=false",
            wav.display(),
            front.url(),
            ca.pem_file.display()
        ),
        Duration::from_secs(30),
    );
    assert!(captured.errors.is_empty(), "{:?}", captured.errors);
    assert!(captured.eos);
    assert_eq!(front.handshakes.load(Ordering::SeqCst), 1);
    assert!(
        captured.text().starts_with("Frase 1 de "),
        "{:?}",
        captured.cues
    );
    let (start, end) = audible_span(&captured.samples()).expect("the translated tone");
    assert!(
        (end - start - 1.0).abs() < 0.1,
        "tone of {:.2} s for 1 s of input",
        end - start
    );
    let sessions = server.records().sessions();
    assert_eq!(sessions.len(), 1);
    assert_eq!(
        sessions[0].authorization.as_deref(),
        Some(format!("Bearer {KEY}").as_str()),
        "the key reached the server only inside TLS"
    );
}

#[test]
fn certificate_for_another_host_is_refused_even_from_a_trusted_ca() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let ca = PrivateCa::new(dir.path());
    let server = utterance_server();
    let front = TlsFront::start(
        server.local_addr(),
        ca.server_certificate(&["translate.example.com"]),
    );
    let ca_file = format!("tls-ca-file={}", ca.pem_file.display());

    let captured = live_tone_into(&front.url(), &ca_file);
    single_error(
        &captured,
        &[
            "TLS certificate of 127.0.0.1 not trusted",
            "translate.example.com",
        ],
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(front.attempts.load(Ordering::SeqCst), 1);
    assert!(server.records().sessions().is_empty());

    let err = connect_refusal(&params(front.url(), Some(ca.pem_file.clone())));
    assert!(matches!(err, SessionError::Refused(_)), "{err:?}");
}

#[test]
fn unusable_tls_ca_file_is_a_fatal_error_naming_the_file() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let ca = PrivateCa::new(dir.path());
    let server = utterance_server();
    let front = TlsFront::start(server.local_addr(), ca.server_certificate(&["127.0.0.1"]));
    let missing = dir.path().join("missing.pem");
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(
        &garbage,
        "-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let no_certificate = dir.path().join("key-only.pem");
    std::fs::write(
        &no_certificate,
        KeyPair::generate().unwrap().serialize_pem(),
    )
    .unwrap();
    let not_a_ca = dir.path().join("not-a-certificate.pem");
    std::fs::write(
        &not_a_ca,
        "-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQ=\n-----END CERTIFICATE-----\n",
    )
    .unwrap();

    for (file, problem) in [
        (&missing, "cannot read it"),
        (&garbage, "not a valid PEM file"),
        (&no_certificate, "no PEM CERTIFICATE block"),
        (&not_a_ca, "cannot be used as an authority"),
    ] {
        let file_name = file.display().to_string();
        let captured = live_tone_into(&front.url(), &format!("tls-ca-file={file_name}"));
        single_error(&captured, &[file_name.as_str(), problem]);

        let err = connect_refusal(&params(front.url(), Some(file.clone())));
        assert!(
            matches!(&err, SessionError::Refused(why) if why.contains(&file_name) && why.contains(problem)),
            "{err:?}"
        );
    }
    // The file is checked before connecting: the server was never contacted.
    assert_eq!(front.attempts.load(Ordering::SeqCst), 0);
}

/// `tls-ca-file` is only for `wss://`: a plain connection does not read it.
#[test]
fn plain_ws_ignores_tls_ca_file() {
    init();
    let server = utterance_server();
    let err_or_session = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(transport::connect(&params(
            server.url(),
            Some(PathBuf::from("/nonexistent/ca.pem")),
        )))
        .map(|_| ());
    assert_eq!(err_or_session, Ok(()));
}
