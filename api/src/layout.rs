//! Layout CRUD: spaces (with their settings) and doorways. Writes are validated by storage
//! against what is stored: unknown ids are 404, what would dangle is 409, what is
//! inconsistent (a doorway with the same space on both sides, a parent cycle) is 422.

use crate::error::Problem;
use crate::pages::{next_link, PageQuery};
use crate::views::SpaceCount;
use crate::{ApiError, AppState};
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use roomer_occupancy::{Doorway, DoorwayId, Space, SpaceId};
use roomer_storage::Page;
use serde::{Deserialize, Serialize};

fn id<T: std::str::FromStr>(what: &str, raw: &str) -> Result<T, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::NotFound(format!("{what} {raw:?} does not exist")))
}

fn body<T>(body: Result<Json<T>, JsonRejection>, expected: &str) -> Result<T, ApiError> {
    body.map(|Json(b)| b)
        .map_err(|e| ApiError::from_json(&e, expected))
}

/// `GET /api/v1/spaces?limit=&after=`: spaces with their settings and current counts.
#[utoipa::path(get, path = "/api/v1/spaces", tag = "layout", params(PageQuery), responses((status = 200, body = Vec<SpaceCount>, description = "one page; `Link: rel=next` while there may be more"), (status = 400, description = "bad input", body = Problem)))]
pub async fn list_spaces(
    State(state): State<AppState>,
    Query(query): Query<PageQuery>,
) -> Result<(HeaderMap, Json<Vec<SpaceCount>>), ApiError> {
    let page = query.page()?;
    let spaces: Vec<SpaceCount> = state
        .store
        .spaces(&page)
        .await?
        .into_iter()
        .map(SpaceCount::from)
        .collect();
    let last = spaces.last().map(|s| s.space.id.to_string());
    let headers = next_link("/api/v1/spaces", &page, spaces.len(), last);
    Ok((headers, Json(spaces)))
}

/// `GET /api/v1/spaces/{id}`
#[utoipa::path(get, path = "/api/v1/spaces/{id}", tag = "layout", params(("id" = i64, Path, description = "space id")), responses((status = 200, body = SpaceCount), (status = 404, description = "unknown id", body = Problem)))]
pub async fn get_space(
    State(state): State<AppState>,
    Path(raw): Path<String>,
) -> Result<Json<SpaceCount>, ApiError> {
    let id: SpaceId = id("space", &raw)?;
    state
        .store
        .space(id)
        .await?
        .map(|s| Json(s.into()))
        .ok_or_else(|| ApiError::NotFound(format!("space {id} does not exist")))
}

/// A space's body: everything but the id, which is in the path.
#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SpaceBody {
    pub name: String,
    #[serde(default)]
    pub parent: Option<SpaceId>,
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "Europe/Paris")]
    pub time_zone: Option<chrono_tz::Tz>,
    #[serde(default)]
    pub capacity: Option<u32>,
    /// Local time of day (`HH:MM` or `HH:MM:SS`, in the space's time zone) at which the
    /// count returns to 0; absent: never.
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "04:00")]
    pub daily_reset: Option<chrono::NaiveTime>,
}

/// `PUT /api/v1/spaces/{id}`: creates or replaces a space.
#[utoipa::path(put, path = "/api/v1/spaces/{id}", tag = "layout", params(("id" = i64, Path, description = "space id")), request_body = SpaceBody, responses((status = 200, body = SpaceCount), (status = 400, description = "bad input", body = Problem), (status = 422, description = "inconsistent with the layout", body = Problem), (status = 413, description = "body over 64 KiB", body = Problem), (status = 415, description = "body not application/json", body = Problem)))]
pub async fn put_space(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    payload: Result<Json<SpaceBody>, JsonRejection>,
) -> Result<Json<SpaceCount>, ApiError> {
    let id: SpaceId = raw
        .parse()
        .map_err(|_| ApiError::BadRequest(format!("space id {raw:?} is not a number")))?;
    let b = body(
        payload,
        r#"{"name", "parent", "time_zone" (IANA), "capacity", "daily_reset" ("HH:MM")}"#,
    )?;
    let space = Space {
        id,
        name: b.name,
        parent: b.parent,
        time_zone: b.time_zone,
        capacity: b.capacity,
        daily_reset: b.daily_reset,
    };
    state.store.put_space(&space).await?;
    get_space(State(state), Path(raw)).await
}

