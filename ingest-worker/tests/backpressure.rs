//! When the database is slower than the broker, the worker stops reading instead of
//! buffering: what it has not committed stays with the broker, and its memory holds at most
//! one batch being applied plus a queue of two batches.

mod common;

use common::{publish, spawn_worker_with, wait_for_totals};
use roomer_storage::testing::{release_sqlite, stall_sqlite};
use std::time::Duration;
use tokio::time::Instant;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_database_leaves_the_stream_in_the_broker_not_in_memory() {
    let batch = 10;
    // Batches cut by size only (a pause in the stream would otherwise end one early, and
    // smaller batches would fill the queue with fewer messages than counted below).
    let worker = spawn_worker_with(|config| {
        config.batch_size = batch;
        config.batch_wait = Duration::from_secs(30);
        config.batch_quiet = Duration::from_secs(30);
    })
    .await;

    // Another connection holds SQLite's write lock: the database is stuck.
    let lock = stall_sqlite(&worker.database_url).await;
    let payloads: Vec<String> = (0..1_000)
        .map(|i| {
            let ts = chrono::DateTime::from_timestamp(1_519_660_800 + i, 0).unwrap();
            let direction = if i % 2 == 0 { 1 } else { -1 };
            format!(
                r#"{{"ts": "{}", "direction": {direction}}}"#,
                ts.to_rfc3339()
            )
        })
        .collect();
    let messages: Vec<(&str, &str)> = payloads
        .iter()
        .map(|p| ("dpus/283/crossings", p.as_str()))
        .collect();
    publish(worker.broker.local_addr(), &messages).await;

    // The worker reads one batch (stuck in its transaction), fills its queue of two batches,
    // and holds one more message waiting for room: then it stops reading. The broker would
    // hand it up to 100 unacknowledged messages, so a queue without bound would show here.
    let bound = (batch + 2 * batch + 1) as u64;
    let read = || worker.stats.snapshot().messages;
    roomer_storage::testing::eventually(
        "the worker's queue to fill",
        Duration::from_secs(10),
        || async { (read() >= bound).then_some(()) },
    )
    .await;
    let watch_until = Instant::now() + Duration::from_secs(1);
    while Instant::now() < watch_until {
        assert!(read() <= bound, "read {} messages while stuck", read());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(worker.store.totals().await.unwrap().crossings, 0);

    // The database comes back: everything the broker held arrives and is stored once.
    release_sqlite(lock).await;
    wait_for_totals(&worker.store, 1_000, 0).await;
    assert_eq!(worker.stats.snapshot().messages, 1_000);
    worker.stop().await;
}
