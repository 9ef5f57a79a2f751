//! The summarizer's cadence on every backend: a batch that comes sooner than
//! `summarize_every` after the summarizer's last run only notes its minutes, and the store's
//! background task summarizes them once the interval has passed, with no further batch;
//! `catch_up` summarizes them at once.

use crate::fixtures::Fixture;
use crate::stories::{building, count, crossing, ROOM_A};
use roomer_storage::testing::pending_minutes;
use roomer_storage::StoreOptions;
use std::time::{Duration, Instant};

/// Long enough that the second of two consecutive batches comes before it is over.
const EVERY: StoreOptions = StoreOptions {
    summarize_every: Duration::from_secs(2),
};

pub async fn notes_are_summarized_in_the_background<F>(open: impl FnOnce(StoreOptions) -> F)
where
    F: std::future::Future<Output = (Fixture, String)>,
{
    let (fixture, url) = open(EVERY).await;
    let store = fixture.store.as_ref();
    store.apply_layout(&building()).await.unwrap();
    // The first batch finds the summarizer due and summarizes; the second, right after,
    // notes its minutes (one of them late, before the first batch's).
    store
        .ingest(&[crossing("283", 10, 1), crossing("283", 20, 1)])
        .await
        .unwrap();
    store
        .ingest(&[crossing("283", 5, 1), crossing("283", 30, -1)])
        .await
        .unwrap();
    assert!(pending_minutes(&url).await > 0, "the second batch noted");
    assert_eq!(count(store, ROOM_A, Some(25)).await, 3);
    assert_eq!(count(store, ROOM_A, None).await, 2);

    let deadline = Instant::now() + Duration::from_secs(30);
    while pending_minutes(&url).await > 0 {
        assert!(Instant::now() < deadline, "notes still waiting after 30 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(count(store, ROOM_A, Some(25)).await, 3);
    assert_eq!(count(store, ROOM_A, None).await, 2);
}

#[tokio::test]
async fn sqlite_notes_are_summarized_in_the_background() {
    notes_are_summarized_in_the_background(crate::fixtures::sqlite_with).await;
}

#[tokio::test]
#[cfg_attr(
    not(roomer_postgres_tests),
    ignore = "set TEST_DATABASE_URL to run against PostgreSQL"
)]
async fn postgres_notes_are_summarized_in_the_background() {
    notes_are_summarized_in_the_background(crate::fixtures::postgres_with).await;
}

#[tokio::test]
#[cfg_attr(
    not(roomer_timescale_tests),
    ignore = "set TEST_TIMESCALE_URL to run against TimescaleDB"
)]
async fn timescale_notes_are_summarized_in_the_background() {
    notes_are_summarized_in_the_background(crate::fixtures::timescale_with).await;
}

pub async fn catch_up_summarizes_what_batches_noted<F>(open: impl FnOnce(StoreOptions) -> F)
where
    F: std::future::Future<Output = (Fixture, String)>,
{
    // The background task would not run within the test.
    let (fixture, url) = open(StoreOptions {
        summarize_every: Duration::from_secs(3_600),
    })
    .await;
    let store = fixture.store.as_ref();
    store.apply_layout(&building()).await.unwrap();
    for batch in [[10, 20], [5, 30]] {
        let crossings: Vec<_> = batch.iter().map(|&s| crossing("283", s, 1)).collect();
        store.ingest(&crossings).await.unwrap();
    }
    assert!(pending_minutes(&url).await > 0, "the second batch noted");
    store.catch_up().await.unwrap();
    assert_eq!(pending_minutes(&url).await, 0, "nothing left noted");
    assert_eq!(count(store, ROOM_A, Some(25)).await, 3);
    assert_eq!(count(store, ROOM_A, None).await, 4);
}

#[tokio::test]
async fn sqlite_catch_up_summarizes_what_batches_noted() {
    catch_up_summarizes_what_batches_noted(crate::fixtures::sqlite_with).await;
}

#[tokio::test]
#[cfg_attr(
    not(roomer_postgres_tests),
    ignore = "set TEST_DATABASE_URL to run against PostgreSQL"
)]
async fn postgres_catch_up_summarizes_what_batches_noted() {
    catch_up_summarizes_what_batches_noted(crate::fixtures::postgres_with).await;
}

#[tokio::test]
#[cfg_attr(
    not(roomer_timescale_tests),
    ignore = "set TEST_TIMESCALE_URL to run against TimescaleDB"
)]
async fn timescale_catch_up_summarizes_what_batches_noted() {
    catch_up_summarizes_what_batches_noted(crate::fixtures::timescale_with).await;
}
