//! TLS for `wss://`: rustls with the Mozilla roots, certificates always verified.

use std::sync::Arc;

/// A connector trusting the public web PKI.
pub fn connector() -> tokio_tungstenite::Connector {
    static CONFIG: once_cell::sync::Lazy<Arc<rustls::ClientConfig>> =
        once_cell::sync::Lazy::new(|| {
            let _ = rustls::crypto::ring::default_provider().install_default();
            let roots =
                rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            Arc::new(
                rustls::ClientConfig::builder()
                    .with_root_certificates(roots)
                    .with_no_client_auth(),
            )
        });
    tokio_tungstenite::Connector::Rustls(CONFIG.clone())
}
