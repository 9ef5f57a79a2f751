//! DPU routes: what each sensor last said about itself, where it hangs, how busy it was today.

use crate::error::Problem;
use crate::pages::{next_link, PageQuery};
use crate::views::DpuInfo;
use crate::{ApiError, AppState};
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use chrono::{DateTime, Utc};
use roomer_occupancy::{DpuId, Installation};
use roomer_storage::{Page, StoreError};
use serde::Serialize;

/// Midnight UTC today: "events today" counts the crossings that happened since then.
pub(crate) fn day_start(now: DateTime<Utc>) -> DateTime<Utc> {
    now.date_naive()
        .and_hms_opt(0, 0, 0)
        .map_or(now, |t| t.and_utc())
}

/// `GET /api/v1/dpus?limit=&after=`: DPUs declared in the layout or heard from.
#[utoipa::path(get, path = "/api/v1/dpus", tag = "dpus", params(PageQuery), responses((status = 200, body = Vec<DpuInfo>, description = "one page; `Link: rel=next` while there may be more"), (status = 400, description = "bad input", body = Problem)))]
pub async fn list_dpus(
    State(state): State<AppState>,
    Query(query): Query<PageQuery>,
) -> Result<(HeaderMap, Json<Vec<DpuInfo>>), ApiError> {
    let page = query.page()?;
    let now = Utc::now();
    let dpus: Vec<DpuInfo> = state
        .store
        .dpus(None, &page, now, day_start(now))
        .await?
        .into_iter()
        .map(DpuInfo::from)
        .collect();
    let last = dpus.last().map(|d| d.id.clone());
    let headers = next_link("/api/v1/dpus", &page, dpus.len(), last);
    Ok((headers, Json(dpus)))
}

/// `GET /api/v1/dpus/{id}`
#[utoipa::path(get, path = "/api/v1/dpus/{id}", tag = "dpus", params(("id" = String, Path, description = "DPU id")), responses((status = 200, body = DpuInfo), (status = 404, description = "unknown id", body = Problem)))]
pub async fn get_dpu(
    State(state): State<AppState>,
    Path(raw_id): Path<String>,
) -> Result<Json<DpuInfo>, ApiError> {
    let (_, dpu) = find(&state, &raw_id).await?;
    Ok(Json(dpu.into()))
}

/// The DPU `raw_id` names, as of now; 404 unless it is declared or was heard from.
pub(crate) async fn find(
    state: &AppState,
    raw_id: &str,
) -> Result<(DpuId, roomer_storage::DpuInfo), ApiError> {
    let not_found =
        || ApiError::NotFound(format!("DPU {raw_id:?} is neither declared nor heard from"));
    let id = DpuId::new(raw_id).map_err(|_| not_found())?;
    let now = Utc::now();
    let mut found = state
        .store
        .dpus(Some(&id), &Page::all(), now, day_start(now))
        .await?;
    let dpu = found.pop().ok_or_else(not_found)?;
    Ok((id, dpu))
}

/// What `PUT /api/v1/dpus/{id}/installations` did.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct InstallationsReport {
    pub dpu_id: DpuId,
    /// The history as stored: sorted, bounds at stored precision.
    pub installations: Vec<Installation>,
    /// Rows changed (0 when the history was already this one).
    pub changed: usize,
    /// Stored crossings of this DPU that moved to another doorway (or out of pending).
    pub reattributed: usize,
}

/// `PUT /api/v1/dpus/{id}/installations`: replaces the DPU's whole installation history
/// (registering the DPU if it is new) with the JSON array in the body, e.g.
/// `[{"doorway": 1, "from": "2018-01-01T00:00:00Z", "until": "2018-03-01T00:00:00Z"},
///   {"doorway": 2, "from": "2018-03-01T00:00:00Z"}]`. Its stored crossings, including those
/// kept while nothing covered them, are re-attributed by their own timestamps.
#[utoipa::path(put, path = "/api/v1/dpus/{id}/installations", tag = "dpus", params(("id" = String, Path, description = "DPU id")), request_body = Vec<Installation>, responses((status = 200, body = InstallationsReport), (status = 400, description = "bad input", body = Problem), (status = 422, description = "inconsistent with the layout", body = Problem), (status = 413, description = "body over 64 KiB", body = Problem), (status = 415, description = "body not application/json", body = Problem)))]
pub async fn put_installations(
    State(state): State<AppState>,
    Path(raw_id): Path<String>,
    body: Result<Json<Vec<Installation>>, JsonRejection>,
) -> Result<Json<InstallationsReport>, ApiError> {
    let id = DpuId::new(raw_id.clone())
        .map_err(|e| ApiError::BadRequest(format!("DPU id {raw_id:?}: {e}")))?;
    let Json(history) = body
        .map_err(|e| ApiError::from_json(&e, r#"a JSON array of {"doorway", "from", "until"}"#))?;
    let report = match state.store.set_installations(&id, &history).await {
        Ok(report) => report,
        Err(StoreError::Layout(e)) => return Err(ApiError::Unprocessable(e.to_string())),
        Err(e) => return Err(e.into()),
    };
    Ok(Json(InstallationsReport {
        dpu_id: id,
        installations: roomer_occupancy::layout::normalized_history(&history),
        changed: report.changed,
        reattributed: report.reattributed,
    }))
}

fn dpu_id(raw: &str) -> Result<DpuId, ApiError> {
    DpuId::new(raw).map_err(|_| ApiError::NotFound(format!("DPU {raw:?} is not declared")))
}

/// `GET /api/v1/dpus/{id}/installations`: the DPU's installation history, oldest first.
#[utoipa::path(get, path = "/api/v1/dpus/{id}/installations", tag = "dpus", params(("id" = String, Path, description = "DPU id")), responses((status = 200, body = Vec<Installation>), (status = 404, description = "unknown id", body = Problem)))]
pub async fn get_installations(
    State(state): State<AppState>,
    Path(raw_id): Path<String>,
) -> Result<Json<Vec<Installation>>, ApiError> {
    let id = dpu_id(&raw_id)?;
    let history = state.store.installations(&id).await?;
    if history.is_empty() {
        // No history: a DPU heard from but not (or no longer) declared has an empty one;
        // one never heard of does not exist.
        let now = Utc::now();
        let heard = state
            .store
            .dpus(Some(&id), &Page::all(), now, day_start(now))
            .await?;
        if heard.is_empty() {
            return Err(ApiError::NotFound(format!(
                "DPU {raw_id:?} is neither declared nor heard from"
            )));
        }
    }
    Ok(Json(history))
}

/// `DELETE /api/v1/dpus/{id}`: forgets the DPU's declaration and history; its crossings are
/// kept as pending and counted again if it is registered anew.
#[utoipa::path(delete, path = "/api/v1/dpus/{id}", tag = "dpus", params(("id" = String, Path, description = "DPU id")), responses((status = 204, description = "forgotten; its crossings wait as pending"), (status = 404, description = "unknown id", body = Problem)))]
pub async fn delete_dpu(
    State(state): State<AppState>,
    Path(raw_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = dpu_id(&raw_id)?;
    state.store.delete_dpu(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}
