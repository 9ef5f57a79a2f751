//! An external Mosquitto secured from Roomer's DPU registry, as an operator sets it up: DPU
//! secrets issued with `roomer dpu credentials create`, Mosquitto's password and ACL files
//! written by `roomer dpu credentials mosquitto`, Roomer's worker, API and simulated DPUs
//! connecting over TLS with their logins, and every forgery refused by Mosquitto itself.

mod common;

use common::processes::{free_port, run_roomer, Mosquitto, RoomerProcess, Secured};
use common::workspace_file;
use roomer_broker::test_certs::TestPki;
use roomer_storage::testing::eventually;
use roomer_storage::Store;
use rumqttc::Event::Incoming;
use rumqttc::{AsyncClient, EventLoop, MqttOptions, Packet, QoS};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

const SERVICE_PASSWORD: &str = "roomer-service-password-for-this-test";
const PATIENCE: Duration = Duration::from_secs(30);

/// Runs a `roomer` subcommand to completion; its stdout.
fn roomer(database_url: &str, args: &[&str]) -> String {
    let envs = [("ROOMER_MQTT_SERVICE_PASSWORD", SERVICE_PASSWORD)];
    let output = run_roomer(database_url, args, &envs);
    String::from_utf8(output.stdout).unwrap()
}

fn issue_secret(database_url: &str, dpu: &str) -> String {
    let out = roomer(database_url, &["dpu", "credentials", "create", dpu]);
    out.lines().last().unwrap().to_owned()
}

/// A plain-MQTT client of the test's Mosquitto; `None` if its CONNECT is refused.
async fn connect(
    port: u16,
    client_id: &str,
    login: Option<(&str, &str)>,
) -> Option<(AsyncClient, EventLoop)> {
    let mut options = MqttOptions::new(client_id, "127.0.0.1", port);
    if let Some((user, password)) = login {
        options.set_credentials(user, password);
    }
    let (client, mut eventloop) = AsyncClient::new(options, 8);
    match tokio::time::timeout(PATIENCE, eventloop.poll()).await {
        Ok(Ok(Incoming(Packet::ConnAck(_)))) => Some((client, eventloop)),
        _ => None,
    }
}

