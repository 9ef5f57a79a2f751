//! `spawn_app()`: a whole Roomer (broker, worker, API) in this process on free ports, with a
//! fresh database, and helpers to talk to it.

#![allow(dead_code)] // Each test binary uses its own subset.

pub mod browser;
pub mod processes;

use roomer::{Running, ServeConfig};
use roomer_ingest::IngestConfig;
use roomer_storage::testing::{eventually, fresh_postgres_database, postgres_url};
use serde_json::Value;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub enum Backend {
    Sqlite,
    Postgres,
    /// A database that already exists.
    Url(String),
}

pub struct App {
    pub http: String,
    pub mqtt: SocketAddr,
    /// The MQTT-over-TLS listener, when configured.
    pub mqtts: Option<SocketAddr>,
    pub database_url: String,
    client: reqwest::Client,
    shutdown: CancellationToken,
    running: Option<Running>,
    _dir: tempfile::TempDir,
}

pub fn workspace_file(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative)
}

/// The reference data, read-only beside the checkout.
pub fn reference_csv() -> PathBuf {
    workspace_file("../shared/data/dpu_data.csv")
}

/// A whole Roomer in this process on SQLite, with the reference building applied.
pub async fn app_with_example_building() -> App {
    let app = spawn_app(Backend::Sqlite).await;
    let text = std::fs::read_to_string(workspace_file("examples/reference-building.toml")).unwrap();
    let store = roomer_storage::connect(&app.database_url).await.unwrap();
    store
        .apply_layout(&roomer_occupancy::Layout::from_toml(&text).unwrap())
        .await
        .unwrap();
    app
}

pub async fn spawn_app(backend: Backend) -> App {
    spawn_app_with(backend, roomer_broker::AuthMode::Off).await
}

/// A whole Roomer whose broker admits DPUs as `mqtt_auth` says.
pub async fn spawn_app_with(backend: Backend, mqtt_auth: roomer_broker::AuthMode) -> App {
    spawn_app_configured(backend, |config| config.mqtt_auth = mqtt_auth).await
}

/// A whole Roomer, its configuration changed by `configure` before it starts.
pub async fn spawn_app_configured(
    backend: Backend,
    configure: impl FnOnce(&mut ServeConfig),
) -> App {
    let dir = tempfile::tempdir().unwrap();
    let database_url = match backend {
        Backend::Sqlite => format!("sqlite://{}", dir.path().join("roomer.db").display()),
        Backend::Postgres => {
            let admin = postgres_url().expect("TEST_DATABASE_URL must be set");
            fresh_postgres_database(&admin)
                .await
                .expect("TEST_DATABASE_URL is set but PostgreSQL cannot be reached")
        }
        Backend::Url(url) => url,
    };
    let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut config = config(&database_url);
    configure(&mut config);
    start(config, http, database_url, dir).await
}

/// What `spawn_app` runs unless told otherwise: public reads, short batches.
fn config(database_url: &str) -> ServeConfig {
    ServeConfig {
        store: Default::default(),
        database_url: database_url.to_owned(),
        broker: roomer_broker::BrokerConfig::on(SocketAddr::from(([127, 0, 0, 1], 0))),
        ingest: IngestConfig {
            client_id: "e2e-ingest".into(),
            batch_wait: Duration::from_millis(10),
            reconcile_counts_every: Duration::from_millis(500),
            ..IngestConfig::default()
        },
        public_read: true,
        cors: Default::default(),
        ack_after_store: true,
        mqtt_auth: roomer_broker::AuthMode::Off,
        service_secret: None,
        http_tls: None,
    }
}

async fn start(
    config: ServeConfig,
    http: tokio::net::TcpListener,
    database_url: String,
    dir: tempfile::TempDir,
) -> App {
    let shutdown = CancellationToken::new();
    let running = roomer::serve(config, http, shutdown.clone()).await.unwrap();
    roomer::wait_until_ready(&running.stats, Duration::from_secs(10))
        .await
        .unwrap();
    App {
        http: format!("http://{}", running.http_addr),
        mqtt: running.mqtt_addr,
        mqtts: running.mqtts_addr,
        database_url,
        client: reqwest::Client::new(),
        shutdown,
        running: Some(running),
        _dir: dir,
    }
}

