//! The worker against a real broker over TCP and a real SQLite file.

mod common;

use common::{publish, spawn_worker, wait_for_totals};
use roomer_occupancy::OUTSIDE;
use roomer_storage::testing::eventually;
use roomer_storage::RejectedFilter;
use std::time::Duration;

#[tokio::test]
async fn crossings_published_over_mqtt_are_counted_once() {
    let worker = spawn_worker().await;
    publish(
        worker.broker.local_addr(),
        &[
            (
                "dpus/283/crossings",
                r#"{"ts": "2018-02-26T16:06:02.903Z", "direction": 1}"#,
            ),
            // A retransmission and a bulk upload that repeats it.
            (
                "dpus/283/crossings",
                r#"{"ts": "2018-02-26T16:06:02.903Z", "direction": 1}"#,
            ),
            (
                "dpus/283/crossings",
                r#"[{"ts": "2018-02-26T16:06:02.903Z", "direction": 1},
                    {"ts": "2018-02-26T16:08:02.170Z", "direction": 1},
                    {"ts": "2018-02-26T16:09:00Z", "direction": "-1"}]"#,
            ),
        ],
    )
    .await;
    wait_for_totals(&worker.store, 3, 0).await;
    assert_eq!(worker.store.count_at(1, None).await.unwrap(), Some(1));
    assert_eq!(
        worker.store.count_at(OUTSIDE, None).await.unwrap(),
        Some(-1)
    );
    // The worker counts a batch once it has also recorded what else it held (statuses, last
    // seen): a moment after the crossings are visible in storage.
    let counted = || {
        let stats = worker.stats.snapshot();
        (stats.messages, stats.crossings_new, stats.duplicates)
    };
    eventually("the worker's counters", Duration::from_secs(10), || async {
        (counted() == (3, 3, 2)).then_some(())
    })
    .await;
    worker.stop().await;
}

#[tokio::test]
async fn bad_messages_are_kept_with_their_reason_and_do_not_stop_the_worker() {
    let worker = spawn_worker().await;
    publish(
        worker.broker.local_addr(),
        &[
            ("dpus/283/crossings", "not json at all"),
            (
                "dpus/283/crossings",
                r#"{"ts": "2018-02-26T16:06:02Z", "direction": 0}"#,
            ),
            (
                "dpus/283/crossings",
                r#"{"ts": "2999-01-01T00:00:00Z", "direction": 1}"#,
            ),
            (
                "dpus/283/crossings",
                r#"[{"ts": "2018-02-26T16:07:00Z", "direction": 1}, {"direction": 1}]"#,
            ),
            // From a DPU nobody has installed yet: stored, pending, not rejected.
            (
                "dpus/999/crossings",
                r#"{"ts": "2018-02-26T16:08:00Z", "direction": 1}"#,
            ),
        ],
    )
    .await;
    wait_for_totals(&worker.store, 2, 4).await;
    let reasons: Vec<String> = worker
        .store
        .rejected(&RejectedFilter::newest(10))
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.reason)
        .collect();
    let mut sorted = reasons.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        [
            "bad_direction",
            "future_timestamp",
            "missing_field",
            "not_json"
        ]
    );
    let not_json = worker
        .store
        .rejected(&RejectedFilter::newest(10))
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.reason == "not_json")
        .unwrap();
    assert_eq!(not_json.payload, b"not json at all");
    assert_eq!(not_json.source, "dpus/283/crossings");
    assert_eq!(worker.store.totals().await.unwrap().pending, 1);
    assert_eq!(worker.store.count_at(1, None).await.unwrap(), Some(1));
    worker.stop().await;
}

#[tokio::test]
async fn a_clean_stop_applies_everything_the_broker_already_accepted() {
    let worker = spawn_worker().await;
    let payloads: Vec<String> = (0..300)
        .map(|i| {
            format!(
                r#"{{"ts": "2018-02-26T16:{:02}:{:02}Z", "direction": 1}}"#,
                i / 60,
                i % 60
            )
        })
        .collect();
    let messages: Vec<(&str, &str)> = payloads
        .iter()
        .map(|p| ("dpus/283/crossings", p.as_str()))
        .collect();
    publish(worker.broker.local_addr(), &messages).await;
    // Stop at once: the worker has not necessarily seen, let alone stored, all of them.
    let store = worker.store.clone();
    let _dir = worker.stop().await;
    assert_eq!(store.totals().await.unwrap().crossings, 300);
    assert_eq!(store.count_at(1, None).await.unwrap(), Some(300));
}

