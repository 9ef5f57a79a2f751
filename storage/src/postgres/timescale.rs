//! TimescaleDB: turning crossings and the count series into compressed hypertables (the SQL is
//! `roomer_timescaledb_setup()`, last defined in migration 0008) and its settings. History
//! needs no continuous aggregates: every backend folds it from the tiered summaries.

use crate::engine::Result;
use crate::{TimescaleSettings, TimescaleStatus};
use sqlx::postgres::PgPool;
use sqlx::Row;
use std::time::Duration;

/// Advisory lock classes (first key of `pg_advisory_xact_lock(int, int)`).
const LOCK_SETTINGS: i32 = 0x526f_0003;

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
/// (its `event_ids` table is there): migration 0007 rebuilds compression, which drops its
/// policies, so roomer reads them first and puts them back afterwards.
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
        compress_after: status.compress_after,
        raw_retention: Some(status.raw_retention),
    }))
}

/// The settings in force, read back from TimescaleDB's catalog.
pub(super) async fn status(pool: &PgPool, version: &str) -> Result<TimescaleStatus> {
    let row = sqlx::query(
        "SELECT \
           (SELECT extract(epoch FROM time_interval)::float8 \
              FROM timescaledb_information.dimensions WHERE hypertable_name = 'space_counts'), \
           (SELECT extract(epoch FROM (config->>'compress_after')::interval)::float8 \
              FROM timescaledb_information.jobs \
             WHERE proc_name = 'policy_compression' AND hypertable_name = 'space_counts'), \
           (SELECT extract(epoch FROM (config->>'drop_after')::interval)::float8 \
              FROM timescaledb_information.jobs \
             WHERE proc_name = 'policy_retention' AND hypertable_name = 'crossings'), \
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
        compress_after: duration(1),
        raw_retention: duration(2),
        chunks: row.get(3),
        compressed_chunks: row.get(4),
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
