//! Roomer's HTTP API: how many people are in a space now, or at any past moment.
//!
//! # Layout
//! - [`router`] and [`serve`] (this file): the routes, and serving them on a bound listener
//!   until a shutdown signal.
//! - `counts`: count routes, both the proof of concept's (`/space/{id}/count/`) and `/api/v1`.
//! - `events`: `POST /dpu/{id}/`, for DPUs that speak HTTP instead of MQTT, and what
//!   operators inspect about ingestion (rejected messages, totals).
//! - `dpus`: each DPU's status, current doorway and crossings received today; replacing a
//!   DPU's installation history.
//! - `error`: the one error type every handler returns, as RFC 9457 problem details; a
//!   middleware gives axum's own rejections the same form. Internal details are logged,
//!   never sent.
//! - `history`: a space's counts in minute to week buckets of local time, JSON or CSV.
//! - `layout`: layout CRUD — spaces with their settings, doorways.
//! - `live`: Server-Sent Events of count changes, fed by the count topics on the broker.
//! - `pages`: `?limit=&after=` keyset pagination and the `Link: rel="next"` header.
//! - `time`: the timestamp formats the API accepts.
#![forbid(unsafe_code)]

mod counts;
mod dpus;
mod error;
mod events;
mod history;
mod layout;
mod live;
mod pages;
mod time;

pub use error::ApiError;
pub use live::{CountUpdate, LiveFeed};

use axum::routing::{get, post};
use axum::Router;
use roomer_storage::Store;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// What handlers share.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    /// How far ahead of the server clock an event posted over HTTP may be.
    pub max_future: Duration,
    /// The meters of the parts running in this process (broker, ingest worker), as JSON,
    /// for `GET /api/v1/meters`; `None` in a process that only serves the API.
    pub meters: Option<Meters>,
    /// The subscription to the count topics behind the live routes; `None`: they answer 503.
    pub live: Option<LiveFeed>,
}

/// Reads the meters of the parts running beside the API.
pub type Meters = Arc<dyn Fn() -> serde_json::Value + Send + Sync>;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/space/{id}/count/", get(counts::legacy_count))
        .route("/space/{id}/count", get(counts::legacy_count))
        .route("/dpu/{id}/", post(events::post_crossing))
        .route("/dpu/{id}", post(events::post_crossing))
        .route("/api/v1/spaces", get(layout::list_spaces))
        .route(
            "/api/v1/spaces/{id}",
            get(layout::get_space)
                .put(layout::put_space)
                .delete(layout::delete_space),
        )
        .route("/api/v1/doorways", get(layout::list_doorways))
        .route(
            "/api/v1/doorways/{id}",
            get(layout::get_doorway)
                .put(layout::put_doorway)
                .delete(layout::delete_doorway),
        )
        .route("/api/v1/spaces/{id}/count", get(counts::space_count))
        .route("/api/v1/spaces/{id}/counts", get(history::space_counts))
        .route("/api/v1/spaces/{id}/live", get(live::space_live))
        .route("/api/v1/live", get(live::all_live))
        .route("/api/v1/dpus", get(dpus::list_dpus))
        .route(
            "/api/v1/dpus/{id}",
            get(dpus::get_dpu).delete(dpus::delete_dpu),
        )
        .route(
            "/api/v1/dpus/{id}/installations",
            get(dpus::get_installations).put(dpus::put_installations),
        )
        .route("/api/v1/rejected", get(events::list_rejected))
        .route("/api/v1/totals", get(events::totals))
        .route("/api/v1/meters", get(events::meters))
        .route("/healthz", get(|| async { "ok" }))
        .fallback(|| async { ApiError::NotFound("no such route".into()) })
        .layer(axum::middleware::map_response(error::problems_everywhere))
        .with_state(state)
}

/// Serves the API on an already-bound listener until `shutdown` completes, then finishes the
/// requests in flight.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    tracing::info!(addr = %listener.local_addr()?, "HTTP API listening");
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}
