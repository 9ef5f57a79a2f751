//! The harness: a worker in this process against a real broker over TCP (on a free port)
//! and a real SQLite file.

#![allow(dead_code)] // Each test binary uses its own subset.

use roomer_broker::{BrokerConfig, EmbeddedBroker};
use roomer_ingest::{IngestConfig, IngestStats};
use roomer_occupancy::Layout;
use roomer_storage::testing::eventually;
use roomer_storage::Store;
use rumqttc::{AsyncClient, Event, MqttOptions, Outgoing, QoS};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

/// The example building: DPU 283 over Doorway X, from Outside into Space A (id 1).
pub fn example_layout() -> Layout {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/reference-building.toml"
    );
    Layout::from_toml(&std::fs::read_to_string(path).unwrap()).unwrap()
}

pub struct Worker {
    pub store: Arc<dyn Store>,
    pub database_url: String,
    pub stats: Arc<IngestStats>,
    pub broker: EmbeddedBroker,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
    dir: tempfile::TempDir,
}

impl Worker {
    /// Stops the worker and the broker; the database stays until the returned dir is dropped.
    pub async fn stop(mut self) -> tempfile::TempDir {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(10), &mut self.task)
            .await
            .expect("worker stops promptly")
            .unwrap();
        self.broker.shutdown();
        self.dir
    }
}

pub async fn spawn_worker() -> Worker {
    spawn_worker_with(|_| {}).await
}

/// A worker whose configuration `tweak` adjusts.
pub async fn spawn_worker_with(tweak: impl FnOnce(&mut IngestConfig)) -> Worker {
    spawn_worker_on(None, tweak).await
}

/// A worker on the database `url` names (`None`: a fresh SQLite file).
pub async fn spawn_worker_on(url: Option<String>, tweak: impl FnOnce(&mut IngestConfig)) -> Worker {
    let broker = EmbeddedBroker::start(BrokerConfig::on(SocketAddr::from(([127, 0, 0, 1], 0))))
        .expect("broker starts");
    let dir = tempfile::tempdir().unwrap();
    let url = url.unwrap_or_else(|| format!("sqlite://{}", dir.path().join("roomer.db").display()));
    let store = roomer_storage::connect(&url).await.unwrap();
    store.apply_layout(&example_layout()).await.unwrap();
    let stats = Arc::new(IngestStats::default());
    let mut config = IngestConfig {
        mqtt_host: "127.0.0.1".into(),
        mqtt_port: broker.local_addr().port(),
        client_id: "ingest-test".into(),
        batch_wait: Duration::from_millis(10),
        ..IngestConfig::default()
    };
    tweak(&mut config);
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn({
        let (store, stats) = (store.clone(), stats.clone());
        async move {
            roomer_ingest::run(store, config, stats, async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        }
    });
    eventually("the worker to subscribe", Duration::from_secs(10), || {
        let stats = stats.clone();
        async move { stats.snapshot().connected.then_some(()) }
    })
    .await;
    Worker {
        store,
        database_url: url,
        stats,
        broker,
        stop: Some(stop),
        task,
        dir,
    }
}

/// Publishes QoS 1 messages and returns once the broker has acknowledged them all.
pub async fn publish(broker: SocketAddr, messages: &[(&str, &str)]) {
    let mut options = MqttOptions::new("test-dpu", broker.ip().to_string(), broker.port());
    options.set_max_packet_size(2 << 20, 2 << 20);
    let (client, mut eventloop) = AsyncClient::new(options, 100);
    // Publish from another task: the request channel only drains while the loop is polled.
    let owned: Vec<(String, Vec<u8>)> = messages
        .iter()
        .map(|(t, p)| (t.to_string(), p.as_bytes().to_vec()))
        .collect();
    let publisher = client.clone();
    tokio::spawn(async move {
        for (topic, payload) in owned {
            publisher
                .publish(topic, QoS::AtLeastOnce, false, payload)
                .await
                .unwrap();
        }
    });
    let mut acked = 0;
    while acked < messages.len() {
        if let Event::Incoming(rumqttc::Packet::PubAck(_)) = eventloop.poll().await.unwrap() {
            acked += 1;
        }
    }
    client.disconnect().await.unwrap();
    while !matches!(
        eventloop.poll().await,
        Ok(Event::Outgoing(Outgoing::Disconnect)) | Err(_)
    ) {}
}

pub async fn wait_for_totals(store: &Arc<dyn Store>, crossings: i64, rejected: i64) {
    eventually(
        "the worker to store every message",
        Duration::from_secs(10),
        || {
            let store = store.clone();
            async move {
                let totals = store.totals().await.unwrap();
                (totals.crossings == crossings && totals.rejected == rejected).then_some(totals)
            }
        },
    )
    .await;
}
