//! One tokio runtime for every element instance in the process, created on first use.

use once_cell::sync::Lazy;

/// Small: sessions are I/O bound; two workers keep one slow callback from stalling others.
pub static RUNTIME: Lazy<tokio::runtime::Runtime> = Lazy::new(|| {
    // rustls needs a process-wide crypto provider before the first TLS handshake; another library
    // may have installed one already, which is fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("realtimetranslate")
        .enable_all()
        .build()
        .expect("tokio runtime")
});
