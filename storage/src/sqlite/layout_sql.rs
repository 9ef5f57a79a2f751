//! SQLite: the layout's rows — spaces with their settings, doorways — read and written for
//! the write paths (inside a transaction) and for paginated lists (on a reader).

use super::from_micros;
use crate::engine::Result;
use crate::{space_columns, space_from_columns, Page, SpaceCount};
use occupancy::{Doorway, DoorwayId, DpuId, Installation, Space, SpaceId};
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection, SqlitePool};

const SPACE_COLUMNS: &str = "s.id, s.name, s.parent_id, s.time_zone, s.capacity, s.daily_reset";

fn space(row: &SqliteRow) -> Result<Space> {
    space_from_columns(
        row.get(0),
        row.get(1),
        row.get(2),
        row.get(3),
        row.get(4),
        row.get(5),
    )
}

fn doorway(row: &SqliteRow) -> Doorway {
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
pub(super) async fn space_chain(conn: &mut SqliteConnection, id: SpaceId) -> Result<Vec<Space>> {
    let rows = sqlx::query(&format!(
        "WITH RECURSIVE chain(id) AS ( \
             SELECT id FROM spaces WHERE id = ? \
             UNION SELECT p.parent_id FROM spaces p JOIN chain c ON p.id = c.id \
                 WHERE p.parent_id IS NOT NULL) \
         SELECT {SPACE_COLUMNS} FROM spaces s WHERE s.id IN (SELECT id FROM chain)"
    ))
    .bind(id)
    .fetch_all(conn)
    .await?;
    rows.iter().map(space).collect()
}

pub(super) async fn all_spaces(conn: &mut SqliteConnection) -> Result<Vec<Space>> {
    let rows = sqlx::query(&format!(
        "SELECT {SPACE_COLUMNS} FROM spaces s ORDER BY s.id"
    ))
    .fetch_all(conn)
    .await?;
    rows.iter().map(space).collect()
}

pub(super) async fn upsert_space(conn: &mut SqliteConnection, space: &Space) -> Result<bool> {
    let (time_zone, capacity, daily_reset) = space_columns(space);
    let result = sqlx::query(
        "INSERT INTO spaces (id, name, parent_id, time_zone, capacity, daily_reset) \
         VALUES (?, ?, ?, ?, ?, ?) \
         ON CONFLICT (id) DO UPDATE SET name = excluded.name, parent_id = excluded.parent_id, \
             time_zone = excluded.time_zone, capacity = excluded.capacity, \
             daily_reset = excluded.daily_reset \
         WHERE (name, parent_id, time_zone, capacity, daily_reset) IS NOT \
             (excluded.name, excluded.parent_id, excluded.time_zone, excluded.capacity, \
              excluded.daily_reset)",
    )
    .bind(space.id)
    .bind(&space.name)
    .bind(space.parent)
    .bind(time_zone)
    .bind(capacity)
    .bind(daily_reset)
    .execute(conn)
    .await?;
    Ok(result.rows_affected() > 0)
}

pub(super) async fn delete_space(conn: &mut SqliteConnection, id: SpaceId) -> Result<bool> {
    for table in ["space_counts", "space_tiers", "tier_pending"] {
        sqlx::query(&format!("DELETE FROM {table} WHERE space_id = ?"))
            .bind(id)
            .execute(&mut *conn)
            .await?;
    }
    let result = sqlx::query("DELETE FROM spaces WHERE id = ?")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(result.rows_affected() > 0)
}

pub(super) async fn doorway_installed(conn: &mut SqliteConnection, id: DoorwayId) -> Result<bool> {
    let row = sqlx::query("SELECT 1 FROM installations WHERE doorway_id = ? LIMIT 1")
        .bind(id)
        .fetch_optional(conn)
        .await?;
    Ok(row.is_some())
}

pub(super) async fn delete_doorway(conn: &mut SqliteConnection, id: DoorwayId) -> Result<bool> {
    let result = sqlx::query("DELETE FROM doorways WHERE id = ?")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(result.rows_affected() > 0)
}

pub(super) async fn delete_dpu(conn: &mut SqliteConnection, dpu: &DpuId) -> Result<bool> {
    let result = sqlx::query("DELETE FROM dpus WHERE id = ?")
        .bind(dpu.as_str())
        .execute(conn)
        .await?;
    Ok(result.rows_affected() > 0)
}

/// Spaces after `page.after`, with their current counts (see `crate::tiers::current`).
pub(super) async fn spaces_page(
    pool: &SqlitePool,
    page: &Page<SpaceId>,
) -> Result<Vec<SpaceCount>> {
    let rows = sqlx::query(&format!(
        "SELECT {SPACE_COLUMNS} FROM spaces s WHERE ?1 IS NULL OR s.id > ?1 ORDER BY s.id LIMIT ?2"
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

pub(super) async fn doorways_page(
    pool: &SqlitePool,
    page: &Page<DoorwayId>,
) -> Result<Vec<Doorway>> {
    let rows = sqlx::query(
        "SELECT id, name, exiting_to, entering_to FROM doorways \
         WHERE ?1 IS NULL OR id > ?1 ORDER BY id LIMIT ?2",
    )
    .bind(page.after)
    .bind(limit(page.limit))
    .fetch_all(pool)
    .await?;
    Ok(rows.iter().map(doorway).collect())
}

pub(super) async fn installations(pool: &SqlitePool, dpu: &DpuId) -> Result<Vec<Installation>> {
    let rows = sqlx::query(
        "SELECT valid_from, valid_until, doorway_id FROM installations \
         WHERE dpu_id = ? ORDER BY valid_from",
    )
    .bind(dpu.as_str())
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Installation {
                from: from_micros(r.get(0))?,
                until: r.get::<Option<i64>, _>(1).map(from_micros).transpose()?,
                doorway: r.get(2),
            })
        })
        .collect()
}
