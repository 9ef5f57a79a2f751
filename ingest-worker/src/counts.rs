//! Count updates on MQTT: after each commit, the current count of every space the batch
//! touched goes to `spaces/{id}/count` (retained, QoS 1), so an operator can watch a space
//! with any MQTT client.
//!
//! It has a connection of its own: publishing through the subscriber's client could wait on
//! a request channel that only drains while the subscriber is free, and the subscriber waits
//! on the applier.

use occupancy::{SpaceId, Timestamp};
use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, QoS};
use serde_json::json;
use std::time::Duration;

/// The topic a space's count is published on.
pub fn count_topic(space: SpaceId) -> String {
    format!("spaces/{space}/count")
}

/// The retained payload: `{"space_id": 1, "count": 3, "ts": "…"}`; `ts` is when the count
/// was read, right after the commit.
pub fn count_payload(space: SpaceId, count: i64, ts: Timestamp) -> Vec<u8> {
    json!({ "space_id": space, "count": count, "ts": ts })
        .to_string()
        .into_bytes()
}

pub(crate) struct CountPublisher {
    client: AsyncClient,
    task: tokio::task::JoinHandle<()>,
}

impl CountPublisher {
    pub(crate) fn connect(host: &str, port: u16, client_id: String) -> Self {
        let mut options = MqttOptions::new(client_id, host, port);
        options.set_keep_alive(Duration::from_secs(30));
        let (client, eventloop) = AsyncClient::new(options, 1024);
        let task = tokio::spawn(drive(eventloop));
        Self { client, task }
    }

    pub(crate) async fn publish(&self, space: SpaceId, count: i64, ts: Timestamp) {
        let payload = count_payload(space, count, ts);
        if let Err(e) = self
            .client
            .publish(count_topic(space), QoS::AtLeastOnce, true, payload)
            .await
        {
            tracing::warn!(space, error = %e, "could not publish a count update");
        }
    }

    pub(crate) async fn close(self) {
        let _ = self.client.try_disconnect();
        if tokio::time::timeout(Duration::from_secs(2), self.task)
            .await
            .is_err()
        {
            tracing::warn!("count publisher did not close in time");
        }
    }
}

async fn drive(mut eventloop: EventLoop) {
    let mut backoff = Duration::from_millis(100);
    loop {
        match eventloop.poll().await {
            Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect)) => return,
            Ok(_) => backoff = Duration::from_millis(100),
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?backoff, "count publisher lost its MQTT connection");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}
