//! The broker's settings, and their translation into rumqttd's.
//!
//! rumqttd's `RouterConfig::default()` is all zeros, and zero is fatal: a zero segment size
//! makes the router thread panic at the first subscription, and zero connections rejects every
//! client without a CONNACK. So every rumqttd field is filled in here explicitly.

use crate::access::Gatekeeper;
use crate::front::LinkSettings;
use rumqttd::{RouterConfig, Strategy};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// rumqttd compares its payload limit with a PUBLISH's *remaining length* (topic, packet id and
/// payload), so the limit handed to rumqttd is the payload limit plus this much room for the
/// header. Roomer's topics (`dpus/{id}/crossings`, ids of at most 64 characters) fit easily.
pub const HEADER_SLACK_BYTES: usize = 1024;

/// How long a client has, after opening TCP, to send its CONNECT. Also bounds how long idle
/// sockets (port scanners, half-open clients) hold a socket.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How many QoS 0 messages the router reads per scheduling pass and per connection.
const MAX_OUTGOING_PACKET_COUNT: u64 = 200;

/// How many incoming packets a connection hands the router at once (not a protocol in-flight
/// window).
const MAX_BATCH: usize = 100;

/// What Roomer lets one configure about its embedded broker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerConfig {
    /// MQTT 3.1.1 listener. Port 0 picks a free port; read it back with
    /// [`EmbeddedBroker::local_addr`](crate::EmbeddedBroker::local_addr).
    pub listen: SocketAddr,
    /// An optional MQTT 5 listener on a second address (port 0 picks a free port too).
    /// Both listeners share one router: a v5 publisher reaches v4 subscribers and back.
    pub listen_v5: Option<SocketAddr>,
    /// An optional MQTT 3.1.1-over-TLS listener, sharing the router too.
    pub tls: Option<crate::tls::TlsSettings>,
    /// The largest PUBLISH payload accepted. A bigger one disconnects its sender.
    pub max_payload_bytes: usize,
    /// Connections beyond this get CONNACK "server unavailable" (and are counted as refused).
    pub max_connections: usize,
    /// Size of one in-memory log segment. rumqttd keeps one log per subscribed filter, of up to
    /// `segment_count` segments: memory per filter is bounded by `segment_bytes * segment_count`,
    /// counting each message as topic + payload + 4 bytes (rumqttd adds about 230 bytes of its
    /// own per message on top). The log is a ring: it fills up with traffic whether or not the
    /// subscribers keep up, and a subscriber that lags further behind than it holds loses the
    /// oldest messages (counted by [`meters`](crate::meters)).
    ///
    /// Default 4 × 64 MiB: about 3 million one-crossing messages (~85 bytes each), i.e. 25
    /// minutes of a 100,000-DPU fleet at 2,000 crossings/s that the worker may fall behind —
    /// a restart or a database outage — without loss; about 1 GB of memory once full.
    /// Must be at least 1 KiB (rumqttd panics below that; smaller values are raised to 1 KiB).
    pub segment_bytes: usize,
    /// Segments kept per filter before the oldest is dropped.
    pub segment_count: usize,
    /// How often the supervisor checks, with a real MQTT handshake, that the broker still
    /// serves; after a few failed checks in a row it restarts the broker in place (see
    /// [`supervisor`](crate::supervisor)). `None` disables the supervisor.
    pub health_interval: Option<Duration>,
    /// Acknowledge a DPU's QoS 1 message only once an ingest worker, a client whose id
    /// starts with this, has acknowledged it (which it does after storing it). Then a crash
    /// loses nothing a DPU was told is safe. `None`: rumqttd acknowledges on receipt.
    /// `roomer serve` sets its worker's client id.
    pub ack_after_store_by: Option<String>,
    /// With `ack_after_store_by`: how long a DPU's message may wait to be stored before the
    /// broker closes that DPU's connection, so that the DPU, which still holds the message,
    /// sends it again (after a log the worker lagged past dropped it, say). Default 5 min.
    pub store_timeout: Duration,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 1883)),
            listen_v5: None,
            tls: None,
            max_payload_bytes: 1024 * 1024,
            max_connections: 100_000,
            segment_bytes: 64 * 1024 * 1024,
            segment_count: 4,
            health_interval: Some(Duration::from_secs(2)),
            ack_after_store_by: None,
            store_timeout: Duration::from_secs(300),
        }
    }
}

impl BrokerConfig {
    /// A configuration listening on `listen`, everything else at its default.
    pub fn on(listen: SocketAddr) -> Self {
        Self {
            listen,
            ..Self::default()
        }
    }

    /// The router settings rumqttd needs, every field filled in.
    pub(crate) fn router(&self) -> RouterConfig {
        RouterConfig {
            max_connections: self.max_connections.max(1),
            max_outgoing_packet_count: MAX_OUTGOING_PACKET_COUNT,
            max_segment_size: self.segment_bytes.max(1024),
            max_segment_count: self.segment_count.max(1),
            custom_segment: None,
            initialized_filters: None,
            shared_subscriptions_strategy: Strategy::RoundRobin,
        }
    }

    /// What every connection of a listener is held to.
    pub(crate) fn link_settings(&self, gatekeeper: Arc<Gatekeeper>) -> LinkSettings {
        LinkSettings {
            gatekeeper,
            connect_timeout: CONNECT_TIMEOUT,
            max_packet_bytes: self.max_payload_bytes.saturating_add(HEADER_SLACK_BYTES),
            max_connections: self.max_connections.max(1),
            max_batch: MAX_BATCH,
            store_readers: self.ack_after_store_by.clone(),
            store_timeout: self.store_timeout,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_documented_ones_and_safe_for_rumqttd() {
        let config = BrokerConfig::default();
        assert_eq!(config.listen, "127.0.0.1:1883".parse().unwrap());
        let router = config.router();
        assert_eq!(router.max_segment_size, 64 * 1024 * 1024);
        assert_eq!(router.max_segment_count, 4);
        assert_eq!(router.max_connections, 100_000);
        assert_eq!(config.health_interval, Some(Duration::from_secs(2)));
        let open = Arc::new(Gatekeeper::new(crate::Access::open()));
        let link = config.link_settings(open);
        assert_eq!(link.max_packet_bytes, 1024 * 1024 + HEADER_SLACK_BYTES);
        assert_eq!(link.max_connections, 100_000);
    }

    #[test]
    fn zero_sizes_are_raised_to_what_rumqttd_survives() {
        let config = BrokerConfig {
            segment_bytes: 0,
            segment_count: 0,
            max_connections: 0,
            ..BrokerConfig::default()
        };
        let router = config.router();
        assert!(router.max_segment_size >= 1024);
        assert!(router.max_segment_count >= 1);
        assert!(router.max_connections >= 1);
    }
}
