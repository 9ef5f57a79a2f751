//! A thousand DPUs on the embedded broker at once: connecting together, reconnecting together
//! with the same client ids, and dropping off the network mid-upload. Whatever the storm,
//! every crossing the broker acknowledged is counted, exactly once.

mod common;

use common::{spawn_app, Backend};
use roomer_occupancy::{Crossing, Direction, Timestamp, OUTSIDE};
use roomer_simulator::{fleet_events, fleet_layout, replay, MqttTarget, ReplayOptions};
use roomer_storage::testing::eventually;
use std::collections::HashMap;
use std::time::Duration;

const DPUS: usize = 1_000;
const ROOMS: usize = 100;
const EVENTS_PER_DPU: usize = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_dpus_storming_the_embedded_broker_lose_nothing_it_acknowledged() {
    let app = spawn_app(Backend::Sqlite).await;
    let since: Timestamp = "2000-01-01T00:00:00Z".parse().unwrap();
    let layout = fleet_layout(DPUS, ROOMS, since);
    let store = roomer_storage::connect(&app.database_url).await.unwrap();
    store.apply_layout(&layout).await.unwrap();
    let start = "2026-11-30T08:00:00Z".parse().unwrap();
    let events = fleet_events(DPUS, EVENTS_PER_DPU, start, 9);
    let target = MqttTarget::parse(&format!("mqtt://{}", app.mqtt)).unwrap();
    let restarts_before = roomer_broker::meters::snapshot().restarts;

    // 1. All connect at once, each crossing in a QoS 1 message of its own: the first half.
    let (first, second): (Vec<Crossing>, Vec<Crossing>) = events
        .iter()
        .cloned()
        .partition(|c| c.event_id.is_some_and(|id| id <= 2));
    let report = replay(first, &options(&target, 1)).await.unwrap();
    assert_eq!(report.events, DPUS * 2);

    // 2. All reconnect at once, with the same client ids, and upload the rest in bulk.
    let report = replay(second, &options(&target, 2)).await.unwrap();
    assert_eq!(report.messages, DPUS);

    // 3. The network drops every DPU in the middle of uploading everything again…
    let everything = options(&target, 1);
    let dropped = tokio::time::timeout(
        Duration::from_millis(300),
        replay(events.clone(), &everything),
    )
    .await;
    assert!(dropped.is_err(), "the upload was cut short");
    // …and they all come back at once and send it all once more, in bulk.
    replay(events.clone(), &options(&target, EVENTS_PER_DPU))
        .await
        .unwrap();

    // Every crossing is stored once, and every room counts what went through its doors.
    let expected = expected_counts(&events, &layout);
    eventually(
        "every crossing to be stored",
        Duration::from_secs(120),
        || async {
            let totals = app.get("/api/v1/totals").await;
            (totals["crossings"].as_u64() == Some((DPUS * EVENTS_PER_DPU) as u64)).then_some(())
        },
    )
    .await;
    let spaces = app.get("/api/v1/spaces?limit=1000").await;
    let counted: HashMap<i64, i64> = spaces
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["id"].as_i64().unwrap(), s["count"].as_i64().unwrap()))
        .collect();
    assert_eq!(counted, expected);
    let after = roomer_broker::meters::snapshot();
    assert_eq!(
        after.restarts, restarts_before,
        "the broker never restarted"
    );
    assert_eq!(app.stats().rejected, 0, "nothing was refused");
    app.stop().await;
}

fn options(target: &MqttTarget, batch: usize) -> ReplayOptions {
    ReplayOptions {
        batch,
        ..ReplayOptions::new(target.clone())
    }
}

/// What each space should count: fleet traffic never asks a clamp to absorb anything, so a
/// room holds its doorways' entrances minus their exits, and Outside the opposite.
fn expected_counts(events: &[Crossing], layout: &roomer_occupancy::Layout) -> HashMap<i64, i64> {
    let doorway_of: HashMap<_, _> = layout
        .dpus
        .iter()
        .map(|dpu| (dpu.id.clone(), dpu.installations[0].doorway))
        .collect();
    let room_of: HashMap<_, _> = layout
        .doorways
        .iter()
        .map(|d| (d.id, d.entering_to))
        .collect();
    let mut counts: HashMap<i64, i64> = layout.spaces.iter().map(|s| (s.id, 0)).collect();
    counts.insert(OUTSIDE, 0);
    for crossing in events {
        let room = room_of[&doorway_of[&crossing.dpu]];
        let step = match crossing.direction {
            Direction::In => 1,
            Direction::Out => -1,
        };
        *counts.get_mut(&room).unwrap() += step;
        *counts.get_mut(&OUTSIDE).unwrap() -= step;
    }
    counts
}
