//! The `roomer` application: the parts wired together, for the binary and for end-to-end tests.
//!
//! # Layout
//! - [`serve`] (this file): broker, ingest worker and API in one process on the embedded
//!   defaults: what `roomer serve` (and a bare `roomer`) runs.
//! - [`commands`]: every other command (`api`, `ingest`, `simulate`, the administrative
//!   ones) and the log output, assembled from plain configuration.
//! - [`dpu_access`]: the embedded broker's logins, checked against the DPU registry, and
//!   `roomer broker`.
//! - [`mosquitto`]: a Mosquitto password file and ACL written from the DPU registry.
//! - [`limits`]: the open-files limit raised for a fleet of connections.
//! - [`shutdown`]: Ctrl-C / SIGTERM as a cancellation token every long-running part watches.
//! - `main.rs` and `cli/`: flags (each also an environment variable) and the subcommands,
//!   mapped to the configurations of this crate; nothing is assembled there.
#![forbid(unsafe_code)]

pub mod commands;
pub mod dpu_access;
pub mod limits;
pub mod mosquitto;
pub mod shutdown;

use anyhow::Context;
use dpu_access::{Hidden, StoredSecrets};
use roomer_api::AppState;
use roomer_broker::access::SERVICE_USER;
use roomer_broker::{Access, AuthMode, BrokerConfig, EmbeddedBroker};
use roomer_ingest::{IngestConfig, IngestStats, MqttLogin};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// How often the running parts log their meters.
pub const METERS_LOG_INTERVAL: Duration = Duration::from_secs(60);

/// Everything `roomer serve` needs.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    pub database_url: String,
    /// How the store runs (how often the summarizer does).
    pub store: roomer_storage::StoreOptions,
    /// The embedded broker: where it listens for DPUs (MQTT 3.1.1; port 0 picks a free
    /// port) and how much it keeps for a subscriber that lags.
    pub broker: BrokerConfig,
    /// Batching and validation for the ingest worker; its broker address is filled in.
    pub ingest: IngestConfig,
    /// Let API reads through without a token.
    pub public_read: bool,
    /// Origins whose pages may call the API from a browser.
    pub cors: roomer_api::cors::CorsOrigins,
    /// Acknowledge DPU messages only once the worker has stored them (see
    /// `BrokerConfig::ack_after_store_by`); otherwise on receipt.
    pub ack_after_store: bool,
    /// Whether DPUs log in to the broker with the secrets issued for them.
    pub mqtt_auth: AuthMode,
    /// The password of Roomer's own broker account (`roomer`), for components of other
    /// processes that connect to this broker; a random one when `None`.
    pub service_secret: Option<Hidden>,
    /// Serve the API as HTTPS with this certificate.
    pub http_tls: Option<TlsFiles>,
}

/// A TLS certificate chain and its private key, as PEM files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert_chain: std::path::PathBuf,
    pub private_key: std::path::PathBuf,
}

impl TlsFiles {
    /// The acceptor for HTTPS, the files read now.
    pub fn acceptor(&self) -> anyhow::Result<tokio_rustls::TlsAcceptor> {
        let config = roomer_broker::tls::server_config(&self.cert_chain, &self.private_key, None)
            .context("the HTTPS certificate")?;
        Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
    }
}

