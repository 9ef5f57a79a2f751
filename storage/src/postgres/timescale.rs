//! TimescaleDB: turning the schema into hypertables with rollups (the SQL is in migration
//! 0005), its settings, reading the rollups and keeping them exact after late data.
//!
//! Exactness: every write transaction that changes a space's count series also records, in
//! `rollup_stale`, the earliest instant it changed for that space (`PgTx::commit`). History
//! reads a space's rollups only before its earliest mark and the raw series after it, so an
//! answer never depends on whether a refresh has run. [`refresh`] re-materializes from the
//! earliest mark to the materialized edge and then forgets the marks it saw. TimescaleDB
//! never materializes past `now() - 1 hour` (policies end there, and so does [`refresh`]),
//! and [`refresh`] waits out any overlapping refresh (TimescaleDB 2.28 refuses one with
//! SQLSTATE 55P03 instead of queueing it), so after ours every materialized bucket includes
//! every write whose mark we saw.

use crate::engine::Result;
use crate::{Rollups, TimescaleSettings, TimescaleStatus};
use occupancy::rollup::{Grain, Summary};
use occupancy::{SpaceId, Timestamp};
use sqlx::pool::PoolConnection;
use sqlx::postgres::PgPool;
use sqlx::{Executor, Postgres, Row};
use std::time::Duration;

/// Advisory lock classes (first key of `pg_advisory_xact_lock(int, int)`).
const LOCK_SETTINGS: i32 = 0x526f_0003;
const LOCK_REFRESH: i32 = 0x526f_0004;

/// Makes the database use TimescaleDB if the server has it (idempotent), and gives a new
/// TimescaleDB database its default settings. Answers the extension's version, if in use.
pub(super) async fn setup(pool: &PgPool) -> Result<Option<String>> {
    let enabled: bool = sqlx::query_scalar("SELECT roomer_timescaledb_setup()")
        .fetch_one(pool)
        .await?;
    if !enabled {
        return Ok(None);
    }
    let configured: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM timescaledb_information.jobs \
         WHERE proc_name = 'policy_compression' AND hypertable_name = 'space_counts')",
    )
    .fetch_one(pool)
    .await?;
    if !configured {
        configure(pool, &TimescaleSettings::defaults()).await?;
    }
    let version =
        sqlx::query_scalar("SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'")
            .fetch_one(pool)
            .await?;
    Ok(Some(version))
}

