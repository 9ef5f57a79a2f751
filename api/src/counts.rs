//! Count routes.

use crate::error::Problem;
use crate::time::parse_instant;
use crate::{ApiError, AppState};
use axum::extract::{Path, Query, State};
use axum::Json;
use roomer_occupancy::{SpaceId, Timestamp};
use serde::{Deserialize, Serialize};

#[derive(Deserialize, utoipa::IntoParams)]
pub struct LegacyQuery {
    timestamp: Option<String>,
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct CountQuery {
    at: Option<String>,
}

/// The proof of concept's answer: `{"space_id": 1, "count": 3}`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct LegacyCount {
    space_id: SpaceId,
    count: i64,
}

/// `{"space_id": 1, "count": 3, "at": "…", "utilization": 0.25}`; `at` is absent for the
/// current count, `utilization` for a space without a capacity.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Count {
    space_id: SpaceId,
    count: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    utilization: Option<f64>,
}

fn space_id(raw: &str) -> Result<SpaceId, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::NotFound(format!("space {raw:?} does not exist")))
}

async fn count(
    state: &AppState,
    raw_id: &str,
    at: Option<&str>,
) -> Result<(SpaceId, i64, Option<Timestamp>), ApiError> {
    let id = space_id(raw_id)?;
    let at = at
        .filter(|t| !t.is_empty())
        .map(parse_instant)
        .transpose()?;
    let count = state
        .store
        .count_at(id, at)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("space {id} does not exist")))?;
    Ok((id, count, at))
}

/// `GET /space/{id}/count/?timestamp=T`
#[utoipa::path(get, path = "/space/{id}/count/", tag = "counts", params(("id" = i64, Path, description = "space id"), LegacyQuery), responses((status = 200, body = LegacyCount), (status = 404, description = "unknown id", body = Problem), (status = 400, description = "bad input", body = Problem)))]
pub async fn legacy_count(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<LegacyQuery>,
) -> Result<Json<LegacyCount>, ApiError> {
    let (space_id, count, _) = count(&state, &id, query.timestamp.as_deref()).await?;
    Ok(Json(LegacyCount { space_id, count }))
}

/// `GET /api/v1/spaces/{id}/count?at=T`
#[utoipa::path(get, path = "/api/v1/spaces/{id}/count", tag = "counts", params(("id" = i64, Path, description = "space id"), CountQuery), responses((status = 200, body = Count), (status = 404, description = "unknown id", body = Problem), (status = 400, description = "bad input", body = Problem)))]
pub async fn space_count(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<CountQuery>,
) -> Result<Json<Count>, ApiError> {
    let (space_id, count, at) = count(&state, &id, query.at.as_deref()).await?;
    let capacity = state
        .store
        .space_chain(space_id)
        .await?
        .into_iter()
        .find(|s| s.id == space_id)
        .and_then(|s| s.capacity);
    Ok(Json(Count {
        space_id,
        count,
        at,
        utilization: capacity.map(|c| count as f64 / f64::from(c)),
    }))
}

/// `GET /space/{id}/count?timestamp=T`: the same without the trailing slash.
#[utoipa::path(get, path = "/space/{id}/count", tag = "counts", params(("id" = i64, Path, description = "space id"), LegacyQuery), responses((status = 200, body = LegacyCount), (status = 404, body = Problem), (status = 400, body = Problem)))]
pub async fn legacy_count_no_slash(
    state: State<AppState>,
    id: Path<String>,
    query: Query<LegacyQuery>,
) -> Result<Json<LegacyCount>, ApiError> {
    legacy_count(state, id, query).await
}
