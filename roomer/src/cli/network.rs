//! Where Roomer's servers listen and how its clients reach a broker: addresses, logins and
//! TLS, for the HTTP API and for MQTT.

use clap::Args;
use std::net::SocketAddr;
use std::path::PathBuf;
#[derive(Debug, Args)]
pub struct HttpArgs {
    /// Where the HTTP API listens.
    #[arg(long, env = "ROOMER_HTTP_ADDR", default_value = "127.0.0.1:8000")]
    pub http_addr: SocketAddr,
    /// Let reads through without a token (writes always need an admin token). Default: true
    /// when the API listens on loopback only, false otherwise.
    /// `--public-read` alone means true; `--public-read false` turns it off on loopback.
    #[arg(
        long,
        env = "ROOMER_PUBLIC_READ",
        num_args = 0..=1,
        default_missing_value = "true",
        action = clap::ArgAction::Set
    )]
    pub public_read: Option<bool>,
    /// An origin whose pages may call the API from a browser (CORS), such as
    /// `https://dash.example.com`; repeat the flag or separate with commas; `*` for any.
    /// None by default: browsers then only let pages of the API's own origin call it.
    #[arg(
        long = "cors-origin",
        env = "ROOMER_CORS_ORIGIN",
        value_delimiter = ','
    )]
    pub cors_origins: Vec<String>,
    /// PEM certificate chain: with --http-tls-key, the API is served as HTTPS (rustls).
    #[arg(long, env = "ROOMER_HTTP_TLS_CERT", requires = "http_tls_key")]
    pub http_tls_cert: Option<PathBuf>,
    /// PEM private key of --http-tls-cert.
    #[arg(long, env = "ROOMER_HTTP_TLS_KEY", requires = "http_tls_cert")]
    pub http_tls_key: Option<PathBuf>,
}

impl HttpArgs {
    /// `--http-tls-cert` and `--http-tls-key`, when both are given.
    pub fn tls_files(&self) -> Option<roomer::TlsFiles> {
        Some(roomer::TlsFiles {
            cert_chain: self.http_tls_cert.clone()?,
            private_key: self.http_tls_key.clone()?,
        })
    }

    /// The `--cors-origin` values, checked.
    pub fn cors(&self) -> anyhow::Result<roomer_api::cors::CorsOrigins> {
        Ok(roomer_api::cors::CorsOrigins::parse(&self.cors_origins)?)
    }

    /// Whether reads are public, and says so in the log when they are.
    pub fn public_read(&self) -> bool {
        let public = self
            .public_read
            .unwrap_or_else(|| self.http_addr.ip().is_loopback());
        if public {
            tracing::warn!(
                http = %self.http_addr,
                "reads need no token (--public-read; the default on loopback); writes need an \
                 admin token: roomer token create --role admin"
            );
        }
        public
    }
}

#[derive(Debug, Args)]
pub struct MqttListenArgs {
    /// Where the embedded MQTT broker listens for DPUs.
    #[arg(long, env = "ROOMER_MQTT_ADDR", default_value = "127.0.0.1:1883")]
    pub mqtt_addr: SocketAddr,
    /// The embedded broker keeps, per subscribed topic filter, the last
    /// `broker-segments × broker-segment-bytes` of messages (counted as topic + payload + 4
    /// bytes) for subscribers that lag; a subscriber further behind loses the oldest (logged
    /// and counted in the meters).
    #[arg(long, env = "ROOMER_BROKER_SEGMENT_BYTES", default_value_t = roomer_broker::BrokerConfig::default().segment_bytes)]
    pub broker_segment_bytes: usize,
    #[arg(long, env = "ROOMER_BROKER_SEGMENTS", default_value_t = roomer_broker::BrokerConfig::default().segment_count)]
    pub broker_segments: usize,
    /// Connections the embedded broker accepts; beyond them a client gets CONNACK "server
    /// unavailable". Reserving room costs no memory until used; each open connection costs
    /// about 21 KB, and one open file (the broker raises its soft limit to the hard one).
    #[arg(long, env = "ROOMER_BROKER_MAX_CONNECTIONS", default_value_t = roomer_broker::BrokerConfig::default().max_connections)]
    pub broker_max_connections: usize,
    /// Whether DPUs must log in to the embedded broker (user name: the DPU id; password: a
    /// secret from `roomer dpu credentials create`). Default: `required` when the broker
    /// listens beyond loopback, `off` on loopback.
    #[arg(long, env = "ROOMER_MQTT_AUTH", value_enum)]
    pub mqtt_auth: Option<MqttAuth>,
    /// The password of Roomer's own account (user name `roomer`) on the embedded broker, for
    /// workers and APIs of other processes; Roomer's topics (`spaces/…`) and client ids
    /// (`roomer-…`) are that account's alone. `roomer serve` makes a random one if unset.
    #[arg(long, env = "ROOMER_MQTT_SERVICE_PASSWORD", hide_env_values = true, value_parser = hidden)]
    pub mqtt_service_password: Option<roomer::dpu_access::Hidden>,
    /// PEM certificate chain for MQTT over TLS: with --mqtt-tls-key, the broker also serves
    /// MQTT 3.1.1 over TLS on --mqtt-tls-addr.
    #[arg(long, env = "ROOMER_MQTT_TLS_CERT", requires = "mqtt_tls_key")]
    pub mqtt_tls_cert: Option<PathBuf>,
    /// PEM private key of --mqtt-tls-cert.
    #[arg(long, env = "ROOMER_MQTT_TLS_KEY", requires = "mqtt_tls_cert")]
    pub mqtt_tls_key: Option<PathBuf>,
    /// Where MQTT over TLS listens (with --mqtt-tls-cert).
    #[arg(long, env = "ROOMER_MQTT_TLS_ADDR", default_value = "0.0.0.0:8883")]
    pub mqtt_tls_addr: SocketAddr,
    /// PEM CA certificates: set, a client of the TLS listener must present a certificate one
    /// of them signed (mutual TLS), besides its login.
    #[arg(long, env = "ROOMER_MQTT_TLS_CLIENT_CA", requires = "mqtt_tls_cert")]
    pub mqtt_tls_client_ca: Option<PathBuf>,
}