impl App {
    pub fn stats(&self) -> roomer_ingest::StatsSnapshot {
        self.running.as_ref().unwrap().stats.snapshot()
    }

    pub async fn get(&self, path: &str) -> Value {
        let (_, body) = self.get_text(path).await;
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: not JSON ({e}): {body}"))
    }

    /// A GET answered with 200, as its headers and body text.
    pub async fn get_text(&self, path: &str) -> (reqwest::header::HeaderMap, String) {
        let response = self
            .client
            .get(format!("{}{path}", self.http))
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "GET {path}: {}",
            response.status()
        );
        let headers = response.headers().clone();
        (headers, response.text().await.unwrap())
    }

    /// Waits until the API reports `crossings` distinct crossings stored.
    pub async fn wait_for_crossings(&self, crossings: usize) {
        eventually(
            "every crossing to be stored",
            Duration::from_secs(30),
            || async {
                let totals = self.get("/api/v1/totals").await;
                (totals["crossings"].as_u64() == Some(crossings as u64)).then_some(())
            },
        )
        .await;
    }

    /// Waits until the API reports `rejected` refused messages kept.
    pub async fn wait_for_rejected(&self, rejected: u64) {
        eventually(
            "the refused messages to be kept",
            Duration::from_secs(30),
            || async {
                let totals = self.get("/api/v1/totals").await;
                (totals["rejected"].as_u64() == Some(rejected)).then_some(())
            },
        )
        .await;
    }

    pub async fn count_at(&self, space: i64, at: &str) -> i64 {
        let body = self
            .get(&format!(
                "/api/v1/spaces/{space}/count?at={}",
                at.replace('+', "%2B")
            ))
            .await;
        body["count"].as_i64().unwrap()
    }

    /// Stops this Roomer, as [`App::stop`] does, and starts it again with the default
    /// configuration on the same HTTP address and database (the broker gets a new port).
    pub async fn restart(mut self) -> App {
        let addr = self.running.as_ref().unwrap().http_addr;
        let dir = std::mem::replace(&mut self._dir, tempfile::tempdir().unwrap());
        let database_url = self.database_url.clone();
        self.stop().await;
        let http = tokio::net::TcpListener::bind(addr)
            .await
            .expect("the HTTP address is free again");
        start(config(&database_url), http, database_url, dir).await
    }

    pub async fn stop(mut self) {
        self.shutdown.cancel();
        let running = self.running.take().unwrap();
        tokio::time::timeout(Duration::from_secs(15), running.finished())
            .await
            .expect("stops promptly")
            .expect("stops cleanly");
    }
}

/// Publishes any payload at QoS 1 and returns once the broker has acknowledged it.
pub async fn publish_raw(app: &App, topic: &str, payload: &[u8]) {
    let options =
        rumqttc::MqttOptions::new("raw-publisher", app.mqtt.ip().to_string(), app.mqtt.port());
    let (client, mut eventloop) = rumqttc::AsyncClient::new(options, 4);
    client
        .publish(topic, rumqttc::QoS::AtLeastOnce, false, payload.to_vec())
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(10), async {
        while !matches!(
            eventloop.poll().await,
            Ok(rumqttc::Event::Incoming(rumqttc::Packet::PubAck(_)))
        ) {}
    })
    .await
    .expect("the broker acknowledges");
}

/// One person walking into Space A through DPU 283 of the reference building, at `ts`
/// (RFC 3339); returns once the broker has acknowledged it (after it is stored).
pub async fn publish_arrival(app: &App, ts: &str) {
    let crossing = roomer_occupancy::Crossing::new(
        roomer_occupancy::DpuId::new("283").unwrap(),
        ts.parse().unwrap(),
        roomer_occupancy::Direction::In,
        None,
    );
    let options =
        roomer_simulator::ReplayOptions::new(roomer_simulator::MqttTarget::from(app.mqtt));
    roomer_simulator::replay(vec![crossing], &options)
        .await
        .unwrap();
}
