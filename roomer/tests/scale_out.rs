//! Scale-out as a site runs it: three `roomer ingest` processes share one subscription
//! (`--shared-group`) on an external broker (Mosquitto) and write to one PostgreSQL. The
//! reference CSV (shuffled, repeated, in bulk uploads) and generated traffic from twenty more
//! DPUs on the same doorways arrive at once, so the workers correct the same spaces
//! concurrently. Every count at every event time equals the reference model's.
//!
//! Runs when both `TEST_DATABASE_URL` and `TEST_MOSQUITTO` are set; otherwise it is reported
//! as ignored.

mod common;

use common::processes::{free_port, Mosquitto, RoomerProcess};
use common::{reference_csv, workspace_file};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use roomer_occupancy::layout::DpuLayout;
use roomer_occupancy::{reference, Crossing, Installation, Layout, Timestamp};
use roomer_simulator::{fleet_events, MqttTarget, ReplayOptions};
use roomer_storage::testing::{eventually, fresh_postgres_database, postgres_url};
use std::time::Duration;

/// The reference building, with `extra` generated DPUs hung over its two doorways in turn.
fn building_with_fleet(extra: usize) -> Layout {
    let text = std::fs::read_to_string(workspace_file("examples/reference-building.toml")).unwrap();
    let mut layout = Layout::from_toml(&text).unwrap();
    for i in 0..extra {
        layout.dpus.push(DpuLayout {
            id: roomer_simulator::fleet_dpu_id(i + 1),
            installations: vec![Installation {
                doorway: (i % 2) as i64 + 1,
                from: "2018-01-01T00:00:00Z".parse().unwrap(),
                until: None,
            }],
        });
    }
    layout
}

/// The count retained on `spaces/{space}/count`, as a client subscribing now gets it.
async fn retained_count(mosquitto: &Mosquitto, space: i64) -> Option<i64> {
    let options = rumqttc::MqttOptions::new("retained-reader", "127.0.0.1", mosquitto.port);
    let (client, mut eventloop) = rumqttc::AsyncClient::new(options, 10);
    client
        .subscribe(format!("spaces/{space}/count"), rumqttc::QoS::AtMostOnce)
        .await
        .ok()?;
    let read = tokio::time::timeout(Duration::from_secs(2), async {
        loop {
            if let rumqttc::Event::Incoming(rumqttc::Packet::Publish(p)) =
                eventloop.poll().await.ok()?
            {
                let body: serde_json::Value = serde_json::from_slice(&p.payload).ok()?;
                return body["count"].as_i64();
            }
        }
    })
    .await
    .ok()
    .flatten();
    let _ = client.disconnect().await;
    read
}

