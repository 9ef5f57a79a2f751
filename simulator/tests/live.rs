//! Stories of a live fleet and of a fleet connecting at a rate, against a real embedded broker.

mod common;

use common::{broker, target, Received, Subscriber, PATIENCE};
use roomer_broker::{BrokerConfig, EmbeddedBroker};
use roomer_simulator::{
    fleet_events, live, replay_watched, FleetProgress, LiveOptions, MqttTarget, ReplayOptions,
};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_fleet_sends_rate_times_duration_crossings_stamped_as_they_happen() {
    let broker = broker();
    let mut ingest = Subscriber::start(&target(&broker), "ingest", "dpus/+/crossings").await;
    let fleet = LiveOptions {
        dpus: 5,
        rate: 50.0,
        duration: Duration::from_secs(1),
        seed: 4,
    };
    let options = ReplayOptions {
        batch: 2,
        ..ReplayOptions::new(target(&broker))
    };
    let progress = Arc::new(FleetProgress::default());
    let began = Instant::now();
    let before = chrono::Utc::now();
    let report = tokio::time::timeout(PATIENCE, live(&fleet, &options, progress.clone()))
        .await
        .expect("the live fleet finishes")
        .expect("the live fleet succeeds");
    let took = began.elapsed();
    let after = chrono::Utc::now();

    assert!(took >= Duration::from_millis(900), "real time: {took:?}");
    assert_eq!(report.published.events, 50);
    assert_eq!(
        report.published.messages, 25,
        "5 DPUs × 10 crossings in pairs"
    );
    assert_eq!(report.dpus, 5);
    assert_eq!(report.connected_dpus, 5);
    assert!(report.all_connected_after_s.is_some());
    let latency = report.puback_latency.expect("latencies");
    assert_eq!(latency.samples, 25);
    assert!(latency.p50_ms <= latency.p99_ms && latency.p99_ms <= latency.max_ms);
    let snapshot = progress.snapshot();
    assert_eq!(
        (snapshot.sent, snapshot.acked, snapshot.connected),
        (25, 25, 0)
    );

    let mut count = 0;
    let received = ingest
        .collect_until(|m| {
            count += m.crossings().len();
            count == 50
        })
        .await;
    let mut per_dpu: BTreeMap<String, Vec<_>> = BTreeMap::new();
    for crossing in received.iter().flat_map(Received::crossings) {
        assert!(
            before <= crossing.ts && crossing.ts <= after,
            "{crossing:?}"
        );
        per_dpu
            .entry(crossing.dpu.to_string())
            .or_default()
            .push(crossing);
    }
    assert_eq!(per_dpu.len(), 5);
    for (dpu, crossings) in per_dpu {
        let ids: Vec<u64> = crossings.iter().map(|c| c.event_id.unwrap()).collect();
        assert_eq!(ids, (1..=10).collect::<Vec<_>>(), "{dpu}");
        let gaps: Vec<i64> = crossings
            .windows(2)
            .map(|w| (w[1].ts - w[0].ts).num_milliseconds())
            .collect();
        assert!(
            gaps.iter().all(|&g| g == 100),
            "{dpu}: every 5/50 s, got {gaps:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_connect_rate_the_dpus_come_online_one_after_the_other() {
    let broker = broker();
    let start = "2024-01-01T00:00:00Z".parse().unwrap();
    let options = ReplayOptions {
        connect_rate: Some(20.0),
        ..ReplayOptions::new(target(&broker))
    };
    let report = tokio::time::timeout(
        PATIENCE,
        replay_watched(fleet_events(10, 3, start, 1), &options, Arc::default()),
    )
    .await
    .expect("the replay finishes")
    .expect("the replay succeeds");

    assert_eq!(report.published.events, 30);
    // The tenth DPU starts connecting 9/20 s after the start.
    let after = report.all_connected_after_s.expect("all connected");
    assert!(
        (0.45..2.0).contains(&after),
        "all connected after {after} s"
    );
    assert!(report.elapsed_s >= 0.45);
}

/// A fleet spread over two addresses of the broker: DPU i goes to address i mod 2, and
/// nothing goes to the target's own host. Two brokers, one on each address, tell them apart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spread_fleet_connects_to_each_address_in_turn() {
    let first = EmbeddedBroker::start(BrokerConfig::on("127.0.0.2:0".parse().unwrap()))
        .expect("a broker on 127.0.0.2");
    let port = first.local_addr().port();
    let second = EmbeddedBroker::start(BrokerConfig::on(SocketAddr::from(([127, 0, 0, 3], port))))
        .expect("a broker on 127.0.0.3, same port");
    let mut seen_first = Subscriber::start(&target(&first), "ingest", "dpus/+/crossings").await;
    let mut seen_second = Subscriber::start(&target(&second), "ingest", "dpus/+/crossings").await;
    let options = ReplayOptions {
        spread_hosts: vec!["127.0.0.2".into(), "127.0.0.3".into()],
        // Nothing listens here: a DPU sent to the target itself would never be acknowledged.
        ..ReplayOptions::new(MqttTarget::from(SocketAddr::from(([127, 0, 0, 4], port))))
    };
    let start = "2024-01-01T00:00:00Z".parse().unwrap();
    let report = tokio::time::timeout(
        PATIENCE,
        replay_watched(fleet_events(4, 3, start, 1), &options, Arc::default()),
    )
    .await
    .expect("the replay finishes")
    .expect("the replay succeeds");
    assert_eq!(report.published.events, 12);

    for (subscriber, expected) in [
        (&mut seen_first, ["sim-00001", "sim-00003"]),
        (&mut seen_second, ["sim-00002", "sim-00004"]),
    ] {
        let mut count = 0;
        let received = subscriber
            .collect_until(|_| {
                count += 1;
                count == 6
            })
            .await;
        let dpus: BTreeSet<String> = received
            .iter()
            .flat_map(Received::crossings)
            .map(|c| c.dpu.to_string())
            .collect();
        assert_eq!(dpus, BTreeSet::from(expected.map(String::from)));
    }
}
