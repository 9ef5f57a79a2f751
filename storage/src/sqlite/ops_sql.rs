//! SQLite statements for what DPUs send besides crossings (refused messages, statuses and
//! sightings, each inside the caller's transaction) and for what operators read (refused
//! messages, totals, DPUs, tokens).

use super::{from_micros, micros};
use crate::backend::stored_role;
use crate::engine::Result;
use crate::{sql, DpuInfo, Page, Rejected, RejectedFilter, TokenInfo, Totals};
use roomer_occupancy::{DpuId, Timestamp};
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection, SqlitePool};

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

pub(super) async fn rejected(pool: &SqlitePool, filter: &RejectedFilter) -> Result<Vec<Rejected>> {
    let rows = sqlx::query(sql::REJECTED)
        .bind(&filter.dpu_id)
        .bind(&filter.reason)
        .bind(i64::from(filter.limit))
        .fetch_all(pool)
        .await?;
    rows.into_iter()
        .map(|r| {
            Ok(Rejected {
                received_at: from_micros(r.get(0))?,
                source: r.get(1),
                dpu_id: r.get(2),
                reason: r.get(3),
                detail: r.get(4),
                payload: r.get(5),
            })
        })
        .collect()
}

pub(super) async fn totals(pool: &SqlitePool) -> Result<Totals> {
    let row = sqlx::query(sql::TOTALS).fetch_one(pool).await?;
    Ok(Totals {
        crossings: row.get(0),
        pending: row.get(1),
        rejected: row.get(2),
    })
}

pub(super) async fn dpus(
    pool: &SqlitePool,
    only: Option<&DpuId>,
    page: &Page<String>,
    now: Timestamp,
    day_start: Timestamp,
) -> Result<Vec<DpuInfo>> {
    let rows = sqlx::query(sql::DPUS)
        .bind(micros(now))
        .bind(micros(day_start))
        .bind(only.map(DpuId::as_str))
        .bind(page.after.as_deref())
        .bind(sql::limit(page.limit))
        .fetch_all(pool)
        .await?;
    rows.into_iter()
        .map(|r| {
            Ok(DpuInfo {
                id: r.get(0),
                declared: r.get(1),
                online: r.get(2),
                status_at: r.get::<Option<i64>, _>(3).map(from_micros).transpose()?,
                last_seen: r.get::<Option<i64>, _>(4).map(from_micros).transpose()?,
                doorway: r.get(5),
                events_today: r.get(6),
            })
        })
        .collect()
}

pub(super) async fn tokens(pool: &SqlitePool) -> Result<Vec<TokenInfo>> {
    let rows = sqlx::query(sql::TOKENS).fetch_all(pool).await?;
    rows.iter()
        .map(|r| {
            Ok(TokenInfo {
                id: r.get(0),
                name: r.get(1),
                role: stored_role(r.get(2))?,
                created_at: from_micros(r.get(3))?,
            })
        })
        .collect()
}

pub(super) async fn put_dpu_secret(
    pool: &SqlitePool,
    dpu: &DpuId,
    hash: &str,
    at: Timestamp,
) -> Result<()> {
    sqlx::query(sql::PUT_DPU_SECRET)
        .bind(dpu.as_str())
        .bind(hash)
        .bind(micros(at))
        .execute(pool)
        .await?;
    Ok(())
}

pub(super) async fn withdraw_dpu_secret(
    pool: &SqlitePool,
    dpu: &DpuId,
    at: Timestamp,
) -> Result<bool> {
    let done = sqlx::query(sql::WITHDRAW_DPU_SECRET)
        .bind(dpu.as_str())
        .bind(micros(at))
        .execute(pool)
        .await?;
    Ok(done.rows_affected() > 0)
}

pub(super) async fn secrets_changed_since(
    pool: &SqlitePool,
    since: Timestamp,
) -> Result<Vec<(String, Timestamp)>> {
    let rows: Vec<(String, i64)> = sqlx::query_as(sql::DPU_SECRETS_CHANGED)
        .bind(micros(since))
        .fetch_all(pool)
        .await?;
    rows.into_iter()
        .map(|(dpu, at)| Ok((dpu, from_micros(at)?)))
        .collect()
}
