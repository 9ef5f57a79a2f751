//! Device status as an operator sees it: simulated DPUs (`roomer simulate replay`, a real
//! process) connect with a retained last will `offline`, say `online`, and when the process
//! dies without a word the broker announces them offline; the API shows each DPU's status,
//! when it was last heard from, its doorway and its crossings.
//!
//! The same simulator against Mosquitto shows, in the broker's own log, one MQTT client per
//! DPU publishing at QoS 1.

mod common;

use common::processes::{Mosquitto, RoomerProcess};
use common::{app_with_example_building, reference_csv};
use roomer_storage::testing::eventually;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dpu_that_dies_is_shown_offline_through_its_last_will() {
    let app = app_with_example_building().await;

    // At real-time speed the recording lasts days: the DPUs stay connected.
    let dir = tempfile::tempdir().unwrap();
    let csv = reference_csv();
    let simulator = RoomerProcess::spawn(
        &[
            "simulate",
            "replay",
            csv.to_str().unwrap(),
            "--mqtt-url",
            &format!("mqtt://{}", app.mqtt),
            "--speed",
            "1",
        ],
        &app.database_url,
        &dir.path().join("simulator.log"),
    );
    let online = eventually("DPU 283 to be online", Duration::from_secs(30), || async {
        let dpu = app.get("/api/v1/dpus/283").await;
        (dpu["online"] == true && dpu["events_today"].is_number()).then_some(dpu)
    })
    .await;
    assert_eq!(online["declared"], true);
    assert_eq!(online["doorway"], 1, "{online}");
    assert!(online["status_at"].is_string(), "{online}");
    assert!(online["last_seen"].is_string(), "{online}");

    // SIGKILL: no DISCONNECT, so the broker publishes each DPU's last will.
    simulator.kill();
    let offline = eventually("DPU 283 to be offline", Duration::from_secs(30), || async {
        let dpu = app.get("/api/v1/dpus/283").await;
        (dpu["online"] == false).then_some(dpu)
    })
    .await;
    assert!(
        offline["status_at"].as_str() > online["status_at"].as_str(),
        "{online} then {offline}"
    );
    let listed = app.get("/api/v1/dpus").await;
    let both: Vec<_> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["id"].as_str().unwrap().to_owned(), d["online"].clone()))
        .collect();
    assert!(both.contains(&("283".into(), false.into())), "{listed}");
    app.stop().await;
}

#[tokio::test]
#[cfg_attr(not(roomer_mosquitto_tests), ignore = "set TEST_MOSQUITTO")]
async fn the_simulator_is_one_qos1_client_per_dpu() {
    let dir = tempfile::tempdir().unwrap();
    let mosquitto = Mosquitto::start(dir.path()).await;
    let rows = roomer_simulator::read_csv(&reference_csv()).unwrap();
    let dpus: std::collections::BTreeSet<String> = rows.iter().map(|r| r.dpu.to_string()).collect();
    assert!(dpus.len() >= 2, "the reference data has two DPUs");
    let options = roomer_simulator::ReplayOptions::new(
        roomer_simulator::MqttTarget::parse(&mosquitto.url()).unwrap(),
    );
    let report = roomer_simulator::replay(rows[..100].to_vec(), &options)
        .await
        .unwrap();
    assert_eq!(report.messages, 100);
    let mut published = 0;
    for dpu in &dpus {
        let client = format!("sim-{dpu}");
        assert_eq!(
            mosquitto.log_count(&format!("as {client} ")),
            1,
            "one connection for DPU {dpu}"
        );
        // Mosquitto logs `Received PUBLISH from CLIENT (d0, q1, r0, m1, 'TOPIC', … )`.
        let own = mosquitto.log_count(&format!("Received PUBLISH from {client} (d0, q1, r0, m"));
        let to_own_topic = mosquitto.log_count(&format!("'dpus/{dpu}/crossings'"));
        assert_eq!(
            own, to_own_topic,
            "DPU {dpu} publishes only its own crossings"
        );
        published += own;
    }
    assert_eq!(
        published, 100,
        "every crossing at QoS 1 from its DPU's own client"
    );
}