/// A running all-in-one server.
pub struct Running {
    pub http_addr: SocketAddr,
    pub mqtt_addr: SocketAddr,
    /// The MQTT-over-TLS listener, when configured.
    pub mqtts_addr: Option<SocketAddr>,
    pub stats: Arc<IngestStats>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Running {
    /// Waits until the server has stopped (after its token was cancelled).
    pub async fn finished(self) -> anyhow::Result<()> {
        self.task.await.context("server task panicked")?
    }
}

/// Starts broker, ingest worker and API; returns once all three are up. They stop when
/// `shutdown` is cancelled: the API finishes its requests, the worker its batch, then the
/// broker closes.
pub async fn serve(
    config: ServeConfig,
    http: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<Running> {
    let store = roomer_storage::connect_with(&config.database_url, config.store)
        .await
        .with_context(|| format!("opening the database {}", config.database_url))?;
    let https = config
        .http_tls
        .as_ref()
        .map(TlsFiles::acceptor)
        .transpose()?;
    let broker_config = BrokerConfig {
        ack_after_store_by: config
            .ack_after_store
            .then(|| config.ingest.client_id.clone()),
        ..config.broker
    };
    limits::raise_open_files_for(broker_config.max_connections);
    let service_secret = config
        .service_secret
        .map_or_else(dpu_access::new_service_secret, |hidden| hidden.0);
    let access = Access {
        mode: config.mqtt_auth,
        service_secret: Some(service_secret.clone()),
        dpu_secrets: Some(Arc::new(StoredSecrets(store.clone()))),
    };
    let broker =
        tokio::task::spawn_blocking(move || EmbeddedBroker::start_with(broker_config, access))
            .await?
            .context("starting the embedded MQTT broker")?;
    let (mqtt_addr, mqtts_addr) = (broker.local_addr(), broker.local_addr_tls());
    tokio::spawn(dpu_access::follow_secret_changes(
        store.clone(),
        broker.dpu_sessions(),
        shutdown.clone(),
    ));
    let http_addr = http.local_addr()?;

    let ingest = IngestConfig {
        mqtt_host: mqtt_addr.ip().to_string(),
        mqtt_port: mqtt_addr.port(),
        mqtt_login: Some(MqttLogin::new(SERVICE_USER, &service_secret)),
        ..config.ingest
    };
    let max_future = ingest.max_future;
    let live_client_id = format!("{}-live", ingest.client_id);
    let stats = Arc::new(IngestStats::default());
    // Before the worker records anything (the API task may start after its first batch).
    roomer_api::install_metrics();
    let worker = tokio::spawn(roomer_ingest::run(
        store.clone(),
        ingest,
        stats.clone(),
        shutdown.clone().cancelled_owned(),
    ));
    let api = tokio::spawn(roomer_api::serve_with(
        http,
        AppState {
            meters: Some(meters_of(Some(stats.clone()), true)),
            live: Some(roomer_api::LiveFeed::connect(
                roomer_simulator::MqttTarget {
                    login: Some(MqttLogin::new(SERVICE_USER, &service_secret)),
                    ..roomer_simulator::MqttTarget::from(mqtt_addr)
                }
                .options(&live_client_id),
                shutdown.clone(),
            )),
            broker_ready: Some({
                let stats = stats.clone();
                Arc::new(move || stats.snapshot().connected)
            }),
            store_fault: Some({
                let stats = stats.clone();
                Arc::new(move || stats.store_fault())
            }),
            access: roomer_api::auth::Access {
                public_read: config.public_read,
            },
            cors: config.cors.clone(),
            ..AppState::new(store.clone(), max_future)
        },
        https,
        shutdown.clone().cancelled_owned(),
    ));
    tokio::spawn(log_meters(
        meters_of(Some(stats.clone()), true),
        METERS_LOG_INTERVAL,
        shutdown.clone(),
    ));
    let task = tokio::spawn(async move {
        let api_result = api.await;
        let worker_result = worker.await;
        tokio::task::spawn_blocking(move || broker.shutdown()).await?;
        api_result?.context("HTTP API failed")?;
        worker_result?.context("ingest worker failed")?;
        tracing::info!("stopped");
        Ok(())
    });
    Ok(Running {
        http_addr,
        mqtt_addr,
        mqtts_addr,
        stats,
        task,
    })
}

/// The meters of the parts this process runs, as `GET /api/v1/meters` and the periodic log
/// line show them.
pub fn meters_of(ingest: Option<Arc<IngestStats>>, broker: bool) -> roomer_api::Meters {
    Arc::new(move || {
        let mut meters = serde_json::Map::new();
        if let Some(stats) = &ingest {
            meters.insert("ingest".into(), serde_json::json!(stats.snapshot()));
        }
        if broker {
            meters.insert(
                "broker".into(),
                serde_json::json!(roomer_broker::meters::snapshot()),
            );
        }
        serde_json::Value::Object(meters)
    })
}

/// Logs the meters every `every` until `shutdown`, so an operator reading the log sees
/// throughput, connections and any loss without scraping anything.
pub async fn log_meters(meters: roomer_api::Meters, every: Duration, shutdown: CancellationToken) {
    let mut ticks = tokio::time::interval(every);
    ticks.tick().await;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticks.tick() => tracing::info!(meters = %meters(), "meters"),
        }
    }
}

/// Waits for the ingest worker to be connected and subscribed, so that nothing published
/// from now on is missed.
pub async fn wait_until_ready(stats: &IngestStats, within: Duration) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + within;
    while !stats.snapshot().connected {
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "the ingest worker did not subscribe within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}
