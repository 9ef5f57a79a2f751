//! DPU routes: what each sensor last said about itself, where it hangs, how busy it was today.

use crate::{ApiError, AppState};
use axum::extract::{Path, State};
use axum::Json;
use chrono::{DateTime, Utc};
use occupancy::DpuId;
use roomer_storage::DpuInfo;

/// Midnight UTC today: "events received today" counts from there.
fn day_start(now: DateTime<Utc>) -> DateTime<Utc> {
    now.date_naive()
        .and_hms_opt(0, 0, 0)
        .map_or(now, |t| t.and_utc())
}

/// `GET /api/v1/dpus`: every DPU declared in the layout or heard from.
pub async fn list_dpus(State(state): State<AppState>) -> Result<Json<Vec<DpuInfo>>, ApiError> {
    let now = Utc::now();
    Ok(Json(state.store.dpus(None, now, day_start(now)).await?))
}

/// `GET /api/v1/dpus/{id}`
pub async fn get_dpu(
    State(state): State<AppState>,
    Path(raw_id): Path<String>,
) -> Result<Json<DpuInfo>, ApiError> {
    let not_found =
        || ApiError::NotFound(format!("DPU {raw_id:?} is neither declared nor heard from"));
    let id = DpuId::new(raw_id.clone()).map_err(|_| not_found())?;
    let now = Utc::now();
    let mut found = state.store.dpus(Some(&id), now, day_start(now)).await?;
    found.pop().map(Json).ok_or_else(not_found)
}
