//! Count topics follow the stored counts even when no crossing arrives: a daily reset
//! empties a room at its instant, and a layout edit reaches the topic at the next
//! reconciliation. A real broker over TCP and a real SQLite file.

mod common;

use common::{publish, spawn_worker_with, wait_for_totals};
use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, QoS};
use std::net::SocketAddr;
use std::time::Duration;

/// An operator's MQTT client on `spaces/+/count`.
struct Watcher {
    _client: AsyncClient,
    eventloop: EventLoop,
}

impl Watcher {
    async fn start(broker: SocketAddr) -> Self {
        let (client, eventloop) = AsyncClient::new(
            MqttOptions::new("watcher", broker.ip().to_string(), broker.port()),
            10,
        );
        client
            .subscribe("spaces/+/count", QoS::AtLeastOnce)
            .await
            .unwrap();
        Self {
            _client: client,
            eventloop,
        }
    }

    /// Waits for an update saying `space` holds `count`; answers whether it came retained,
    /// and its payload.
    async fn until(
        &mut self,
        space: i64,
        count: i64,
        within: Duration,
    ) -> (bool, serde_json::Value) {
        tokio::time::timeout(within, async {
            loop {
                if let Event::Incoming(Packet::Publish(p)) = self.eventloop.poll().await.unwrap() {
                    let body: serde_json::Value = serde_json::from_slice(&p.payload).unwrap();
                    if body["space_id"] == space && body["count"] == count {
                        return (p.retain, body);
                    }
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("no update saying space {space} holds {count}"))
    }
}

#[tokio::test]
async fn counts_are_published_retained_after_each_commit() {
    let worker = spawn_worker_with(|_| {}).await;
    publish(
        worker.broker.local_addr(),
        &[(
            "dpus/283/crossings",
            r#"[{"ts": "2018-02-26T16:06:02Z", "direction": 1}, {"ts": "2018-02-26T16:07:02Z", "direction": 1}]"#,
        )],
    )
    .await;
    wait_for_totals(&worker.store, 2, 0).await;
    // A watcher that subscribes afterwards still gets the latest count: it is retained.
    let mut watcher = Watcher::start(worker.broker.local_addr()).await;
    let (retained, body) = watcher.until(1, 2, Duration::from_secs(10)).await;
    assert!(retained, "{body}");
    assert!(body["ts"].is_string(), "{body}");
    let _dir = worker.stop().await;
}

#[tokio::test]
async fn a_daily_reset_is_published_when_it_comes() {
    let worker = spawn_worker_with(|config| {
        config.reconcile_counts_every = Duration::from_secs(2);
    })
    .await;
    let mut watcher = Watcher::start(worker.broker.local_addr()).await;
    let now = chrono::Utc::now();
    publish(
        worker.broker.local_addr(),
        &[(
            "dpus/283/crossings",
            &format!(
                r#"{{"ts": "{}", "direction": 1}}"#,
                (now - chrono::TimeDelta::minutes(1)).to_rfc3339()
            ),
        )],
    )
    .await;
    wait_for_totals(&worker.store, 1, 0).await;
    watcher.until(1, 1, Duration::from_secs(10)).await;

    // Space A resets a few seconds from now (UTC); nothing else happens.
    let mut space_a = worker
        .store
        .spaces(&roomer_storage::Page::all())
        .await
        .unwrap()[1]
        .space
        .clone();
    assert_eq!(space_a.id, 1);
    space_a.time_zone = Some(chrono_tz::UTC);
    space_a.daily_reset = Some((now + chrono::TimeDelta::seconds(4)).time());
    worker.store.put_space(&space_a).await.unwrap();
    watcher.until(1, 0, Duration::from_secs(20)).await;
    assert_eq!(worker.store.count_at(1, None).await.unwrap(), Some(0));
    let _dir = worker.stop().await;
}

#[tokio::test]
async fn a_layout_edit_reaches_the_count_topic_without_a_crossing() {
    let worker = spawn_worker_with(|config| {
        config.reconcile_counts_every = Duration::from_millis(200);
    })
    .await;
    let mut watcher = Watcher::start(worker.broker.local_addr()).await;
    publish(
        worker.broker.local_addr(),
        &[(
            "dpus/283/crossings",
            r#"[{"ts": "2018-02-26T16:06:02Z", "direction": 1}, {"ts": "2018-02-26T16:07:02Z", "direction": 1}]"#,
        )],
    )
    .await;
    wait_for_totals(&worker.store, 2, 0).await;
    watcher.until(1, 2, Duration::from_secs(10)).await;

    // Doorway X was mounted the wrong way round: its two arrivals were departures.
    let mut doorway = worker
        .store
        .doorways(&roomer_storage::Page::all())
        .await
        .unwrap()[0]
        .clone();
    assert_eq!((doorway.exiting_to, doorway.entering_to), (0, 1));
    (doorway.exiting_to, doorway.entering_to) = (1, 0);
    worker.store.put_doorway(&doorway).await.unwrap();
    watcher.until(1, 0, Duration::from_secs(10)).await;
    let _dir = worker.stop().await;
}
