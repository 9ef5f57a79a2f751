//! PostgreSQL: the crossings table inside a write transaction: which crossings of a batch are
//! already stored, storing new ones, and moving crossings between doorways.

use super::write::{direction, dpu};
use crate::engine::Result;
use occupancy::plan::{Known, Naming, Support};
use occupancy::{Crossing, CrossingKey, DoorwayId, DpuId, Timestamp};
use sqlx::{PgConnection, Row};
use std::collections::BTreeSet;

pub(super) async fn known(conn: &mut PgConnection, batch: &[Crossing]) -> Result<Known> {
    let mut known = Known::default();
    let ids: BTreeSet<(&str, i64)> = batch
        .iter()
        .filter_map(|c| Some((c.dpu.as_str(), c.event_id? as i64)))
        .collect();
    if !ids.is_empty() {
        let rows = sqlx::query(
            "SELECT e.dpu_id, e.event_id, e.ts, e.direction \
             FROM UNNEST($1::text[], $2::bigint[]) AS b(dpu_id, event_id) \
             JOIN event_ids e ON e.dpu_id = b.dpu_id AND e.event_id = b.event_id",
        )
        .bind(ids.iter().map(|(d, _)| *d).collect::<Vec<_>>())
        .bind(ids.iter().map(|(_, id)| *id).collect::<Vec<_>>())
        .fetch_all(&mut *conn)
        .await?;
        for row in rows {
            let id: i64 = row.get(1);
            let key = CrossingKey {
                dpu: dpu(row.get(0))?,
                ts: row.get(2),
                direction: direction(row.get(3))?,
            };
            known.ids.insert((key.dpu.clone(), id as u64), key);
        }
    }
    // The batch's crossings and those its ids name.
    let keys: BTreeSet<CrossingKey> = batch
        .iter()
        .map(Crossing::key)
        .chain(known.ids.values().cloned())
        .collect();
    let rows = sqlx::query(
        // LATERAL … LIMIT 1: one primary-key probe per element, whatever the planner
        // believes about the table's size (a hash join would scan every crossing). The
        // keys' time range lets TimescaleDB leave out every other chunk up front.
        "SELECT b.dpu_id, b.ts, b.direction, found.plain, \
                (SELECT count(*) FROM event_ids e WHERE e.dpu_id = b.dpu_id \
                 AND e.ts = b.ts AND e.direction = b.direction) \
         FROM UNNEST($1::text[], $2::timestamptz[], $3::smallint[]) AS b(dpu_id, ts, direction) \
         CROSS JOIN LATERAL (SELECT c.event_id IS NULL AS plain FROM crossings c \
             WHERE c.dpu_id = b.dpu_id AND c.ts = b.ts AND c.direction = b.direction \
             AND c.ts >= $4 AND c.ts <= $5 LIMIT 1) AS found",
    )
    .bind(keys.iter().map(|k| k.dpu.as_str()).collect::<Vec<_>>())
    .bind(keys.iter().map(|k| k.ts).collect::<Vec<_>>())
    .bind(
        keys.iter()
            .map(|k| k.direction.as_i64() as i16)
            .collect::<Vec<_>>(),
    )
    .bind(keys.iter().map(|k| k.ts).min())
    .bind(keys.iter().map(|k| k.ts).max())
    .fetch_all(&mut *conn)
    .await?;
    for row in rows {
        let key = CrossingKey {
            dpu: dpu(row.get(0))?,
            ts: row.get(1),
            direction: direction(row.get(2))?,
        };
        let support = Support {
            plain: row.get(3),
            ids: row.get::<i64, _>(4) as usize,
        };
        known.keys.insert(key, support);
    }
    Ok(known)
}

