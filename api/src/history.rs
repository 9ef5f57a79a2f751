//! `GET /api/v1/spaces/{id}/counts`: a space's history in buckets of local time, as JSON or
//! CSV, a page of buckets at a time.

use crate::error::Problem;
use crate::time::parse_local_instant;
use crate::{ApiError, AppState};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, FixedOffset};
use chrono_tz::Tz;
use roomer_occupancy::history::{boundaries, Bucket, Interval};
use roomer_occupancy::SpaceId;
use roomer_storage::history::{history, History, Source};
use serde::{Deserialize, Serialize};

/// Buckets per page unless `limit` says otherwise, and at most.
const DEFAULT_BUCKETS: usize = 1000;
const MAX_BUCKETS: usize = 10_000;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct HistoryQuery {
    pub(crate) start_time: String,
    pub(crate) end_time: Option<String>,
    pub(crate) interval: Option<String>,
    pub(crate) time_zone: Option<String>,
    pub(crate) format: Option<String>,
    pub(crate) limit: Option<usize>,
}

/// A bucket as answered: its bounds in the zone asked for.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BucketOut {
    #[schema(value_type = String, format = DateTime)]
    pub(crate) start: DateTime<FixedOffset>,
    #[schema(value_type = String, format = DateTime)]
    pub(crate) end: DateTime<FixedOffset>,
    pub(crate) count: i64,
    pub(crate) min: i64,
    pub(crate) max: i64,
    pub(crate) entrances: u64,
    pub(crate) exits: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) utilization: Option<f64>,
}

impl BucketOut {
    fn new(b: Bucket, tz: Tz) -> Self {
        Self {
            start: b.start.with_timezone(&tz).fixed_offset(),
            end: b.end.with_timezone(&tz).fixed_offset(),
            count: b.count,
            min: b.min,
            max: b.max,
            entrances: b.entrances,
            exits: b.exits,
            utilization: b.utilization,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = History)]
pub struct HistoryOut {
    space_id: SpaceId,
    interval: String,
    time_zone: String,
    buckets: Vec<BucketOut>,
    /// The next page, while the range goes on.
    #[serde(skip_serializing_if = "Option::is_none")]
    next: Option<String>,
}

/// A history as answered, before it is written as JSON or CSV.
pub(crate) struct Answer {
    pub id: SpaceId,
    pub tz: Tz,
    pub interval: String,
    pub rows: Vec<BucketOut>,
    /// The query of the next page, while the range goes on.
    pub next: Option<String>,
    pub from_summaries: usize,
}

/// The buckets `q` asks for of space `raw`: what the route answers and the dashboard draws.
pub(crate) async fn answer(
    state: &AppState,
    raw: &str,
    q: &HistoryQuery,
) -> Result<Answer, ApiError> {
    let id: SpaceId = raw
        .parse()
        .map_err(|_| ApiError::NotFound(format!("space {raw:?} does not exist")))?;
    // The space and its ancestors: its time zone, capacity and daily reset (not every
    // space's count, which a building of 1,000 spaces would make costly).
    let spaces = state.store.space_chain(id).await?;
    if !spaces.iter().any(|s| s.id == id) {
        return Err(ApiError::NotFound(format!("space {id} does not exist")));
    }
    answer_for(state, id, &spaces, q).await
}

/// [`answer`] for space `id`, whose chain (it and its ancestors) the caller has read.
pub(crate) async fn answer_for(
    state: &AppState,
    id: SpaceId,
    spaces: &[roomer_occupancy::Space],
    q: &HistoryQuery,
) -> Result<Answer, ApiError> {
    let tz: Tz = match &q.time_zone {
        Some(name) => name
            .parse()
            .map_err(|_| ApiError::BadRequest(format!("unknown IANA time zone {name:?}")))?,
        None => roomer_occupancy::layout::effective_time_zone(id, spaces),
    };
    let interval_text = q.interval.clone().unwrap_or_else(|| "1h".into());
    let interval: Interval =
        interval_text
            .parse()
            .map_err(|e: roomer_occupancy::history::InvalidInterval| {
                ApiError::BadRequest(e.to_string())
            })?;
    let start = parse_local_instant(&q.start_time, tz)?;
    let end = match &q.end_time {
        Some(t) => parse_local_instant(t, tz)?,
        None => chrono::Utc::now(),
    };
    if end <= start {
        return Err(ApiError::BadRequest(format!(
            "end_time ({end}) must be after start_time ({start})"
        )));
    }
    let limit = q.limit.unwrap_or(DEFAULT_BUCKETS);
    if !(1..=MAX_BUCKETS).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "limit must be 1 to {MAX_BUCKETS} buckets, got {limit}"
        )));
    }

    let bounds = boundaries(start, end, interval, tz, limit);
    let last = bounds[bounds.len() - 1].1;
    let History {
        buckets: answered,
        from_summaries,
    } = history(state.store.as_ref(), id, spaces, &bounds, Source::Summaries)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("space {id} does not exist")))?;
    let next = (last < end).then(|| {
        let mut query = format!(
            "/api/v1/spaces/{id}/counts?start_time={}&end_time={}&interval={interval_text}\
             &time_zone={}&limit={limit}",
            urlencode(&last.to_rfc3339()),
            urlencode(&end.to_rfc3339()),
            tz.name()
        );
        if let Some(format) = &q.format {
            query.push_str(&format!("&format={format}"));
        }
        query
    });
    let rows = answered
        .into_iter()
        .map(|b| BucketOut::new(b, tz))
        .collect();
    Ok(Answer {
        id,
        tz,
        interval: interval_text,
        rows,
        next,
        from_summaries,
    })
}

