//! PostgreSQL: the crossings table inside a write transaction: which crossings of a batch are
//! already stored, storing new ones, and moving crossings between doorways.

use super::write::{direction, dpu};
use crate::engine::Result;
use roomer_occupancy::plan::{Known, NewCrossing};
use roomer_occupancy::{Crossing, CrossingKey, DoorwayId, DpuId, Timestamp};
use sqlx::{PgConnection, Row};
use std::collections::BTreeSet;

/// Keys of one DPU in a batch from which [`known`] probes the DPU's time range first.
const RANGE_PROBE_FROM: usize = 8;

/// The stored copies of each key in `b`: one primary-key probe per key. LATERAL … OFFSET 0,
/// whatever the planner believes about the table's size: a subquery it may flatten could
/// become a hash join that scans every crossing. The keys' time range ($4, $5) lets
/// TimescaleDB leave out every other chunk up front.
macro_rules! probe_keys_of_b {
    () => {
        " CROSS JOIN LATERAL (SELECT c.event_id FROM crossings c \
         WHERE c.dpu_id = b.dpu_id AND c.ts = b.ts AND c.direction = b.direction \
         AND c.ts >= $4 AND c.ts <= $5 OFFSET 0) AS found"
    };
}

/// Every key probed.
const PROBE_EACH_KEY: &str = concat!(
    "SELECT b.dpu_id, b.ts, b.direction, found.event_id \
     FROM UNNEST($1::text[], $2::timestamptz[], $3::smallint[]) AS b(dpu_id, ts, direction)",
    probe_keys_of_b!()
);

/// The same, except that a DPU with `$6` keys or more (an upload after an outage) is first
/// probed once over its keys' time range: mostly nothing of it is stored there yet, and then
/// its keys need no probe each.
const PROBE_RANGES_FIRST: &str = concat!(
    "WITH b AS (SELECT * FROM UNNEST($1::text[], $2::timestamptz[], $3::smallint[]) \
         AS b(dpu_id, ts, direction)), \
     probed AS (SELECT r.dpu_id FROM (SELECT dpu_id, min(ts) AS lo, max(ts) AS hi, \
             count(*) AS n FROM b GROUP BY dpu_id) AS r \
         WHERE r.n < $6 OR EXISTS (SELECT 1 FROM crossings c \
             WHERE c.dpu_id = r.dpu_id AND c.ts >= r.lo AND c.ts <= r.hi \
             AND c.ts >= $4 AND c.ts <= $5)) \
     SELECT b.dpu_id, b.ts, b.direction, found.event_id FROM b JOIN probed USING (dpu_id)",
    probe_keys_of_b!()
);

/// Every stored copy of the batch's keys, with the ids they carry.
pub(super) async fn known(conn: &mut PgConnection, batch: &[Crossing]) -> Result<Known> {
    let mut known = Known::default();
    let keys: BTreeSet<CrossingKey> = batch.iter().map(Crossing::key).collect();
    if keys.is_empty() {
        return Ok(known);
    }
    // Keys are ordered by DPU first, so each DPU's keys are one run.
    let ordered: Vec<&CrossingKey> = keys.iter().collect();
    let uploads = ordered
        .chunk_by(|a, b| a.dpu == b.dpu)
        .any(|run| run.len() >= RANGE_PROBE_FROM);
    let query = sqlx::query(if uploads {
        PROBE_RANGES_FIRST
    } else {
        PROBE_EACH_KEY
    })
    .bind(keys.iter().map(|k| k.dpu.as_str()).collect::<Vec<_>>())
    .bind(keys.iter().map(|k| k.ts).collect::<Vec<_>>())
    .bind(
        keys.iter()
            .map(|k| k.direction.as_i64() as i16)
            .collect::<Vec<_>>(),
    )
    .bind(keys.iter().map(|k| k.ts).min())
    .bind(keys.iter().map(|k| k.ts).max());
    let query = if uploads {
        query.bind(RANGE_PROBE_FROM as i64)
    } else {
        query
    };
    let rows = query.fetch_all(&mut *conn).await?;
    for row in rows {
        let key = CrossingKey {
            dpu: dpu(row.get(0))?,
            ts: row.get(1),
            direction: direction(row.get(2))?,
        };
        let stored = known.keys.entry(key).or_default();
        stored.copies += 1;
        stored
            .ids
            .extend(row.get::<Option<i64>, _>(3).map(|id| id as u64));
    }
    Ok(known)
}