/// Publishes at QoS 1 and waits until the broker answers: a PUBACK, or closing the
/// connection (Mosquitto 2.0 may close it after denying a publish).
async fn attempt_publish(
    client: &AsyncClient,
    eventloop: &mut EventLoop,
    topic: &str,
    retain: bool,
    payload: &str,
) {
    client
        .publish(topic, QoS::AtLeastOnce, retain, payload)
        .await
        .unwrap();
    tokio::time::timeout(PATIENCE, async {
        loop {
            match eventloop.poll().await {
                Ok(Incoming(Packet::PubAck(_))) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .expect("an answer to the PUBLISH");
}

async fn count_at(store: &Arc<dyn Store>, at: &str) -> i64 {
    store
        .count_at(1, Some(at.parse().unwrap()))
        .await
        .unwrap()
        .unwrap_or(0)
}

async fn wait_for_count(store: &Arc<dyn Store>, at: &str, expected: i64) {
    eventually(
        &format!("space A to count {expected} at {at}"),
        PATIENCE,
        || async { (count_at(store, at).await == expected).then_some(()) },
    )
    .await;
}

fn log_has(path: &Path, needle: &str) -> bool {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .contains(needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(roomer_mosquitto_tests),
    ignore = "set TEST_MOSQUITTO to the mosquitto binary"
)]
async fn a_mosquitto_secured_from_the_registry_refuses_every_forgery() {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::new(dir.path());
    let ca = pki.ca_pem.to_str().unwrap().to_owned();
    let database_url = format!("sqlite://{}", dir.path().join("roomer.db").display());
    let layout = workspace_file("examples/reference-building.toml");
    roomer(
        &database_url,
        &["layout", "apply", layout.to_str().unwrap()],
    );
    let store = roomer_storage::connect(&database_url).await.unwrap();

    // The operator issues both DPUs' secrets and writes Mosquitto's files from the registry.
    let secret_283 = issue_secret(&database_url, "283");
    let secret_423 = issue_secret(&database_url, "423");
    let (passwd, acl) = (dir.path().join("passwd"), dir.path().join("acl"));
    let wrote = roomer(
        &database_url,
        &[
            "dpu",
            "credentials",
            "mosquitto",
            "--passwd",
            passwd.to_str().unwrap(),
            "--acl",
            acl.to_str().unwrap(),
        ],
    );
    assert!(wrote.contains("2 DPUs"), "{wrote}");
    let kept = std::fs::read_to_string(&passwd).unwrap();
    assert!(
        !kept.contains(&secret_283) && !kept.contains(SERVICE_PASSWORD),
        "hashes only"
    );
    let mosquitto = Mosquitto::start_secured(
        dir.path(),
        Secured {
            password_file: &passwd,
            acl_file: &acl,
            cert: &pki.server_cert,
            key: &pki.server_key,
        },
    )
    .await;
    let (port, tls_port) = (mosquitto.port, mosquitto.tls_port.unwrap());

    // Roomer's worker connects over TLS with its account in the URL.
    let worker_log = dir.path().join("worker.log");
    let worker_url = format!("mqtts://roomer:{SERVICE_PASSWORD}@localhost:{tls_port}");
    let _worker = RoomerProcess::ingest(
        &worker_url,
        "roomer-ingest",
        None,
        &database_url,
        &worker_log,
        &["--mqtt-ca", &ca],
    );
    eventually("the worker to subscribe", PATIENCE, || async {
        (mosquitto.log_count("Received SUBSCRIBE from roomer-ingest") > 0).then_some(())
    })
    .await;

    // DPU 283, simulated, connects over TLS with its own secret: its crossing is counted.
    let csv = dir.path().join("one.csv");
    std::fs::write(
        &csv,
        "timestamp,direction,dpu_id\n2018-02-24T08:45:21Z,1,283\n",
    )
    .unwrap();
    let secrets = dir.path().join("secrets");
    std::fs::write(&secrets, format!("283 {secret_283}\n")).unwrap();
    roomer(
        &database_url,
        &[
            "simulate",
            "replay",
            csv.to_str().unwrap(),
            "--mqtt-url",
            &format!("mqtts://localhost:{tls_port}"),
            "--mqtt-ca",
            &ca,
            "--dpu-secrets",
            secrets.to_str().unwrap(),
        ],
    );
    wait_for_count(&store, "2018-02-24T09:00:00Z", 1).await;

    // Nobody connects without a login or with a wrong one.
    assert!(connect(port, "anyone", None).await.is_none(), "anonymous");
    assert!(
        connect(port, "283", Some(("283", "guess"))).await.is_none(),
        "a guess"
    );

    // DPU 283, with its valid login, tries to speak for DPU 423 and to forge a count. Mosquitto
    // denies each (a PUBACK with "not authorized", and it may close the connection), so each
    // attempt gets a connection of its own.
    let forged = r#"{"ts":"2018-02-24T10:00:00Z","direction":1}"#;
    let count = r#"{"space_id":1,"count":999,"ts":"2018-02-24T10:00:00Z"}"#;
    for (n, (topic, retain, payload)) in [
        ("dpus/423/crossings", false, forged),
        ("spaces/1/count", true, count),
    ]
    .into_iter()
    .enumerate()
    {
        let (dpu, mut dpu_loop) = connect(port, "283", Some(("283", &secret_283)))
            .await
            .unwrap();
        attempt_publish(&dpu, &mut dpu_loop, topic, retain, payload).await;
        eventually(&format!("Mosquitto to deny {topic}"), PATIENCE, || async {
            (mosquitto.log_count("Denied PUBLISH from 283") == n + 1).then_some(())
        })
        .await;
    }
    // …and to read DPU 423's traffic: Mosquitto grants the subscription, delivers nothing.
    let (snoop, mut snoop_loop) = connect(port, "283", Some(("283", &secret_283)))
        .await
        .unwrap();
    snoop
        .subscribe("dpus/+/crossings", QoS::AtLeastOnce)
        .await
        .unwrap();
    tokio::time::timeout(PATIENCE, async {
        while !matches!(snoop_loop.poll().await, Ok(Incoming(Packet::SubAck(_)))) {}
    })
    .await
    .expect("a SUBACK");
    let (other, mut other_loop) = connect(port, "423", Some(("423", &secret_423)))
        .await
        .unwrap();
    let genuine = r#"{"ts":"2018-02-24T10:30:00Z","direction":1}"#;
    attempt_publish(
        &other,
        &mut other_loop,
        "dpus/423/crossings",
        false,
        genuine,
    )
    .await;
    wait_for_count(&store, "2018-02-24T11:00:00Z", 2).await;
    let snooped = tokio::time::timeout(Duration::from_millis(500), async {
        loop {
            if let Ok(Incoming(Packet::Publish(p))) = snoop_loop.poll().await {
                return p;
            }
        }
    })
    .await;
    assert!(snooped.is_err(), "DPU 283 read {snooped:?}");

    // Roomer's API follows the counts over TLS with its account given as flags: the live
    // stream shows the stored count, never the forged one.
    let http_port = free_port();
    let api_log = dir.path().join("api.log");
    let _api = RoomerProcess::spawn(
        &[
            "api",
            "--http-addr",
            &format!("127.0.0.1:{http_port}"),
            "--mqtt-url",
            &format!("mqtts://localhost:{tls_port}"),
            "--mqtt-username",
            "roomer",
            "--mqtt-password",
            SERVICE_PASSWORD,
            "--mqtt-ca",
            &ca,
        ],
        &database_url,
        &api_log,
    );
    let live = format!("http://127.0.0.1:{http_port}/api/v1/spaces/1/live");
    let first = eventually("the API's live stream", PATIENCE, || async {
        let mut response = reqwest::get(&live).await.ok()?;
        let chunk = tokio::time::timeout(Duration::from_secs(5), response.chunk())
            .await
            .ok()?
            .ok()??;
        let text = String::from_utf8_lossy(&chunk).into_owned();
        text.contains("data:").then_some(text)
    })
    .await;
    assert!(first.contains(r#""count":2"#), "{first}");
    assert!(!first.contains("999"), "{first}");

    // The passwords appear in no log.
    for log in [&worker_log, &api_log] {
        assert!(
            !log_has(log, SERVICE_PASSWORD),
            "{} shows the password",
            log.display()
        );
    }
}