/// `DELETE /api/v1/spaces/{id}`
#[utoipa::path(delete, path = "/api/v1/spaces/{id}", tag = "layout", params(("id" = i64, Path, description = "space id")), responses((status = 204, description = "deleted"), (status = 404, description = "unknown id", body = Problem), (status = 409, description = "still in use", body = Problem)))]
pub async fn delete_space(
    State(state): State<AppState>,
    Path(raw): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.store.delete_space(id("space", &raw)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/doorways?limit=&after=`
#[utoipa::path(get, path = "/api/v1/doorways", tag = "layout", params(PageQuery), responses((status = 200, body = Vec<Doorway>), (status = 400, description = "bad input", body = Problem)))]
pub async fn list_doorways(
    State(state): State<AppState>,
    Query(query): Query<PageQuery>,
) -> Result<(HeaderMap, Json<Vec<Doorway>>), ApiError> {
    let page = query.page()?;
    let doorways = state.store.doorways(&page).await?;
    let last = doorways.last().map(|d| d.id.to_string());
    let headers = next_link("/api/v1/doorways", &page, doorways.len(), last);
    Ok((headers, Json(doorways)))
}

/// `GET /api/v1/doorways/{id}`
#[utoipa::path(get, path = "/api/v1/doorways/{id}", tag = "layout", params(("id" = i64, Path, description = "doorway id")), responses((status = 200, body = Doorway), (status = 404, description = "unknown id", body = Problem)))]
pub async fn get_doorway(
    State(state): State<AppState>,
    Path(raw): Path<String>,
) -> Result<Json<Doorway>, ApiError> {
    let id: DoorwayId = id("doorway", &raw)?;
    let page = Page {
        after: id.checked_sub(1),
        limit: 1,
    };
    let found = state.store.doorways(&page).await?.pop();
    found
        .filter(|d| d.id == id)
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("doorway {id} does not exist")))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DoorwayBody {
    pub name: String,
    pub exiting_to: SpaceId,
    pub entering_to: SpaceId,
}

/// What a doorway write did.
#[derive(Serialize, utoipa::ToSchema)]
pub struct DoorwayWritten {
    #[serde(flatten)]
    doorway: Doorway,
    /// Stored crossings that moved with the doorway's sides.
    reattributed: usize,
}

/// `PUT /api/v1/doorways/{id}`: creates or replaces a doorway; if its sides change, its
/// crossings move with them and counts are corrected.
#[utoipa::path(put, path = "/api/v1/doorways/{id}", tag = "layout", params(("id" = i64, Path, description = "doorway id")), request_body = DoorwayBody, responses((status = 200, body = DoorwayWritten), (status = 400, description = "bad input", body = Problem), (status = 422, description = "inconsistent with the layout", body = Problem), (status = 413, description = "body over 64 KiB", body = Problem), (status = 415, description = "body not application/json", body = Problem)))]
pub async fn put_doorway(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    payload: Result<Json<DoorwayBody>, JsonRejection>,
) -> Result<Json<DoorwayWritten>, ApiError> {
    let id: DoorwayId = raw
        .parse()
        .map_err(|_| ApiError::BadRequest(format!("doorway id {raw:?} is not a number")))?;
    let b = body(payload, r#"{"name", "exiting_to", "entering_to"}"#)?;
    let doorway = Doorway {
        id,
        name: b.name,
        exiting_to: b.exiting_to,
        entering_to: b.entering_to,
    };
    let report = state.store.put_doorway(&doorway).await?;
    Ok(Json(DoorwayWritten {
        doorway,
        reattributed: report.reattributed,
    }))
}

/// `DELETE /api/v1/doorways/{id}`
#[utoipa::path(delete, path = "/api/v1/doorways/{id}", tag = "layout", params(("id" = i64, Path, description = "doorway id")), responses((status = 204, description = "deleted"), (status = 404, description = "unknown id", body = Problem), (status = 409, description = "still in use", body = Problem)))]
pub async fn delete_doorway(
    State(state): State<AppState>,
    Path(raw): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.store.delete_doorway(id("doorway", &raw)?).await?;
    Ok(StatusCode::NO_CONTENT)
}
