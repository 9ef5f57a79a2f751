//! MQTT over TLS, told by real clients over TCP with certificates made at test time: a DPU
//! that trusts the test CA logs in and publishes over TLS; plain MQTT on the TLS port gets
//! nowhere; with client certificates required, only a client the CA signed gets through.

mod common;

use common::{free_addr, PATIENCE};
use roomer_broker::test_certs::TestPki;
use roomer_broker::{Access, BrokerConfig, EmbeddedBroker, TlsSettings};
use rumqttc::Event::Incoming;
use rumqttc::{AsyncClient, EventLoop, MqttOptions, Packet, QoS, TlsConfiguration, Transport};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

fn broker_with_tls(pki: &TestPki, client_ca: bool) -> EmbeddedBroker {
    let config = BrokerConfig {
        tls: Some(TlsSettings {
            listen: free_addr(),
            cert_chain: pki.server_cert.clone(),
            private_key: pki.server_key.clone(),
            client_ca: client_ca.then(|| pki.ca_pem.clone()),
        }),
        ..BrokerConfig::on(free_addr())
    };
    EmbeddedBroker::start_with(config, Access::open()).expect("the broker starts")
}

/// A client configuration that trusts the test CA, presenting `client` if given.
fn client_tls(pki: &TestPki, client: Option<(&Path, &Path)>) -> TlsConfiguration {
    TlsConfiguration::Rustls(Arc::new(pki.client_config(client)))
}

fn options(addr: SocketAddr, client_id: &str, tls: Option<TlsConfiguration>) -> MqttOptions {
    // The certificate names `localhost`; connecting by that name checks it.
    let mut options = MqttOptions::new(client_id, "localhost", addr.port());
    if let Some(tls) = tls {
        options.set_transport(Transport::tls_with_config(tls));
    }
    options
}

/// `Some` once the broker accepted the connection; `None` if it failed first.
async fn connected(options: MqttOptions) -> Option<(AsyncClient, EventLoop)> {
    let (client, mut eventloop) = AsyncClient::new(options, 8);
    match tokio::time::timeout(PATIENCE, eventloop.poll()).await {
        Ok(Ok(Incoming(Packet::ConnAck(_)))) => Some((client, eventloop)),
        Ok(Ok(other)) => panic!("expected a CONNACK, got {other:?}"),
        Ok(Err(_)) => None,
        Err(_) => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dpu_publishes_over_tls_to_the_same_router() {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::new(dir.path());
    let broker = broker_with_tls(&pki, false);
    let tls_addr = broker.local_addr_tls().expect("a TLS listener");
    let mut counter = common::connect(broker.local_addr(), "counter", None);
    counter.subscribe("dpus/+/crossings").await;

    let (dpu, mut eventloop) = connected(options(tls_addr, "283", Some(client_tls(&pki, None))))
        .await
        .expect("connected over TLS");
    dpu.publish("dpus/283/crossings", QoS::AtLeastOnce, false, "over tls")
        .await
        .unwrap();
    let acked = tokio::time::timeout(PATIENCE, async {
        while !matches!(eventloop.poll().await, Ok(Incoming(Packet::PubAck(_)))) {}
    });
    acked.await.expect("acknowledged");
    let got = counter.next_publish().await.expect("delivered");
    assert_eq!(&got.payload[..], b"over tls");

    // Plain MQTT on the TLS port gets no CONNACK; the failed handshake is counted.
    let failed_before = roomer_broker::meters::snapshot().tls_failed;
    assert!(connected(options(tls_addr, "plain", None)).await.is_none());
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while roomer_broker::meters::snapshot().tls_failed == failed_before {
        assert!(tokio::time::Instant::now() < deadline, "not counted");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_client_certificates_required_only_the_cas_clients_connect() {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::new(dir.path());
    let broker = broker_with_tls(&pki, true);
    let tls_addr = broker.local_addr_tls().unwrap();

    let without = options(tls_addr, "283", Some(client_tls(&pki, None)));
    assert!(connected(without).await.is_none(), "no client certificate");

    let other_dir = tempfile::tempdir().unwrap();
    let stranger = TestPki::new(other_dir.path());
    let (cert, key) = stranger.client("283");
    let foreign = options(tls_addr, "283", Some(client_tls(&pki, Some((&cert, &key)))));
    assert!(
        connected(foreign).await.is_none(),
        "a certificate another CA signed"
    );

    let (cert, key) = pki.client("283");
    let signed = options(tls_addr, "283", Some(client_tls(&pki, Some((&cert, &key)))));
    assert!(
        connected(signed).await.is_some(),
        "a certificate the CA signed"
    );
}

#[test]
fn unusable_certificate_files_stop_the_start_with_their_reason() {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::new(dir.path());
    let missing = BrokerConfig {
        tls: Some(TlsSettings {
            listen: free_addr(),
            cert_chain: dir.path().join("nowhere.pem"),
            private_key: pki.server_key.clone(),
            client_ca: None,
        }),
        ..BrokerConfig::on(free_addr())
    };
    let error = EmbeddedBroker::start(missing).err().expect("refused");
    assert!(error.to_string().contains("nowhere.pem"), "{error}");
    let swapped = BrokerConfig {
        tls: Some(TlsSettings {
            listen: free_addr(),
            cert_chain: pki.server_key.clone(),
            private_key: pki.server_cert.clone(),
            client_ca: None,
        }),
        ..BrokerConfig::on(free_addr())
    };
    let error = EmbeddedBroker::start(swapped).err().expect("refused");
    assert!(error.to_string().starts_with("TLS: "), "{error}");
}
