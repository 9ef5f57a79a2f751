//! SQLite statements for the crossings table inside a write transaction (rule 3): what a
//! batch needs to know about the keys it sends, storing new crossings, and giving a stored
//! crossing sent without an id its first id.

use super::{from_micros, micros};
use crate::engine::Result;
use crate::StoreError;
use roomer_occupancy::plan::{Known, NewCrossing};
use roomer_occupancy::{Crossing, CrossingKey, Direction, DpuId, Timestamp};
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection};
use std::collections::BTreeSet;

/// Rows per multi-row statement: at most 7 parameters a row, well under SQLite's limit of
/// 32,766 parameters a statement.
const CHUNK: usize = 1000;

fn key(dpu: String, ts: i64, direction: i64) -> Result<CrossingKey> {
    Ok(CrossingKey {
        dpu: DpuId::new(dpu).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        ts: from_micros(ts)?,
        direction: Direction::from_i64(direction)
            .ok_or_else(|| StoreError::Corrupt(format!("direction {direction}")))?,
    })
}

/// Every stored copy of the batch's keys, with the ids they carry.
pub(super) async fn known(conn: &mut SqliteConnection, batch: &[Crossing]) -> Result<Known> {
    let mut known = Known::default();
    let keys: BTreeSet<CrossingKey> = batch.iter().map(Crossing::key).collect();
    let keys: Vec<_> = keys.into_iter().collect();
    for chunk in keys.chunks(CHUNK) {
        let mut query =
            QueryBuilder::<Sqlite>::new("SELECT c.dpu_id, c.ts, c.direction, c.event_id FROM (");
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
            let stored = known
                .keys
                .entry(key(row.get(0), row.get(1), row.get(2))?)
                .or_default();
            stored.copies += 1;
            stored
                .ids
                .extend(row.get::<Option<i64>, _>(3).map(|id| id as u64));
        }
    }
    Ok(known)
}

/// Stores new crossings; answers how many were new (fewer: another writer got there first).
pub(super) async fn insert(
    conn: &mut SqliteConnection,
    rows: &[NewCrossing],
    received_at: Timestamp,
) -> Result<usize> {
    let mut inserted = 0;
    for chunk in rows.chunks(CHUNK) {
        let mut query = QueryBuilder::<Sqlite>::new(
            "INSERT INTO crossings \
             (dpu_id, ts, direction, copy, event_id, doorway_id, received_at) ",
        );
        query.push_values(chunk, |mut row, new| {
            let c = &new.crossing;
            row.push_bind(c.dpu.as_str())
                .push_bind(micros(c.ts))
                .push_bind(c.direction.as_i64())
                .push_bind(new.copy)
                .push_bind(c.event_id.map(|id| id as i64))
                .push_bind(new.doorway)
                .push_bind(micros(received_at));
        });
        query.push(" ON CONFLICT DO NOTHING");
        inserted += query.build().execute(&mut *conn).await?.rows_affected() as usize;
    }
    Ok(inserted)
}

/// Gives stored crossings sent without an id so far their first id; `false` if one had
/// changed meanwhile (another writer).
pub(super) async fn name(
    conn: &mut SqliteConnection,
    named: &[(CrossingKey, u64)],
) -> Result<bool> {
    for (k, id) in named {
        let done = sqlx::query(
            "UPDATE crossings SET event_id = ? \
             WHERE dpu_id = ? AND ts = ? AND direction = ? AND copy = 0 AND event_id IS NULL",
        )
        .bind(*id as i64)
        .bind(k.dpu.as_str())
        .bind(micros(k.ts))
        .bind(k.direction.as_i64())
        .execute(&mut *conn)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
    }
    Ok(true)
}
