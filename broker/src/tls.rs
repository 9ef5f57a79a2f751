//! MQTT over TLS for DPUs: a listener of its own (port 8883 by convention) whose connections
//! are served exactly as the plain listener's, once rustls has completed the handshake.
//! Optionally every client must show a certificate signed by a given CA (mutual TLS), on top
//! of its login.
//!
//! rumqttd 0.20's own TLS listener is tied to its `Server`, which Roomer does not use (see
//! `front`), so the handshake is done here, with rustls and its default provider (aws-lc-rs).

use crate::error::BrokerError;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio_rustls::TlsAcceptor;

/// Where the TLS listener listens and what it presents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsSettings {
    /// Port 0 picks a free port; read it back with
    /// [`EmbeddedBroker::local_addr_tls`](crate::EmbeddedBroker::local_addr_tls).
    pub listen: SocketAddr,
    /// PEM: the server's certificate, then any intermediates.
    pub cert_chain: PathBuf,
    /// PEM: its private key (PKCS#8, PKCS#1 or SEC1).
    pub private_key: PathBuf,
    /// PEM: CA certificates; set, a client must present a certificate one of them signed.
    pub client_ca: Option<PathBuf>,
}

fn tls_error(path: &Path, what: &str, detail: impl std::fmt::Display) -> BrokerError {
    BrokerError::Tls(format!("{what} {}: {detail}", path.display()))
}

/// The acceptor for `settings`, its files read now (a restart reads them again, so a renewed
/// certificate is picked up by restarting).
pub(crate) fn acceptor(settings: &TlsSettings) -> Result<TlsAcceptor, BrokerError> {
    let config = server_config(
        &settings.cert_chain,
        &settings.private_key,
        settings.client_ca.as_deref(),
    )?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// A TLS server configuration from PEM files: the certificate chain, its private key and,
/// optionally, the CAs whose client certificates are required. HTTPS for the API is served
/// with it too.
pub fn server_config(
    cert_chain: &Path,
    private_key: &Path,
    client_ca: Option<&Path>,
) -> Result<ServerConfig, BrokerError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let chain = CertificateDer::pem_file_iter(cert_chain)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| tls_error(cert_chain, "reading certificates from", e))?;
    if chain.is_empty() {
        return Err(tls_error(cert_chain, "no certificate in", "empty"));
    }
    let key = PrivateKeyDer::from_pem_file(private_key)
        .map_err(|e| tls_error(private_key, "reading the private key from", e))?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| BrokerError::Tls(e.to_string()))?;
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(path) => {
            let mut roots = RootCertStore::empty();
            let cas = CertificateDer::pem_file_iter(path)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|e| tls_error(path, "reading CA certificates from", e))?;
            for ca in cas {
                roots
                    .add(ca)
                    .map_err(|e| tls_error(path, "a CA certificate in", e))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| tls_error(path, "the client CAs in", e))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    builder
        .with_single_cert(chain, key)
        .map_err(|e| tls_error(private_key, "the key and certificate of", e))
}
