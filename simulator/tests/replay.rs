//! Stories of simulated DPUs publishing to a real embedded broker, watched by a subscriber.

mod common;

use common::{broker, keys, reference_csv, target, Received, Subscriber, PATIENCE};
use roomer_broker::{BrokerConfig, EmbeddedBroker};
use roomer_occupancy::{Crossing, Timestamp};
use roomer_simulator::{fleet_events, read_csv, replay, ReplayOptions, ReplayReport};
use std::collections::BTreeMap;
use std::time::Duration;

fn crossings_in(messages: &[Received]) -> Vec<Crossing> {
    messages.iter().flat_map(Received::crossings).collect()
}

async fn replay_reference_file(batch: usize) -> (ReplayReport, Vec<Received>, Vec<Crossing>) {
    let broker = broker();
    let events = read_csv(&reference_csv()).unwrap();
    let mut ingest = Subscriber::start(&target(&broker), "ingest", "dpus/+/crossings").await;

    let options = ReplayOptions {
        batch,
        ..ReplayOptions::new(target(&broker))
    };
    let report = tokio::time::timeout(PATIENCE, replay(events.clone(), &options))
        .await
        .expect("the replay finishes")
        .expect("the replay succeeds");
    let mut crossings = 0;
    let received = ingest
        .collect_until(|newest| {
            crossings += newest.crossings().len();
            crossings >= events.len()
        })
        .await;
    (report, received, events)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_crossing_of_the_reference_file_reaches_the_subscriber_one_per_message() {
    let (report, received, events) = replay_reference_file(1).await;

    assert_eq!(
        report,
        ReplayReport {
            messages: 563,
            events: 563,
            resent: 0
        }
    );
    assert_eq!(received.len(), 563, "one message per crossing");
    assert!(received.iter().all(|m| m.payload.starts_with(b"{")));
    assert_eq!(keys(&crossings_in(&received)), keys(&events));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_upload_sends_the_same_crossings_in_arrays_of_fifty() {
    let (report, received, events) = replay_reference_file(50).await;

    // Per DPU, ceil(n / 50) messages.
    let mut per_dpu: BTreeMap<String, usize> = BTreeMap::new();
    for event in &events {
        *per_dpu.entry(event.dpu.to_string()).or_default() += 1;
    }
    let expected_messages: usize = per_dpu.values().map(|n| n.div_ceil(50)).sum();
    assert_eq!(report.messages, expected_messages);
    assert_eq!(report.events, 563);
    assert_eq!(received.len(), expected_messages);
    assert!(received.iter().all(|m| m.payload.starts_with(b"[")));
    assert!(received.iter().all(|m| m.crossings().len() <= 50));
    assert_eq!(keys(&crossings_in(&received)), keys(&events));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_dpu_publishes_its_own_crossings_in_order() {
    let broker = broker();
    let start: Timestamp = "2024-01-01T00:00:00Z".parse().unwrap();
    let events = fleet_events(3, 40, start, 11);
    let mut ingest = Subscriber::start(&target(&broker), "ingest", "dpus/+/crossings").await;

    replay(events.clone(), &ReplayOptions::new(target(&broker)))
        .await
        .unwrap();
    let mut count = 0;
    let received = ingest
        .collect_until(|_| {
            count += 1;
            count == 120
        })
        .await;

    for dpu in ["sim-00001", "sim-00002", "sim-00003"] {
        let topic = format!("dpus/{dpu}/crossings");
        let sent: Vec<_> = events.iter().filter(|c| c.dpu.as_str() == dpu).collect();
        let got: Vec<_> = received
            .iter()
            .filter(|m| m.topic == topic)
            .flat_map(Received::crossings)
            .collect();
        assert_eq!(got.iter().collect::<Vec<_>>(), sent, "{dpu}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dpu_is_online_while_it_replays_and_offline_once_done() {
    let broker = broker();
    let t0: Timestamp = "2024-01-01T00:00:00Z".parse().unwrap();
    let first = Crossing::new(
        roomer_occupancy::DpuId::new("283").unwrap(),
        t0,
        roomer_occupancy::Direction::In,
        None,
    );
    // A second crossing 20 s later, replayed 10× faster: the DPU stays connected ~2 s.
    let second = Crossing {
        ts: t0 + chrono::TimeDelta::seconds(20),
        ..first.clone()
    };
    let mut ingest = Subscriber::start(&target(&broker), "ingest", "dpus/+/crossings").await;
    let options = ReplayOptions {
        speed: Some(10.0),
        ..ReplayOptions::new(target(&broker))
    };
    let replaying = tokio::spawn(async move { replay(vec![first, second], &options).await });

    // The first crossing arrived, so the DPU is connected and announced itself.
    ingest.next().await.expect("the first crossing");
    let mut dashboard = Subscriber::start(&target(&broker), "dashboard", "dpus/+/status").await;
    let status = dashboard.next().await.expect("a status");
    assert_eq!(
        (status.topic.as_str(), status.text()),
        ("dpus/283/status", "online")
    );
    assert!(
        status.retain,
        "a late subscriber got it because it is retained"
    );
    assert!(!replaying.is_finished());

    let report = tokio::time::timeout(PATIENCE, replaying)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(report.messages, 2);
    let mut later = Subscriber::start(&target(&broker), "dashboard-2", "dpus/+/status").await;
    let status = later.next().await.expect("a status");
    assert_eq!((status.text(), status.retain), ("offline", true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_survives_a_broker_restart_and_resends_what_was_not_acknowledged() {
    let first_broker = broker();
    let addr = first_broker.local_addr();
    let start: Timestamp = "2024-01-01T00:00:00Z".parse().unwrap();
    let events = fleet_events(4, 5_000, start, 3);
    let last_per_dpu: Vec<Crossing> = events.chunks(5_000).map(|c| c[4_999].clone()).collect();
    let mut ingest = Subscriber::start(&target(&first_broker), "ingest", "dpus/+/crossings").await;
    let options = ReplayOptions::new(target(&first_broker));
    let replaying = tokio::spawn(async move { replay(events, &options).await });

    // Mid-stream, the broker goes away and a new one comes up on the same port.
    let mut count = 0;
    let before = ingest
        .collect_until(|_| {
            count += 1;
            count == 500
        })
        .await;
    assert_eq!(before.len(), 500);
    first_broker.shutdown();
    assert!(!replaying.is_finished(), "the restart happened mid-stream");
    let second_broker = EmbeddedBroker::start(BrokerConfig::on(addr)).expect("restart");

    let report = tokio::time::timeout(Duration::from_secs(60), replaying)
        .await
        .expect("the replay finishes after the restart")
        .unwrap()
        .expect("the replay succeeds");
    assert_eq!(report.messages, 20_000, "every message acknowledged");
    assert!(
        report.resent > 0,
        "unacknowledged messages were resent: {report:?}"
    );

    // The subscriber reconnected and subscribed again; it sees the rest, up to each DPU's
    // last crossing (what the first broker acknowledged but had not delivered is lost with it:
    // the embedded broker keeps nothing on disk).
    ingest.wait_subscribed().await;
    let mut waiting_for = last_per_dpu.clone();
    let after = ingest
        .collect_until(|newest| {
            let newest = newest.crossings();
            waiting_for.retain(|last| !newest.contains(last));
            waiting_for.is_empty()
        })
        .await;
    let seen = crossings_in(&after);
    for last in &last_per_dpu {
        assert!(seen.contains(last), "{} finished", last.dpu);
    }
    drop(second_broker);
}

/// A DPU secret checker for the story below: only DPU 283's secret is `s3cret`.
struct OneSecret;

#[async_trait::async_trait]
impl roomer_broker::DpuSecrets for OneSecret {
    async fn check(&self, dpu: &str, secret: &str) -> Result<bool, String> {
        Ok(dpu == "283" && secret == "s3cret")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dpus_log_in_with_their_own_secrets_and_a_refused_login_ends_the_replay() {
    let access = roomer_broker::Access {
        mode: roomer_broker::AuthMode::Required,
        service_secret: Some("service".into()),
        dpu_secrets: Some(std::sync::Arc::new(OneSecret)),
    };
    let broker =
        EmbeddedBroker::start_with(BrokerConfig::on("127.0.0.1:0".parse().unwrap()), access)
            .unwrap();
    let crossing = |dpu: &str| {
        Crossing::new(
            roomer_occupancy::DpuId::new(dpu).unwrap(),
            "2024-01-01T00:00:00Z".parse().unwrap(),
            roomer_occupancy::Direction::In,
            None,
        )
    };
    let mut options = ReplayOptions::new(target(&broker));
    options.dpu_secrets = std::sync::Arc::new([("283".to_owned(), "s3cret".to_owned())].into());
    let report = tokio::time::timeout(PATIENCE, replay(vec![crossing("283")], &options))
        .await
        .expect("done in time")
        .expect("DPU 283 logged in with its secret");
    assert_eq!(report.messages, 1);

    // DPU 423 has no secret: the replay ends with the reason instead of retrying for ever.
    let refused = tokio::time::timeout(PATIENCE, replay(vec![crossing("423")], &options))
        .await
        .expect("ends in time")
        .expect_err("refused");
    assert!(
        refused.to_string().contains("refused the login"),
        "{refused}"
    );
}
