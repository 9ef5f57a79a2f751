//! PostgreSQL: the layout's rows — spaces with their settings, doorways — read and written for
//! the write paths (inside a transaction) and for paginated lists (on a reader).

use crate::engine::Result;
use crate::{space_columns, space_from_columns, Page, SpaceCount};
use occupancy::{Doorway, DoorwayId, DpuId, Installation, Space, SpaceId};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgPool, Row};

const SPACE_COLUMNS: &str = "s.id, s.name, s.parent_id, s.time_zone, s.capacity, s.daily_reset";

fn space(row: &PgRow) -> Result<Space> {
    space_from_columns(
        row.get(0),
        row.get(1),
        row.get(2),
        row.get(3),
        row.get::<Option<i32>, _>(4).map(i64::from),
        row.get(5),
    )
}

fn doorway(row: &PgRow) -> Doorway {
    Doorway {
        id: row.get(0),
        name: row.get(1),
        exiting_to: row.get(2),
        entering_to: row.get(3),
    }
}

fn limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// A space and its ancestors: all a reset rule needs (its own reset, the nearest time zone).
/// `UNION` stops at a repeated id, so even a corrupt parent cycle ends.
pub(super) async fn space_chain(conn: &mut PgConnection, id: SpaceId) -> Result<Vec<Space>> {
    let rows = sqlx::query(&format!(
        "WITH RECURSIVE chain(id) AS ( \
             SELECT id FROM spaces WHERE id = $1 \
             UNION SELECT p.parent_id FROM spaces p JOIN chain c ON p.id = c.id \
                 WHERE p.parent_id IS NOT NULL) \
         SELECT {SPACE_COLUMNS} FROM spaces s WHERE s.id IN (SELECT id FROM chain)"
    ))
    .bind(id)
    .fetch_all(conn)
    .await?;
    rows.iter().map(space).collect()
}

pub(super) async fn all_spaces(conn: &mut PgConnection) -> Result<Vec<Space>> {
    let rows = sqlx::query(&format!(
        "SELECT {SPACE_COLUMNS} FROM spaces s ORDER BY s.id"
    ))
    .fetch_all(conn)
    .await?;
    rows.iter().map(space).collect()
}

pub(super) async fn upsert_space(conn: &mut PgConnection, space: &Space) -> Result<bool> {
    let (time_zone, capacity, daily_reset) = space_columns(space);
    let result = sqlx::query(
        "INSERT INTO spaces (id, name, parent_id, time_zone, capacity, daily_reset) \
         VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, parent_id = EXCLUDED.parent_id, \
             time_zone = EXCLUDED.time_zone, capacity = EXCLUDED.capacity, \
             daily_reset = EXCLUDED.daily_reset \
         WHERE (spaces.name, spaces.parent_id, spaces.time_zone, spaces.capacity, \
                spaces.daily_reset) IS DISTINCT FROM \
             (EXCLUDED.name, EXCLUDED.parent_id, EXCLUDED.time_zone, EXCLUDED.capacity, \
              EXCLUDED.daily_reset)",
    )
    .bind(space.id)
    .bind(&space.name)
    .bind(space.parent)
    .bind(time_zone)
    .bind(capacity.map(|c| c as i32))
    .bind(daily_reset)
    .execute(conn)
    .await?;
    Ok(result.rows_affected() > 0)
}

pub(super) async fn delete_space(conn: &mut PgConnection, id: SpaceId) -> Result<bool> {
    for table in ["space_counts", "space_tiers", "tier_pending"] {
        sqlx::query(&format!("DELETE FROM {table} WHERE space_id = $1"))
            .bind(id)
            .execute(&mut *conn)
            .await?;
    }
    let result = sqlx::query("DELETE FROM spaces WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(result.rows_affected() > 0)
}

pub(super) async fn doorway_installed(conn: &mut PgConnection, id: DoorwayId) -> Result<bool> {
    let row = sqlx::query("SELECT 1 FROM installations WHERE doorway_id = $1 LIMIT 1")
        .bind(id)
        .fetch_optional(conn)
        .await?;
    Ok(row.is_some())
}

pub(super) async fn delete_doorway(conn: &mut PgConnection, id: DoorwayId) -> Result<bool> {
    let result = sqlx::query("DELETE FROM doorways WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(result.rows_affected() > 0)
}

pub(super) async fn delete_dpu(conn: &mut PgConnection, dpu: &DpuId) -> Result<bool> {
    let result = sqlx::query("DELETE FROM dpus WHERE id = $1")
        .bind(dpu.as_str())
        .execute(conn)
        .await?;
    Ok(result.rows_affected() > 0)
}

/// Spaces after `page.after`, with their current counts (see `crate::tiers::current`).
pub(super) async fn spaces_page(pool: &PgPool, page: &Page<SpaceId>) -> Result<Vec<SpaceCount>> {
    let rows = sqlx::query(&format!(
        "SELECT {SPACE_COLUMNS} FROM spaces s WHERE $1::bigint IS NULL OR s.id > $1 ORDER BY s.id LIMIT $2"
    ))
    .bind(page.after)
    .bind(limit(page.limit))
    .fetch_all(pool)
    .await?;
    let read: Vec<Space> = rows.iter().map(space).collect::<Result<_>>()?;
    let all = if read.iter().any(|s| s.daily_reset.is_some()) {
        all_spaces(&mut *pool.acquire().await?).await?
    } else {
        Vec::new()
    };
    crate::tiers::with_counts(&super::tiers_sql::Reader(pool), read, &all).await
}

pub(super) async fn doorways_page(pool: &PgPool, page: &Page<DoorwayId>) -> Result<Vec<Doorway>> {
    let rows = sqlx::query(
        "SELECT id, name, exiting_to, entering_to FROM doorways \
         WHERE $1::bigint IS NULL OR id > $1 ORDER BY id LIMIT $2",
    )
    .bind(page.after)
    .bind(limit(page.limit))
    .fetch_all(pool)
    .await?;
    Ok(rows.iter().map(doorway).collect())
}

pub(super) async fn installations(pool: &PgPool, dpu: &DpuId) -> Result<Vec<Installation>> {
    let rows = sqlx::query(
        "SELECT valid_from, valid_until, doorway_id FROM installations \
         WHERE dpu_id = $1 ORDER BY valid_from",
    )
    .bind(dpu.as_str())
    .fetch_all(pool)
    .await?;
    Ok(rows
        .iter()
        .map(|r| Installation {
            from: r.get(0),
            until: r.get(1),
            doorway: r.get(2),
        })
        .collect())
}
