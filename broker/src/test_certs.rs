//! Certificates made at test time (with rcgen), written as PEM files: a CA, a server
//! certificate for `localhost` and `127.0.0.1` signed by it, and client certificates.

use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use std::path::{Path, PathBuf};

/// A test CA and the server certificate it signed, as files in a directory.
pub struct TestPki {
    ca: Certificate,
    ca_key: KeyPair,
    dir: PathBuf,
    /// The CA's certificate (PEM): what clients trust, and what client certificates chain to.
    pub ca_pem: PathBuf,
    /// The server's certificate chain and key (PEM).
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
}

impl TestPki {
    /// Makes the CA and a server certificate in `dir`.
    pub fn new(dir: &Path) -> Self {
        let ca_key = KeyPair::generate().expect("a key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "Roomer test CA");
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = params.self_signed(&ca_key).expect("a CA");
        let pki = Self {
            ca_pem: dir.join("ca.pem"),
            server_cert: dir.join("server.pem"),
            server_key: dir.join("server.key"),
            dir: dir.to_owned(),
            ca,
            ca_key,
        };
        std::fs::write(&pki.ca_pem, pki.ca.pem()).expect("write");
        let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
        let (cert, key) = pki.signed(names, "localhost");
        std::fs::write(&pki.server_cert, cert).expect("write");
        std::fs::write(&pki.server_key, key).expect("write");
        pki
    }

    /// A client certificate with common name `name`, signed by the CA: (certificate PEM
    /// file, key PEM file).
    pub fn client(&self, name: &str) -> (PathBuf, PathBuf) {
        let (cert, key) = self.signed(Vec::new(), name);
        let paths = (
            self.dir.join(format!("{name}.pem")),
            self.dir.join(format!("{name}.key")),
        );
        std::fs::write(&paths.0, cert).expect("write");
        std::fs::write(&paths.1, key).expect("write");
        paths
    }

    /// A client configuration (rustls, aws-lc-rs) that trusts this CA, presenting `client`
    /// (certificate and key files, as [`client`](Self::client) makes) if given.
    pub fn client_config(&self, client: Option<(&Path, &Path)>) -> rustls::ClientConfig {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_file(&self.ca_pem).expect("the CA"))
            .expect("a CA");
        let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_root_certificates(roots);
        match client {
            None => builder.with_no_client_auth(),
            Some((cert, key)) => builder
                .with_client_auth_cert(
                    vec![CertificateDer::from_pem_file(cert).expect("a certificate")],
                    PrivateKeyDer::from_pem_file(key).expect("a key"),
                )
                .expect("a client certificate"),
        }
    }

    fn signed(&self, names: Vec<String>, common_name: &str) -> (String, String) {
        let key = KeyPair::generate().expect("a key");
        let mut params = CertificateParams::new(names).expect("params");
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        let cert = params
            .signed_by(&key, &self.ca, &self.ca_key)
            .expect("signed");
        (cert.pem(), key.serialize_pem())
    }
}
