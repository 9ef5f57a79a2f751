//! SQLite statements for rule 3's event ids: what a batch needs to know about the crossings
//! it repeats and the ids it uses, and the changes when an id moves to an earlier crossing.

use super::{from_micros, micros};
use crate::engine::Result;
use crate::StoreError;
use occupancy::plan::{Known, Naming, Support};
use occupancy::{Crossing, CrossingKey, Direction, DpuId};
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection};
use std::collections::BTreeSet;

/// Rows per multi-row statement, well under SQLite's parameter limit.
const CHUNK: usize = 1000;

fn key(dpu: String, ts: i64, direction: i64) -> Result<CrossingKey> {
    Ok(CrossingKey {
        dpu: DpuId::new(dpu).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        ts: from_micros(ts)?,
        direction: Direction::from_i64(direction)
            .ok_or_else(|| StoreError::Corrupt(format!("direction {direction}")))?,
    })
}

pub(super) async fn known(conn: &mut SqliteConnection, batch: &[Crossing]) -> Result<Known> {
    let mut known = Known::default();
    let ids: BTreeSet<(&str, i64)> = batch
        .iter()
        .filter_map(|c| Some((c.dpu.as_str(), c.event_id? as i64)))
        .collect();
    let ids: Vec<_> = ids.into_iter().collect();
    for chunk in ids.chunks(CHUNK) {
        let mut query =
            QueryBuilder::<Sqlite>::new("SELECT e.dpu_id, e.event_id, e.ts, e.direction FROM (");
        query.push_values(chunk, |mut row, (dpu, id)| {
            row.push_bind(*dpu).push_bind(*id);
        });
        query.push(") AS b JOIN event_ids e ON e.dpu_id = b.column1 AND e.event_id = b.column2");
        for row in query.build().fetch_all(&mut *conn).await? {
            let named = key(row.get(0), row.get(2), row.get(3))?;
            let id: i64 = row.get(1);
            known.ids.insert((named.dpu.clone(), id as u64), named);
        }
    }
    let keys: BTreeSet<CrossingKey> = batch
        .iter()
        .map(Crossing::key)
        .chain(known.ids.values().cloned())
        .collect();
    let keys: Vec<_> = keys.into_iter().collect();
    for chunk in keys.chunks(CHUNK) {
        let mut query = QueryBuilder::<Sqlite>::new(
            "SELECT c.dpu_id, c.ts, c.direction, c.event_id IS NULL, \
                    (SELECT count(*) FROM event_ids e WHERE e.dpu_id = c.dpu_id \
                     AND e.ts = c.ts AND e.direction = c.direction) FROM (",
        );
        query.push_values(chunk, |mut row, k| {
            row.push_bind(k.dpu.as_str().to_owned())
                .push_bind(micros(k.ts))
                .push_bind(k.direction.as_i64());
        });
        query.push(
            ") AS b JOIN crossings c \
             ON c.dpu_id = b.column1 AND c.ts = b.column2 AND c.direction = b.column3",
        );
        for row in query.build().fetch_all(&mut *conn).await? {
            let support = Support {
                plain: row.get(3),
                ids: row.get::<i64, _>(4) as usize,
            };
            known
                .keys
                .insert(key(row.get(0), row.get(1), row.get(2))?, support);
        }
    }
    Ok(known)
}

/// Points ids at their crossings; `false` if one was not as planned (another writer).
pub(super) async fn rename(conn: &mut SqliteConnection, namings: &[Naming]) -> Result<bool> {
    let (new, moved): (Vec<&Naming>, Vec<&Naming>) =
        namings.iter().partition(|n| n.previous.is_none());
    for chunk in new.chunks(CHUNK) {
        let mut query =
            QueryBuilder::<Sqlite>::new("INSERT INTO event_ids (dpu_id, event_id, ts, direction) ");
        query.push_values(chunk, |mut row, n| {
            row.push_bind(n.id.0.as_str().to_owned())
                .push_bind(n.id.1 as i64)
                .push_bind(micros(n.now.ts))
                .push_bind(n.now.direction.as_i64());
        });
        query.push(" ON CONFLICT DO NOTHING");
        if query.build().execute(&mut *conn).await?.rows_affected() != chunk.len() as u64 {
            return Ok(false);
        }
    }
    for naming in moved {
        let ((dpu, id), now) = (&naming.id, &naming.now);
        let previous = naming.previous.as_ref().expect("partitioned");
        let done = sqlx::query(
            "UPDATE event_ids SET ts = ?3, direction = ?4 \
             WHERE dpu_id = ?1 AND event_id = ?2 AND ts = ?5 AND direction = ?6",
        )
        .bind(dpu.as_str())
        .bind(*id as i64)
        .bind(micros(now.ts))
        .bind(now.direction.as_i64())
        .bind(micros(previous.ts))
        .bind(previous.direction.as_i64())
        .execute(&mut *conn)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Deletes crossings that no longer count; answers how many there were.
pub(super) async fn delete(conn: &mut SqliteConnection, keys: &[CrossingKey]) -> Result<usize> {
    let mut deleted = 0;
    for k in keys {
        deleted +=
            sqlx::query("DELETE FROM crossings WHERE dpu_id = ? AND ts = ? AND direction = ?")
                .bind(k.dpu.as_str())
                .bind(micros(k.ts))
                .bind(k.direction.as_i64())
                .execute(&mut *conn)
                .await?
                .rows_affected() as usize;
    }
    Ok(deleted)
}

/// Marks crossings as sent without an id.
pub(super) async fn make_plain(conn: &mut SqliteConnection, keys: &[CrossingKey]) -> Result<()> {
    for k in keys {
        sqlx::query(
            "UPDATE crossings SET event_id = NULL WHERE dpu_id = ? AND ts = ? AND direction = ?",
        )
        .bind(k.dpu.as_str())
        .bind(micros(k.ts))
        .bind(k.direction.as_i64())
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}
