//! PostgreSQL: reading a stretch of a space's count series, for history.

use crate::engine::Result;
use crate::Series;
use occupancy::history::SeriesPoint;
use occupancy::{SpaceId, Timestamp};
use sqlx::{PgPool, Row};

pub(super) async fn series(
    pool: &PgPool,
    space: SpaceId,
    from: Timestamp,
    to: Timestamp,
) -> Result<Option<Series>> {
    let exists = sqlx::query("SELECT 1 FROM spaces WHERE id = $1")
        .bind(space)
        .fetch_optional(pool)
        .await?;
    if exists.is_none() {
        return Ok(None);
    }
    let carried: Option<(Timestamp, Option<i64>)> = sqlx::query_as(
        "SELECT ts, count FROM space_counts WHERE space_id = $1 AND ts < $2 \
         ORDER BY ts DESC, rank DESC, dpu_id DESC, copy DESC LIMIT 1",
    )
    .bind(space)
    .bind(from)
    .fetch_optional(pool)
    .await?;
    let rows = sqlx::query(
        "SELECT ts, rank, count FROM space_counts WHERE space_id = $1 AND ts >= $2 AND ts < $3 \
         ORDER BY ts, rank, dpu_id, copy",
    )
    .bind(space)
    .bind(from)
    .bind(to)
    .fetch_all(pool)
    .await?;
    let points = rows
        .iter()
        .map(|r| SeriesPoint {
            ts: r.get(0),
            arrival: r.get::<i16, _>(1) == 0,
            count: r.get::<Option<i64>, _>(2).unwrap_or(0),
        })
        .collect();
    Ok(Some(Series {
        carried_in: carried.and_then(|(_, c)| c).unwrap_or(0),
        carried_at: carried.map(|(ts, _)| ts),
        points,
    }))
}
