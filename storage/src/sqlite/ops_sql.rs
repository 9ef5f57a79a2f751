//! SQLite statements for what DPUs send besides crossings: refused messages, statuses and
//! sightings. Each runs inside the caller's transaction (a batch's, or one of its own).

use super::micros;
use crate::engine::Result;
use crate::Rejected;
use occupancy::{DpuId, Timestamp};
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};

pub(super) async fn insert_rejected(conn: &mut SqliteConnection, rows: &[Rejected]) -> Result<()> {
    // 6 parameters a row: well under SQLite's limit per statement.
    for chunk in rows.chunks(1000) {
        let mut query = QueryBuilder::<Sqlite>::new(
            "INSERT INTO rejected (received_at, source, dpu_id, reason, detail, payload) ",
        );
        query.push_values(chunk, |mut row, r| {
            row.push_bind(micros(r.received_at))
                .push_bind(r.source.clone())
                .push_bind(r.dpu_id.clone())
                .push_bind(r.reason.clone())
                .push_bind(r.detail.clone())
                .push_bind(r.payload.clone());
        });
        query.build().execute(&mut *conn).await?;
    }
    Ok(())
}

pub(super) async fn record_statuses(
    conn: &mut SqliteConnection,
    statuses: &[(DpuId, bool, Timestamp)],
) -> Result<()> {
    for (dpu, online, at) in statuses {
        sqlx::query(
            "INSERT INTO dpu_status (dpu_id, online, status_at, last_seen) VALUES (?1, ?2, ?3, ?3) \
             ON CONFLICT (dpu_id) DO UPDATE SET \
                 online = CASE WHEN dpu_status.status_at IS NULL \
                     OR excluded.status_at >= dpu_status.status_at \
                     THEN excluded.online ELSE dpu_status.online END, \
                 status_at = MAX(COALESCE(dpu_status.status_at, excluded.status_at), excluded.status_at), \
                 last_seen = MAX(dpu_status.last_seen, excluded.last_seen)",
        )
        .bind(dpu.as_str())
        .bind(online)
        .bind(micros(*at))
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

pub(super) async fn record_seen(
    conn: &mut SqliteConnection,
    seen: &[(DpuId, Timestamp)],
) -> Result<()> {
    let latest = crate::latest::latest_per_dpu(seen);
    if latest.is_empty() {
        return Ok(());
    }
    let mut query = QueryBuilder::<Sqlite>::new("INSERT INTO dpu_status (dpu_id, last_seen) ");
    query.push_values(&latest, |mut row, (dpu, at)| {
        row.push_bind(dpu.as_str().to_owned())
            .push_bind(micros(*at));
    });
    query.push(
        " ON CONFLICT (dpu_id) DO UPDATE SET \
          last_seen = MAX(dpu_status.last_seen, excluded.last_seen)",
    );
    query.build().execute(&mut *conn).await?;
    Ok(())
}
