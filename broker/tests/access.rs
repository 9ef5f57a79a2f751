//! Who may connect to the embedded broker and what each client may publish and read, told by
//! real MQTT clients over TCP: DPUs log in with their own secrets, Roomer's components with
//! the service account, and every forgery is refused before rumqttd sees it.

mod common;

use async_trait::async_trait;
use common::{free_addr, start, TestClient, PATIENCE};
use roomer_broker::access::SERVICE_USER;
use roomer_broker::{Access, AuthMode, BrokerConfig, DpuSecrets, EmbeddedBroker};
use rumqttc::Event::Incoming;
use rumqttc::{
    AsyncClient, ConnectReturnCode, ConnectionError, EventLoop, MqttOptions, Packet, QoS,
};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const SERVICE_SECRET: &str = "the service secret";

/// The DPU registry of these stories: secrets by DPU id, editable while the broker runs.
#[derive(Default)]
struct Registry(Mutex<HashMap<String, String>>);

impl Registry {
    fn with(secrets: &[(&str, &str)]) -> Arc<Self> {
        let secrets = secrets.iter().map(|(d, s)| (d.to_string(), s.to_string()));
        Arc::new(Self(Mutex::new(secrets.collect())))
    }
}

#[async_trait]
impl DpuSecrets for Registry {
    async fn check(&self, dpu: &str, secret: &str) -> Result<bool, String> {
        let secrets = self.0.lock().unwrap();
        Ok(secrets.get(dpu).is_some_and(|kept| kept == secret))
    }
}

fn broker_requiring_logins(registry: Arc<Registry>) -> EmbeddedBroker {
    let access = Access {
        mode: AuthMode::Required,
        service_secret: Some(SERVICE_SECRET.into()),
        dpu_secrets: Some(registry),
    };
    EmbeddedBroker::start_with(BrokerConfig::on(free_addr()), access).expect("the broker starts")
}

fn options(addr: SocketAddr, client_id: &str, login: Option<(&str, &str)>) -> MqttOptions {
    let mut options = MqttOptions::new(client_id, addr.ip().to_string(), addr.port());
    options.set_keep_alive(Duration::from_secs(5));
    if let Some((user, password)) = login {
        options.set_credentials(user, password);
    }
    options
}

fn service(addr: SocketAddr, client_id: &str) -> TestClient {
    start(options(
        addr,
        client_id,
        Some((SERVICE_USER, SERVICE_SECRET)),
    ))
}

/// What the broker answers a CONNECT with: `Ok` once accepted, or the refusal.
async fn connack(options: MqttOptions) -> Result<(AsyncClient, EventLoop), ConnectionError> {
    let (client, mut eventloop) = AsyncClient::new(options, 8);
    match tokio::time::timeout(PATIENCE, eventloop.poll()).await {
        Ok(Ok(Incoming(Packet::ConnAck(_)))) => Ok((client, eventloop)),
        Ok(Ok(other)) => panic!("expected a CONNACK, got {other:?}"),
        Ok(Err(e)) => Err(e),
        Err(_) => panic!("no answer to CONNECT within {PATIENCE:?}"),
    }
}

fn refused_with(result: Result<(AsyncClient, EventLoop), ConnectionError>) -> ConnectReturnCode {
    match result {
        Err(ConnectionError::ConnectionRefused(code)) => code,
        Err(e) => panic!("expected a refusing CONNACK, got {e:?}"),
        Ok(_) => panic!("expected a refusing CONNACK, got an accepting one"),
    }
}

