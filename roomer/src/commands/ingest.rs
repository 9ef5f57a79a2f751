//! `roomer ingest`: one ingest worker against an external broker and a shared database,
//! with its health, readiness and metrics on a listener of its own when asked.

use roomer_ingest::{IngestConfig, IngestStats};
use roomer_storage::StoreOptions;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Runs a worker with `config` against `database_url` until `shutdown`; serves `/healthz`,
/// `/readyz` and `/metrics` on `metrics` when given.
pub async fn run_ingest(
    database_url: &str,
    store_options: StoreOptions,
    config: IngestConfig,
    metrics: Option<TcpListener>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let store = roomer_storage::connect_with(database_url, store_options).await?;
    let stats = Arc::new(IngestStats::default());
    if let Some(listener) = metrics {
        // Before the worker starts, so that its first batch is recorded.
        roomer_api::install_metrics();
        let (connected, faulty) = (stats.clone(), stats.clone());
        let state = roomer_api::AppState {
            meters: Some(crate::meters_of(Some(stats.clone()), false)),
            broker_ready: Some(Arc::new(move || connected.snapshot().connected)),
            store_fault: Some(Arc::new(move || faulty.store_fault())),
            ..roomer_api::AppState::new(store.clone(), config.max_future)
        };
        tokio::spawn(roomer_api::serve_health(
            listener,
            state,
            shutdown.clone().cancelled_owned(),
        ));
    }
    tokio::spawn(crate::log_meters(
        crate::meters_of(Some(stats.clone()), false),
        crate::METERS_LOG_INTERVAL,
        shutdown.clone(),
    ));
    roomer_ingest::run(store, config, stats, shutdown.cancelled_owned()).await?;
    Ok(())
}
