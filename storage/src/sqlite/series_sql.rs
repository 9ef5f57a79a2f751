//! SQLite: reading a stretch of a space's count series, for history.

use super::{from_micros, micros};
use crate::engine::Result;
use crate::Series;
use occupancy::history::SeriesPoint;
use occupancy::{SpaceId, Timestamp};
use sqlx::{Row, SqlitePool};

pub(super) async fn series(
    pool: &SqlitePool,
    space: SpaceId,
    from: Timestamp,
    to: Timestamp,
) -> Result<Option<Series>> {
    let exists = sqlx::query("SELECT 1 FROM spaces WHERE id = ?")
        .bind(space)
        .fetch_optional(pool)
        .await?;
    if exists.is_none() {
        return Ok(None);
    }
    let carried: Option<(i64, Option<i64>)> = sqlx::query_as(
        "SELECT ts, count FROM space_counts WHERE space_id = ? AND ts < ? \
         ORDER BY ts DESC, rank DESC, dpu_id DESC, copy DESC LIMIT 1",
    )
    .bind(space)
    .bind(micros(from))
    .fetch_optional(pool)
    .await?;
    let rows = sqlx::query(
        "SELECT ts, rank, count FROM space_counts WHERE space_id = ? AND ts >= ? AND ts < ? \
         ORDER BY ts, rank, dpu_id, copy",
    )
    .bind(space)
    .bind(micros(from))
    .bind(micros(to))
    .fetch_all(pool)
    .await?;
    let points = rows
        .iter()
        .map(|r| {
            Ok(SeriesPoint {
                ts: from_micros(r.get(0))?,
                arrival: r.get::<i64, _>(1) == 0,
                count: r.get::<Option<i64>, _>(2).unwrap_or(0),
            })
        })
        .collect::<Result<_>>()?;
    Ok(Some(Series {
        carried_in: carried.and_then(|(_, c)| c).unwrap_or(0),
        carried_at: carried.map(|(ts, _)| from_micros(ts)).transpose()?,
        points,
    }))
}
