//! Storage faults under a stream of crossings, as an operator lives them: `roomer serve` on
//! SQLite whose file system fills up, whose files are made read-only, or whose database file
//! is moved away stops acknowledging, `/readyz` answers 503 saying why, and once the fault is
//! gone it goes on by itself, with no restart and nothing lost: every crossing the DPUs
//! published (4,000, in bulk uploads of 20) is stored exactly once.
//!
//! Needs root on Linux (mounts a small tmpfs): runs when `TEST_FAULTS` is set, as `.ci/run`
//! does; otherwise reported as ignored.

mod common;

use chrono::TimeDelta;
use common::{spawn_app, Backend};
use roomer_occupancy::{Crossing, Direction, DpuId, Timestamp};
use roomer_simulator::{replay, MqttTarget, ReplayOptions};
use roomer_storage::testing::{eventually, SmallDisk};
use std::time::Duration;

const CROSSINGS: usize = 4_000;

/// What breaks the database under the stream, and what heals it.
struct Fault {
    break_it: Box<dyn FnOnce(&SmallDisk)>,
    /// What `/readyz` says meanwhile.
    says: &'static str,
    heal: Box<dyn FnOnce(&SmallDisk)>,
}

/// Runs `roomer serve` on `disk`, breaks the database while DPU 283 uploads, checks that
/// nothing more is acknowledged and that `/readyz` says why, heals it, and checks that every
/// crossing is stored exactly once, with nothing set aside.
async fn stream_through(disk: SmallDisk, fault: Fault) {
    let url = format!("sqlite://{}", disk.path().join("roomer.db").display());
    let app = spawn_app(Backend::Url(url.clone())).await;
    let text = std::fs::read_to_string(common::workspace_file("examples/reference-building.toml"))
        .unwrap();
    let store = roomer_storage::connect(&url).await.unwrap();
    store
        .apply_layout(&roomer_occupancy::Layout::from_toml(&text).unwrap())
        .await
        .unwrap();
    (fault.break_it)(&disk);

    // DPU 283 uploads in bulk; the broker acknowledges only what is stored.
    let start: Timestamp = "2024-01-01T00:00:00Z".parse().unwrap();
    let crossings: Vec<Crossing> = (0..CROSSINGS)
        .map(|i| {
            Crossing::new(
                DpuId::new("283").unwrap(),
                start + TimeDelta::seconds(i as i64),
                if i % 3 == 2 {
                    Direction::Out
                } else {
                    Direction::In
                },
                Some(i as u64),
            )
        })
        .collect();
    let mut options = ReplayOptions::new(MqttTarget::from(app.mqtt));
    options.batch = 20;
    let upload = tokio::spawn(async move { replay(crossings, &options).await });

    let client = reqwest::Client::new();
    let readyz = format!("{}/readyz", app.http);
    let refused = eventually(
        "/readyz to say writes fail",
        Duration::from_secs(30),
        || {
            let (client, readyz) = (client.clone(), readyz.clone());
            async move {
                let response = client.get(&readyz).send().await.ok()?;
                let status = response.status();
                let body: serde_json::Value = response.json().await.ok()?;
                (status == 503).then_some(body)
            }
        },
    )
    .await;
    let detail = refused["detail"].as_str().unwrap();
    assert!(detail.contains("refuses writes"), "{refused}");
    assert!(detail.contains(fault.says), "{refused}");
    assert!(
        !upload.is_finished(),
        "nothing past the fault is acknowledged"
    );

    (fault.heal)(&disk);
    let report = tokio::time::timeout(Duration::from_secs(60), upload)
        .await
        .expect("the upload finishes once the fault is gone")
        .unwrap()
        .unwrap();
    assert_eq!(report.events, CROSSINGS);
    let totals = app.get("/api/v1/totals").await;
    assert_eq!(totals["crossings"], CROSSINGS, "{totals}");
    assert_eq!(totals["rejected"], 0, "nothing was set aside: {totals}");
    let ready = client.get(&readyz).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    app.stop().await;
    drop(disk);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(roomer_fault_tests),
    ignore = "set TEST_FAULTS=1 (as root) to mount a tmpfs and fill it"
)]
async fn a_full_disk_stops_acknowledging_and_heals_without_a_restart() {
    let filler = std::rc::Rc::new(std::cell::RefCell::new(None));
    let (fill, free) = (filler.clone(), filler);
    stream_through(
        SmallDisk::mount(8),
        Fault {
            break_it: Box::new(move |disk| *fill.borrow_mut() = Some(disk.fill_all_but(64 * 1024))),
            says: "full",
            heal: Box::new(move |_| {
                std::fs::remove_file(free.borrow_mut().take().unwrap()).unwrap()
            }),
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(roomer_fault_tests),
    ignore = "set TEST_FAULTS=1 (as root) to loop-mount an ext4 image"
)]
async fn files_made_read_only_stop_acknowledging_and_heal_without_a_restart() {
    stream_through(
        SmallDisk::mount_ext4(16),
        Fault {
            break_it: Box::new(|disk| disk.set_read_only(true)),
            says: "disk I/O error",
            heal: Box::new(|disk| disk.set_read_only(false)),
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(roomer_fault_tests),
    ignore = "set TEST_FAULTS=1 (as root) to mount a tmpfs"
)]
async fn a_database_file_moved_away_is_not_written_into_and_heals_when_put_back() {
    let aside = |disk: &SmallDisk, from: &str, to: &str| {
        std::fs::rename(disk.path().join(from), disk.path().join(to)).unwrap()
    };
    stream_through(
        SmallDisk::mount(16),
        Fault {
            break_it: Box::new(move |disk| aside(disk, "roomer.db", "moved.db")),
            says: "deleted or replaced",
            heal: Box::new(move |disk| aside(disk, "moved.db", "roomer.db")),
        },
    )
    .await;
}