/// Gives stored crossings sent without an id so far their first id; `false` if one had
/// changed meanwhile (another writer).
pub(super) async fn name(conn: &mut PgConnection, named: &[(CrossingKey, u64)]) -> Result<bool> {
    for (k, id) in named {
        let done = sqlx::query(
            "UPDATE crossings SET event_id = $4 \
             WHERE dpu_id = $1 AND ts = $2 AND direction = $3 AND copy = 0 AND event_id IS NULL",
        )
        .bind(k.dpu.as_str())
        .bind(k.ts)
        .bind(k.direction.as_i64() as i16)
        .bind(*id as i64)
        .execute(&mut *conn)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Stores new crossings; answers how many were new (none: another writer stored one of them
/// first). A plain insert, not `ON CONFLICT DO NOTHING`: the batch's plan already knows these
/// keys are new, and a conflict means its transaction is retried whole anyway, so it need not
/// pay for a speculative insertion per row.
pub(super) async fn insert(
    conn: &mut PgConnection,
    rows: &[NewCrossing],
    received_at: Timestamp,
) -> Result<usize> {
    if rows.is_empty() {
        return Ok(0);
    }
    let result = sqlx::query(
        "INSERT INTO crossings (dpu_id, ts, direction, copy, event_id, doorway_id, received_at) \
         SELECT u.*, $7 FROM UNNEST($1::text[], $2::timestamptz[], $3::smallint[], \
                                    $4::integer[], $5::bigint[], $6::bigint[]) AS u",
    )
    .bind(
        rows.iter()
            .map(|n| n.crossing.dpu.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(rows.iter().map(|n| n.crossing.ts).collect::<Vec<_>>())
    .bind(
        rows.iter()
            .map(|n| n.crossing.direction.as_i64() as i16)
            .collect::<Vec<_>>(),
    )
    .bind(rows.iter().map(|n| n.copy as i32).collect::<Vec<_>>())
    .bind(
        rows.iter()
            .map(|n| n.crossing.event_id.map(|id| id as i64))
            .collect::<Vec<_>>(),
    )
    .bind(rows.iter().map(|n| n.doorway).collect::<Vec<_>>())
    .bind(received_at)
    .execute(&mut *conn)
    .await;
    match result {
        Ok(done) => Ok(done.rows_affected() as usize),
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Ok(0),
        Err(e) => Err(e.into()),
    }
}

// The row comparisons below start with space_id so that PostgreSQL uses them as the
// bounds of an index range scan rather than as a filter over every entry of the space.
// The plain bound on ts they imply lets TimescaleDB skip the chunks that cannot match.

pub(super) async fn of(
    conn: &mut PgConnection,
    dpus: &[DpuId],
    doorways: &[DoorwayId],
) -> Result<Vec<(Crossing, u32, Option<DoorwayId>)>> {
    let rows = sqlx::query(
        "SELECT dpu_id, ts, direction, copy, event_id, doorway_id FROM crossings \
         WHERE dpu_id = ANY($1) OR doorway_id = ANY($2) ORDER BY dpu_id, ts, direction, copy",
    )
    .bind(dpus.iter().map(DpuId::as_str).collect::<Vec<_>>())
    .bind(doorways)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|row| {
            let event_id: Option<i64> = row.get(4);
            let crossing = Crossing::new(
                dpu(row.get(0))?,
                row.get(1),
                direction(row.get(2))?,
                event_id.map(|id| id as u64),
            );
            Ok((crossing, row.get::<i32, _>(3) as u32, row.get(5)))
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