/// Polls until the broker closes the connection; panics if it stays open.
async fn closed_by_broker(eventloop: &mut EventLoop) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        match tokio::time::timeout_at(deadline, eventloop.poll()).await {
            Ok(Ok(Incoming(Packet::PubAck(ack)))) => panic!("acknowledged: {ack:?}"),
            Ok(Ok(_)) => {}
            Ok(Err(_)) => return,
            Err(_) => panic!("the connection stayed open"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_clients_with_a_valid_login_connect() {
    let registry = Registry::with(&[("283", "s3cret")]);
    let broker = broker_requiring_logins(registry);
    let addr = broker.local_addr();
    let before = roomer_broker::meters::snapshot();

    use ConnectReturnCode::NotAuthorized;
    let attempts = [
        ("anonymous", options(addr, "283", None), NotAuthorized),
        (
            "a wrong secret",
            options(addr, "283", Some(("283", "guess"))),
            NotAuthorized,
        ),
        (
            "an unknown DPU",
            options(addr, "999", Some(("999", "s3cret"))),
            NotAuthorized,
        ),
        (
            "a wrong service secret",
            options(addr, "roomer-x", Some((SERVICE_USER, "guess"))),
            NotAuthorized,
        ),
        // A DPU may not take another DPU's client id (and end its session), nor an ingest
        // worker's (and acknowledge messages as stored).
        (
            "another DPU's client id",
            options(addr, "423", Some(("283", "s3cret"))),
            NotAuthorized,
        ),
        (
            "a worker's client id",
            options(addr, "roomer-ingest", Some(("283", "s3cret"))),
            NotAuthorized,
        ),
    ];
    for (what, options, expected) in attempts {
        assert_eq!(refused_with(connack(options).await), expected, "{what}");
    }
    // A last will is a publish too: not on a topic the DPU may not publish to.
    let mut forged_will = options(addr, "283", Some(("283", "s3cret")));
    forged_will.set_last_will(rumqttc::LastWill::new(
        "spaces/1/count",
        r#"{"space_id":1,"count":999}"#,
        QoS::AtLeastOnce,
        true,
    ));
    assert_eq!(refused_with(connack(forged_will).await), NotAuthorized);
    let after = roomer_broker::meters::snapshot();
    assert!(after.unauthorized >= before.unauthorized + 7);
    assert!(after.refused >= before.refused + 7);

    // The right logins connect; a DPU may also let the broker assign its client id.
    assert!(connack(options(addr, "283", Some(("283", "s3cret"))))
        .await
        .is_ok());
    assert!(connack(options(addr, "", Some(("283", "s3cret"))))
        .await
        .is_ok());
    assert!(connack(options(
        addr,
        "roomer-ingest",
        Some((SERVICE_USER, SERVICE_SECRET))
    ))
    .await
    .is_ok());
    // The broker's health checks log in too: nothing was restarted meanwhile.
    assert_eq!(broker.restarts(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dpu_publishes_only_as_itself_and_never_a_count() {
    let registry = Registry::with(&[("283", "s3cret")]);
    let broker = broker_requiring_logins(registry);
    let addr = broker.local_addr();
    let mut worker = service(addr, "roomer-ingest");
    worker.subscribe("#").await;
    let denied_before = roomer_broker::meters::snapshot().denied;

    // Its own topic: acknowledged and delivered.
    let dpu_login = Some(("283", "s3cret"));
    let mut dpu = start(options(addr, "283", dpu_login));
    dpu.publish_acked("dpus/283/crossings", false, b"own".to_vec())
        .await;
    assert_eq!(
        &worker.next_publish().await.expect("delivered").payload[..],
        b"own"
    );

    // Another DPU's topic, and a retained count: each closes the connection, nothing is
    // acknowledged, delivered or retained.
    for (topic, retain) in [("dpus/423/crossings", false), ("spaces/1/count", true)] {
        let (client, mut eventloop) = connack(options(addr, "283", dpu_login)).await.unwrap();
        client
            .publish(
                topic,
                QoS::AtLeastOnce,
                retain,
                r#"{"space_id":1,"count":999}"#,
            )
            .await
            .unwrap();
        closed_by_broker(&mut eventloop).await;
    }
    assert!(roomer_broker::meters::snapshot().denied >= denied_before + 2);
    dpu.publish_acked("dpus/283/crossings", false, b"marker".to_vec())
        .await;
    let next = worker.next_publish().await.expect("the marker");
    assert_eq!(
        &next.payload[..],
        b"marker",
        "nothing forged came before it"
    );

    // A dashboard arriving now finds no forged retained count.
    let mut late = service(addr, "roomer-live");
    late.subscribe("spaces/+/count").await;
    let retained = late.wait_for_within(Duration::from_millis(500), |s| match s {
        common::Seen::Publish(p) => Some(p),
        _ => None,
    });
    assert!(retained.await.is_none(), "no retained count");

    // Roomer's own account does publish counts.
    worker
        .publish_acked("spaces/1/count", true, b"genuine".to_vec())
        .await;
    assert_eq!(
        &late.next_publish().await.expect("a count").payload[..],
        b"genuine"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dpu_cannot_read_other_dpus_traffic() {
    let registry = Registry::with(&[("283", "s3cret"), ("423", "other")]);
    let broker = broker_requiring_logins(registry);
    let addr = broker.local_addr();
    let (snoop, mut eventloop) = connack(options(addr, "423", Some(("423", "other"))))
        .await
        .unwrap();
    for filter in ["#", "dpus/+/crossings", "dpus/283/#", "spaces/+/count"] {
        snoop.subscribe(filter, QoS::AtLeastOnce).await.unwrap();
        let suback = loop {
            match tokio::time::timeout(PATIENCE, eventloop.poll()).await {
                Ok(Ok(Incoming(Packet::SubAck(suback)))) => break suback,
                Ok(Ok(_)) => {}
                other => panic!("no SUBACK for {filter}: {other:?}"),
            }
        };
        assert_eq!(
            suback.return_codes,
            [rumqttc::SubscribeReasonCode::Failure],
            "{filter}"
        );
    }
    // Its own topics it may follow.
    snoop
        .subscribe("dpus/423/#", QoS::AtLeastOnce)
        .await
        .unwrap();
    let mut dpu = start(options(addr, "283", Some(("283", "s3cret"))));
    dpu.publish_acked("dpus/283/crossings", false, b"private".to_vec())
        .await;
    let deadline = tokio::time::Instant::now() + Duration::from_millis(500);
    while let Ok(event) = tokio::time::timeout_at(deadline, eventloop.poll()).await {
        if let Ok(Incoming(Packet::Publish(p))) = event {
            panic!("DPU 423 read {:?}", p.topic);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_withdrawn_secret_ends_the_connection_it_opened_without_a_restart() {
    let registry = Registry::with(&[("283", "s3cret")]);
    let broker = broker_requiring_logins(registry.clone());
    let addr = broker.local_addr();
    let login = Some(("283", "s3cret"));
    let (_dpu, mut eventloop) = connack(options(addr, "283", login)).await.unwrap();
    let (_other, mut other_loop) = connack(options(
        addr,
        "roomer-x",
        Some((SERVICE_USER, SERVICE_SECRET)),
    ))
    .await
    .unwrap();

    registry.0.lock().unwrap().remove("283");
    broker.disconnect_dpu("283");
    closed_by_broker(&mut eventloop).await;
    assert_eq!(
        refused_with(connack(options(addr, "283", login)).await),
        ConnectReturnCode::NotAuthorized
    );
    // Nobody else was disconnected.
    let quiet = tokio::time::timeout(Duration::from_millis(300), other_loop.poll()).await;
    assert!(
        !matches!(quiet, Ok(Err(_))),
        "the service client stayed: {quiet:?}"
    );
    assert!(roomer_broker::meters::snapshot().revoked >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_logins_off_anyone_publishes_crossings_but_counts_stay_roomers() {
    let access = Access {
        mode: AuthMode::Off,
        service_secret: Some(SERVICE_SECRET.into()),
        dpu_secrets: None,
    };
    let broker = EmbeddedBroker::start_with(BrokerConfig::on(free_addr()), access).unwrap();
    let addr = broker.local_addr();
    let mut anyone = start(options(addr, "sim-283", None));
    anyone
        .publish_acked("dpus/283/crossings", false, b"open".to_vec())
        .await;

    let (client, mut eventloop) = connack(options(addr, "forger", None)).await.unwrap();
    client
        .publish("spaces/1/count", QoS::AtLeastOnce, true, "999")
        .await
        .unwrap();
    closed_by_broker(&mut eventloop).await;
    assert_eq!(
        refused_with(connack(options(addr, "roomer-ingest", None)).await),
        ConnectReturnCode::NotAuthorized,
        "a component's client id"
    );
}
