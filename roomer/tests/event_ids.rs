//! Rule 3 end to end over MQTT: a DPU's event ids tell apart crossings of one instant only,
//! so a DPU whose counter restarts (reboot, update, wrap-around) keeps being counted, and a
//! second run of the fleet simulator (its ids start at 1 again) counts in full.

mod common;

use chrono::TimeDelta;
use common::processes::RoomerProcess;
use common::{app_with_example_building, spawn_app};
use roomer_occupancy::{Crossing, Direction, DpuId, Timestamp};
use roomer_simulator::{replay, MqttTarget, ReplayOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dpu_that_reboots_keeps_being_counted() {
    let app = app_with_example_building().await;
    let target = MqttTarget::from(app.mqtt);
    let dpu = DpuId::new("283").unwrap(); // Outside → Space A
    let start: Timestamp = "2024-05-01T08:00:00Z".parse().unwrap();
    let crossing = |second: i64, direction, id: u64| {
        Crossing::new(
            dpu.clone(),
            start + TimeDelta::seconds(second),
            direction,
            Some(id),
        )
    };

    // 30 entrances numbered 1..30.
    let morning: Vec<Crossing> = (1..=30)
        .map(|i| crossing(i, Direction::In, i as u64))
        .collect();
    replay(morning, &ReplayOptions::new(target.clone()))
        .await
        .unwrap();
    // The DPU reboots and counts from 1 again: an hour later, 20 exits numbered 1..20 and
    // 10 entrances numbered 21..30.
    let later: Vec<Crossing> = (1..=30)
        .map(|i| {
            let direction = if i <= 20 {
                Direction::Out
            } else {
                Direction::In
            };
            crossing(3_600 + i, direction, i as u64)
        })
        .collect();
    replay(later, &ReplayOptions::new(target)).await.unwrap();

    app.wait_for_crossings(60).await;
    assert_eq!(app.count_at(1, "2024-05-01T08:30:00Z").await, 30);
    assert_eq!(app.count_at(1, "2024-05-01T10:00:00Z").await, 20);
    let rejected = app.get("/api/v1/rejected").await;
    assert_eq!(rejected.as_array().unwrap().len(), 0, "{rejected}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_simulator_run_counts_in_full() {
    const DPUS: usize = 20;
    const EVENTS: usize = 50;
    let app = spawn_app(common::Backend::Sqlite).await;
    let since = "2000-01-01T00:00:00Z".parse().unwrap();
    let store = roomer_storage::connect(&app.database_url).await.unwrap();
    store
        .apply_layout(&roomer_simulator::fleet_layout(DPUS, 5, since))
        .await
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let url = format!("mqtt://{}", app.mqtt);
    let (dpus, events) = (DPUS.to_string(), EVENTS.to_string());
    for seed in ["1", "2"] {
        let args = [
            "simulate",
            "fleet",
            "--dpus",
            &dpus,
            "--events-per-dpu",
            &events,
            "--rooms",
            "5",
            "--seed",
            seed,
            "--mqtt-url",
            &url,
        ];
        let log = dir.path().join(format!("simulator-{seed}.log"));
        let mut run = RoomerProcess::spawn(&args, &app.database_url, &log);
        let status = run.child.wait().unwrap();
        assert!(
            status.success(),
            "{}",
            std::fs::read_to_string(&log).unwrap()
        );
    }

    // Every crossing was acknowledged after it was stored: both runs count, ids 1..50 twice.
    let totals = app.get("/api/v1/totals").await;
    assert_eq!(totals["crossings"], DPUS * EVENTS * 2, "{totals}");
    assert_eq!(totals["rejected"], 0, "{totals}");
    app.stop().await;
}
