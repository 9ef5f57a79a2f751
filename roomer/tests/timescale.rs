//! The production stack on TimescaleDB (run when `TEST_TIMESCALE_URL` names a server with
//! `timescaledb` preloaded; ignored otherwise, failed if set and unreachable): the HTTP API
//! answers history exactly as a SQLite server does, for the reference data delivered late,
//! twice and into compressed chunks; and `roomer migrate` changes TimescaleDB's settings.

mod common;

use common::{reference_csv, spawn_app, workspace_file, App, Backend};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use roomer_occupancy::{Crossing, Layout};
use roomer_simulator::{MqttTarget, ReplayOptions};
use roomer_storage::testing::{compress_all_chunks, eventually, fresh_timescale_database};
use std::collections::BTreeSet;

async fn deliver(app: &App, events: &[Crossing]) {
    let mut options = ReplayOptions::new(MqttTarget::from(app.mqtt));
    options.batch = 13;
    roomer_simulator::replay(events.to_vec(), &options)
        .await
        .unwrap();
}

/// Every history query a dashboard might make of the reference building, in JSON and CSV.
fn queries() -> Vec<String> {
    let mut paths = Vec::new();
    for space in [0, 1, 2] {
        for interval in ["1h", "1d", "1w", "15m"] {
            for zone in ["", "&time_zone=UTC", "&time_zone=Asia/Kolkata"] {
                for format in ["", "&format=csv"] {
                    paths.push(format!(
                        "/api/v1/spaces/{space}/counts?start_time=2018-02-20T00:00:00Z\
                         &end_time=2018-03-06T00:00:00Z&interval={interval}{zone}{format}"
                    ));
                }
            }
        }
    }
    paths
}

/// Asks both servers everything; the answers must be byte for byte the same, and every
/// bucket folded from summaries on both.
async fn same_answers(timescale: &App, sqlite: &App) {
    for path in queries() {
        let (headers, body) = timescale.get_text(&path).await;
        let (plain_headers, expected) = sqlite.get_text(&path).await;
        assert_eq!(body, expected, "GET {path}");
        assert_eq!(
            headers["roomer-rollup-buckets"], plain_headers["roomer-rollup-buckets"],
            "GET {path}"
        );
    }
}

#[tokio::test]
#[cfg_attr(
    not(roomer_timescale_tests),
    ignore = "set TEST_TIMESCALE_URL to run against TimescaleDB"
)]
async fn history_on_timescaledb_answers_like_sqlite_after_late_and_repeated_crossings() {
    let rows = roomer_simulator::read_csv(&reference_csv()).unwrap();
    let distinct: BTreeSet<_> = rows.iter().map(Crossing::key).collect();
    let layout_text =
        std::fs::read_to_string(workspace_file("examples/reference-building.toml")).unwrap();
    let layout = Layout::from_toml(&layout_text).unwrap();
    let mut shuffled = rows.clone();
    shuffled.shuffle(&mut StdRng::seed_from_u64(5));
    let (early, late) = shuffled.split_at(rows.len() * 4 / 5);

    let timescale = spawn_app(Backend::Url(fresh_timescale_database().await)).await;
    let sqlite = spawn_app(Backend::Sqlite).await;
    let store = roomer_storage::connect(&timescale.database_url)
        .await
        .unwrap();
    assert!(store.timescale().await.unwrap().is_some());
    for app in [&timescale, &sqlite] {
        let store = roomer_storage::connect(&app.database_url).await.unwrap();
        store.apply_layout(&layout).await.unwrap();
    }

    // Four fifths of the data, compressed, as old data is.
    for app in [&timescale, &sqlite] {
        deliver(app, early).await;
    }
    let early_distinct: BTreeSet<_> = early.iter().map(Crossing::key).collect();
    timescale.wait_for_crossings(early_distinct.len()).await;
    sqlite.wait_for_crossings(early_distinct.len()).await;
    compress_all_chunks(&timescale.database_url).await.unwrap();
    let status = store.timescale().await.unwrap().unwrap();
    assert!(status.compressed_chunks > 0, "{status}");

    // The rest arrives late, into compressed chunks, with every early crossing again.
    let mut rest: Vec<Crossing> = late.to_vec();
    rest.extend_from_slice(early);
    for app in [&timescale, &sqlite] {
        deliver(app, &rest).await;
    }
    timescale.wait_for_crossings(distinct.len()).await;
    sqlite.wait_for_crossings(distinct.len()).await;

    same_answers(&timescale, &sqlite).await;
    timescale.stop().await;
    sqlite.stop().await;
}

#[test]
#[cfg_attr(
    not(roomer_timescale_tests),
    ignore = "set TEST_TIMESCALE_URL to run against TimescaleDB"
)]
fn migrate_changes_timescaledb_settings_and_prints_them() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let url = runtime.block_on(fresh_timescale_database());
    let roomer = |args: &[&str]| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_roomer"))
            .arg("migrate")
            .args(args)
            .env("DATABASE_URL", &url)
            .env("RUST_LOG", "warn")
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    };
    let defaults = roomer(&[]);
    assert!(defaults.contains("TimescaleDB 2."), "{defaults}");
    assert!(
        defaults.contains("chunk interval 1d, compress after 7d, raw retention off"),
        "{defaults}"
    );
    let changed = roomer(&["--compress-after", "3d", "--raw-retention", "90d"]);
    assert!(
        changed.contains("compress after 3d, raw retention 90d"),
        "{changed}"
    );
    let kept = roomer(&["--raw-retention", "off"]);
    assert!(
        kept.contains("compress after 3d, raw retention off"),
        "{kept}"
    );
}

#[tokio::test]
#[cfg_attr(
    not(roomer_timescale_tests),
    ignore = "set TEST_TIMESCALE_URL to run against TimescaleDB"
)]
async fn crossings_older_than_the_raw_retention_are_refused_and_kept_for_inspection() {
    let url = fresh_timescale_database().await;
    let store = roomer_storage::connect(&url).await.unwrap();
    let settings = roomer_storage::TimescaleSettings {
        raw_retention: Some(Some(std::time::Duration::from_secs(30 * 86_400))),
        ..Default::default()
    };
    store.configure_timescale(&settings).await.unwrap();
    let app = spawn_app(Backend::Url(url)).await;

    // Over MQTT: a DPU back after 2018 with its backlog, and one recent crossing.
    let recent = chrono::Utc::now() - chrono::TimeDelta::days(1);
    let dpu = roomer_occupancy::DpuId::new("283").unwrap();
    let old = "2018-03-01T10:00:00Z".parse().unwrap();
    let events = vec![
        Crossing::new(dpu.clone(), old, roomer_occupancy::Direction::In, None),
        Crossing::new(dpu, recent, roomer_occupancy::Direction::In, None),
    ];
    deliver(&app, &events).await;
    let rejected = eventually(
        "the old crossing to be refused",
        std::time::Duration::from_secs(10),
        || async {
            let rejected = app.get("/api/v1/rejected?reason=beyond_retention").await;
            (rejected.as_array()?.len() == 1).then_some(rejected)
        },
    )
    .await;
    app.wait_for_crossings(1).await;
    assert!(rejected[0]["detail"]
        .as_str()
        .unwrap()
        .contains("older than the raw-event retention"));
    app.stop().await;
}
