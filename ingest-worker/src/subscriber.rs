//! The MQTT side: one rumqttc event loop with a persistent session and manual acks.

use crate::{IngestConfig, IngestStats};
use roomer_occupancy::Timestamp;
use rumqttc::{AsyncClient, Event, EventLoop, Outgoing, Packet, Publish, QoS, SubscribeFilter};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

const BACKOFF_START: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// A publish handed to the applier, tagged with the connection it came on: acks for a
/// previous connection must not be sent (the broker would drop the new connection for an
/// out-of-order ack; it redelivers those messages anyway).
pub(crate) struct Message {
    pub publish: Publish,
    pub connection: u64,
    pub received_at: Timestamp,
}

pub(crate) fn connect(config: &IngestConfig) -> (AsyncClient, EventLoop) {
    let mut options = config.mqtt_options(&config.client_id);
    options
        .set_keep_alive(Duration::from_secs(30))
        // A persistent session: what the broker sent but we did not ack is sent again.
        .set_clean_session(false)
        .set_manual_acks(true)
        .set_max_packet_size(config.max_packet_bytes, config.max_packet_bytes);
    AsyncClient::new(options, 1024)
}

/// Polls the event loop until the worker disconnects. Each (re)connection bumps
/// `connection` and subscribes again.
pub(crate) async fn run(
    client: AsyncClient,
    mut eventloop: EventLoop,
    filters: Vec<String>,
    messages: mpsc::Sender<Message>,
    stats: Arc<IngestStats>,
    connection: Arc<AtomicU64>,
) {
    let mut backoff = BACKOFF_START;
    loop {
        match eventloop.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                let id = connection.fetch_add(1, Ordering::SeqCst) + 1;
                backoff = BACKOFF_START;
                tracing::info!(
                    connection = id,
                    session_present = ack.session_present,
                    ?filters,
                    "connected to MQTT broker"
                );
                // try_subscribe: this task is the one that drains the request channel.
                let subscription = filters
                    .iter()
                    .map(|f| SubscribeFilter::new(f.clone(), QoS::AtLeastOnce));
                if let Err(e) = client.try_subscribe_many(subscription) {
                    tracing::error!(error = %e, "could not subscribe");
                }
            }
            Ok(Event::Incoming(Packet::Publish(publish))) => {
                IngestStats::add(&stats.messages, 1);
                let message = Message {
                    publish,
                    connection: connection.load(Ordering::SeqCst),
                    received_at: chrono::Utc::now(),
                };
                // Blocks while the applier is busy: backpressure. A closed channel means
                // the worker is stopping; the message stays unacknowledged.
                let _ = messages.send(message).await;
            }
            Ok(Event::Incoming(Packet::SubAck(_))) => {
                stats.connected.store(true, Ordering::Relaxed);
                tracing::info!(?filters, "subscribed");
            }
            Ok(Event::Outgoing(Outgoing::Disconnect)) => return,
            Ok(_) => {}
            Err(e) => {
                stats.connected.store(false, Ordering::Relaxed);
                tracing::warn!(error = %e, retry_in = ?backoff, "MQTT connection lost");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
}
