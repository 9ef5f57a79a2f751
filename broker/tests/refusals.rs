//! A publish to a topic name no message may have (empty, a wildcard, a NUL) closes the
//! connection, unacknowledged and undelivered, logged and counted (`refused_publishes`; a
//! payload over the limit is counted the same way, see `broker.rs`).

mod common;

use common::{broker, connect, PATIENCE};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A CONNECT (MQTT 3.1.1, clean session, 60 s keep-alive), written out by hand: a client
/// library would refuse to send what follows it.
fn connect_frame(client_id: &str) -> Vec<u8> {
    let mut body = vec![0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 60];
    body.extend((client_id.len() as u16).to_be_bytes());
    body.extend(client_id.as_bytes());
    let mut frame = vec![0x10, body.len() as u8];
    frame.extend(body);
    frame
}

/// A QoS 1 PUBLISH of `payload` to `topic`, packet id 7.
fn publish_frame(topic: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut body = (topic.len() as u16).to_be_bytes().to_vec();
    body.extend(topic);
    body.extend(7u16.to_be_bytes());
    body.extend(payload);
    let mut frame = vec![0x32, body.len() as u8];
    frame.extend(body);
    frame
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_to_an_invalid_topic_name_closes_the_connection_unacknowledged() {
    let broker = broker();
    let addr = broker.local_addr();
    let mut everything = connect(addr, "everything", None);
    everything.subscribe("#").await;
    let before = roomer_broker::meters::snapshot().refused_publishes;

    let topics: [&[u8]; 4] = [
        b"dpus/+/crossings",
        b"dpus/#",
        b"",
        b"dpus/28\x003/crossings",
    ];
    for topic in topics {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(&connect_frame("raw-dpu")).await.unwrap();
        let mut connack = [0u8; 4];
        stream.read_exact(&mut connack).await.unwrap();
        assert_eq!(connack, [0x20, 2, 0, 0], "accepted");
        stream
            .write_all(&publish_frame(
                topic,
                br#"{"ts":"2024-01-01T00:00:00Z","direction":1}"#,
            ))
            .await
            .unwrap();
        let mut after = Vec::new();
        tokio::time::timeout(PATIENCE, stream.read_to_end(&mut after))
            .await
            .expect("the broker closes the connection")
            .unwrap();
        assert!(after.is_empty(), "no PUBACK for {topic:?}: {after:?}");
    }
    assert!(roomer_broker::meters::snapshot().refused_publishes >= before + 4);

    // None of them was delivered: the first message the subscriber sees is a valid one.
    let mut dpu = connect(addr, "dpu-283", None);
    dpu.publish_acked("dpus/283/crossings", false, b"valid".to_vec())
        .await;
    let got = everything.next_publish().await.expect("delivered");
    assert_eq!(&got.topic[..], "dpus/283/crossings");
}
