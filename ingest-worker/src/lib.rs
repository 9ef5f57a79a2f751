//! The ingest worker: crossings arrive over MQTT, are applied to storage in batches, and are
//! acknowledged to the broker only once the batch that holds them has committed.
//!
//! # Layout
//! - [`IngestConfig`] (this file) and [`run`]: wires the two tasks below and stops them.
//! - `subscriber`: the rumqttc event loop. It subscribes to `dpus/+/crossings` and
//!   `dpus/+/status` (optionally
//!   through a shared subscription), reconnects with backoff, and hands each publish to the
//!   applier through a bounded channel: when storage is slow the channel fills, the event
//!   loop stops reading, and TCP pushes back on the broker instead of memory growing.
//! - `applier`: cuts the stream into batches (by size and time), takes them in through
//!   [`intake`], stores each in one transaction (retrying with backoff while the database is
//!   unavailable), then acks.
//! - [`intake`]: the one step from what arrived (an MQTT message, an HTTP form) to a batch:
//!   parsing and validation (`roomer_occupancy::payload`), refusals kept with their payloads,
//!   sightings, meters. The API's `POST /dpu/{id}/` takes crossings in through it too.
//! - `poison`: a batch storage refuses (not a storage fault, which is retried until it
//!   heals) is tried a bounded number of times, then message by message; a message that fails
//!   alone is set aside in the rejected list (`unappliable`) and acknowledged.
//! - `acks`: acknowledgements in arrival order, handed to rumqttc without ever blocking the
//!   applier (blocking there could deadlock against the subscriber).
//! - [`counts`]: after each commit, the touched spaces' current counts on
//!   `spaces/{id}/count` (retained), through a connection of its own.
//! - [`IngestStats`]: counters for operators and tests.
#![forbid(unsafe_code)]

mod acks;
mod applier;
pub mod counts;
pub mod intake;
mod poison;
mod stats;
mod subscriber;

pub use stats::{IngestStats, StatsSnapshot};

use roomer_storage::Store;
use std::future::Future;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// The topic filter DPUs publish crossings under.
pub use roomer_occupancy::topics::CROSSINGS_FILTER;
/// The topic filter DPUs publish `online` / `offline` under.
pub use roomer_occupancy::topics::STATUS_FILTER;

pub use roomer_occupancy::broker_url::MqttLogin;

/// Where to read from and how to batch.
#[derive(Clone, Debug)]
pub struct IngestConfig {
    pub mqtt_host: String,
    pub mqtt_port: u16,
    /// How the worker logs in to the broker, if it must.
    pub mqtt_login: Option<MqttLogin>,
    /// MQTT over TLS, with this client configuration.
    pub mqtt_tls: Option<rumqttc::TlsConfiguration>,
    /// The worker's MQTT client id. Its session is persistent, so give each worker its own.
    pub client_id: String,
    /// Subscribe through `$share/{group}/dpus/+/crossings`, so several workers split the stream.
    pub shared_group: Option<String>,
    /// A batch is applied when it holds this many messages…
    pub batch_size: usize,
    /// …or when its first message has waited this long. Keep it short: while a batch
    /// commits, the next one queues, so batches grow with the load by themselves (group
    /// commit); every millisecond waited here is added to every crossing's latency, and with
    /// acknowledge-after-store to the DPUs' PUBACKs, which is what paces their uploads.
    pub batch_wait: Duration,
    /// …or when no further message has come for this long: the stream paused, typically
    /// because the broker's in-flight window is full and waits for this batch's
    /// acknowledgements, so waiting longer would only add latency.
    pub batch_quiet: Duration,
    /// How far ahead of this server's clock an event may be before it is refused.
    pub max_future: Duration,
    /// Largest MQTT packet accepted (bulk uploads can be large).
    pub max_packet_bytes: usize,
    /// Publish counts to `spaces/{id}/count`: after each commit, at daily resets, and
    /// whenever a reconciliation finds one changed otherwise.
    pub publish_counts: bool,
    /// How often every space's count is compared with what was last published (see
    /// `counts`): the longest a count changed by something other than this worker's commits
    /// or a daily reset (a layout edit, another worker) waits to be published.
    pub reconcile_counts_every: Duration,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            mqtt_host: "127.0.0.1".into(),
            mqtt_port: 1883,
            mqtt_login: None,
            mqtt_tls: None,
            client_id: "roomer-ingest".into(),
            shared_group: None,
            batch_size: 2000,
            batch_wait: Duration::from_millis(2),
            batch_quiet: Duration::from_millis(1),
            max_future: Duration::from_secs(10 * 60),
            max_packet_bytes: 1024 * 1024 + 1024,
            publish_counts: true,
            reconcile_counts_every: Duration::from_secs(30),
        }
    }
}

impl IngestConfig {
    /// Options for a connection `client_id` to the broker: address, login and TLS.
    pub(crate) fn mqtt_options(&self, client_id: &str) -> rumqttc::MqttOptions {
        let mut options = rumqttc::MqttOptions::new(client_id, &self.mqtt_host, self.mqtt_port);
        if let Some(login) = &self.mqtt_login {
            options.set_credentials(&login.username, &login.password);
        }
        if let Some(tls) = &self.mqtt_tls {
            options.set_transport(rumqttc::Transport::tls_with_config(tls.clone()));
        }
        options
    }

    /// The filters to subscribe to.
    pub fn filters(&self) -> Vec<String> {
        [CROSSINGS_FILTER, STATUS_FILTER]
            .into_iter()
            .map(|filter| match &self.shared_group {
                Some(group) => format!("$share/{group}/{filter}"),
                None => filter.to_owned(),
            })
            .collect()
    }
}

/// Errors that stop the worker. Everything else (broker or database unavailable) is retried.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("ingest task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Runs the worker until `shutdown` completes. It then drains: what has already arrived is
/// applied and acknowledged until the stream has been quiet for a moment (a few seconds at
/// most); anything later stays unacknowledged, so a broker that keeps the worker's session
/// delivers it again.
pub async fn run(
    store: Arc<dyn Store>,
    config: IngestConfig,
    stats: Arc<IngestStats>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), IngestError> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let (messages_tx, messages_rx) = mpsc::channel(config.batch_size.max(1) * 2);
    let (client, eventloop) = subscriber::connect(&config);
    let connection = Arc::new(AtomicU64::new(0));
    let mut subscriber = tokio::spawn(subscriber::run(
        client.clone(),
        eventloop,
        config.filters(),
        messages_tx,
        stats.clone(),
        connection.clone(),
    ));
    let counts = config.publish_counts.then(|| {
        counts::CountAnnouncer::start(
            store.clone(),
            config.mqtt_options(&format!("{}-counts", config.client_id)),
            config.reconcile_counts_every,
        )
    });
    let applier = applier::Applier {
        store,
        acks: acks::AckQueue::new(client.clone(), connection),
        config,
        stats,
        counts,
    };
    let applier = tokio::spawn(applier.run(messages_rx, stop_rx));
    shutdown.await;
    tracing::info!("ingest worker stopping");
    let _ = stop_tx.send(true);
    applier.await?;
    // The acks of the last batch are queued in the client; DISCONNECT goes out after them.
    let _ = client.try_disconnect();
    if tokio::time::timeout(Duration::from_secs(2), &mut subscriber)
        .await
        .is_err()
    {
        tracing::warn!("MQTT connection did not close in time");
        subscriber.abort();
    }
    Ok(())
}
