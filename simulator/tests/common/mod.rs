//! Shared pieces of the stories: a broker on a free port and a subscriber that records.
#![allow(dead_code)] // each test binary uses its own subset

use roomer_broker::{BrokerConfig, EmbeddedBroker};
use roomer_occupancy::payload::{parse_message, parse_topic, Topic, Validation};
use roomer_occupancy::Crossing;
use roomer_simulator::MqttTarget;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{timeout_at, Instant};

pub const PATIENCE: Duration = Duration::from_secs(10);

pub fn reference_csv() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/dpu_data.csv")
}

pub fn broker() -> EmbeddedBroker {
    EmbeddedBroker::start(BrokerConfig::on("127.0.0.1:0".parse().unwrap())).expect("broker starts")
}

pub fn target(broker: &EmbeddedBroker) -> MqttTarget {
    MqttTarget::from(broker.local_addr())
}

/// One message as a subscriber saw it.
#[derive(Clone, Debug)]
pub struct Received {
    pub topic: String,
    pub payload: Vec<u8>,
    pub retain: bool,
}

impl Received {
    /// The crossings in a `dpus/{id}/crossings` message, parsed as the backend parses them.
    pub fn crossings(&self) -> Vec<Crossing> {
        let Ok(Topic::Crossings(dpu)) = parse_topic(&self.topic) else {
            panic!("{} is not a crossings topic", self.topic);
        };
        let validation = Validation {
            now: chrono::Utc::now(),
            max_future: chrono::TimeDelta::days(1),
            oldest: None,
        };
        let parsed = parse_message(&dpu, &self.payload, &validation);
        assert!(
            parsed.rejected.is_empty(),
            "rejected: {:?}",
            parsed.rejected
        );
        parsed.crossings
    }

    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.payload).expect("UTF-8")
    }
}

/// A subscriber that, like a well-behaved ingest worker, subscribes again after every
/// (re)connection: a clean session comes back without its subscriptions.
pub struct Subscriber {
    received: mpsc::UnboundedReceiver<Received>,
    subscribed: mpsc::UnboundedReceiver<()>,
    pump: JoinHandle<()>,
}

impl Subscriber {
    pub async fn start(target: &MqttTarget, id: &str, filter: &str) -> Self {
        let mut options = MqttOptions::new(id, target.host.clone(), target.port);
        options
            .set_keep_alive(Duration::from_secs(5))
            .set_max_packet_size(2 << 20, 2 << 20);
        let (client, mut eventloop) = AsyncClient::new(options, 16);
        let (received_tx, received) = mpsc::unbounded_channel();
        let (subscribed_tx, subscribed) = mpsc::unbounded_channel();
        let filter = filter.to_owned();
        let pump = tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        let _ = client.try_subscribe(&filter, QoS::AtLeastOnce);
                    }
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        let _ = subscribed_tx.send(());
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let _ = received_tx.send(Received {
                            topic: p.topic,
                            payload: p.payload.to_vec(),
                            retain: p.retain,
                        });
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        });
        let mut subscriber = Self {
            received,
            subscribed,
            pump,
        };
        subscriber.wait_subscribed().await;
        subscriber
    }

    /// Waits for the next SUBACK (the first one, or the one after a reconnection).
    pub async fn wait_subscribed(&mut self) {
        tokio::time::timeout(PATIENCE, self.subscribed.recv())
            .await
            .expect("subscribed in time")
            .expect("subscriber alive");
    }

    pub async fn next(&mut self) -> Option<Received> {
        timeout_at(Instant::now() + PATIENCE, self.received.recv())
            .await
            .ok()
            .flatten()
    }

    /// Collects messages until `done`, shown each new message, says that was the last one
    /// needed; or returns what it has after `PATIENCE` of silence.
    pub async fn collect_until(
        &mut self,
        mut done: impl FnMut(&Received) -> bool,
    ) -> Vec<Received> {
        let mut all = Vec::new();
        while let Some(message) = self.next().await {
            let finished = done(&message);
            all.push(message);
            if finished {
                break;
            }
        }
        all
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.pump.abort();
    }
}

/// Crossings as sortable keys, to compare multisets.
pub fn keys(crossings: &[Crossing]) -> Vec<(String, String, i64, Option<u64>)> {
    let mut keys: Vec<_> = crossings
        .iter()
        .map(|c| {
            (
                c.dpu.to_string(),
                c.ts.to_rfc3339(),
                c.direction.as_i64(),
                c.event_id,
            )
        })
        .collect();
    keys.sort();
    keys
}
