//! DPU logins on `roomer serve`'s embedded broker, as a provisioning tool, a DPU and an
//! attacker meet them: a secret issued over the API lets its DPU publish crossings, nobody
//! else connects, a DPU cannot forge a count the dashboards show, and withdrawing the secret
//! ends the DPU's connection without a restart.

mod common;

use common::{spawn_app_configured, spawn_app_with, workspace_file, App, Backend};
use roomer_broker::test_certs::TestPki;
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
        .apply_layout(&roomer_occupancy::Layout::from_toml(&text).unwrap())
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

/// DPU 283 publishes one arrival into space A; returns once it is acknowledged (stored).
async fn publish_one_arrival(dpu: &AsyncClient, eventloop: &mut EventLoop) {
    let crossing = r#"{"ts":"2018-02-24T08:45:21Z","direction":1}"#;
    dpu.publish("dpus/283/crossings", AtLeastOnce, false, crossing)
        .await
        .unwrap();
    let acked = tokio::time::timeout(PATIENCE, async {
        while !matches!(eventloop.poll().await, Ok(Incoming(Packet::PubAck(_)))) {}
    });
    acked.await.expect("acknowledged once stored");
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
        ConnectReturnCode::NotAuthorized
    );
    assert_eq!(
        refusal(connect(&app, "283", Some(("283", "guess"))).await),
        ConnectReturnCode::NotAuthorized
    );

    // With it, DPU 283's crossing is counted.
    let (dpu, mut dpu_loop) = connect(&app, "283", Some(("283", &secret))).await.unwrap();
    publish_one_arrival(&dpu, &mut dpu_loop).await;
    assert_eq!(app.count_at(1, "2018-02-24T09:00:00Z").await, 1);
    eventually("the live count to be 1", PATIENCE, || async {
        (live_count(&app, 1).await["count"] == 1).then_some(())
    })
    .await;

    // A retained count forged by the DPU (999 in space A, a phantom space 4242) closes its
    // connection and never reaches a dashboard.
    for (space, count) in [(1, 999), (4242, 5)] {
        let (forger, mut forger_loop) = connect(&app, "", Some(("283", &secret))).await.unwrap();
        let forged =
            format!(r#"{{"space_id":{space},"count":{count},"ts":"2018-02-24T09:00:00Z"}}"#);
        forger
            .publish(format!("spaces/{space}/count"), AtLeastOnce, true, forged)
            .await
            .unwrap();
        ended_by_broker(&mut forger_loop, PATIENCE).await;
    }
    assert_eq!(live_count(&app, 1).await["count"], 1);
    // What the stream of every space sends first: the current counts, no phantom.
    let mut everything = reqwest::get(format!("{}/api/v1/live", app.http))
        .await
        .unwrap();
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
    while let Ok(Ok(Some(chunk))) = tokio::time::timeout_at(deadline, everything.chunk()).await {
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(
        text.contains(r#""space_id":1"#),
        "the current counts: {text}"
    );
    assert!(!text.contains("4242"), "a phantom space: {text}");

    // Withdrawn over the API: the open connection ends within seconds, no restart, and the
    // secret no longer connects.
    let withdraw = || {
        http.delete(format!("{}/api/v1/dpus/283/credentials", app.http))
            .bearer_auth(&admin)
            .send()
    };
    assert_eq!(withdraw().await.unwrap().status(), 204);
    ended_by_broker(&mut dpu_loop, PATIENCE).await;
    assert_eq!(
        refusal(connect(&app, "283", Some(("283", &secret))).await),
        ConnectReturnCode::NotAuthorized
    );
    assert_eq!(
        withdraw().await.unwrap().status(),
        404,
        "nothing left to withdraw"
    );
    app.stop().await;
}

/// GET `path` over HTTPS (trusting `pki`'s CA) with a bare HTTP/1.1 request: the answer.
async fn https_get(
    pki: &TestPki,
    addr: std::net::SocketAddr,
    path: &str,
) -> std::io::Result<String> {
    let request = format!("GET {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n");
    https_send(pki, addr, &request).await
}

/// Sends a whole HTTP/1.1 `request` over HTTPS (trusting `pki`'s CA): the answer.
async fn https_send(
    pki: &TestPki,
    addr: std::net::SocketAddr,
    request: &str,
) -> std::io::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(pki.client_config(None)));
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = connector.connect(name, tcp).await?;
    tls.write_all(request.as_bytes()).await?;
    let mut answer = String::new();
    tls.read_to_string(&mut answer).await?;
    Ok(answer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dpu_over_tls_is_counted_and_read_over_https() {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::new(dir.path());
    let app = spawn_app_configured(Backend::Sqlite, |config| {
        config.mqtt_auth = AuthMode::Required;
        config.broker.tls = Some(roomer_broker::TlsSettings {
            listen: "127.0.0.1:0".parse().unwrap(),
            cert_chain: pki.server_cert.clone(),
            private_key: pki.server_key.clone(),
            client_ca: None,
        });
        config.http_tls = Some(roomer::TlsFiles {
            cert_chain: pki.server_cert.clone(),
            private_key: pki.server_key.clone(),
        });
    })
    .await;
    let store = roomer_storage::connect(&app.database_url).await.unwrap();
    let text = std::fs::read_to_string(workspace_file("examples/reference-building.toml")).unwrap();
    store
        .apply_layout(&roomer_occupancy::Layout::from_toml(&text).unwrap())
        .await
        .unwrap();
    let secret = store
        .issue_dpu_secret(&roomer_occupancy::DpuId::new("283").unwrap())
        .await
        .unwrap();

    let mqtts = app.mqtts.expect("a TLS listener");
    let mut options = MqttOptions::new("283", "localhost", mqtts.port());
    options
        .set_credentials("283", &secret)
        .set_transport(rumqttc::Transport::tls_with_config(
            rumqttc::TlsConfiguration::Rustls(std::sync::Arc::new(pki.client_config(None))),
        ));
    let (dpu, mut eventloop) = AsyncClient::new(options, 8);
    publish_one_arrival(&dpu, &mut eventloop).await;

    let http = app.http.strip_prefix("http://").unwrap().parse().unwrap();
    let answer = https_get(&pki, http, "/api/v1/spaces/1/count?at=2018-02-24T09:00:00Z")
        .await
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains(r#""count":1"#), "{answer}");
    // Over HTTPS the dashboard's token cookie is marked Secure: no browser sends it over
    // plain HTTP.
    let (token, hash) = roomer_api::auth::new_token();
    store
        .create_token(&hash, roomer_storage::Role::Read, "wall screen")
        .await
        .unwrap();
    let form = format!("token={token}");
    let login = https_send(
        &pki,
        http,
        &format!(
            "POST /ui/login HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\
             content-type: application/x-www-form-urlencoded\r\ncontent-length: {}\r\n\r\n{form}",
            form.len()
        ),
    )
    .await
    .unwrap();
    assert!(login.starts_with("HTTP/1.1 303"), "{login}");
    let cookie = login
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .unwrap_or_else(|| panic!("no cookie: {login}"));
    assert!(cookie.contains("; Secure"), "{cookie}");
    // Plain HTTP to the HTTPS port gets no HTTP answer.
    let plain = reqwest::get(format!("{}/healthz", app.http)).await;
    assert!(plain.is_err(), "{plain:?}");
    app.stop().await;
}
