//! PostgreSQL statements for what DPUs send besides crossings (refused messages, statuses
//! and sightings, each inside the caller's transaction) and for what operators read
//! (refused messages, totals, DPUs, tokens).

use crate::backend::stored_role;
use crate::engine::Result;
use crate::{sql, DpuInfo, Page, Rejected, RejectedFilter, TokenInfo, Totals};
use roomer_occupancy::{DpuId, Timestamp};
use sqlx::{PgConnection, PgPool, Row};

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

pub(super) async fn rejected(pool: &PgPool, filter: &RejectedFilter) -> Result<Vec<Rejected>> {
    let rows = sqlx::query(sql::REJECTED)
        .bind(&filter.dpu_id)
        .bind(&filter.reason)
        .bind(i64::from(filter.limit))
        .fetch_all(pool)
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| Rejected {
            received_at: r.get(0),
            source: r.get(1),
            dpu_id: r.get(2),
            reason: r.get(3),
            detail: r.get(4),
            payload: r.get(5),
        })
        .collect())
}

pub(super) async fn totals(pool: &PgPool) -> Result<Totals> {
    let row = sqlx::query(sql::TOTALS).fetch_one(pool).await?;
    Ok(Totals {
        crossings: row.get(0),
        pending: row.get(1),
        rejected: row.get(2),
    })
}

pub(super) async fn dpus(
    pool: &PgPool,
    only: Option<&DpuId>,
    page: &Page<String>,
    now: Timestamp,
    day_start: Timestamp,
) -> Result<Vec<DpuInfo>> {
    let rows = sqlx::query(sql::DPUS)
        .bind(now)
        .bind(day_start)
        .bind(only.map(DpuId::as_str))
        .bind(page.after.as_deref())
        .bind(sql::limit(page.limit))
        .fetch_all(pool)
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| DpuInfo {
            id: r.get(0),
            declared: r.get(1),
            online: r.get(2),
            status_at: r.get(3),
            last_seen: r.get(4),
            doorway: r.get(5),
            events_today: r.get(6),
        })
        .collect())
}

pub(super) async fn tokens(pool: &PgPool) -> Result<Vec<TokenInfo>> {
    let rows = sqlx::query(sql::TOKENS).fetch_all(pool).await?;
    rows.iter()
        .map(|r| {
            Ok(TokenInfo {
                id: r.get(0),
                name: r.get(1),
                role: stored_role(r.get(2))?,
                created_at: r.get(3),
            })
        })
        .collect()
}

pub(super) async fn put_dpu_secret(
    pool: &PgPool,
    dpu: &DpuId,
    hash: &str,
    at: Timestamp,
) -> Result<()> {
    sqlx::query(sql::PUT_DPU_SECRET)
        .bind(dpu.as_str())
        .bind(hash)
        .bind(at)
        .execute(pool)
        .await?;
    Ok(())
}

pub(super) async fn withdraw_dpu_secret(pool: &PgPool, dpu: &DpuId, at: Timestamp) -> Result<bool> {
    let done = sqlx::query(sql::WITHDRAW_DPU_SECRET)
        .bind(dpu.as_str())
        .bind(at)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() > 0)
}

pub(super) async fn secrets_changed_since(
    pool: &PgPool,
    since: Timestamp,
) -> Result<Vec<(String, Timestamp)>> {
    Ok(sqlx::query_as(sql::DPU_SECRETS_CHANGED)
        .bind(since)
        .fetch_all(pool)
        .await?)
}