/// Points ids at their crossings; `false` if one was not as planned (another writer).
pub(super) async fn rename(conn: &mut PgConnection, namings: &[Naming]) -> Result<bool> {
    let (new, moved): (Vec<&Naming>, Vec<&Naming>) =
        namings.iter().partition(|n| n.previous.is_none());
    if !new.is_empty() {
        let inserted = sqlx::query(
            "INSERT INTO event_ids (dpu_id, event_id, ts, direction) \
             SELECT * FROM UNNEST($1::text[], $2::bigint[], $3::timestamptz[], $4::smallint[]) \
             ON CONFLICT DO NOTHING",
        )
        .bind(new.iter().map(|n| n.id.0.as_str()).collect::<Vec<_>>())
        .bind(new.iter().map(|n| n.id.1 as i64).collect::<Vec<_>>())
        .bind(new.iter().map(|n| n.now.ts).collect::<Vec<_>>())
        .bind(
            new.iter()
                .map(|n| n.now.direction.as_i64() as i16)
                .collect::<Vec<_>>(),
        )
        .execute(&mut *conn)
        .await?
        .rows_affected();
        if inserted != new.len() as u64 {
            return Ok(false);
        }
    }
    for naming in moved {
        let ((dpu, id), now) = (&naming.id, &naming.now);
        let previous = naming.previous.as_ref().expect("partitioned");
        let done = sqlx::query(
            "UPDATE event_ids SET ts = $3, direction = $4 \
             WHERE dpu_id = $1 AND event_id = $2 AND ts = $5 AND direction = $6",
        )
        .bind(dpu.as_str())
        .bind(*id as i64)
        .bind(now.ts)
        .bind(now.direction.as_i64() as i16)
        .bind(previous.ts)
        .bind(previous.direction.as_i64() as i16)
        .execute(&mut *conn)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Deletes crossings that no longer count; answers how many there were.
pub(super) async fn delete(conn: &mut PgConnection, keys: &[CrossingKey]) -> Result<usize> {
    let mut deleted = 0;
    for k in keys {
        deleted +=
            sqlx::query("DELETE FROM crossings WHERE dpu_id = $1 AND ts = $2 AND direction = $3")
                .bind(k.dpu.as_str())
                .bind(k.ts)
                .bind(k.direction.as_i64() as i16)
                .execute(&mut *conn)
                .await?
                .rows_affected() as usize;
    }
    Ok(deleted)
}

/// Marks crossings as sent without an id.
pub(super) async fn make_plain(conn: &mut PgConnection, keys: &[CrossingKey]) -> Result<()> {
    for k in keys {
        sqlx::query(
            "UPDATE crossings SET event_id = NULL \
             WHERE dpu_id = $1 AND ts = $2 AND direction = $3",
        )
        .bind(k.dpu.as_str())
        .bind(k.ts)
        .bind(k.direction.as_i64() as i16)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

pub(super) async fn insert(
    conn: &mut PgConnection,
    rows: &[(Crossing, Option<DoorwayId>)],
    received_at: Timestamp,
) -> Result<usize> {
    if rows.is_empty() {
        return Ok(0);
    }
    let result = sqlx::query(
        "INSERT INTO crossings (dpu_id, ts, direction, event_id, doorway_id, received_at) \
         SELECT u.*, $6 FROM UNNEST($1::text[], $2::timestamptz[], $3::smallint[], \
                                    $4::bigint[], $5::bigint[]) AS u \
         ON CONFLICT DO NOTHING",
    )
    .bind(rows.iter().map(|(c, _)| c.dpu.as_str()).collect::<Vec<_>>())
    .bind(rows.iter().map(|(c, _)| c.ts).collect::<Vec<_>>())
    .bind(
        rows.iter()
            .map(|(c, _)| c.direction.as_i64() as i16)
            .collect::<Vec<_>>(),
    )
    .bind(
        rows.iter()
            .map(|(c, _)| c.event_id.map(|id| id as i64))
            .collect::<Vec<_>>(),
    )
    .bind(rows.iter().map(|(_, d)| *d).collect::<Vec<_>>())
    .bind(received_at)
    .execute(&mut *conn)
    .await?;
    Ok(result.rows_affected() as usize)
}

// The row comparisons below start with space_id so that PostgreSQL uses them as the
// bounds of an index range scan rather than as a filter over every entry of the space.
// The plain bound on ts they imply lets TimescaleDB skip the chunks that cannot match.

pub(super) async fn of(
    conn: &mut PgConnection,
    dpus: &[DpuId],
    doorways: &[DoorwayId],
) -> Result<Vec<(Crossing, Option<DoorwayId>)>> {
    let rows = sqlx::query(
        "SELECT dpu_id, ts, direction, event_id, doorway_id FROM crossings \
         WHERE dpu_id = ANY($1) OR doorway_id = ANY($2) ORDER BY dpu_id, ts, direction",
    )
    .bind(dpus.iter().map(DpuId::as_str).collect::<Vec<_>>())
    .bind(doorways)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|row| {
            let event_id: Option<i64> = row.get(3);
            let crossing = Crossing::new(
                dpu(row.get(0))?,
                row.get(1),
                direction(row.get(2))?,
                event_id.map(|id| id as u64),
            );
            Ok((crossing, row.get(4)))
        })
        .collect()
}

pub(super) async fn set_doorways(
    conn: &mut PgConnection,
    moved: &[(CrossingKey, Option<DoorwayId>)],
) -> Result<()> {
    if moved.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "UPDATE crossings c SET doorway_id = m.doorway_id \
         FROM UNNEST($1::text[], $2::timestamptz[], $3::smallint[], $4::bigint[]) \
              AS m(dpu_id, ts, direction, doorway_id) \
         WHERE c.dpu_id = m.dpu_id AND c.ts = m.ts AND c.direction = m.direction",
    )
    .bind(
        moved
            .iter()
            .map(|(k, _)| k.dpu.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(moved.iter().map(|(k, _)| k.ts).collect::<Vec<_>>())
    .bind(
        moved
            .iter()
            .map(|(k, _)| k.direction.as_i64() as i16)
            .collect::<Vec<_>>(),
    )
    .bind(moved.iter().map(|(_, d)| *d).collect::<Vec<_>>())
    .execute(&mut *conn)
    .await?;
    Ok(())
}
