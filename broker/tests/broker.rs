//! Stories about the embedded broker, told by real MQTT clients over TCP.

mod common;

use common::{broker, connect, free_addr, Seen, PATIENCE};
use roomer_broker::{Access, BrokerConfig, BrokerError, EmbeddedBroker};
use rumqttc::Event::Incoming;
use rumqttc::{
    AsyncClient, ConnectReturnCode, ConnectionError, LastWill, MqttOptions, Packet, QoS,
};
use std::collections::BTreeSet;
use std::net::TcpListener;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_qos1_publish_reaches_a_subscriber() {
    let broker = broker();
    let mut counter = connect(broker.local_addr(), "counter", None);
    counter.subscribe("dpus/+/crossings").await;

    let mut dpu = connect(broker.local_addr(), "dpu-283", None);
    dpu.publish_acked(
        "dpus/283/crossings",
        false,
        br#"{"ts":"2018-02-24T08:45:21.893Z","direction":1}"#.to_vec(),
    )
    .await;

    let got = counter
        .next_publish()
        .await
        .expect("the crossing is delivered");
    assert_eq!(got.topic, "dpus/283/crossings");
    assert_eq!(got.qos, QoS::AtLeastOnce);
    assert!(got.payload.starts_with(br#"{"ts":"2018-02-24"#));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retained_message_reaches_a_subscriber_that_comes_later() {
    let broker = broker();
    let mut dpu = connect(broker.local_addr(), "dpu-423", None);
    dpu.publish_acked("dpus/423/status", true, b"online".to_vec())
        .await;

    let mut latecomer = connect(broker.local_addr(), "dashboard", None);
    latecomer.subscribe("dpus/+/status").await;
    let got = latecomer
        .next_publish()
        .await
        .expect("the retained status is replayed");
    assert_eq!(got.topic, "dpus/423/status");
    assert_eq!(&got.payload[..], b"online");
    assert!(
        got.retain,
        "a replayed retained message carries the retain flag"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_vanishes_without_disconnect_leaves_its_retained_last_will() {
    let broker = broker();
    let will = LastWill::new("dpus/283/status", "offline", QoS::AtLeastOnce, true);
    let mut dpu = connect(broker.local_addr(), "dpu-283", Some(will));
    dpu.wait_for(|s| matches!(s, Seen::ConnAck).then_some(()))
        .await
        .expect("the DPU connects");

    dpu.kill();

    // Poll with fresh subscribers until the will has been published (it fires right after the
    // broker notices the reset), and check that it was retained.
    let deadline = Instant::now() + PATIENCE;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut latecomer = connect(broker.local_addr(), &format!("dashboard-{attempt}"), None);
        latecomer.subscribe("dpus/+/status").await;
        let got = latecomer
            .wait_for(|s| match s {
                Seen::Publish(p) => Some(p),
                _ => None,
            })
            .await;
        if let Some(got) = got {
            assert_eq!(got.topic, "dpus/283/status");
            assert_eq!(&got.payload[..], b"offline");
            // A will that fires just after this subscription arrives live, without the retain
            // flag; then the next latecomer must get it replayed, with the flag.
            if got.retain {
                return;
            }
        }
        assert!(Instant::now() < deadline, "no retained last will appeared");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_subscription_gives_each_message_to_one_member_of_the_group() {
    let broker = broker();
    let mut worker_a = connect(broker.local_addr(), "ingest-a", None);
    let mut worker_b = connect(broker.local_addr(), "ingest-b", None);
    worker_a.subscribe("$share/ingest/dpus/+/crossings").await;
    worker_b.subscribe("$share/ingest/dpus/+/crossings").await;

    let mut dpu = connect(broker.local_addr(), "dpu-283", None);
    for n in 0..6 {
        dpu.publish_acked(
            "dpus/283/crossings",
            false,
            format!("event {n}").into_bytes(),
        )
        .await;
    }

    let mut a = Vec::new();
    let mut b = Vec::new();
    let deadline = Instant::now() + PATIENCE;
    while a.len() + b.len() < 6 && Instant::now() < deadline {
        for (worker, got) in [(&mut worker_a, &mut a), (&mut worker_b, &mut b)] {
            let next =
                tokio::time::timeout(std::time::Duration::from_millis(100), worker.next_publish())
                    .await;
            if let Ok(Some(p)) = next {
                got.push(String::from_utf8(p.payload.to_vec()).unwrap());
            }
        }
    }
    let all: BTreeSet<_> = a.iter().chain(&b).cloned().collect();
    assert_eq!(
        a.len() + b.len(),
        6,
        "every message delivered once: a={a:?} b={b:?}"
    );
    assert_eq!(all.len(), 6, "no message delivered twice");
    assert!(
        !a.is_empty() && !b.is_empty(),
        "both members get work: a={a:?} b={b:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_frees_the_port_for_a_new_broker() {
    let first = broker();
    let addr = first.local_addr();
    assert_ne!(addr.port(), 0, "port 0 was turned into a real port");
    first.shutdown();

    // Nothing listens any more: the port can be bound right away...
    drop(TcpListener::bind(addr).expect("the port is free after shutdown"));
    // ...and a new broker on the same port serves clients.
    let second = EmbeddedBroker::start(BrokerConfig::on(addr)).expect("restart on the same port");
    assert_eq!(second.local_addr(), addr);
    let mut counter = connect(addr, "counter", None);
    counter.subscribe("t").await;
    let mut dpu = connect(addr, "dpu", None);
    dpu.publish_acked("t", false, b"after restart".to_vec())
        .await;
    assert_eq!(
        &counter.next_publish().await.expect("delivered").payload[..],
        b"after restart"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starting_on_a_taken_port_fails_quickly() {
    let squatter = TcpListener::bind(free_addr()).unwrap();
    let taken = squatter.local_addr().unwrap();

    let started = Instant::now();
    let result = EmbeddedBroker::start(BrokerConfig::on(taken));
    assert!(
        matches!(result, Err(BrokerError::Bind { addr, .. }) if addr == taken),
        "expected a bind error, got {:?}",
        result.as_ref().map(|b| b.local_addr())
    );
    assert!(
        started.elapsed() < PATIENCE,
        "it failed without waiting for a deadline"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_200_kib_payload_goes_through() {
    let broker = broker();
    let mut counter = connect(broker.local_addr(), "counter", None);
    counter.subscribe("dpus/+/crossings").await;
    let bulk: Vec<u8> = (0..200 * 1024).map(|i| (i % 251) as u8).collect();

    let mut dpu = connect(broker.local_addr(), "dpu-283", None);
    dpu.publish_acked("dpus/283/crossings", false, bulk.clone())
        .await;

    let got = counter
        .next_publish()
        .await
        .expect("the bulk upload is delivered");
    assert_eq!(got.payload.len(), bulk.len());
    assert!(got.payload[..] == bulk[..]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payload_over_the_limit_is_refused() {
    let broker = EmbeddedBroker::start(BrokerConfig {
        max_payload_bytes: 4 * 1024,
        ..BrokerConfig::on(free_addr())
    })
    .unwrap();
    let mut counter = connect(broker.local_addr(), "counter", None);
    counter.subscribe("t").await;
    let mut dpu = connect(broker.local_addr(), "dpu", None);
    let refused_before = roomer_broker::meters::snapshot().refused_publishes;

    dpu.wait_for(|s| matches!(s, Seen::ConnAck).then_some(()))
        .await
        .expect("the DPU connects");

    dpu.client
        .publish("t", QoS::AtLeastOnce, false, vec![0u8; 8 * 1024])
        .await
        .unwrap();
    // The broker hangs up on the oversized publish, and rumqttc reconnects.
    dpu.wait_for(|s| matches!(s, Seen::ConnAck).then_some(()))
        .await
        .expect("the DPU was disconnected and reconnected");
    assert!(
        roomer_broker::meters::snapshot().refused_publishes > refused_before,
        "counted"
    );
    dpu.publish_acked("t", false, vec![1u8; 4 * 1024]).await;

    // Only the payload within the limit arrives (rumqttc resends an unacknowledged publish
    // after reconnecting only when the session resumed, and a clean session never does).
    let got = counter
        .next_publish()
        .await
        .expect("the small payload arrives");
    assert_eq!(got.payload.len(), 4 * 1024);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mqtt5_publisher_reaches_an_mqtt311_subscriber() {
    use rumqttc::v5::mqttbytes::v5::Packet as V5Packet;
    use rumqttc::v5::{mqttbytes::QoS as V5QoS, AsyncClient, Event, MqttOptions};

    let broker = EmbeddedBroker::start(BrokerConfig {
        listen_v5: Some(free_addr()),
        ..BrokerConfig::on(free_addr())
    })
    .unwrap();
    let v5_addr = broker.local_addr_v5().expect("a v5 listener");
    assert_ne!(v5_addr, broker.local_addr());
    let mut counter = connect(broker.local_addr(), "counter", None);
    counter.subscribe("dpus/+/crossings").await;

    let options = MqttOptions::new("dpu-v5", v5_addr.ip().to_string(), v5_addr.port());
    let (dpu, mut eventloop) = AsyncClient::new(options, 4);
    dpu.publish(
        "dpus/v5/crossings",
        V5QoS::AtLeastOnce,
        false,
        "hello from v5",
    )
    .await
    .unwrap();
    let acked = tokio::time::timeout(PATIENCE, async {
        loop {
            if let Event::Incoming(V5Packet::PubAck(_)) = eventloop.poll().await.expect("v5 link") {
                return;
            }
        }
    })
    .await;
    assert!(acked.is_ok(), "the v5 listener acknowledges the publish");

    let got = counter
        .next_publish()
        .await
        .expect("routed across protocols");
    assert_eq!(got.topic, "dpus/v5/crossings");
    assert_eq!(&got.payload[..], b"hello from v5");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_serves_until_its_shutdown_future_completes() {
    let addr = TcpListener::bind(free_addr())
        .unwrap()
        .local_addr()
        .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(roomer_broker::run(
        BrokerConfig::on(addr),
        Access::open(),
        async {
            let _ = stopped.await;
        },
    ));

    // Served: a client gets its publish acknowledged.
    let mut dpu = connect(addr, "dpu", None);
    dpu.publish_acked("t", false, b"x".to_vec()).await;
    assert!(!serving.is_finished());

    stop.send(()).unwrap();
    let result = tokio::time::timeout(PATIENCE, serving).await;
    assert!(
        matches!(result, Ok(Ok(Ok(())))),
        "run returns Ok: {result:?}"
    );
    drop(TcpListener::bind(addr).expect("the port is free once run returned"));
}

/// rumqttd 0.20's own listener wedges for good (bytebeamio/rumqtt#1062) once a client id its
/// router refuses (one with a `/`, `+`, `#` or `$`) connects twice: with rumqttd's `Server`
/// this recipe wedged 20 brokers out of 20 within 0.2 s each. Roomer's front end refuses such
/// an id itself, with CONNACK "identifier rejected", before the router sees it: no number of
/// attempts wedges the broker, and no restart is needed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_id_the_router_cannot_take_is_refused_and_wedges_nothing() {
    let broker = EmbeddedBroker::start(BrokerConfig {
        health_interval: Some(Duration::from_millis(100)),
        ..BrokerConfig::on(free_addr())
    })
    .unwrap();
    let addr = broker.local_addr();
    let refused_before = roomer_broker::meters::snapshot().refused;

    for id in ["dpu/283", "dpu+1", "dpu#1", "$dpu"] {
        let options = MqttOptions::new(id, addr.ip().to_string(), addr.port());
        let (_client, mut eventloop) = AsyncClient::new(options, 4);
        for attempt in 1..=5 {
            let outcome = tokio::time::timeout(PATIENCE, eventloop.poll()).await;
            assert!(
                matches!(
                    outcome,
                    Ok(Err(ConnectionError::ConnectionRefused(
                        ConnectReturnCode::BadClientId
                    )))
                ),
                "CONNECT {attempt} as {id}: expected CONNACK 'identifier rejected', got {outcome:?}"
            );
        }
    }
    assert!(roomer_broker::meters::snapshot().refused >= refused_before + 20);

    // Still served, by the same broker: a QoS 1 publish goes through.
    let mut counter = connect(addr, "counter", None);
    counter.subscribe("dpus/+/crossings").await;
    let mut dpu = connect(addr, "dpu-283", None);
    dpu.publish_acked("dpus/283/crossings", false, b"after the attempts".to_vec())
        .await;
    let got = counter.next_publish().await.expect("delivered");
    assert_eq!(&got.payload[..], b"after the attempts");
    assert_eq!(got.qos, QoS::AtLeastOnce);
    assert_eq!(broker.restarts(), 0, "nothing to heal");

    // The supervisor does not keep a shutdown waiting, and the port is freed.
    let started = Instant::now();
    broker.shutdown();
    assert!(
        started.elapsed() < PATIENCE,
        "shutdown took {:?}",
        started.elapsed()
    );
    drop(TcpListener::bind(addr).expect("the port is free after shutdown"));
}

/// Acknowledging after store: with `ack_after_store_by`, a DPU's QoS 1 message gets its
/// PUBACK only when an ingest worker (a client whose id has that prefix) has acknowledged it,
/// which a worker does after committing. Another QoS 1 reader's PUBACK (an operator watching
/// the topics) does not count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_ack_after_store_a_dpu_hears_puback_only_once_the_worker_acknowledged() {
    let broker = EmbeddedBroker::start(BrokerConfig {
        ack_after_store_by: Some("ingest".into()),
        ..BrokerConfig::on(free_addr())
    })
    .unwrap();
    let addr = broker.local_addr();
    let (worker, mut worker_events) = manual_acks_client(addr, "ingest-1");
    worker
        .subscribe("dpus/+/crossings", QoS::AtLeastOnce)
        .await
        .unwrap();
    let mut watcher = connect(addr, "operator", None);
    watcher.subscribe("dpus/+/crossings").await;
    wait_for(&mut worker_events, |e| {
        matches!(e, Incoming(Packet::SubAck(_)))
    })
    .await;
    let mut dpu = connect(addr, "dpu-283", None);
    dpu.publish_qos1("dpus/283/crossings", false, b"c1".to_vec())
        .await;

    // The worker and the operator both get it; the operator acknowledges at once.
    let delivered = wait_for(&mut worker_events, |e| {
        matches!(e, Incoming(Packet::Publish(_)))
    })
    .await;
    let Incoming(Packet::Publish(publish)) = delivered else {
        unreachable!()
    };
    assert!(watcher.next_publish().await.is_some());
    let early = dpu
        .wait_for_within(Duration::from_millis(300), |s| {
            matches!(s, Seen::PubAck).then_some(())
        })
        .await;
    assert!(early.is_none(), "no PUBACK before the worker stored it");

    worker.ack(&publish).await.unwrap();
    assert!(
        dpu.wait_for(|s| matches!(s, Seen::PubAck).then_some(()))
            .await
            .is_some(),
        "the PUBACK follows the worker's"
    );
    broker.shutdown();
}

/// A message that is never stored (no worker is there to take it) is not acknowledged, and
/// after `store_timeout` its DPU is disconnected, so that it sends the message again on a
/// new connection rather than wait for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_ack_after_store_a_dpu_waiting_too_long_is_sent_to_try_again() {
    let broker = EmbeddedBroker::start(BrokerConfig {
        ack_after_store_by: Some("ingest".into()),
        store_timeout: Duration::from_millis(300),
        ..BrokerConfig::on(free_addr())
    })
    .unwrap();
    let mut dpu = connect(broker.local_addr(), "dpu-283", None);
    assert!(dpu
        .wait_for(|s| matches!(s, Seen::ConnAck).then_some(()))
        .await
        .is_some());
    dpu.publish_qos1("dpus/283/crossings", false, b"c1".to_vec())
        .await;
    let again = dpu
        .wait_for(|s| match s {
            Seen::PubAck => Some(false),
            Seen::ConnAck => Some(true),
            _ => None,
        })
        .await;
    assert_eq!(again, Some(true), "reconnected, never acknowledged");
    broker.shutdown();
}

/// A client that acknowledges only when told to, and its events.
fn manual_acks_client(
    addr: std::net::SocketAddr,
    id: &str,
) -> (
    AsyncClient,
    tokio::sync::mpsc::UnboundedReceiver<rumqttc::Event>,
) {
    let mut options = MqttOptions::new(id, addr.ip().to_string(), addr.port());
    options.set_manual_acks(true).set_clean_session(false);
    let (client, mut eventloop) = AsyncClient::new(options, 16);
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok(event) = eventloop.poll().await {
            if tx.send(event).is_err() {
                return;
            }
        }
    });
    (client, rx)
}

async fn wait_for(
    events: &mut tokio::sync::mpsc::UnboundedReceiver<rumqttc::Event>,
    pick: impl Fn(&rumqttc::Event) -> bool,
) -> rumqttc::Event {
    loop {
        let event = tokio::time::timeout(PATIENCE, events.recv())
            .await
            .expect("in time")
            .expect("client running");
        if pick(&event) {
            return event;
        }
    }
}
