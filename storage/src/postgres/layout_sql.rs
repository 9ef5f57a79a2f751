//! PostgreSQL: the layout's rows — spaces with their settings, doorways — read and written for
//! the write paths (inside a transaction) and for paginated lists (on a reader).

use crate::engine::Result;
use crate::{space_columns, space_from_columns, sql, Page};
use roomer_occupancy::{Doorway, DoorwayId, DpuId, Installation, Space, SpaceId};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgPool, Row};

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

/// A space and its ancestors: all a reset rule needs (its own reset, the nearest time zone).
/// `UNION` stops at a repeated id, so even a corrupt parent cycle ends.
pub(super) async fn space_chain(conn: &mut PgConnection, id: SpaceId) -> Result<Vec<Space>> {
    let rows = sqlx::query(sql::SPACE_CHAIN)
        .bind(id)
        .fetch_all(conn)
        .await?;
    rows.iter().map(space).collect()
}

pub(super) async fn all_spaces(conn: &mut PgConnection) -> Result<Vec<Space>> {
    let rows = sqlx::query(sql::ALL_SPACES).fetch_all(conn).await?;
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

/// One page of spaces, by id.
pub(super) async fn spaces_page(pool: &PgPool, page: &Page<SpaceId>) -> Result<Vec<Space>> {
    let rows = sqlx::query(sql::SPACES_PAGE)
        .bind(page.after)
        .bind(sql::limit(page.limit))
        .fetch_all(pool)
        .await?;
    rows.iter().map(space).collect()
}

pub(super) async fn doorways_page(pool: &PgPool, page: &Page<DoorwayId>) -> Result<Vec<Doorway>> {
    let rows = sqlx::query(sql::DOORWAYS_PAGE)
        .bind(page.after)
        .bind(sql::limit(page.limit))
        .fetch_all(pool)
        .await?;
    Ok(rows.iter().map(doorway).collect())
}

pub(super) async fn installations(pool: &PgPool, dpu: &DpuId) -> Result<Vec<Installation>> {
    let rows = sqlx::query(sql::INSTALLATIONS)
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
