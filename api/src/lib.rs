//! Roomer's HTTP API: how many people are in a space now, or at any past moment.
//!
//! # Layout
//! - [`router`] and [`serve`] (this file): the routes, and serving them on a bound listener
//!   until a shutdown signal; [`health_router`] and [`serve_health`]: only the operator's
//!   probes and metrics, for processes that do not serve the API.
//! - `attempts`: the bound on failed token attempts per client address.
//! - [`auth`]: bearer tokens (stored hashed): writes need `admin`, reads `read` unless reads
//!   are public.
//! - [`cors`]: cross-origin calls from dashboards on other origins (`--cors-origin`).
//! - [`dashboard`]: the pages at `/` and `/ui/…` and the API reference at `/docs`, rendered
//!   on the server, with their stylesheet and script compiled in.
//! - `counts`: count routes, both the proof of concept's (`/space/{id}/count/`) and `/api/v1`.
//! - `events`: `POST /dpu/{id}/`, for DPUs that speak HTTP instead of MQTT, and what
//!   operators inspect about ingestion (rejected messages, totals).
//! - `dpu_secrets`: issuing and withdrawing a DPU's secret for the embedded broker.
//! - `dpus`: each DPU's status, current doorway and crossings today; replacing a
//!   DPU's installation history.
//! - `error`: the one error type every handler returns, as RFC 9457 problem details; a
//!   middleware gives axum's own rejections the same form. Internal details are logged,
//!   never sent.
//! - `history`: a space's counts in minute to week buckets of local time, JSON or CSV.
//! - `layout`: layout CRUD — spaces with their settings, doorways.
//! - `listen`: serving on a bound listener with header, body and idle timeouts.
//! - `live`: Server-Sent Events of count changes, fed by the count topics on the broker.
//! - `observe`: `/metrics` (Prometheus), `/readyz`, per-route HTTP latency.
//! - `pages`: `?limit=&after=` keyset pagination and the `Link: rel="next"` header.
//! - `time`: the timestamp formats the API accepts.
#![forbid(unsafe_code)]

mod attempts;
pub mod auth;
pub mod cors;
mod counts;
pub mod dashboard;
mod dpu_secrets;
mod dpus;
mod error;
mod events;
mod history;
mod layout;
mod listen;
mod live;
mod observe;
mod pages;
mod time;
mod views;

pub use error::ApiError;
pub use listen::{serve_router, REQUEST_TIMEOUT};
pub use live::{CountUpdate, LiveFeed};
pub use observe::recorder as metrics_recorder;

use axum::routing::get;
use axum::Json;
use axum::Router;
use roomer_storage::Store;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

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
    /// Whether the broker this process needs is connected, for `/readyz`; `None`: it needs
    /// none.
    pub broker_ready: Option<Check>,
    /// The storage fault this process's ingest worker is waiting out, if any, for `/readyz`
    /// (reads may work while writes fail: a full disk); `None`: no worker here.
    pub store_fault: Option<Fault>,
    /// Whether reads need a token.
    pub access: auth::Access,
    /// Origins whose pages may call the API from a browser (none: no CORS headers).
    pub cors: cors::CorsOrigins,
    /// Failed token attempts per client, shared by every copy of the state.
    pub failed_tokens: Arc<attempts::FailedAttempts>,
}

impl AppState {
    /// An API over `store` with nothing else beside it.
    pub fn new(store: Arc<dyn Store>, max_future: Duration) -> Self {
        Self {
            store,
            max_future,
            meters: None,
            live: None,
            broker_ready: None,
            store_fault: None,
            access: auth::Access { public_read: false },
            cors: cors::CorsOrigins::default(),
            failed_tokens: Arc::default(),
        }
    }
}

/// A yes/no health check.
pub type Check = Arc<dyn Fn() -> bool + Send + Sync>;

/// A fault, described, or `None` while there is none.
pub type Fault = Arc<dyn Fn() -> Option<String> + Send + Sync>;

/// Reads the meters of the parts running beside the API.
pub type Meters = Arc<dyn Fn() -> serde_json::Value + Send + Sync>;

/// The OpenAPI document's frame; the paths and schemas come from the handlers' annotations.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Roomer",
        description = "How many people are in every space of a building, now and at any past moment."
    ),
    tags(
        (name = "counts", description = "A space's count now or at an instant"),
        (name = "history", description = "Counts in buckets of local time"),
        (name = "live", description = "Count changes as Server-Sent Events"),
        (name = "layout", description = "Spaces and doorways"),
        (name = "dpus", description = "Sensors, their status and installation histories"),
        (name = "ingest", description = "Crossings over HTTP and what ingestion refused"),
        (name = "health", description = "Liveness")
    )
)]
struct ApiDoc;

