//! PostgreSQL: the crossings table inside a write transaction: which crossings of a batch are
//! already stored, storing new ones, and moving crossings between doorways.

use super::write::{direction, dpu};
use crate::engine::Result;
use occupancy::plan::Known;
use occupancy::{Crossing, CrossingKey, DoorwayId, DpuId, Timestamp};
use sqlx::{PgConnection, Row};

pub(super) async fn known(conn: &mut PgConnection, batch: &[Crossing]) -> Result<Known> {
    let mut known = Known::default();
    let rows = sqlx::query(
        // LATERAL … LIMIT 1: one primary-key probe per element, whatever the planner
        // believes about the table's size (a hash join would scan every crossing). The
        // batch's time range lets TimescaleDB leave out every other chunk up front.
        "SELECT b.dpu_id, b.ts, b.direction \
         FROM UNNEST($1::text[], $2::timestamptz[], $3::smallint[]) AS b(dpu_id, ts, direction) \
         CROSS JOIN LATERAL (SELECT 1 FROM crossings c WHERE c.dpu_id = b.dpu_id \
             AND c.ts = b.ts AND c.direction = b.direction \
             AND c.ts >= $4 AND c.ts <= $5 LIMIT 1) AS found",
    )
    .bind(batch.iter().map(|c| c.dpu.as_str()).collect::<Vec<_>>())
    .bind(batch.iter().map(|c| c.ts).collect::<Vec<_>>())
    .bind(
        batch
            .iter()
            .map(|c| c.direction.as_i64() as i16)
            .collect::<Vec<_>>(),
    )
    .bind(batch.iter().map(|c| c.ts).min())
    .bind(batch.iter().map(|c| c.ts).max())
    .fetch_all(&mut *conn)
    .await?;
    for row in rows {
        known.keys.insert(CrossingKey {
            dpu: dpu(row.get(0))?,
            ts: row.get(1),
            direction: direction(row.get(2))?,
        });
    }
    let with_ids: Vec<&Crossing> = batch.iter().filter(|c| c.event_id.is_some()).collect();
    if !with_ids.is_empty() {
        let rows = sqlx::query(
            "SELECT c.dpu_id, c.event_id, c.ts, c.direction \
             FROM UNNEST($1::text[], $2::bigint[]) AS b(dpu_id, event_id) \
             CROSS JOIN LATERAL (SELECT * FROM crossings c WHERE c.dpu_id = b.dpu_id \
                 AND c.event_id = b.event_id LIMIT 1) AS c",
        )
        .bind(with_ids.iter().map(|c| c.dpu.as_str()).collect::<Vec<_>>())
        .bind(
            with_ids
                .iter()
                .map(|c| c.event_id.map(|id| id as i64))
                .collect::<Vec<_>>(),
        )
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
    Ok(known)
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