#[tokio::test]
async fn status_messages_and_last_seen_are_recorded() {
    let worker = spawn_worker().await;
    publish(
        worker.broker.local_addr(),
        &[
            ("dpus/283/status", "online"),
            (
                "dpus/283/crossings",
                r#"{"ts": "2018-02-26T16:06:02Z", "direction": 1}"#,
            ),
            ("dpus/500/status", "offline"),
            ("dpus/283/status", "sleepy"),
        ],
    )
    .await;
    wait_for_totals(&worker.store, 1, 1).await;
    let long_ago = "2000-01-01T00:00:00Z".parse().unwrap();
    let dpus = eventually("statuses to be recorded", Duration::from_secs(10), || {
        let store = worker.store.clone();
        async move {
            let dpus = store
                .dpus(
                    None,
                    &roomer_storage::Page::all(),
                    chrono::Utc::now(),
                    long_ago,
                )
                .await
                .unwrap();
            (dpus.iter().filter(|d| d.online.is_some()).count() == 2).then_some(dpus)
        }
    })
    .await;
    let d283 = dpus.iter().find(|d| d.id == "283").unwrap();
    assert_eq!((d283.online, d283.events_today), (Some(true), 1));
    assert!(d283.last_seen.is_some());
    let d500 = dpus.iter().find(|d| d.id == "500").unwrap();
    assert_eq!((d500.online, d500.declared), (Some(false), false));
    let rejected = worker
        .store
        .rejected(&RejectedFilter::newest(10))
        .await
        .unwrap();
    assert_eq!(rejected[0].reason, "bad_status");
    let _dir = worker.stop().await;
}

#[tokio::test]
async fn batches_are_cut_by_size_and_by_waiting_time() {
    let worker = common::spawn_worker_with(|config| {
        config.batch_size = 10;
        config.batch_wait = Duration::from_secs(2);
        // Only size and time cut batches here.
        config.batch_quiet = Duration::from_secs(2);
    })
    .await;
    publish_entrances(worker.broker.local_addr(), 25).await;
    // Two full batches, then the last five once the first of them has waited long enough:
    // without the time limit they would wait for a tenth message for ever.
    wait_for_totals(&worker.store, 25, 0).await;
    // The worker counts a batch (then its crossings) just after its commit, which the
    // totals may see first.
    let stats = eventually(
        "the last batch to be counted",
        Duration::from_secs(5),
        || {
            let stats = worker.stats.snapshot();
            async move { (stats.crossings_new == 25).then_some(stats) }
        },
    )
    .await;
    assert_eq!(stats.messages, 25);
    assert_eq!(stats.batches, 3, "10 + 10 + 5");
    let _dir = worker.stop().await;
}

/// A stream that pauses ends the batch at once rather than at `batch_wait`: with a broker
/// whose in-flight window (rumqttd: 100) is below the batch size, the rest of the stream waits
/// for this batch's acknowledgements, so waiting would only add latency.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pause_in_the_stream_ends_the_batch() {
    let worker = common::spawn_worker_with(|config| {
        config.batch_size = 500;
        config.batch_wait = Duration::from_secs(30);
        config.batch_quiet = Duration::from_millis(20);
    })
    .await;
    let started = std::time::Instant::now();
    publish_entrances(worker.broker.local_addr(), 5).await;
    wait_for_totals(&worker.store, 5, 0).await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "stored long before the 30 s batch wait: {:?}",
        started.elapsed()
    );
    let _dir = worker.stop().await;
}

/// DPU 283 publishes `n` entrances, a second apart, one per message.
async fn publish_entrances(broker: std::net::SocketAddr, n: usize) {
    let payloads: Vec<String> = (0..n)
        .map(|s| format!(r#"{{"ts": "2018-02-26T16:06:{s:02}Z", "direction": 1}}"#))
        .collect();
    let messages: Vec<(&str, &str)> = payloads
        .iter()
        .map(|p| ("dpus/283/crossings", p.as_str()))
        .collect();
    publish(broker, &messages).await;
}
