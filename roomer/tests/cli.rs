//! The `roomer` binary as an operator uses it: start `roomer serve`, apply the example layout,
//! replay the reference data with `roomer simulate replay`, read counts, stop it with SIGTERM.

mod common;

use common::processes::free_port;

use common::processes::RoomerProcess;
use common::{reference_csv, workspace_file};
use roomer_storage::testing::eventually;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

const ROOMER: &str = env!("CARGO_BIN_EXE_roomer");

fn roomer(database_url: &str, args: &[&str]) -> Output {
    common::processes::run_roomer(database_url, args, &[])
}

async fn get_json(url: &str) -> Option<serde_json::Value> {
    reqwest::get(url).await.ok()?.json().await.ok()
}

#[tokio::test]
async fn serve_counts_a_replayed_csv_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let database_url = format!("sqlite://{}", dir.path().join("roomer.db").display());
    let (http_port, mqtt_port) = (free_port(), free_port());
    let log = std::fs::File::create(dir.path().join("serve.log")).unwrap();
    let mut server = Command::new(ROOMER)
        .args(["--http-addr", &format!("127.0.0.1:{http_port}")])
        .args(["--mqtt-addr", &format!("127.0.0.1:{mqtt_port}")])
        .args(["--database-url", &database_url])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{http_port}");
    eventually(
        "roomer serve to answer",
        Duration::from_secs(30),
        || async { get_json(&format!("{base}/api/v1/totals")).await },
    )
    .await;

    let layout = workspace_file("examples/reference-building.toml");
    let layout = layout.to_str().unwrap();
    let first = roomer(&database_url, &["layout", "apply", layout]);
    assert!(String::from_utf8_lossy(&first.stdout).contains("8 changes"));
    let again = roomer(&database_url, &["layout", "apply", layout]);
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("0 changes"),
        "idempotent"
    );

    let csv = reference_csv();
    let mqtt_url = format!("mqtt://127.0.0.1:{mqtt_port}");
    roomer(
        &database_url,
        &[
            "simulate",
            "replay",
            csv.to_str().unwrap(),
            "--mqtt-url",
            &mqtt_url,
        ],
    );
    eventually(
        "the replayed rows to be stored",
        Duration::from_secs(30),
        || async {
            let totals = get_json(&format!("{base}/api/v1/totals")).await?;
            (totals["crossings"] == 530).then_some(())
        },
    )
    .await;
    // The reference data's figures, and the reference model's.
    let spaces = get_json(&format!("{base}/api/v1/spaces")).await.unwrap();
    let now: Vec<(i64, i64)> = spaces
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["id"].as_i64().unwrap(), s["count"].as_i64().unwrap()))
        .collect();
    assert_eq!(now, [(0, -6), (1, 4), (2, 9)]);
    let legacy = get_json(&format!("{base}/space/1/count/?timestamp=2018-02-27"))
        .await
        .unwrap();
    assert_eq!(legacy, serde_json::json!({"space_id": 1, "count": 11}));
    let totals = get_json(&format!("{base}/api/v1/totals")).await.unwrap();
    assert_eq!(
        totals,
        serde_json::json!({"crossings": 530, "pending": 0, "rejected": 0})
    );
    let building =
        roomer_occupancy::Layout::from_toml(&std::fs::read_to_string(layout).unwrap()).unwrap();
    let rows = roomer_simulator::read_csv(&csv).unwrap();
    let day = "2018-02-27T00:00:00Z".parse().unwrap();
    let far = "2100-01-01T00:00:00Z".parse().unwrap();
    assert_eq!(
        roomer_occupancy::reference::count_at(&building, &rows, 1, day),
        11
    );
    for (space, count) in now {
        assert_eq!(
            roomer_occupancy::reference::count_at(&building, &rows, space, far),
            count
        );
    }

    // On loopback reads are public; writes need an admin token, made with `roomer token`.
    let made = roomer(
        &database_url,
        &["token", "create", "--role", "admin", "--name", "ops"],
    );
    let token = String::from_utf8(made.stdout).unwrap().trim().to_owned();
    assert!(token.starts_with("roomer_"), "{token}");
    let put = |bearer: Option<String>| {
        let mut request = reqwest::Client::new()
            .put(format!("{base}/api/v1/spaces/9"))
            .json(&serde_json::json!({"name": "Lobby"}));
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        request.send()
    };
    assert_eq!(put(None).await.unwrap().status(), 401);
    assert_eq!(put(Some(token.clone())).await.unwrap().status(), 200);
    // A read token is a token, but not one that writes.
    let reader = roomer(
        &database_url,
        &["token", "create", "--role", "read", "--name", "dashboard"],
    );
    let reader = String::from_utf8(reader.stdout).unwrap().trim().to_owned();
    assert_eq!(put(Some(reader)).await.unwrap().status(), 403);
    // Listed by a hash prefix (never the token), then revoked: it no longer opens anything.
    let listed = String::from_utf8(roomer(&database_url, &["token", "list"]).stdout).unwrap();
    let line = listed.lines().find(|l| l.ends_with("ops")).expect("listed");
    assert!(
        !listed.contains(&token[7..]),
        "the token itself is never shown again"
    );
    let id = line.split_whitespace().next().unwrap();
    roomer(&database_url, &["token", "revoke", "--id", id]);
    assert_eq!(put(Some(token)).await.unwrap().status(), 401);

    // The meters of the broker and the worker in this process, read off their own events.
    // (The worker's counters follow its commit by a moment.)
    let meters = eventually("the worker's meters", Duration::from_secs(10), || async {
        let meters = get_json(&format!("{base}/api/v1/meters")).await?;
        (meters["ingest"]["crossings_new"] == 530).then_some(meters)
    })
    .await;
    let (broker, ingest) = (&meters["broker"], &meters["ingest"]);
    assert!(
        broker["connections_opened"].as_u64().unwrap() >= 3,
        "{meters}"
    );
    assert!(broker["publishes"].as_u64().unwrap() >= 530, "{meters}");
    assert_eq!(broker["lost_messages"], 0, "{meters}");
    assert_eq!(ingest["crossings_new"], 530, "{meters}");

    let status = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = eventually(
        "roomer serve to exit after SIGTERM",
        Duration::from_secs(15),
        || {
            let exited = server.try_wait().unwrap();
            async move { exited }
        },
    )
    .await;
    let log = std::fs::read_to_string(dir.path().join("serve.log")).unwrap();
    assert!(exit.success(), "exit status {exit:?}; log:\n{log}");
    assert!(log.contains("stopped"), "log:\n{log}");
    assert!(
        log.contains("reads need no token"),
        "says reads are public:\n{log}"
    );
}

