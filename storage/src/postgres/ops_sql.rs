//! PostgreSQL statements for what DPUs send besides crossings: refused messages, statuses
//! and sightings. Each runs inside the caller's transaction (a batch's, or one of its own).

use crate::engine::Result;
use crate::Rejected;
use occupancy::{DpuId, Timestamp};
use sqlx::PgConnection;

/// PostgreSQL text cannot hold U+0000, and a refusal must never fail to be kept (the batch
/// holding it would be retried forever): NULs in its text become U+FFFD. The payload, bytes,
/// keeps them.
fn text(value: &str) -> std::borrow::Cow<'_, str> {
    if value.contains('\0') {
        value.replace('\0', "\u{fffd}").into()
    } else {
        value.into()
    }
}

pub(super) async fn insert_rejected(conn: &mut PgConnection, rows: &[Rejected]) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO rejected (received_at, source, dpu_id, reason, detail, payload) \
         SELECT * FROM UNNEST($1::timestamptz[], $2::text[], $3::text[], $4::text[], \
                              $5::text[], $6::bytea[])",
    )
    .bind(rows.iter().map(|r| r.received_at).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| text(&r.source)).collect::<Vec<_>>())
    .bind(
        rows.iter()
            .map(|r| r.dpu_id.as_deref().map(text))
            .collect::<Vec<_>>(),
    )
    .bind(rows.iter().map(|r| text(&r.reason)).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| text(&r.detail)).collect::<Vec<_>>())
    .bind(
        rows.iter()
            .map(|r| r.payload.as_slice())
            .collect::<Vec<_>>(),
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub(super) async fn record_statuses(
    conn: &mut PgConnection,
    statuses: &[(DpuId, bool, Timestamp)],
) -> Result<()> {
    // One statement, one row per DPU, in DPU order: writers recording statuses of the same
    // DPUs lock their rows in the same order, so they never deadlock. (One statement per
    // status, each its own commit, took 0.3 s for the 2,000 statuses of a 1,000-DPU fleet.)
    let latest = crate::latest::latest_status_per_dpu(statuses);
    if latest.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO dpu_status (dpu_id, online, status_at, last_seen) \
         SELECT d, o, t, t FROM UNNEST($1::text[], $2::boolean[], $3::timestamptz[]) AS s(d, o, t) \
         ON CONFLICT (dpu_id) DO UPDATE SET \
             online = CASE WHEN dpu_status.status_at IS NULL \
                 OR EXCLUDED.status_at >= dpu_status.status_at \
                 THEN EXCLUDED.online ELSE dpu_status.online END, \
             status_at = GREATEST(dpu_status.status_at, EXCLUDED.status_at), \
             last_seen = GREATEST(dpu_status.last_seen, EXCLUDED.last_seen)",
    )
    .bind(
        latest
            .iter()
            .map(|(d, _, _)| d.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(latest.iter().map(|(_, o, _)| *o).collect::<Vec<_>>())
    .bind(latest.iter().map(|(_, _, t)| *t).collect::<Vec<_>>())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub(super) async fn record_seen(
    conn: &mut PgConnection,
    seen: &[(DpuId, Timestamp)],
) -> Result<()> {
    let latest = crate::latest::latest_per_dpu(seen);
    if latest.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO dpu_status (dpu_id, last_seen) \
         SELECT * FROM UNNEST($1::text[], $2::timestamptz[]) \
         ON CONFLICT (dpu_id) DO UPDATE SET \
             last_seen = GREATEST(dpu_status.last_seen, EXCLUDED.last_seen)",
    )
    .bind(latest.iter().map(|(d, _)| d.as_str()).collect::<Vec<_>>())
    .bind(latest.iter().map(|(_, t)| *t).collect::<Vec<_>>())
    .execute(&mut *conn)
    .await?;
    Ok(())
}