/// The value of an unlabelled metric in Prometheus text.
fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("{name} missing from:\n{text}"))
        .trim()
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(all(roomer_postgres_tests, roomer_mosquitto_tests)),
    ignore = "set TEST_DATABASE_URL and TEST_MOSQUITTO"
)]
async fn three_workers_on_one_postgres_count_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let admin = postgres_url().expect("TEST_DATABASE_URL");
    let database_url = fresh_postgres_database(&admin).await.unwrap();
    let layout = building_with_fleet(20);
    let store = roomer_storage::connect(&database_url).await.unwrap();
    store.apply_layout(&layout).await.unwrap();
    let mosquitto = Mosquitto::start(dir.path()).await;

    // Each worker serves its own /metrics and /readyz, as an operator would scrape them.
    let metrics_ports: Vec<u16> = (1..=3).map(|_| free_port()).collect();
    let workers: Vec<RoomerProcess> = (1..=3)
        .map(|n| {
            let log = dir.path().join(format!("worker-{n}.log"));
            let id = format!("worker-{n}");
            let metrics_addr = format!("127.0.0.1:{}", metrics_ports[n - 1]);
            RoomerProcess::ingest(
                &mosquitto.url(),
                &id,
                Some("roomer"),
                &database_url,
                &log,
                &["--metrics-addr", &metrics_addr],
            )
        })
        .collect();
    eventually(
        "three workers to subscribe",
        Duration::from_secs(30),
        || async {
            let subscribed = (1..=3)
                .filter(|n| {
                    let log = dir.path().join(format!("worker-{n}.log"));
                    std::fs::read_to_string(log).is_ok_and(|text| text.contains("subscribed"))
                })
                .count();
            (subscribed == 3).then_some(())
        },
    )
    .await;

    let csv = roomer_simulator::read_csv(&reference_csv()).unwrap();
    let start: Timestamp = csv.iter().map(|c| c.ts).min().unwrap();
    // The generated DPUs number their crossings from too few ids (counters that wrap), every
    // seventh crossing is a second person seen in the same instant (sent under another id),
    // every tenth is sent again without its id; shuffled, so workers race on the same keys.
    let mut fleet = fleet_events(20, 100, start, 11);
    for (i, crossing) in fleet.iter_mut().enumerate() {
        crossing.event_id = Some((i % 37) as u64);
    }
    let second_people: Vec<Crossing> = fleet
        .iter()
        .step_by(7)
        .map(|c| Crossing::new(c.dpu.clone(), c.ts, c.direction, Some(1_000)))
        .collect();
    let without_ids: Vec<Crossing> = fleet
        .iter()
        .step_by(10)
        .map(|c| Crossing::new(c.dpu.clone(), c.ts, c.direction, None))
        .collect();
    fleet.extend(second_people);
    fleet.extend(without_ids);
    let mut rng = StdRng::seed_from_u64(3);
    fleet.shuffle(&mut rng);
    let mut shuffled = csv.clone();
    shuffled.extend(csv.iter().take(100).cloned());
    shuffled.shuffle(&mut rng);

    let target = MqttTarget::parse(&mosquitto.url()).unwrap();
    let mut bulk = ReplayOptions::new(target.clone());
    bulk.batch = 13;
    bulk.client_prefix = "csv-".into();
    let one_by_one = ReplayOptions::new(target);
    let (a, b) = tokio::join!(
        roomer_simulator::replay(shuffled, &bulk),
        roomer_simulator::replay(fleet.clone(), &one_by_one),
    );
    let published = a.unwrap().messages + b.unwrap().messages;

    let mut all = csv.clone();
    all.extend(fleet);
    let counted = reference::counted(&all);
    // Done when every message the DPUs sent was handed to a worker and acknowledged (so
    // committed).
    eventually(
        "every message to be stored and acknowledged",
        Duration::from_secs(120),
        || async {
            // From the DPUs (not the workers' count updates).
            let sent = mosquitto.log_count("Received PUBLISH from csv-")
                + mosquitto.log_count("Received PUBLISH from sim-");
            let offered = mosquitto.log_count("Sending PUBLISH to worker-");
            let acked = mosquitto.log_count("Received PUBACK from worker-");
            (offered >= sent && acked == offered).then_some(())
        },
    )
    .await;
    assert_eq!(store.totals().await.unwrap().crossings, counted as i64);

    // The stream was split, not copied: every worker got some of it, together about once.
    let offered: Vec<usize> = (1..=3)
        .map(|n| mosquitto.log_count(&format!("Sending PUBLISH to worker-{n} ")))
        .collect();
    assert!(
        offered.iter().all(|&o| o > 0),
        "offered per worker: {offered:?}"
    );
    assert!(
        offered.iter().sum::<usize>() < 2 * published,
        "offered per worker {offered:?} for {published} messages"
    );
    // Each worker reports itself ready and its own share; the shares add up to the stream
    // (a worker counts a batch just after its commit, which the totals may see first).
    let http = reqwest::Client::new();
    let applied = eventually(
        "the workers' shares to add up to the stream",
        Duration::from_secs(10),
        || async {
            let mut applied = Vec::new();
            for port in &metrics_ports {
                let ready = http
                    .get(format!("http://127.0.0.1:{port}/readyz"))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(ready.status(), 200);
                let metrics = http
                    .get(format!("http://127.0.0.1:{port}/metrics"))
                    .send()
                    .await
                    .unwrap()
                    .text()
                    .await
                    .unwrap();
                applied.push(metric(&metrics, "roomer_crossings_applied_total"));
            }
            (applied.iter().sum::<f64>() == counted as f64).then_some(applied)
        },
    )
    .await;
    assert!(
        applied.iter().all(|&a| a > 0.0),
        "applied per worker: {applied:?}"
    );

    // The retained count of every space settles on the stored count, whichever worker
    // published last: each worker publishes its spaces again a second after its last commit
    // (`SETTLE`), which needs the workers running.
    for space in [0, 1, 2] {
        let stored = store.count_at(space, None).await.unwrap().unwrap();
        eventually(
            "the retained count to settle",
            Duration::from_secs(15),
            || async { (retained_count(&mosquitto, space).await == Some(stored)).then_some(()) },
        )
        .await;
    }
    drop(workers);

    let mut times: Vec<Timestamp> = all.iter().map(|c| c.ts).collect();
    times.sort();
    times.dedup();
    for space in [0, 1, 2] {
        for &t in &times {
            assert_eq!(
                store.count_at(space, Some(t)).await.unwrap(),
                Some(reference::count_at(&layout, &all, space, t)),
                "space {space} at {t}"
            );
        }
    }
}