/// See [`MqttListenArgs::mqtt_auth`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum MqttAuth {
    Required,
    Off,
}

pub(super) fn hidden(text: &str) -> Result<roomer::dpu_access::Hidden, std::convert::Infallible> {
    Ok(roomer::dpu_access::Hidden(text.to_owned()))
}

/// How a client of a broker logs in and checks its certificate, besides `--mqtt-url`
/// (whose `user:password@` also logs in; these flags take precedence).
#[derive(Debug, Args)]
pub struct MqttClientArgs {
    /// The user name to log in with (an embedded broker's `roomer` account, or an account on
    /// an external broker).
    #[arg(long, env = "ROOMER_MQTT_USERNAME", requires = "mqtt_password")]
    pub mqtt_username: Option<String>,
    #[arg(long, env = "ROOMER_MQTT_PASSWORD", hide_env_values = true, value_parser = hidden, requires = "mqtt_username")]
    pub mqtt_password: Option<roomer::dpu_access::Hidden>,
    /// PEM CA certificates an `mqtts://` broker's certificate is checked against (default:
    /// the system's trusted certificates).
    #[arg(long, env = "ROOMER_MQTT_CA")]
    pub mqtt_ca: Option<PathBuf>,
}

impl MqttClientArgs {
    /// The broker at `url`, with these flags' login and CA.
    pub fn target(&self, url: &str) -> anyhow::Result<roomer_simulator::MqttTarget> {
        let mut target = roomer_simulator::MqttTarget::parse(url)?;
        if let Some(ca) = &self.mqtt_ca {
            anyhow::ensure!(target.tls.is_some(), "--mqtt-ca is for mqtts:// brokers");
            target = target.with_ca(ca)?;
        }
        if let (Some(user), Some(password)) = (&self.mqtt_username, &self.mqtt_password) {
            target.login = Some(roomer_ingest::MqttLogin::new(user, &password.0));
        }
        Ok(target)
    }
}

impl MqttListenArgs {
    /// `--mqtt-auth`, or its default for the listen address; says so in the log when DPUs
    /// beyond loopback need no login.
    pub fn auth_mode(&self) -> roomer_broker::AuthMode {
        let tls_beyond = self.tls().is_some_and(|tls| !tls.listen.ip().is_loopback());
        let loopback = self.mqtt_addr.ip().is_loopback() && !tls_beyond;
        let required = match self.mqtt_auth {
            Some(mode) => mode == MqttAuth::Required,
            None => !loopback,
        };
        if !required && !loopback {
            tracing::warn!(mqtt = %self.mqtt_addr, "--mqtt-auth off: any client that reaches the broker beyond loopback can publish crossings for any DPU");
        }
        if required {
            roomer_broker::AuthMode::Required
        } else {
            roomer_broker::AuthMode::Off
        }
    }

    /// The TLS listener, when a certificate and key are given.
    pub fn tls(&self) -> Option<roomer_broker::TlsSettings> {
        Some(roomer_broker::TlsSettings {
            listen: self.mqtt_tls_addr,
            cert_chain: self.mqtt_tls_cert.clone()?,
            private_key: self.mqtt_tls_key.clone()?,
            client_ca: self.mqtt_tls_client_ca.clone(),
        })
    }

    pub fn broker_config(&self) -> roomer_broker::BrokerConfig {
        roomer_broker::BrokerConfig {
            tls: self.tls(),
            segment_bytes: self.broker_segment_bytes,
            segment_count: self.broker_segments,
            max_connections: self.broker_max_connections,
            ..roomer_broker::BrokerConfig::on(self.mqtt_addr)
        }
    }
}
