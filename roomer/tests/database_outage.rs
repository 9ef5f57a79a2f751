//! PostgreSQL goes away in the middle of a stream and comes back: the worker stops
//! acknowledging, retries with backoff, resumes, and every crossing is counted exactly once.
//!
//! Runs when `TEST_OUTAGE_CLUSTER` names a PostgreSQL cluster this test may stop and start
//! (`VERSION NAME`, as `pg_ctlcluster` takes them; `.ci/run` creates one) and
//! `TEST_OUTAGE_DATABASE_URL` points at it; otherwise it is reported as ignored.

mod common;

use common::{spawn_app, Backend};
use roomer_occupancy::{reference, Crossing, Timestamp};
use roomer_simulator::{fleet_events, fleet_layout, MqttTarget, ReplayOptions};
use roomer_storage::testing::{eventually, fresh_postgres_database};
use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

/// Starts the cluster again when dropped, so a failing test does not leave it down.
struct Restarts;

impl Drop for Restarts {
    fn drop(&mut self) {
        if let Ok(cluster) = std::env::var("TEST_OUTAGE_CLUSTER") {
            let mut args: Vec<&str> = cluster.split_whitespace().collect();
            args.push("start");
            let _ = Command::new("pg_ctlcluster").args(&args).status();
        }
    }
}

fn pg_ctlcluster(action: &str) {
    let cluster = std::env::var("TEST_OUTAGE_CLUSTER").expect("TEST_OUTAGE_CLUSTER");
    let mut args: Vec<&str> = cluster.split_whitespace().collect();
    args.push(action);
    if action == "stop" {
        args.extend(["-m", "fast"]);
    }
    let status = Command::new("pg_ctlcluster").args(&args).status().unwrap();
    assert!(status.success(), "pg_ctlcluster {args:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(roomer_outage_tests),
    ignore = "set TEST_OUTAGE_CLUSTER and TEST_OUTAGE_DATABASE_URL"
)]
async fn postgres_restarting_under_load_loses_and_doubles_nothing() {
    let admin = std::env::var("TEST_OUTAGE_DATABASE_URL").expect("TEST_OUTAGE_DATABASE_URL");
    let database_url = fresh_postgres_database(&admin)
        .await
        .expect("TEST_OUTAGE_DATABASE_URL is set but PostgreSQL cannot be reached");
    let app = spawn_app(Backend::Url(database_url.clone())).await;
    let start: Timestamp = "2018-02-26T00:00:00Z".parse().unwrap();
    let layout = fleet_layout(20, 4, start);
    let store = roomer_storage::connect(&database_url).await.unwrap();
    store.apply_layout(&layout).await.unwrap();

    let events = fleet_events(20, 150, start, 5);
    let replay = tokio::spawn({
        // About 15 s of stream: the fleet's 2½ hours at 600× real time.
        let mut options = ReplayOptions::new(MqttTarget::from(app.mqtt));
        options.speed = Some(600.0);
        let events = events.clone();
        async move { roomer_simulator::replay(events, &options).await.unwrap() }
    });
    eventually(
        "the stream to be under way",
        Duration::from_secs(30),
        || async { (app.stats().crossings_new >= 300).then_some(()) },
    )
    .await;

    // The database goes away; the worker notices (its writes fail) and keeps retrying.
    let _restarts = Restarts;
    pg_ctlcluster("stop");
    eventually("the worker to notice", Duration::from_secs(30), || async {
        (app.stats().store_errors >= 1).then_some(())
    })
    .await;
    let stored_before = app.stats().crossings_new;
    // An orchestrator probing the process sees it not ready, and why.
    let readyz = format!("{}/readyz", app.http);
    let down = reqwest::get(&readyz).await.unwrap();
    assert_eq!(down.status(), 503);
    let problem: serde_json::Value = down.json().await.unwrap();
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.contains("database")),
        "{problem}"
    );
    pg_ctlcluster("start");
    eventually(
        "the process to be ready again",
        Duration::from_secs(60),
        || async { (reqwest::get(&readyz).await.ok()?.status() == 200).then_some(()) },
    )
    .await;

    tokio::time::timeout(Duration::from_secs(120), replay)
        .await
        .expect("the replay finishes")
        .unwrap();
    let distinct: BTreeSet<_> = events.iter().map(Crossing::key).collect();
    let store = roomer_storage::connect(&database_url).await.unwrap();
    eventually(
        "every crossing to be stored",
        Duration::from_secs(120),
        || async { (store.totals().await.ok()?.crossings == distinct.len() as i64).then_some(()) },
    )
    .await;
    assert!(
        (stored_before as usize) < distinct.len(),
        "the outage came mid-stream"
    );
    let far = start + chrono::TimeDelta::days(365);
    for space in 0..=4 {
        assert_eq!(
            store.count_at(space, Some(far)).await.unwrap(),
            Some(reference::count_at(&layout, &events, space, far)),
            "space {space}"
        );
    }
    app.stop().await;
}
