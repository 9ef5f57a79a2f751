//! `roomer api`: the HTTP API (and dashboard) alone, against a shared database, following the
//! count topics of a broker for the live routes. For running several behind a load balancer.

use crate::TlsFiles;
use roomer_api::cors::CorsOrigins;
use roomer_storage::StoreOptions;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// What `roomer api` runs with.
pub struct ApiConfig {
    pub database_url: String,
    pub store: StoreOptions,
    /// The broker whose `spaces/+/count` topics feed the live routes (its address, login,
    /// TLS and the client id to subscribe as); `None`: the live routes answer 503.
    pub live: Option<rumqttc::MqttOptions>,
    pub public_read: bool,
    pub cors: CorsOrigins,
    /// How far ahead of the server clock a crossing posted over HTTP may be.
    pub max_future: Duration,
    /// Serve HTTPS with this certificate and key.
    pub tls: Option<TlsFiles>,
}

/// Serves the API on `http` until `shutdown`, then finishes the requests in flight.
pub async fn run_api(
    config: ApiConfig,
    http: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let store = roomer_storage::connect_with(&config.database_url, config.store).await?;
    let live = config
        .live
        .map(|options| roomer_api::LiveFeed::connect(options, shutdown.clone()));
    let broker_ready = live.as_ref().map(|feed| {
        let feed = feed.clone();
        Arc::new(move || feed.connected()) as roomer_api::Check
    });
    let state = roomer_api::AppState {
        live,
        broker_ready,
        access: roomer_api::auth::Access {
            public_read: config.public_read,
        },
        cors: config.cors,
        ..roomer_api::AppState::new(store, config.max_future)
    };
    let https = config.tls.map(|files| files.acceptor()).transpose()?;
    Ok(roomer_api::serve_with(http, state, https, shutdown.cancelled_owned()).await?)
}