#[test]
fn migrate_prepares_a_fresh_database() {
    let dir = tempfile::tempdir().unwrap();
    let database_url = format!("sqlite://{}", dir.path().join("fresh.db").display());
    let output = roomer(&database_url, &["migrate"]);
    assert!(String::from_utf8_lossy(&output.stdout).contains("up to date"));
    assert!(dir.path().join("fresh.db").exists());
}

#[test]
fn timescaledb_settings_on_a_database_without_it_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let database_url = format!("sqlite://{}", dir.path().join("roomer.db").display());
    let output = Command::new(ROOMER)
        .args(["migrate", "--compress-after", "30d"])
        .env("DATABASE_URL", &database_url)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("does not use TimescaleDB"), "{stderr}");
    let plain = roomer(&database_url, &["migrate"]);
    assert!(String::from_utf8_lossy(&plain.stdout).contains("no TimescaleDB"));
}

#[test]
fn a_bad_layout_file_is_refused_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(
        &file,
        "[[doorway]]\nid = 1\nname = \"D\"\nexiting_to = 0\nentering_to = 0\n",
    )
    .unwrap();
    let output = Command::new(ROOMER)
        .args(["layout", "apply", file.to_str().unwrap()])
        .env(
            "DATABASE_URL",
            format!("sqlite://{}", dir.path().join("x.db").display()),
        )
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("same space on both sides"), "{stderr}");
}

#[tokio::test]
async fn logs_can_be_json_lines_for_a_collector() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let log = std::fs::File::create(dir.path().join("broker.log")).unwrap();
    let mut broker = Command::new(ROOMER)
        .args(["--log-format", "json", "broker"])
        .args(["--mqtt-addr", &format!("127.0.0.1:{port}")])
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let path = dir.path().join("broker.log");
    let text = eventually(
        "the broker to log that it is ready",
        Duration::from_secs(20),
        || {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            async move { text.contains("ready").then_some(text) }
        },
    )
    .await;
    broker.kill().unwrap();
    broker.wait().unwrap();
    for raw in text.lines() {
        let line: serde_json::Value = serde_json::from_str(raw).expect("a JSON object a line");
        assert!(
            ["INFO", "WARN", "ERROR"].contains(&line["level"].as_str().unwrap()),
            "{raw}"
        );
        assert!(line["fields"]["message"].is_string(), "{raw}");
        assert!(line["timestamp"].is_string(), "{raw}");
    }
}

