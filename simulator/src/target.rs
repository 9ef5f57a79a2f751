//! Where simulated DPUs (and Roomer's other MQTT clients) connect: a broker's URL (see
//! `roomer_occupancy::broker_url`), with its login and, for `mqtts://`, a TLS client configuration.

use crate::error::SimError;
use roomer_occupancy::broker_url::{BrokerUrl, MqttLogin};
use rumqttc::{MqttOptions, TlsConfiguration, Transport};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

/// A broker to connect to.
#[derive(Clone)]
pub struct MqttTarget {
    /// A host name or IP address; an IPv6 address without brackets.
    pub host: String,
    pub port: u16,
    /// Every client's login; a DPU with a secret of its own logs in with that instead.
    pub login: Option<MqttLogin>,
    /// TLS, for `mqtts://`: the certificates the broker's is checked against.
    pub tls: Option<TlsConfiguration>,
}

impl MqttTarget {
    pub const DEFAULT_PORT: u16 = BrokerUrl::PORT;

    /// A target from its URL; for `mqtts://` the broker's certificate is checked against the
    /// system's trusted certificates (see [`with_ca`](Self::with_ca) for a private CA).
    pub fn parse(url: &str) -> Result<Self, SimError> {
        let url = BrokerUrl::parse(url).map_err(|e| SimError::BadTarget(e.to_string()))?;
        Ok(Self {
            tls: url.tls.then(|| client_tls(None)).transpose()?,
            host: url.host,
            port: url.port,
            login: url.login,
        })
    }

    /// Checks the broker's certificate against the CA certificates in the PEM file `ca`
    /// instead of the system's (for `mqtts://` targets only).
    pub fn with_ca(mut self, ca: &Path) -> Result<Self, SimError> {
        if self.tls.is_some() {
            self.tls = Some(client_tls(Some(ca))?);
        }
        Ok(self)
    }

    /// The host as a socket address wants it: IPv6 addresses in brackets.
    pub(crate) fn connect_host(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        }
    }

    /// Options for a client `client_id` of this broker: its address, login and TLS.
    pub fn options(&self, client_id: impl Into<String>) -> MqttOptions {
        let mut options = MqttOptions::new(client_id, self.connect_host(), self.port);
        if let Some(login) = &self.login {
            options.set_credentials(&login.username, &login.password);
        }
        if let Some(tls) = &self.tls {
            options.set_transport(Transport::tls_with_config(tls.clone()));
        }
        options
    }
}

/// A TLS client configuration (rustls, aws-lc-rs) that trusts the CA certificates in the PEM
/// file `ca`, or the system's trusted certificates without one.
pub fn client_tls(ca: Option<&Path>) -> Result<TlsConfiguration, SimError> {
    let bad = |what: String| SimError::Tls(what);
    let mut roots = rustls::RootCertStore::empty();
    match ca {
        Some(path) => {
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|e| {
                    bad(format!(
                        "reading CA certificates from {}: {e}",
                        path.display()
                    ))
                })?;
            for cert in certs {
                roots
                    .add(cert)
                    .map_err(|e| bad(format!("a CA certificate in {}: {e}", path.display())))?;
            }
        }
        None => {
            let native = rustls_native_certs::load_native_certs();
            let (added, _) = roots.add_parsable_certificates(native.certs);
            if added == 0 {
                return Err(bad(format!(
                    "no trusted certificates found on this system ({:?}); give a CA file",
                    native.errors
                )));
            }
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(TlsConfiguration::Rustls(Arc::new(config)))
}

impl FromStr for MqttTarget {
    type Err = SimError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// The URL without the password.
impl fmt::Display for MqttTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let url = BrokerUrl {
            host: self.host.clone(),
            port: self.port,
            tls: self.tls.is_some(),
            login: self.login.clone(),
        };
        write!(f, "{url}")
    }
}

impl fmt::Debug for MqttTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MqttTarget({self})")
    }
}

impl From<std::net::SocketAddr> for MqttTarget {
    fn from(addr: std::net::SocketAddr) -> Self {
        Self {
            host: addr.ip().to_string(),
            port: addr.port(),
            login: None,
            tls: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_gives_address_login_and_tls() {
        let plain = MqttTarget::parse("mqtt://roomer:s3cret@localhost:1884").unwrap();
        assert_eq!((plain.host.as_str(), plain.port), ("localhost", 1884));
        assert_eq!(plain.login, Some(MqttLogin::new("roomer", "s3cret")));
        assert!(plain.tls.is_none());
        assert_eq!(plain.to_string(), "mqtt://roomer@localhost:1884");
        assert!(!format!("{plain:?}").contains("s3cret"));
        let ipv6 = MqttTarget::parse("mqtt://[::1]:2000").unwrap();
        assert_eq!(ipv6.to_string(), "mqtt://[::1]:2000");
        assert!(MqttTarget::parse("http://host").is_err());
    }

    #[test]
    fn a_private_ca_that_cannot_be_read_is_refused() {
        let target = MqttTarget::from(std::net::SocketAddr::from(([127, 0, 0, 1], 8883)));
        let secure = MqttTarget {
            tls: Some(TlsConfiguration::Simple {
                ca: Vec::new(),
                alpn: None,
                client_auth: None,
            }),
            ..target
        };
        let error = secure.with_ca(Path::new("/nowhere/ca.pem")).unwrap_err();
        assert!(error.to_string().contains("/nowhere/ca.pem"), "{error}");
    }
}