fn seconds(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// Applies the settings that are given, replacing the policies they concern.
pub(super) async fn configure(pool: &PgPool, settings: &TimescaleSettings) -> Result<()> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1, 0)")
        .bind(LOCK_SETTINGS)
        .execute(&mut *tx)
        .await?;
    let run = |sql: &'static str, value: Option<Duration>| (sql, value.map(seconds));
    let mut steps = Vec::new();
    if let Some(chunk) = settings.chunk_interval {
        steps.push(run(
            "SELECT set_chunk_time_interval('crossings', make_interval(secs => $1))",
            Some(chunk),
        ));
        steps.push(run(
            "SELECT set_chunk_time_interval('space_counts', make_interval(secs => $1))",
            Some(chunk),
        ));
    }
    if let Some(window) = settings.refresh_window {
        steps.push(run(
            "SELECT remove_continuous_aggregate_policy('space_counts_hourly', if_exists => true)",
            None,
        ));
        steps.push(run(
            "SELECT add_continuous_aggregate_policy('space_counts_hourly', \
             start_offset => make_interval(secs => $1), end_offset => INTERVAL '1 hour', \
             schedule_interval => INTERVAL '15 minutes', buckets_per_batch => 0)",
            Some(window),
        ));
        steps.push(run(
            "SELECT remove_continuous_aggregate_policy('space_counts_daily', if_exists => true)",
            None,
        ));
        // Whole days, at least three (TimescaleDB wants two buckets between the offsets).
        steps.push(run(
            "SELECT add_continuous_aggregate_policy('space_counts_daily', \
             start_offset => greatest(make_interval(secs => $1), INTERVAL '3 days'), \
             end_offset => INTERVAL '1 day', schedule_interval => INTERVAL '1 hour', \
             buckets_per_batch => 0)",
            Some(window),
        ));
    }
    if let Some(age) = settings.compress_after {
        for (remove, add) in [
            (
                "SELECT remove_compression_policy('crossings', if_exists => true)",
                "SELECT add_compression_policy('crossings', make_interval(secs => $1))",
            ),
            (
                "SELECT remove_compression_policy('space_counts', if_exists => true)",
                "SELECT add_compression_policy('space_counts', make_interval(secs => $1))",
            ),
        ] {
            steps.push(run(remove, None));
            steps.push(run(add, Some(age)));
        }
    }
    if let Some(retention) = settings.raw_retention {
        steps.push(run(
            "SELECT remove_retention_policy('crossings', if_exists => true)",
            None,
        ));
        if retention.is_some() {
            steps.push(run(
                "SELECT add_retention_policy('crossings', make_interval(secs => $1))",
                retention,
            ));
        }
    }
    if let Some(retention) = settings.rollup_retention {
        for (remove, add) in [
            (
                "SELECT remove_retention_policy('space_counts_hourly', if_exists => true)",
                "SELECT add_retention_policy('space_counts_hourly', make_interval(secs => $1))",
            ),
            (
                "SELECT remove_retention_policy('space_counts_daily', if_exists => true)",
                "SELECT add_retention_policy('space_counts_daily', make_interval(secs => $1))",
            ),
        ] {
            steps.push(run(remove, None));
            if retention.is_some() {
                steps.push(run(add, retention));
            }
        }
    }
    for (sql, value) in steps {
        let query = sqlx::query(sql);
        let query = match value {
            Some(v) => query.bind(v),
            None => query,
        };
        query.execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// The policies in force when the database still has to be brought to the current rule 3
/// (its `event_ids` table is there): migration 0007 rebuilds the rollups and compression,
/// which drops their policies, so roomer reads them first and puts them back afterwards.
pub(super) async fn policies_before_upgrade(pool: &PgPool) -> Result<Option<TimescaleSettings>> {
    let hypertables: bool = sqlx::query_scalar(
        "SELECT to_regclass('event_ids') IS NOT NULL \
            AND EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')",
    )
    .fetch_one(pool)
    .await?;
    if !hypertables {
        return Ok(None);
    }
    let status = status(pool, "").await?;
    Ok(Some(TimescaleSettings {
        chunk_interval: Some(status.chunk_interval).filter(|d| !d.is_zero()),
        refresh_window: status.refresh_window,
        compress_after: status.compress_after,
        raw_retention: Some(status.raw_retention),
        rollup_retention: Some(status.rollup_retention),
    }))
}

/// The settings in force, read back from TimescaleDB's catalog.
pub(super) async fn status(pool: &PgPool, version: &str) -> Result<TimescaleStatus> {
    let row = sqlx::query(
        "SELECT \
           (SELECT extract(epoch FROM time_interval)::float8 \
              FROM timescaledb_information.dimensions WHERE hypertable_name = 'space_counts'), \
           (SELECT extract(epoch FROM (config->>'start_offset')::interval)::float8 \
              FROM timescaledb_information.jobs WHERE hypertable_name = 'space_counts_hourly' \
               AND proc_name = 'policy_refresh_continuous_aggregate'), \
           (SELECT extract(epoch FROM (config->>'compress_after')::interval)::float8 \
              FROM timescaledb_information.jobs \
             WHERE proc_name = 'policy_compression' AND hypertable_name = 'space_counts'), \
           (SELECT extract(epoch FROM (config->>'drop_after')::interval)::float8 \
              FROM timescaledb_information.jobs \
             WHERE proc_name = 'policy_retention' AND hypertable_name = 'crossings'), \
           (SELECT extract(epoch FROM (config->>'drop_after')::interval)::float8 \
              FROM timescaledb_information.jobs WHERE hypertable_name = 'space_counts_hourly' \
               AND proc_name = 'policy_retention'), \
           (SELECT count(*) FROM timescaledb_information.chunks \
             WHERE hypertable_name IN ('crossings', 'space_counts')), \
           (SELECT count(*) FROM timescaledb_information.chunks \
             WHERE hypertable_name IN ('crossings', 'space_counts') AND is_compressed)",
    )
    .fetch_one(pool)
    .await?;
    let duration = |i: usize| {
        row.get::<Option<f64>, _>(i)
            .map(|s| Duration::from_secs_f64(s.max(0.0)))
    };
    Ok(TimescaleStatus {
        version: version.to_owned(),
        chunk_interval: duration(0).unwrap_or_default(),
        refresh_window: duration(1),
        compress_after: duration(2),
        raw_retention: duration(3),
        rollup_retention: duration(4),
        chunks: row.get(5),
        compressed_chunks: row.get(6),
    })
}

/// The raw-crossing retention in force (`None`: off): one catalog row, read once a minute by
/// every writer, so cheaper than the whole [`status`].
pub(super) async fn raw_retention(pool: &PgPool) -> Result<Option<Duration>> {
    let seconds: Option<f64> = sqlx::query_scalar(
        "SELECT extract(epoch FROM (config->>'drop_after')::interval)::float8 \
         FROM timescaledb_information.jobs \
         WHERE proc_name = 'policy_retention' AND hypertable_name = 'crossings'",
    )
    .fetch_optional(pool)
    .await?
    .flatten();
    Ok(seconds.map(|s| Duration::from_secs_f64(s.max(0.0))))
}

/// A space's summaries in `[from, to)`, up to its earliest stale mark.
pub(super) async fn rollups(
    pool: &PgPool,
    space: SpaceId,
    grain: Grain,
    from: Timestamp,
    to: Timestamp,
) -> Result<Rollups> {
    let stale: Option<Timestamp> =
        sqlx::query_scalar("SELECT min(since) FROM rollup_stale WHERE space_id = $1")
            .bind(space)
            .fetch_one(pool)
            .await?;
    let clean_until = stale.map_or(to, |since| grain.floor(since).clamp(from, to));
    let view = match grain {
        Grain::Hour => "space_counts_hourly",
        Grain::Day => "space_counts_daily",
    };
    let rows = sqlx::query(&format!(
        "SELECT bucket, entrances, exits, min_count, max_count, last_count, last_ts \
         FROM {view} WHERE space_id = $1 AND bucket >= $2 AND bucket < $3 ORDER BY bucket"
    ))
    .bind(space)
    .bind(from)
    .bind(clean_until)
    .fetch_all(pool)
    .await?;
    let summaries = rows
        .iter()
        .map(|r| Summary {
            start: r.get(0),
            entrances: r.get::<i64, _>(1).max(0) as u64,
            exits: r.get::<i64, _>(2).max(0) as u64,
            min: r.get::<Option<i64>, _>(3).unwrap_or(0),
            max: r.get::<Option<i64>, _>(4).unwrap_or(0),
            last: r.get::<Option<i64>, _>(5).unwrap_or(0),
            last_ts: r.get(6),
        })
        .collect();
    Ok(Rollups {
        summaries,
        clean_until,
    })
}

/// Re-materializes both rollups from the earliest stale mark to the materialized edge, then
/// forgets the marks it saw. One process at a time; the others return at once.
pub(super) async fn refresh(pool: &PgPool) -> Result<usize> {
    let mut conn = pool.acquire().await?;
    let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1, 0)")
        .bind(LOCK_REFRESH)
        .fetch_one(&mut *conn)
        .await?;
    if !locked {
        return Ok(0);
    }
    let outcome = refresh_locked(&mut conn).await;
    sqlx::query("SELECT pg_advisory_unlock($1, 0)")
        .bind(LOCK_REFRESH)
        .execute(&mut *conn)
        .await?;
    outcome
}

