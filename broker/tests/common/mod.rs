//! A real MQTT client for the stories: rumqttc over TCP, its event loop pumped by a task.
#![allow(dead_code)] // Each test binary uses its own subset.

use roomer_broker::{BrokerConfig, EmbeddedBroker};
use rumqttc::{AsyncClient, Event, LastWill, MqttOptions, Packet, Publish, QoS};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{timeout_at, Instant};

/// How long a story waits for something that should happen at once.
pub const PATIENCE: Duration = Duration::from_secs(5);

/// A broker on a free port of the loopback interface.
pub fn broker() -> EmbeddedBroker {
    EmbeddedBroker::start(BrokerConfig::on(free_addr())).expect("the broker starts")
}

/// Port 0: the broker picks a free port, read back with `local_addr`.
pub fn free_addr() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// What a client saw, in order.
#[derive(Debug)]
pub enum Seen {
    ConnAck,
    SubAck,
    PubAck,
    Publish(Publish),
}

pub struct TestClient {
    pub client: AsyncClient,
    seen: mpsc::UnboundedReceiver<Seen>,
    pump: JoinHandle<()>,
}

/// Connects (in the background) a client with a clean session, 2 MiB packets both ways.
pub fn connect(addr: SocketAddr, id: &str, will: Option<LastWill>) -> TestClient {
    let mut options = MqttOptions::new(id, addr.ip().to_string(), addr.port());
    options
        .set_keep_alive(Duration::from_secs(5))
        .set_max_packet_size(2 << 20, 2 << 20);
    if let Some(will) = will {
        options.set_last_will(will);
    }
    start(options)
}

/// Like [`connect`], but with a persistent session: what it misses while away is kept.
pub fn connect_persistent(addr: SocketAddr, id: &str) -> TestClient {
    let mut options = MqttOptions::new(id, addr.ip().to_string(), addr.port());
    options
        .set_keep_alive(Duration::from_secs(5))
        .set_clean_session(false)
        .set_max_packet_size(2 << 20, 2 << 20);
    start(options)
}

/// A client with `options`, its event loop pumped in the background.
pub fn start(options: MqttOptions) -> TestClient {
    let (client, mut eventloop) = AsyncClient::new(options, 16);
    let (tx, seen) = mpsc::unbounded_channel();
    let pump = tokio::spawn(async move {
        loop {
            let seen = match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => Seen::ConnAck,
                Ok(Event::Incoming(Packet::SubAck(_))) => Seen::SubAck,
                Ok(Event::Incoming(Packet::PubAck(_))) => Seen::PubAck,
                Ok(Event::Incoming(Packet::Publish(publish))) => Seen::Publish(publish),
                Ok(_) => continue,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            if tx.send(seen).is_err() {
                return;
            }
        }
    });
    TestClient { client, seen, pump }
}

impl TestClient {
    /// The next thing seen that `pick` accepts, or `None` after `PATIENCE`.
    pub async fn wait_for<T>(&mut self, pick: impl FnMut(Seen) -> Option<T>) -> Option<T> {
        self.wait_for_within(PATIENCE, pick).await
    }

    /// The next thing seen that `pick` accepts, or `None` after `patience`.
    pub async fn wait_for_within<T>(
        &mut self,
        patience: Duration,
        mut pick: impl FnMut(Seen) -> Option<T>,
    ) -> Option<T> {
        let deadline = Instant::now() + patience;
        loop {
            match timeout_at(deadline, self.seen.recv()).await {
                Ok(Some(seen)) => {
                    if let Some(found) = pick(seen) {
                        return Some(found);
                    }
                }
                Ok(None) | Err(_) => return None,
            }
        }
    }

    /// Subscribes and waits for the SUBACK, so that later publishes are routed to us.
    /// A clean session forgets a subscription when the connection drops (a slow machine's
    /// broker supervisor may restart the broker under load), so like any real client this
    /// one subscribes again after reconnecting.
    pub async fn subscribe(&mut self, filter: &str) {
        for _ in 0..3 {
            self.client
                .subscribe(filter, QoS::AtLeastOnce)
                .await
                .expect("subscribe request queued");
            let answer = self
                .wait_for(|s| match s {
                    Seen::SubAck => Some(true),
                    Seen::ConnAck => Some(false),
                    _ => None,
                })
                .await;
            match answer {
                Some(true) => return,
                Some(false) => continue, // reconnected: subscribe again
                None => break,
            }
        }
        panic!("no SUBACK for {filter}");
    }

    pub async fn next_publish(&mut self) -> Option<Publish> {
        self.wait_for(|s| match s {
            Seen::Publish(p) => Some(p),
            _ => None,
        })
        .await
    }

    /// Hands a QoS 1 publish to the client without waiting for its PUBACK.
    pub async fn publish_qos1(&mut self, topic: &str, retain: bool, payload: Vec<u8>) {
        self.client
            .publish(topic, QoS::AtLeastOnce, retain, payload)
            .await
            .expect("publish request queued");
    }

    /// Publishes at QoS 1 and waits for the broker's PUBACK.
    pub async fn publish_acked(&mut self, topic: &str, retain: bool, payload: Vec<u8>) {
        self.publish_qos1(topic, retain, payload).await;
        self.wait_for(|s| matches!(s, Seen::PubAck).then_some(()))
            .await
            .unwrap_or_else(|| panic!("no PUBACK for {topic}"));
    }

    /// Drops the TCP connection without a DISCONNECT, like a device losing power.
    pub fn kill(self) {
        self.pump.abort();
    }
}

impl Drop for TestClient {
    fn drop(&mut self) {
        self.pump.abort();
    }
}
