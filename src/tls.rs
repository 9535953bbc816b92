//! TLS for `wss://`: rustls, certificates always verified against the public web roots plus the
//! certificate authorities of the `tls-ca-file` property.
//!
//! Certificate problems are configuration problems: retrying cannot fix them, so they become
//! [`SessionError::Refused`] with a message saying what to change, instead of a reconnect loop.

use crate::session_types::SessionError;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use std::path::Path;
use std::sync::Arc;
use tokio_tungstenite::tungstenite;

/// A connector for `wss://` trusting the public web PKI and, when given, the CAs in `ca_file`
/// (PEM). The file is read on every call: sessions are rare, and a renewed CA is picked up.
pub fn connector(ca_file: Option<&Path>) -> Result<tokio_tungstenite::Connector, SessionError> {
    static PUBLIC_ONLY: once_cell::sync::Lazy<Arc<rustls::ClientConfig>> =
        once_cell::sync::Lazy::new(|| client_config(public_roots()));
    let config = match ca_file {
        None => PUBLIC_ONLY.clone(),
        Some(path) => {
            let mut roots = public_roots();
            for certificate in read_certificates(path)? {
                roots.add(certificate).map_err(|err| {
                    SessionError::Refused(format!(
                        "tls-ca-file {}: a certificate cannot be used as an authority: {err}",
                        path.display()
                    ))
                })?;
            }
            client_config(roots)
        }
    };
    Ok(tokio_tungstenite::Connector::Rustls(config))
}

fn public_roots() -> rustls::RootCertStore {
    rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned())
}

/// Uses ring explicitly rather than installing a process-wide default provider: the plugin lives
/// in other people's processes.
fn client_config(roots: rustls::RootCertStore) -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("ring supports the default TLS versions")
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

/// Every `CERTIFICATE` block of a PEM file; other blocks (keys, CRLs) are skipped. A file without
/// any certificate is an error: the user meant to trust something.
fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, SessionError> {
    let refused =
        |why: String| SessionError::Refused(format!("tls-ca-file {}: {why}", path.display()));
    let bytes = std::fs::read(path).map_err(|err| refused(format!("cannot read it: {err}")))?;
    let certificates = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| refused(format!("not a valid PEM file: {err}")))?;
    if certificates.is_empty() {
        return Err(refused(
            "no PEM CERTIFICATE block in it (a PEM file of CA certificates is expected)".into(),
        ));
    }
    Ok(certificates)
}

/// A connect error that retrying cannot fix: the server's certificate is not acceptable, or the
/// host cannot be named in TLS. `None` for everything else (network trouble).
pub fn handshake_refusal(host: &str, err: &tungstenite::Error) -> Option<SessionError> {
    let rustls_error = match err {
        tungstenite::Error::Tls(tungstenite::error::TlsError::InvalidDnsName) => {
            return Some(SessionError::Refused(format!(
                "`{host}` is not a valid host name for TLS"
            )));
        }
        tungstenite::Error::Tls(tungstenite::error::TlsError::Rustls(err)) => &**err,
        tungstenite::Error::Io(io) => io.get_ref()?.downcast_ref::<rustls::Error>()?,
        _ => return None,
    };
    match rustls_error {
        rustls::Error::InvalidCertificate(
            reason @ (rustls::CertificateError::NotValidForName
            | rustls::CertificateError::NotValidForNameContext { .. }),
        ) => Some(SessionError::Refused(format!(
            "TLS certificate of {host} not trusted: {reason}; connect with a host name the \
             certificate names"
        ))),
        rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer) => {
            Some(SessionError::Refused(format!(
                "TLS certificate of {host} not trusted: it is issued by an unknown certificate \
                 authority (UnknownIssuer); set tls-ca-file to trust a private CA"
            )))
        }
        rustls::Error::InvalidCertificate(reason) => Some(SessionError::Refused(format!(
            "TLS certificate of {host} not trusted: {reason}; set tls-ca-file to trust a private CA"
        ))),
        rustls::Error::NoCertificatesPresented => Some(SessionError::Refused(format!(
            "TLS server {host} presented no certificate"
        ))),
        rustls::Error::PeerIncompatible(reason) => Some(SessionError::Refused(format!(
            "TLS server {host} is incompatible: {reason:?}"
        ))),
        _ => None,
    }
}
