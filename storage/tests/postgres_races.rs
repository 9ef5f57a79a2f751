//! Two writers, one crossing: a batch that meets another writer's uncommitted copy of one of
//! its crossings waits for that writer. If the other writer gives up, the batch stores the
//! crossing; if it commits, the batch is rolled back and tried again, and the crossing is
//! stored once. The other writer is a plain connection inserting the crossing's row, as the
//! first statement of another worker's batch would, so the race happens every time. Once
//! with a batch of two crossings and once with an upload of 300 (whose DPU is probed over
//! its time range first, which cannot see the other writer's uncommitted row).
//!
//! Runs on PostgreSQL when `TEST_DATABASE_URL` is set and on TimescaleDB when
//! `TEST_TIMESCALE_URL` is (reported as ignored otherwise, failed if set and unreachable).

use roomer_occupancy::{Crossing, Direction, DpuId};
use roomer_storage::testing::{
    eventually, fresh_postgres_database, fresh_timescale_database, postgres_url,
};
use roomer_storage::Store;
use sqlx::{Connection, PgConnection};
use std::sync::Arc;
use std::time::Duration;

mod reference_building;

/// Space A of the reference building, behind Doorway X (from Outside) where DPU 283 hangs.
const ROOM: i64 = 1;
const DOORWAY: i64 = 1;

fn dpu() -> DpuId {
    DpuId::new("283").unwrap()
}

/// `size` arrivals into the room, 5 s apart; the first is the one both writers store.
fn batch(size: usize) -> Vec<Crossing> {
    let first: chrono::DateTime<chrono::Utc> = "2018-02-26T08:00:00Z".parse().unwrap();
    (0..size)
        .map(|i| {
            let ts = first + chrono::TimeDelta::seconds(5 * i as i64);
            Crossing::new(dpu(), ts, Direction::In, None)
        })
        .collect()
}

/// A batch of a few crossings, and an upload.
const SIZES: [usize; 2] = [2, 300];

/// Another writer's transaction that has inserted `crossing` and not yet finished.
async fn other_writer_inserting(url: &str, crossing: &Crossing) -> PgConnection {
    let mut conn = PgConnection::connect(url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut conn).await.unwrap();
    sqlx::query(
        "INSERT INTO crossings (dpu_id, ts, direction, copy, doorway_id, received_at) \
         VALUES ($1, $2, 1, 0, $3, now())",
    )
    .bind(crossing.dpu.as_str())
    .bind(crossing.ts)
    .bind(DOORWAY)
    .execute(&mut conn)
    .await
    .unwrap();
    conn
}

/// Waits until a session of the database waits for a row lock: the batch met the other
/// writer's row.
async fn batch_waits_for_the_other_writer(url: &str) {
    let pool = sqlx::PgPool::connect(url).await.unwrap();
    eventually(
        "the batch to wait for the other writer",
        Duration::from_secs(10),
        || async {
            let waiting: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
            )
            .fetch_one(&pool)
            .await
            .unwrap();
            (waiting > 0).then_some(())
        },
    )
    .await;
    pool.close().await;
}

/// The batch races another writer for its first crossing; `commit` says how the other
/// writer ends. Answers the batch's report and the crossings stored.
async fn race(url: &str, size: usize, commit: bool) -> (roomer_occupancy::plan::IngestReport, i64) {
    let store: Arc<dyn Store> = roomer_storage::connect(url).await.unwrap();
    reference_building::apply(store.as_ref()).await;
    let batch = batch(size);
    let mut other = other_writer_inserting(url, &batch[0]).await;

    let writer = Arc::clone(&store);
    let stored = tokio::spawn(async move { writer.ingest(&batch).await });
    batch_waits_for_the_other_writer(url).await;
    let end = if commit { "COMMIT" } else { "ROLLBACK" };
    sqlx::query(end).execute(&mut other).await.unwrap();

    let outcome = stored.await.unwrap().expect("the batch is stored");
    let totals = store.totals().await.unwrap();
    (outcome.report, totals.crossings)
}

async fn both_endings(url_of: impl AsyncFn() -> String) {
    for size in SIZES {
        let n = size as i64;
        // The other writer gives up: the batch stores every crossing and counts them all.
        let url = url_of().await;
        let (report, stored) = race(&url, size, false).await;
        assert_eq!((report.inserted, report.duplicates), (size, 0), "{size}");
        assert_eq!(stored, n);
        let store = roomer_storage::connect(&url).await.unwrap();
        assert_eq!(store.count_at(ROOM, None).await.unwrap(), Some(n));

        // The other writer commits first: the batch is retried and finds the crossing stored.
        let url = url_of().await;
        let (report, stored) = race(&url, size, true).await;
        assert_eq!(
            (report.inserted, report.duplicates),
            (size - 1, 1),
            "{size}"
        );
        assert_eq!(stored, n, "each crossing stored once ({size})");
    }
}

#[tokio::test]
#[cfg_attr(
    not(roomer_postgres_tests),
    ignore = "set TEST_DATABASE_URL to run against PostgreSQL"
)]
async fn postgres_a_batch_that_loses_a_race_for_a_crossing_stores_it_once() {
    both_endings(async || {
        let admin = postgres_url().expect("TEST_DATABASE_URL is set");
        fresh_postgres_database(&admin).await.unwrap()
    })
    .await;
}

#[tokio::test]
#[cfg_attr(
    not(roomer_timescale_tests),
    ignore = "set TEST_TIMESCALE_URL to run against TimescaleDB"
)]
async fn timescale_a_batch_that_loses_a_race_for_a_crossing_stores_it_once() {
    both_endings(fresh_timescale_database).await;
}
