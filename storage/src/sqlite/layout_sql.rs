//! SQLite: the layout's rows — spaces with their settings, doorways — read and written for
//! the write paths (inside a transaction) and for paginated lists (on a reader).

use super::from_micros;
use crate::engine::Result;
use crate::{space_columns, space_from_columns, sql, Page};
use roomer_occupancy::{Doorway, DoorwayId, DpuId, Installation, Space, SpaceId};
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection, SqlitePool};

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

/// A space and its ancestors: all a reset rule needs (its own reset, the nearest time zone).
/// `UNION` stops at a repeated id, so even a corrupt parent cycle ends.
pub(super) async fn space_chain(conn: &mut SqliteConnection, id: SpaceId) -> Result<Vec<Space>> {
    let rows = sqlx::query(sql::SPACE_CHAIN)
        .bind(id)
        .fetch_all(conn)
        .await?;
    rows.iter().map(space).collect()
}

pub(super) async fn all_spaces(conn: &mut SqliteConnection) -> Result<Vec<Space>> {
    let rows = sqlx::query(sql::ALL_SPACES).fetch_all(conn).await?;
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

/// One page of spaces, by id.
pub(super) async fn spaces_page(pool: &SqlitePool, page: &Page<SpaceId>) -> Result<Vec<Space>> {
    let rows = sqlx::query(sql::SPACES_PAGE)
        .bind(page.after)
        .bind(sql::limit(page.limit))
        .fetch_all(pool)
        .await?;
    rows.iter().map(space).collect()
}

pub(super) async fn doorways_page(
    pool: &SqlitePool,
    page: &Page<DoorwayId>,
) -> Result<Vec<Doorway>> {
    let rows = sqlx::query(sql::DOORWAYS_PAGE)
        .bind(page.after)
        .bind(sql::limit(page.limit))
        .fetch_all(pool)
        .await?;
    Ok(rows.iter().map(doorway).collect())
}

pub(super) async fn installations(pool: &SqlitePool, dpu: &DpuId) -> Result<Vec<Installation>> {
    let rows = sqlx::query(sql::INSTALLATIONS)
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