/// `GET /healthz`
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, body = String, example = "ok")))]
async fn healthz() -> &'static str {
    "ok"
}

/// The routes and the OpenAPI document describing them, built together so that no route can
/// be added without its description.
pub fn routes() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    use utoipa::OpenApi as _;
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(counts::legacy_count))
        .routes(routes!(counts::legacy_count_no_slash))
        .routes(routes!(events::post_crossing))
        .routes(routes!(events::post_crossing_no_slash))
        .routes(routes!(layout::list_spaces))
        .routes(routes!(
            layout::get_space,
            layout::put_space,
            layout::delete_space
        ))
        .routes(routes!(layout::list_doorways))
        .routes(routes!(
            layout::get_doorway,
            layout::put_doorway,
            layout::delete_doorway
        ))
        .routes(routes!(counts::space_count))
        .routes(routes!(history::space_counts))
        .routes(routes!(live::space_live))
        .routes(routes!(live::all_live))
        .routes(routes!(dpus::list_dpus))
        .routes(routes!(dpus::get_dpu, dpus::delete_dpu))
        .routes(routes!(dpus::get_installations, dpus::put_installations))
        .routes(routes!(
            dpu_secrets::create_credentials,
            dpu_secrets::delete_credentials
        ))
        .routes(routes!(events::list_rejected))
        .routes(routes!(events::totals))
        .routes(routes!(events::meters))
        .routes(routes!(healthz))
        .routes(routes!(observe::readyz))
        .routes(routes!(observe::metrics))
        .split_for_parts()
}

/// Installs the process-wide Prometheus recorder. A process that records metrics before its
/// API is up (the ingest worker in `roomer serve`) calls this first, or those are lost.
pub fn install_metrics() {
    observe::recorder();
}

/// The largest request body the API reads (a space, a doorway, an installation history of
/// hundreds of periods, a crossing are far smaller); a larger one is answered 413 unread.
pub const MAX_BODY: usize = 64 * 1024;

pub fn router(state: AppState) -> Router {
    // Installed before the first request, so nothing recorded before a scrape is lost.
    observe::recorder();
    let (routes, document) = routes();
    let cors = state.cors.layer();
    let reference = dashboard::reference::page(&document, !state.access.public_read);
    let router = routes
        .route("/openapi.json", get(move || async move { Json(document) }))
        .route(
            "/docs",
            get(move || async move { dashboard::reference::serve(&reference) }),
        )
        .merge(dashboard::routes())
        .fallback(|| async { ApiError::NotFound("no such route".into()) })
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .layer(CatchPanicLayer::custom(error::panicked))
        .layer(axum::middleware::map_response(error::problems_everywhere))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ))
        .layer(axum::middleware::from_fn(observe::track_http))
        .with_state(state);
    // Outermost: a preflight is answered before the token check.
    match cors {
        Some(cors) => router.layer(cors),
        None => router,
    }
}

/// Only the operator's routes, `/healthz`, `/readyz` and `/metrics`: what a process without
/// the API (a `roomer ingest` worker) serves so that it can be scraped and probed.
pub fn health_router(state: AppState) -> Router {
    observe::recorder();
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(observe::readyz))
        .route("/metrics", get(observe::metrics))
        .fallback(|| async { ApiError::NotFound("no such route".into()) })
        .layer(CatchPanicLayer::custom(error::panicked))
        .layer(axum::middleware::map_response(error::problems_everywhere))
        .layer(axum::middleware::from_fn(observe::track_http))
        .with_state(state)
}

/// Serves [`health_router`] on an already-bound listener until `shutdown` completes.
pub async fn serve_health(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    tracing::info!(addr = %listener.local_addr()?, "health and metrics listening");
    serve_router(
        listener,
        health_router(state),
        REQUEST_TIMEOUT,
        None,
        shutdown,
    )
    .await
}

/// Serves the API on an already-bound listener until `shutdown` completes, then finishes the
/// requests in flight.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, state, None, shutdown).await
}

/// [`serve`], as HTTPS when `tls` is given.
pub async fn serve_with(
    listener: TcpListener,
    state: AppState,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!(addr = %listener.local_addr()?, scheme, "HTTP API listening");
    serve_router(listener, router(state), REQUEST_TIMEOUT, tls, shutdown).await
}
