//! DPU logins on `roomer serve`'s embedded broker, as a provisioning tool, a DPU and an
//! attacker meet them: a secret issued over the API lets its DPU publish crossings, nobody
//! else connects, a DPU cannot forge a count the dashboards show, and withdrawing the secret
//! ends the DPU's connection without a restart.

mod common;

use common::{spawn_app_with, workspace_file, App, Backend};
use roomer_broker::AuthMode;
use roomer_storage::testing::eventually;
use rumqttc::Event::Incoming;
use rumqttc::QoS::AtLeastOnce;
use rumqttc::{AsyncClient, ConnectReturnCode, ConnectionError, EventLoop, MqttOptions, Packet};
use std::time::Duration;

const PATIENCE: Duration = Duration::from_secs(10);

async fn app_requiring_logins() -> (App, String) {
    let app = spawn_app_with(Backend::Sqlite, AuthMode::Required).await;
    let store = roomer_storage::connect(&app.database_url).await.unwrap();
    let text = std::fs::read_to_string(workspace_file("examples/reference-building.toml")).unwrap();
    store
        .apply_layout(&occupancy::Layout::from_toml(&text).unwrap())
        .await
        .unwrap();
    let (token, hash) = roomer_api::auth::new_token();
    store
        .create_token(&hash, roomer_storage::Role::Admin, "provisioning")
        .await
        .unwrap();
    (app, token)
}

/// Connects as `client_id` with `login`; `Ok` once the broker accepted.
async fn connect(
    app: &App,
    client_id: &str,
    login: Option<(&str, &str)>,
) -> Result<(AsyncClient, EventLoop), ConnectionError> {
    let mut options = MqttOptions::new(client_id, app.mqtt.ip().to_string(), app.mqtt.port());
    if let Some((user, password)) = login {
        options.set_credentials(user, password);
    }
    let (client, mut eventloop) = AsyncClient::new(options, 8);
    match tokio::time::timeout(PATIENCE, eventloop.poll()).await {
        Ok(Ok(Incoming(Packet::ConnAck(_)))) => Ok((client, eventloop)),
        Ok(Ok(other)) => panic!("expected a CONNACK, got {other:?}"),
        Ok(Err(e)) => Err(e),
        Err(_) => panic!("no answer to CONNECT"),
    }
}

fn refusal(result: Result<(AsyncClient, EventLoop), ConnectionError>) -> ConnectReturnCode {
    match result {
        Err(ConnectionError::ConnectionRefused(code)) => code,
        other => panic!("expected a refusing CONNACK, got {:?}", other.map(|_| ())),
    }
}

/// Polls until the broker ends the connection (within `within`), never acknowledging.
async fn ended_by_broker(eventloop: &mut EventLoop, within: Duration) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, eventloop.poll()).await {
            Ok(Ok(Incoming(Packet::PubAck(_)))) => panic!("the broker acknowledged"),
            Ok(Ok(_)) => {}
            Ok(Err(_)) => return,
            Err(_) => panic!("the connection stayed open for {within:?}"),
        }
    }
}

/// The first event of a live stream: the current count.
async fn live_count(app: &App, space: i64) -> serde_json::Value {
    let mut response = reqwest::get(format!("{}/api/v1/spaces/{space}/live", app.http))
        .await
        .unwrap();
    let mut text = String::new();
    tokio::time::timeout(PATIENCE, async {
        loop {
            if let Some(line) = text.lines().find_map(|l| l.strip_prefix("data:")) {
                return serde_json::from_str(line.trim()).unwrap();
            }
            let chunk = response.chunk().await.unwrap().expect("stream open");
            text.push_str(&String::from_utf8_lossy(&chunk));
        }
    })
    .await
    .expect("a first event")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dpu_publishes_with_its_own_secret_and_nobody_forges_a_count() {
    let (app, admin) = app_requiring_logins().await;
    let http = reqwest::Client::new();

    // A provisioning tool issues DPU 283's secret.
    let issued: serde_json::Value = http
        .post(format!("{}/api/v1/dpus/283/credentials", app.http))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(issued["username"], "283");
    let secret = issued["secret"].as_str().unwrap().to_owned();
    let without_token = http
        .post(format!("{}/api/v1/dpus/423/credentials", app.http))
        .send()
        .await
        .unwrap();
    assert_eq!(without_token.status(), 401, "issuing needs an admin token");

    // Without it, or with a guess, nobody connects.
    assert_eq!(
        refusal(connect(&app, "283", None).await),
        ConnectReturnCode::BadUserNamePassword
    );
    assert_eq!(
        refusal(connect(&app, "283", Some(("283", "guess"))).await),
        ConnectReturnCode::BadUserNamePassword
    );

    // With it, DPU 283's crossing is counted.
    let (dpu, mut dpu_loop) = connect(&app, "283", Some(("283", &secret))).await.unwrap();
    dpu.publish(
        "dpus/283/crossings",
        AtLeastOnce,
        false,
        r#"{"ts":"2018-02-24T08:45:21Z","direction":1}"#,
    )
    .await
    .unwrap();
    let acked = tokio::time::timeout(PATIENCE, async {
        while !matches!(dpu_loop.poll().await, Ok(Incoming(Packet::PubAck(_)))) {}
    });
    acked.await.expect("acknowledged once stored");
    assert_eq!(app.count_at(1, "2018-02-24T09:00:00Z").await, 1);
    eventually("the live count to be 1", PATIENCE, || async {
        (live_count(&app, 1).await["count"] == 1).then_some(())
    })
    .await;

    // A retained count forged by the DPU closes its connection and never reaches a dashboard.
    let (forger, mut forger_loop) = connect(&app, "", Some(("283", &secret))).await.unwrap();
    forger
        .publish(
            "spaces/1/count",
            AtLeastOnce,
            true,
            r#"{"space_id":1,"count":999,"ts":"2018-02-24T09:00:00Z"}"#,
        )
        .await
        .unwrap();
    ended_by_broker(&mut forger_loop, PATIENCE).await;
    assert_eq!(live_count(&app, 1).await["count"], 1);

    // Withdrawn over the API: the open connection ends within seconds, no restart, and the
    // secret no longer connects.
    let withdrawn = http
        .delete(format!("{}/api/v1/dpus/283/credentials", app.http))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(withdrawn.status(), 204);
    ended_by_broker(&mut dpu_loop, PATIENCE).await;
    assert_eq!(
        refusal(connect(&app, "283", Some(("283", &secret))).await),
        ConnectReturnCode::BadUserNamePassword
    );
    let again = http
        .delete(format!("{}/api/v1/dpus/283/credentials", app.http))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 404);
    app.stop().await;
}