/// `GET /api/v1/spaces/{id}/counts?start_time=&end_time=&interval=&time_zone=&format=&limit=`
#[utoipa::path(get, path = "/api/v1/spaces/{id}/counts", tag = "history", params(("id" = i64, Path, description = "space id"), HistoryQuery), responses((status = 200, body = HistoryOut, description = "JSON, or text/csv with format=csv"), (status = 404, description = "unknown id", body = Problem), (status = 400, description = "bad input", body = Problem)))]
pub async fn space_counts(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    Query(q): Query<HistoryQuery>,
) -> Result<Response, ApiError> {
    let answer = answer(&state, &raw, &q).await?;
    let mut headers = HeaderMap::new();
    headers.insert(ROLLUP_BUCKETS, HeaderValue::from(answer.from_summaries));
    if let Some(next) = &answer.next {
        if let Ok(value) = HeaderValue::from_str(&format!("<{next}>; rel=\"next\"")) {
            headers.insert(header::LINK, value);
        }
    }
    match q.format.as_deref() {
        None | Some("json") => Ok((
            headers,
            Json(HistoryOut {
                space_id: answer.id,
                interval: answer.interval,
                time_zone: answer.tz.name().to_owned(),
                buckets: answer.rows,
                next: answer.next,
            }),
        )
            .into_response()),
        Some("csv") => {
            let mut writer = csv::Writer::from_writer(Vec::new());
            for row in &answer.rows {
                writer
                    .serialize(row)
                    .map_err(|e| ApiError::BadRequest(format!("cannot write CSV: {e}")))?;
            }
            let body = writer
                .into_inner()
                .map_err(|e| ApiError::BadRequest(format!("cannot write CSV: {e}")))?;
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8"),
            );
            Ok((headers, body).into_response())
        }
        Some(other) => Err(ApiError::BadRequest(format!(
            "format must be json or csv, got {other:?}"
        ))),
    }
}

/// How many of the answered buckets came from the rollups (TimescaleDB's continuous
/// aggregates); the rest were made from the raw series. Same answers either way.
const ROLLUP_BUCKETS: &str = "roomer-rollup-buckets";

/// `+` and `:` in RFC 3339 times must survive a query string.
fn urlencode(text: &str) -> String {
    text.replace('+', "%2B").replace(':', "%3A")
}