#[tokio::test]
async fn an_api_is_not_ready_while_its_broker_is_away() {
    let dir = tempfile::tempdir().unwrap();
    let database_url = format!("sqlite://{}", dir.path().join("roomer.db").display());
    let (http_port, mqtt_port) = (free_port(), free_port());
    let log = dir.path().join("roomer.log");
    let mqtt_url = format!("mqtt://127.0.0.1:{mqtt_port}");
    let _api = RoomerProcess::spawn(
        &[
            "api",
            "--http-addr",
            &format!("127.0.0.1:{http_port}"),
            "--mqtt-url",
            &mqtt_url,
        ],
        &database_url,
        &log,
    );
    let readyz = format!("http://127.0.0.1:{http_port}/readyz");
    let away = eventually("the API to answer", Duration::from_secs(30), || async {
        reqwest::get(&readyz).await.ok()
    })
    .await;
    assert_eq!(away.status(), 503);
    let problem: serde_json::Value = away.json().await.unwrap();
    assert_eq!(problem["code"], "unavailable", "{problem}");
    assert!(
        problem["detail"].as_str().unwrap().contains("MQTT broker"),
        "{problem}"
    );

    let _broker = RoomerProcess::spawn(
        &["broker", "--mqtt-addr", &format!("127.0.0.1:{mqtt_port}")],
        &database_url,
        &log,
    );
    let ready = eventually(
        "the API to reach the broker",
        Duration::from_secs(30),
        || async {
            let response = reqwest::get(&readyz).await.ok()?;
            (response.status() == 200).then_some(response)
        },
    )
    .await;
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body, serde_json::json!({"database": "ok", "broker": "ok"}));
}

#[tokio::test]
async fn roomer_serve_stops_cleanly_on_ctrl_c() {
    let dir = tempfile::tempdir().unwrap();
    let database_url = format!("sqlite://{}", dir.path().join("roomer.db").display());
    let (http_port, mqtt_port) = (free_port(), free_port());
    let log_path = dir.path().join("serve.log");
    let mut server = Command::new(ROOMER)
        .arg("serve")
        .args(["--http-addr", &format!("127.0.0.1:{http_port}")])
        .args(["--mqtt-addr", &format!("127.0.0.1:{mqtt_port}")])
        .env("DATABASE_URL", &database_url)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    let readyz = format!("http://127.0.0.1:{http_port}/readyz");
    eventually(
        "roomer serve to be ready",
        Duration::from_secs(30),
        || async { (reqwest::get(&readyz).await.ok()?.status() == 200).then_some(()) },
    )
    .await;
    // What a terminal sends on Ctrl-C.
    let status = Command::new("kill")
        .args(["-INT", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = eventually(
        "roomer serve to exit after SIGINT",
        Duration::from_secs(15),
        || {
            let exited = server.try_wait().unwrap();
            async move { exited }
        },
    )
    .await;
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(exit.success(), "exit status {exit:?}; log:\n{log}");
    assert!(log.contains("stopped"), "log:\n{log}");
}

#[tokio::test]
async fn dpu_credentials_are_created_listed_and_revoked_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let database_url = format!("sqlite://{}", dir.path().join("roomer.db").display());

    let created = roomer(&database_url, &["dpu", "credentials", "create", "283"]);
    let stdout = String::from_utf8(created.stdout).unwrap();
    let secret = stdout.lines().last().expect("the secret, last").to_owned();
    assert_eq!(secret.len(), 64, "{stdout}");
    let store = roomer_storage::connect(&database_url).await.unwrap();
    let dpu = roomer_occupancy::DpuId::new("283").unwrap();
    assert!(store.check_dpu_secret(&dpu, &secret).await.unwrap());
    let listed = roomer(&database_url, &["dpu", "credentials", "list"]);
    assert_eq!(String::from_utf8_lossy(&listed.stdout), "283\n");

    roomer(&database_url, &["dpu", "credentials", "revoke", "283"]);
    assert!(!store.check_dpu_secret(&dpu, &secret).await.unwrap());
    let again = Command::new(ROOMER)
        .args(["dpu", "credentials", "revoke", "283"])
        .env("DATABASE_URL", &database_url)
        .output()
        .unwrap();
    assert!(!again.status.success(), "nothing left to revoke");
    assert!(String::from_utf8_lossy(&again.stderr).contains("has no secret"));
    let bad = Command::new(ROOMER)
        .args(["dpu", "credentials", "create", "dpu/1"])
        .env("DATABASE_URL", &database_url)
        .output()
        .unwrap();
    assert!(!bad.status.success(), "not a DPU id");
}
