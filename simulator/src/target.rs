//! Where the simulated DPUs publish.

use crate::error::SimError;
use std::fmt;
use std::str::FromStr;

/// An MQTT broker's address, written `mqtt://host:port` (`tcp://` is accepted too; the port
/// defaults to 1883). Plain TCP only, no credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MqttTarget {
    /// A host name or IP address; an IPv6 address without brackets.
    pub host: String,
    pub port: u16,
}

impl MqttTarget {
    pub const DEFAULT_PORT: u16 = 1883;

    pub fn parse(url: &str) -> Result<Self, SimError> {
        let bad = || SimError::BadTarget(url.to_owned());
        let rest = url
            .strip_prefix("mqtt://")
            .or_else(|| url.strip_prefix("tcp://"))
            .ok_or_else(bad)?;
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains(['/', '?', '@', '#']) {
            return Err(bad());
        }
        let (host, port) = match rest.strip_prefix('[') {
            // [IPv6]:port
            Some(bracketed) => {
                let (host, after) = bracketed.split_once(']').ok_or_else(bad)?;
                match after {
                    "" => (host, None),
                    _ => (host, Some(after.strip_prefix(':').ok_or_else(bad)?)),
                }
            }
            None => match rest.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (rest, None),
            },
        };
        let port = match port {
            Some(port) => port.parse().map_err(|_| bad())?,
            None => Self::DEFAULT_PORT,
        };
        if host.is_empty() || port == 0 {
            return Err(bad());
        }
        Ok(Self {
            host: host.to_owned(),
            port,
        })
    }

    /// The host as a socket address wants it: IPv6 addresses in brackets.
    pub(crate) fn connect_host(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        }
    }
}

impl FromStr for MqttTarget {
    type Err = SimError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for MqttTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "mqtt://{}:{}", self.connect_host(), self.port)
    }
}

impl From<std::net::SocketAddr> for MqttTarget {
    fn from(addr: std::net::SocketAddr) -> Self {
        Self {
            host: addr.ip().to_string(),
            port: addr.port(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(host: &str, port: u16) -> MqttTarget {
        MqttTarget {
            host: host.to_owned(),
            port,
        }
    }

    #[test]
    fn host_and_port_are_read_from_the_url() {
        assert_eq!(
            MqttTarget::parse("mqtt://localhost:1884").unwrap(),
            target("localhost", 1884)
        );
        assert_eq!(
            MqttTarget::parse("tcp://10.0.0.5:1883/").unwrap(),
            target("10.0.0.5", 1883)
        );
        assert_eq!(
            MqttTarget::parse("mqtt://broker").unwrap(),
            target("broker", 1883)
        );
        assert_eq!(
            MqttTarget::parse("mqtt://[::1]:2000").unwrap(),
            target("::1", 2000)
        );
    }

    #[test]
    fn display_round_trips() {
        for url in ["mqtt://localhost:1884", "mqtt://[::1]:2000"] {
            assert_eq!(MqttTarget::parse(url).unwrap().to_string(), url);
        }
    }

    #[test]
    fn other_schemes_paths_credentials_and_bad_ports_are_refused() {
        for url in [
            "localhost:1883",
            "http://localhost:1883",
            "mqtt://",
            "mqtt://:1883",
            "mqtt://host:0",
            "mqtt://host:99999",
            "mqtt://host:port",
            "mqtt://user:pw@host:1883",
            "mqtt://host:1883/topic",
            "mqtt://[::1",
        ] {
            assert!(MqttTarget::parse(url).is_err(), "{url} was accepted");
        }
    }
}
