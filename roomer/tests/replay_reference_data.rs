//! The whole path, end to end: the reference CSV replayed over MQTT as its two DPUs would send
//! it — shuffled, with extra repeats — gives, for every space at every instant, the reference
//! model's count and the same count as a replay in file order.

mod common;

use common::{reference_csv, spawn_app, workspace_file, App, Backend};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use roomer_occupancy::{reference, Crossing, Layout, Timestamp};
use roomer_simulator::{MqttTarget, ReplayOptions};
use std::collections::BTreeSet;

fn example_layout() -> Layout {
    let text = std::fs::read_to_string(workspace_file("examples/reference-building.toml")).unwrap();
    Layout::from_toml(&text).unwrap()
}

/// The file's rows shuffled, with `extra` random repeats mixed in.
fn shuffled_with_repeats(rows: &[Crossing], extra: usize, seed: u64) -> Vec<Crossing> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut messages = rows.to_vec();
    for _ in 0..extra {
        messages.push(rows[rng.random_range(0..rows.len())].clone());
    }
    messages.shuffle(&mut rng);
    messages
}

async fn replay(app: &App, events: Vec<Crossing>, batch: usize) {
    let mut options = ReplayOptions::new(MqttTarget::from(app.mqtt));
    options.batch = batch;
    let report = roomer_simulator::replay(events, &options).await.unwrap();
    assert!(report.events > 0);
}

async fn apply_layout(app: &App) {
    let store = roomer_storage::connect(&app.database_url).await.unwrap();
    store.apply_layout(&example_layout()).await.unwrap();
}

/// Every event time, a millisecond either side, and before and after everything.
fn probe_times(rows: &[Crossing]) -> Vec<Timestamp> {
    let mut times = BTreeSet::new();
    for row in rows {
        for ms in [-1, 0, 1] {
            times.insert(row.ts + chrono::TimeDelta::milliseconds(ms));
        }
    }
    let first = *times.first().unwrap();
    let last = *times.last().unwrap();
    times.insert(first - chrono::TimeDelta::days(1));
    times.insert(last + chrono::TimeDelta::days(365));
    times.into_iter().collect()
}

async fn counts(app: &App, spaces: &[i64], times: &[Timestamp]) -> Vec<i64> {
    let mut counts = Vec::new();
    for &space in spaces {
        for t in times {
            counts.push(app.count_at(space, &t.to_rfc3339()).await);
        }
    }
    counts
}

async fn shuffled_replay_matches_reference_and_file_order(backend: fn() -> Backend) {
    let rows = roomer_simulator::read_csv(&reference_csv()).unwrap();
    let distinct: BTreeSet<_> = rows.iter().map(Crossing::key).collect();
    let layout = example_layout();
    let spaces: Vec<i64> = [0, 1, 2].into();
    let times = probe_times(&rows);

    // In file order, one message per row, layout applied first.
    let in_order = spawn_app(backend()).await;
    apply_layout(&in_order).await;
    replay(&in_order, rows.clone(), 1).await;
    in_order.wait_for_crossings(distinct.len()).await;
    let expected = counts(&in_order, &spaces, &times).await;
    in_order.stop().await;

    // Shuffled, repeated, in bulk uploads, and the layout only applied afterwards: every
    // crossing waits as pending, then is counted when its DPU's installation is known.
    let shuffled = spawn_app(backend()).await;
    replay(&shuffled, shuffled_with_repeats(&rows, 200, 7), 13).await;
    shuffled.wait_for_crossings(distinct.len()).await;
    apply_layout(&shuffled).await;
    let actual = counts(&shuffled, &spaces, &times).await;
    let now = shuffled.get("/api/v1/spaces").await;
    shuffled.stop().await;

    let mut reference_counts = Vec::new();
    for &space in &spaces {
        for &t in &times {
            reference_counts.push(reference::count_at(&layout, &rows, space, t));
        }
    }
    assert_eq!(
        expected, reference_counts,
        "file-order replay vs reference model"
    );
    assert_eq!(
        actual, reference_counts,
        "shuffled replay vs reference model"
    );
    for space in now.as_array().unwrap() {
        let id = space["id"].as_i64().unwrap();
        let far = *times.last().unwrap();
        assert_eq!(
            space["count"].as_i64().unwrap(),
            reference::count_at(&layout, &rows, id, far)
        );
    }
    // The data exercises the rules: repeats, departures from an empty room.
    assert!(rows.len() > distinct.len(), "the file contains repeats");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_shuffled_replay_matches_reference_and_file_order() {
    shuffled_replay_matches_reference_and_file_order(|| Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(roomer_postgres_tests),
    ignore = "set TEST_DATABASE_URL to run against PostgreSQL"
)]
async fn postgres_shuffled_replay_matches_reference_and_file_order() {
    shuffled_replay_matches_reference_and_file_order(|| Backend::Postgres).await;
}
