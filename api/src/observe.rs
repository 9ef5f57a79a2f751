//! Observability: `/metrics` in Prometheus text format, `/readyz`, and the per-route HTTP
//! latency every request records.
//!
//! Counters and histograms go through the `metrics` facade into one process-wide Prometheus
//! recorder (the ingest worker records its own there: crossings applied, batch latency,
//! ingest lag, rejections by reason). The meters of the broker and the worker in this
//! process are appended at scrape time as gauges, `roomer_{part}_{name}`.

use crate::error::Problem;
use crate::{ApiError, AppState};
use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use serde::Serialize;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Histogram buckets, in seconds: from a fast index lookup to a long database retry.
const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0,
    10.0, 30.0,
];

/// The process-wide recorder, installed on first use.
pub fn recorder() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), BUCKETS)
            .expect("valid buckets")
            .build_recorder();
        let handle = recorder.handle();
        // Another recorder already installed (a test harness): keep rendering ours, empty.
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}

/// Middleware: `roomer_http_request_seconds{method, route, status}`. The route is the
/// matched pattern (`/api/v1/spaces/{id}`), so ids do not explode the label set.
pub async fn track_http(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    metrics::histogram!(
        "roomer_http_request_seconds",
        "method" => method,
        "route" => route,
        "status" => response.status().as_u16().to_string()
    )
    .record(started.elapsed().as_secs_f64());
    response
}

/// `GET /metrics`
#[utoipa::path(get, path = "/metrics", tag = "health", responses((status = 200, content_type = "text/plain", body = String, description = "Prometheus text format")))]
pub async fn metrics(State(state): State<AppState>) -> Response {
    let mut text = recorder().render();
    if let Some(meters) = &state.meters {
        append_gauges(&mut text, &meters());
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

/// `{"broker": {"connections": 3}}` → `roomer_broker_connections 3`.
fn append_gauges(text: &mut String, meters: &serde_json::Value) {
    let Some(parts) = meters.as_object() else {
        return;
    };
    for (part, fields) in parts {
        for (name, value) in fields.as_object().into_iter().flatten() {
            let number = match value {
                serde_json::Value::Number(n) => n.as_f64(),
                serde_json::Value::Bool(b) => Some(f64::from(u8::from(*b))),
                _ => None,
            };
            if let Some(number) = number {
                let metric = format!("roomer_{part}_{name}");
                text.push_str(&format!("# TYPE {metric} gauge\n{metric} {number}\n"));
            }
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Readiness {
    /// `ok`.
    database: &'static str,
    /// `ok`, or `not used` by a process that does not talk to a broker.
    broker: &'static str,
    /// Present when the embedded broker in this process has lost messages it acknowledged
    /// since the process started (a dead router, a subscriber that lagged past the log): how
    /// many. Still ready: restarting would not bring them back. Details in `/api/v1/meters`.
    #[serde(skip_serializing_if = "Option::is_none")]
    broker_lost_messages: Option<u64>,
}

/// `GET /readyz`: 200 when the database answers and the broker this process needs is
/// connected (saying how many acknowledged messages the embedded broker lost, if any); 503
/// otherwise, saying which.
#[utoipa::path(get, path = "/readyz", tag = "health", responses((status = 200, body = Readiness), (status = 503, body = Problem)))]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Readiness>, ApiError> {
    let database = tokio::time::timeout(Duration::from_secs(2), state.store.totals()).await;
    let mut failing = Vec::new();
    if !matches!(database, Ok(Ok(_))) {
        failing.push("the database does not answer".to_owned());
    }
    if let Some(fault) = state.store_fault.as_ref().and_then(|fault| fault()) {
        failing.push(format!(
            "the database refuses writes (nothing is acknowledged until it heals): {fault}"
        ));
    }
    let broker = match &state.broker_ready {
        None => "not used",
        Some(ready) if ready() => "ok",
        Some(_) => {
            failing.push("not connected to the MQTT broker".to_owned());
            "down"
        }
    };
    let broker_lost_messages = state
        .meters
        .as_ref()
        .and_then(|meters| meters()["broker"]["lost_messages"].as_u64())
        .filter(|&lost| lost > 0);
    if failing.is_empty() {
        Ok(Json(Readiness {
            database: "ok",
            broker,
            broker_lost_messages,
        }))
    } else {
        Err(ApiError::Unavailable(failing.join("; ")))
    }
}
