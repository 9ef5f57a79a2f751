//! How Roomer's MQTT clients (ingest workers, APIs, simulated DPUs) name a broker: a URL,
//! `mqtt://[user[:password]@]host[:port]` (port 1883 by default; `tcp://` too) or `mqtts://…`
//! for TLS (port 8883; `ssl://` too). User name and password are percent-decoded, so a `@`
//! or `:` in them is written `%40`, `%3A`. Neither `Debug` nor `Display` shows a password.

use std::fmt;

/// A user name and password for a broker.
#[derive(Clone, PartialEq, Eq)]
pub struct MqttLogin {
    pub username: String,
    pub password: String,
}

impl MqttLogin {
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Self {
            username: username.into(),
            password: password.into(),
        }
    }
}

impl fmt::Debug for MqttLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MqttLogin({:?}, password hidden)", self.username)
    }
}

/// A broker's address, as parsed from its URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerUrl {
    /// A host name or IP address; an IPv6 address without brackets.
    pub host: String,
    pub port: u16,
    /// MQTT over TLS.
    pub tls: bool,
    pub login: Option<MqttLogin>,
}

/// Why a string is not a broker URL.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "{0:?} is not an MQTT address like mqtt://host:1883 or mqtts://user:password@host:8883 ({1})"
)]
pub struct BadBrokerUrl(pub String, pub &'static str);

impl BrokerUrl {
    pub const PORT: u16 = 1883;
    pub const TLS_PORT: u16 = 8883;

    pub fn parse(text: &str) -> Result<Self, BadBrokerUrl> {
        // The password is never repeated in an error.
        let shown = redact(text);
        let bad = |why| BadBrokerUrl(shown.clone(), why);
        let url = url::Url::parse(text).map_err(|_| bad("not a URL"))?;
        let tls = match url.scheme() {
            "mqtt" | "tcp" => false,
            "mqtts" | "ssl" => true,
            _ => return Err(bad("the scheme is mqtt, tcp, mqtts or ssl")),
        };
        if !matches!(url.path(), "" | "/") || url.query().is_some() || url.fragment().is_some() {
            return Err(bad("a broker URL has no path, query or fragment"));
        }
        let host = match url.host() {
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            Some(url::Host::Ipv4(ip)) => ip.to_string(),
            Some(url::Host::Domain(name)) if !name.is_empty() => decode(name)?,
            _ => return Err(bad("no host")),
        };
        let port = url
            .port()
            .unwrap_or(if tls { Self::TLS_PORT } else { Self::PORT });
        if port == 0 {
            return Err(bad("port 0"));
        }
        let login = match (url.username(), url.password()) {
            ("", None) => None,
            ("", Some(_)) => return Err(bad("a password without a user name")),
            (user, password) => Some(MqttLogin::new(
                decode(user)?,
                decode(password.unwrap_or(""))?,
            )),
        };
        Ok(Self {
            host,
            port,
            tls,
            login,
        })
    }

    /// The host as a socket address wants it: IPv6 addresses in brackets.
    pub fn connect_host(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        }
    }
}

impl fmt::Display for BrokerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.tls { "mqtts" } else { "mqtt" };
        let user = match &self.login {
            Some(login) => format!("{}@", login.username),
            None => String::new(),
        };
        write!(f, "{scheme}://{user}{}:{}", self.connect_host(), self.port)
    }
}

fn decode(text: &str) -> Result<String, BadBrokerUrl> {
    percent_encoding::percent_decode_str(text)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| BadBrokerUrl(text.to_owned(), "not UTF-8 once decoded"))
}

/// `text` with whatever stands between `:` and `@` in its authority replaced by `***`.
fn redact(text: &str) -> String {
    let Some((scheme, rest)) = text.split_once("://") else {
        return text.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
            let hidden = if userinfo.contains(':') { ":***" } else { "" };
            format!("{scheme}://{user}{hidden}@{host}{tail}")
        }
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(host: &str, port: u16, tls: bool, login: Option<(&str, &str)>) -> BrokerUrl {
        BrokerUrl {
            host: host.into(),
            port,
            tls,
            login: login.map(|(u, p)| MqttLogin::new(u, p)),
        }
    }

    #[test]
    fn host_port_tls_and_login_are_read() {
        let cases = [
            ("mqtt://localhost:1884", url("localhost", 1884, false, None)),
            ("tcp://10.0.0.5:1883/", url("10.0.0.5", 1883, false, None)),
            ("mqtt://broker", url("broker", 1883, false, None)),
            ("mqtt://[::1]:2000", url("::1", 2000, false, None)),
            ("mqtts://broker", url("broker", 8883, true, None)),
            ("ssl://broker:9000", url("broker", 9000, true, None)),
            (
                "mqtt://roomer:s3cret@broker:1883",
                url("broker", 1883, false, Some(("roomer", "s3cret"))),
            ),
            (
                "mqtts://dpu%2D1:p%40ss%3Aw@broker",
                url("broker", 8883, true, Some(("dpu-1", "p@ss:w"))),
            ),
            (
                "mqtt://user@broker",
                url("broker", 1883, false, Some(("user", ""))),
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(BrokerUrl::parse(text).as_ref(), Ok(&expected), "{text}");
        }
    }

    #[test]
    fn display_round_trips_without_the_password() {
        for text in [
            "mqtt://localhost:1884",
            "mqtt://[::1]:2000",
            "mqtts://broker:8883",
        ] {
            assert_eq!(BrokerUrl::parse(text).unwrap().to_string(), text);
        }
        let with_login = BrokerUrl::parse("mqtts://roomer:s3cret@broker").unwrap();
        assert_eq!(with_login.to_string(), "mqtts://roomer@broker:8883");
        assert!(!format!("{with_login:?}").contains("s3cret"));
    }

    #[test]
    fn other_schemes_paths_and_bad_ports_are_refused_without_showing_a_password() {
        for text in [
            "localhost:1883",
            "http://localhost:1883",
            "mqtt://",
            "mqtt://:1883",
            "mqtt://host:0",
            "mqtt://host:99999",
            "mqtt://host:port",
            "mqtt://host:1883/topic",
            "mqtt://host:1883?x=1",
            "mqtt://[::1",
            "mqtt://:s3cret@host",
        ] {
            assert!(BrokerUrl::parse(text).is_err(), "{text} was accepted");
        }
        let error = BrokerUrl::parse("mqtt://roomer:s3cret@host:1883/topic").unwrap_err();
        assert!(!error.to_string().contains("s3cret"), "{error}");
        assert!(error.to_string().contains("roomer:***@host"), "{error}");
    }
}
