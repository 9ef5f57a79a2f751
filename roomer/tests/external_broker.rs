//! `roomer ingest` against an external broker (Mosquitto, started by each test on a free port
//! with a config of its own), as separate processes, the way a scaled-out site runs it.
//!
//! Runs when `TEST_MOSQUITTO` names the `mosquitto` binary (`.ci/run` installs it); otherwise
//! the tests are reported as ignored, never as passed.

mod common;

use common::processes::{Mosquitto, RoomerProcess, MOSQUITTO_INFLIGHT};
use roomer_occupancy::{reference, Crossing, Layout, Timestamp};
use roomer_simulator::{fleet_events, fleet_layout, MqttTarget, ReplayOptions};
use roomer_storage::testing::{eventually, release_sqlite, stall_sqlite};
use roomer_storage::Store;
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

fn start() -> Timestamp {
    "2018-02-26T00:00:00Z".parse().unwrap()
}

/// Waits until the worker logging to `log` has subscribed `times` times in all.
async fn wait_until_subscribed(log: &Path, times: usize) {
    eventually(
        "the worker to subscribe",
        Duration::from_secs(30),
        || async move {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            (text.matches("subscribed").count() >= times).then_some(())
        },
    )
    .await;
}

async fn stored(store: &Arc<dyn Store>) -> i64 {
    store.totals().await.unwrap().crossings
}

async fn wait_until_stored(store: &Arc<dyn Store>, at_least: i64, within: Duration) {
    eventually("crossings to be stored", within, || async move {
        (stored(store).await >= at_least).then_some(())
    })
    .await;
}

/// Every space's count far after the last crossing equals the reference model's.
async fn assert_counts_match_reference(store: &Arc<dyn Store>, layout: &Layout, all: &[Crossing]) {
    let far = start() + chrono::TimeDelta::days(365);
    let mut spaces: Vec<i64> = layout.spaces.iter().map(|s| s.id).collect();
    spaces.push(roomer_occupancy::OUTSIDE);
    for space in spaces {
        assert_eq!(
            store.count_at(space, Some(far)).await.unwrap(),
            Some(reference::count_at(layout, all, space, far)),
            "space {space}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(roomer_mosquitto_tests),
    ignore = "set TEST_MOSQUITTO to the mosquitto binary"
)]
async fn a_worker_killed_mid_stream_loses_and_doubles_nothing() {
    let dir = tempfile::tempdir().unwrap();

    let dir = std::mem::ManuallyDrop::new(dir);
    let database_url = format!("sqlite://{}", dir.path().join("roomer.db").display());
    let layout = fleet_layout(20, 4, start());
    let store = roomer_storage::connect(&database_url).await.unwrap();
    store.apply_layout(&layout).await.unwrap();
    let mosquitto = Mosquitto::start(dir.path()).await;
    let log = dir.path().join("worker.log");

    // The worker subscribes first, so its persistent session exists before the stream starts.
    let worker =
        RoomerProcess::ingest(&mosquitto.url(), "worker-1", None, &database_url, &log, &[]);
    wait_until_subscribed(&log, 1).await;

    // 20 DPUs × 150 crossings, one per message: the fleet's 2½ hours in about 5 s, so the
    // stall below lands mid-stream however fast the worker is.
    let events = fleet_events(20, 150, start(), 7);
    let target = MqttTarget::parse(&mosquitto.url()).unwrap();
    let replay = tokio::spawn({
        let mut options = ReplayOptions::new(target);
        options.speed = Some(1_800.0);
        let events = events.clone();
        async move { roomer_simulator::replay(events, &options).await.unwrap() }
    });
    wait_until_stored(&store, 500, Duration::from_secs(60)).await;

    // Mid-stream, the database stalls (another connection holds SQLite's write lock), so
    // the worker is caught holding a batch it has read but not committed; then it dies.
    let lock = stall_sqlite(&database_url).await;
    // The broker keeps for the worker's session what it has not acknowledged…
    tokio::time::timeout(Duration::from_secs(120), replay)
        .await
        .expect("the replay finishes")
        .unwrap();
    let stored_by_the_dead = stored(&store).await;
    // While the database is stuck, the worker must not have acknowledged anything it has not
    // committed, whatever the broker offered it meanwhile (Mosquitto's log tells both). Wait
    // until the broker's in-flight window to the worker is full: nothing moves after that.
    eventually(
        "Mosquitto's in-flight window to the stalled worker to fill",
        Duration::from_secs(30),
        || async {
            let offered = mosquitto.log_count("Sending PUBLISH to worker-1 ");
            let acked = mosquitto.log_count("Received PUBACK from worker-1 ");
            (offered >= acked + MOSQUITTO_INFLIGHT).then_some(())
        },
    )
    .await;
    let acked = mosquitto.log_count("Received PUBACK from worker-1 ");
    let statuses = mosquitto.log_count("/status'");
    assert!(
        acked as i64 <= stored_by_the_dead + statuses as i64,
        "the worker acknowledged {acked} messages but committed only {stored_by_the_dead} crossings (+ {statuses} status messages)"
    );
    worker.kill();
    release_sqlite(lock).await;
    // …and a new worker with the same client id takes that session over.
    let worker =
        RoomerProcess::ingest(&mosquitto.url(), "worker-1", None, &database_url, &log, &[]);
    let distinct: BTreeSet<_> = events.iter().map(Crossing::key).collect();
    wait_until_stored(&store, distinct.len() as i64, Duration::from_secs(120)).await;
    drop(worker);

    assert!(
        stored_by_the_dead < distinct.len() as i64,
        "the kill landed mid-stream ({stored_by_the_dead} of {} stored)",
        distinct.len()
    );
    assert_eq!(stored(&store).await, distinct.len() as i64);
    assert_eq!(store.totals().await.unwrap().rejected, 0, "nothing refused");
    assert_counts_match_reference(&store, &layout, &events).await;
}