/// How long [`refresh`] waits for an overlapping refresh (a policy job, most likely) to end.
const CONCURRENT_REFRESH_PATIENCE: Duration = Duration::from_secs(60);

/// Runs a `refresh_continuous_aggregate` call, retrying while TimescaleDB reports an
/// overlapping refresh in progress. Our own refreshes exclude each other through the advisory
/// lock; the policy jobs do not take it.
async fn call_waiting_out_other_refreshes(
    conn: &mut PoolConnection<Postgres>,
    call: &str,
) -> Result<()> {
    let deadline = tokio::time::Instant::now() + CONCURRENT_REFRESH_PATIENCE;
    let mut pause = Duration::from_millis(50);
    loop {
        // A plain string is sent with the simple protocol.
        match (&mut **conn).execute(call).await {
            Ok(_) => return Ok(()),
            Err(sqlx::Error::Database(e))
                if e.code().as_deref() == Some("55P03")
                    && tokio::time::Instant::now() + pause < deadline =>
            {
                tracing::debug!(error = %e, "a concurrent refresh is running; waiting");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(2));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

async fn refresh_locked(conn: &mut PoolConnection<Postgres>) -> Result<usize> {
    let marks: Vec<(i64, Timestamp)> = sqlx::query_as("SELECT id, since FROM rollup_stale")
        .fetch_all(&mut **conn)
        .await?;
    let Some(earliest) = marks.iter().map(|(_, since)| *since).min() else {
        return Ok(0);
    };
    // The materialized edge: what policies and this function never go past.
    let edge: Timestamp = sqlx::query_scalar("SELECT now() - INTERVAL '1 hour'")
        .fetch_one(&mut **conn)
        .await?;
    for (view, grain) in [
        ("space_counts_hourly", Grain::Hour),
        ("space_counts_daily", Grain::Day),
    ] {
        let (from, to) = (grain.floor(earliest), grain.floor(edge));
        if from < to {
            // CALL refuses to run in a transaction block, which a prepared statement is;
            // these are our own timestamps, so the simple protocol with literals is safe.
            // One unbatched pass: with TimescaleDB 2.28's default batching we saw the bucket
            // at the exact end of an invalidated range left stale (see docs/operations.md).
            let call = format!(
                "CALL refresh_continuous_aggregate('{view}', '{}', '{}', \
                 options => '{{\"buckets_per_batch\": 0}}')",
                from.to_rfc3339(),
                to.to_rfc3339()
            );
            call_waiting_out_other_refreshes(conn, &call).await?;
        }
    }
    let ids: Vec<i64> = marks.iter().map(|(id, _)| *id).collect();
    sqlx::query("DELETE FROM rollup_stale WHERE id = ANY($1)")
        .bind(&ids)
        .execute(&mut **conn)
        .await?;
    Ok(ids.len())
}
