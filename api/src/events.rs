//! Crossings over HTTP, and what operators inspect about ingestion.

use crate::error::Problem;
use crate::views::Totals;
use crate::{ApiError, AppState};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use base64::prelude::{Engine as _, BASE64_STANDARD};
use roomer_ingest::intake::{self, Arrival, Intake};
use roomer_occupancy::Timestamp;
use roomer_storage::RejectedFilter;
use serde::{Deserialize, Serialize};

#[derive(Serialize, utoipa::ToSchema)]
pub struct Accepted {
    dpu_id: String,
    #[schema(value_type = String, format = DateTime)]
    timestamp: Timestamp,
    direction: i64,
    /// False when no installation covers the timestamp yet: stored, counted later.
    counted: bool,
}

/// The form a DPU posts (the proof of concept's format).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // Documents the form; the handler reads it field by field.
pub struct CrossingForm {
    /// RFC 3339.
    timestamp: String,
    /// `1` or `-1`.
    direction: String,
}

/// `POST /dpu/{id}/` with form fields `timestamp` and `direction`: 201 for a new crossing,
/// 409 for a repeat, 400 (and kept in the rejected list) for bad input.
#[utoipa::path(post, path = "/dpu/{id}/", tag = "ingest", params(("id" = String, Path, description = "DPU id")), request_body(content = CrossingForm, content_type = "application/x-www-form-urlencoded"), responses((status = 201, body = Accepted), (status = 409, description = "a repeat", body = Problem), (status = 400, description = "bad input", body = Problem)))]
pub async fn post_crossing(
    State(state): State<AppState>,
    Path(raw_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    // The same intake as the MQTT worker's: validation, refusals kept with the body as sent,
    // the DPU marked as heard from, the same meters.
    let validation = intake::validation(state.store.as_ref(), state.max_future).await?;
    let mut intake = Intake::new(validation);
    let arrival = Arrival::HttpForm {
        dpu: &raw_id,
        content_type: headers
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap_or_default()),
        body: &body,
    };
    intake.take(&arrival, chrono::Utc::now());
    let started = std::time::Instant::now();
    let outcome = state.store.apply_batch(&intake.batch()).await?;
    intake.stored(&outcome.report, started);
    if let Some(refused) = intake.rejected.first() {
        return Err(ApiError::BadRequest(refused.detail.clone()));
    }
    let crossing = intake
        .crossings
        .first()
        .expect("a form is either refused or a crossing");
    if outcome.report.inserted == 0 {
        return Err(ApiError::Conflict(format!(
            "DPU {} already reported direction {} at {}",
            crossing.dpu,
            crossing.direction.as_i64(),
            crossing.ts.to_rfc3339()
        )));
    }
    Ok((
        StatusCode::CREATED,
        Json(Accepted {
            dpu_id: crossing.dpu.to_string(),
            timestamp: crossing.ts,
            direction: crossing.direction.as_i64(),
            counted: outcome.report.pending == 0,
        }),
    ))
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct RejectedQuery {
    limit: Option<u32>,
    dpu_id: Option<String>,
    reason: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct RejectedView {
    #[schema(value_type = String, format = DateTime)]
    received_at: Timestamp,
    /// The MQTT topic it came on, or `http POST /dpu/{id}/`.
    source: String,
    dpu_id: Option<String>,
    reason: String,
    detail: String,
    /// The raw payload as text (bytes that are not UTF-8 replaced by U+FFFD)…
    payload: String,
    /// …and, when it is not UTF-8, exactly as received, in base64.
    #[serde(skip_serializing_if = "Option::is_none")]
    payload_base64: Option<String>,
}

/// `GET /api/v1/rejected?limit=N&dpu_id=D&reason=R`: refused messages, newest first.
#[utoipa::path(get, path = "/api/v1/rejected", tag = "ingest", params(RejectedQuery), responses((status = 200, body = Vec<RejectedView>), (status = 400, description = "bad input", body = Problem)))]
pub async fn list_rejected(
    State(state): State<AppState>,
    Query(query): Query<RejectedQuery>,
) -> Result<Json<Vec<RejectedView>>, ApiError> {
    let filter = RejectedFilter {
        dpu_id: query.dpu_id.filter(|d| !d.is_empty()),
        reason: query.reason.filter(|r| !r.is_empty()),
        limit: query.limit.unwrap_or(100).min(1000),
    };
    let rows = state.store.rejected(&filter).await?;
    Ok(Json(
        rows.into_iter()
            .map(|r| RejectedView {
                received_at: r.received_at,
                source: r.source,
                dpu_id: r.dpu_id,
                reason: r.reason,
                detail: r.detail,
                payload_base64: std::str::from_utf8(&r.payload)
                    .is_err()
                    .then(|| BASE64_STANDARD.encode(&r.payload)),
                payload: String::from_utf8_lossy(&r.payload).into_owned(),
            })
            .collect(),
    ))
}

/// `GET /api/v1/totals`: crossings stored, pending and rejected.
#[utoipa::path(get, path = "/api/v1/totals", tag = "ingest", responses((status = 200, body = Totals)))]
pub async fn totals(State(state): State<AppState>) -> Result<Json<Totals>, ApiError> {
    Ok(Json(state.store.totals().await?.into()))
}

/// `GET /api/v1/meters`: what the broker and the ingest worker in this process counted
/// (`{}` when this process only serves the API).
#[utoipa::path(get, path = "/api/v1/meters", tag = "ingest", responses((status = 200, body = Object, description = "`ingest` and `broker` meters of the parts in this process")))]
pub async fn meters(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(
        state
            .meters
            .map_or_else(|| serde_json::json!({}), |read| read()),
    )
}

/// `POST /dpu/{id}`: the same without the trailing slash.
#[utoipa::path(post, path = "/dpu/{id}", tag = "ingest", params(("id" = String, Path, description = "DPU id")), request_body(content = CrossingForm, content_type = "application/x-www-form-urlencoded"), responses((status = 201, body = Accepted), (status = 409, body = Problem), (status = 400, body = Problem)))]
pub async fn post_crossing_no_slash(
    state: State<AppState>,
    id: Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    post_crossing(state, id, headers, body).await
}
