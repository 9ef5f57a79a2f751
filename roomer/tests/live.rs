//! Live counts: a dashboard connected to the Server-Sent Events stream gets the current
//! counts first, then a crossing published over MQTT as soon as it is committed.

mod common;

use common::{app_with_example_building, publish_arrival, publish_raw, App};
use serde_json::Value;
use std::time::Duration;

/// An SSE client: events as (name, JSON data), read as they arrive.
struct Events {
    response: reqwest::Response,
    buffer: String,
}

impl Events {
    async fn open(app: &App, path: &str) -> Self {
        let response = reqwest::get(format!("{}{path}", app.http)).await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        Self {
            response,
            buffer: String::new(),
        }
    }

    /// The next event other than a keep-alive comment, within ten seconds.
    async fn next(&mut self) -> (String, Value) {
        tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                if let Some(end) = self.buffer.find("\n\n") {
                    let block: String = self.buffer.drain(..end + 2).collect();
                    let field = |name: &str| {
                        block
                            .lines()
                            .find_map(|l| l.strip_prefix(name))
                            .map(|v| v.trim().to_owned())
                    };
                    if let (Some(event), Some(data)) = (field("event:"), field("data:")) {
                        return (event, serde_json::from_str(&data).unwrap());
                    }
                    continue;
                }
                let chunk = self.response.chunk().await.unwrap().expect("stream open");
                self.buffer.push_str(&String::from_utf8_lossy(&chunk));
            }
        })
        .await
        .expect("an event within 10 s")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_published_crossing_reaches_a_connected_dashboard() {
    let app = app_with_example_building().await;
    // Space A holds 10 people: its events carry the utilization.
    let store = roomer_storage::connect(&app.database_url).await.unwrap();
    let mut space_a = store.spaces(&roomer_storage::Page::all()).await.unwrap()[1]
        .space
        .clone();
    space_a.capacity = Some(10);
    store.put_space(&space_a).await.unwrap();

    let mut room = Events::open(&app, "/api/v1/spaces/1/live").await;
    let (event, first) = room.next().await;
    assert_eq!(
        (
            event.as_str(),
            &first["space_id"],
            &first["count"],
            &first["utilization"]
        ),
        ("count", &1.into(), &0.into(), &0.0.into())
    );
    let mut everything = Events::open(&app, "/api/v1/live").await;
    let mut current = Vec::new();
    for _ in 0..3 {
        current.push(everything.next().await.1["space_id"].as_i64().unwrap());
    }
    assert_eq!(current, [0, 1, 2], "every space's current count first");

    // DPU 283 sees someone walk in from Outside into Space A.
    publish_arrival(&app, "2018-02-26T16:06:02.903Z").await;
    let (event, change) = room.next().await;
    assert_eq!(event, "count");
    assert_eq!(
        (
            &change["space_id"],
            &change["count"],
            &change["utilization"]
        ),
        (&1.into(), &1.into(), &0.1.into())
    );
    // The all-spaces stream sees both sides of the doorway change.
    let mut changed = Vec::new();
    for _ in 0..2 {
        let (_, c) = everything.next().await;
        changed.push((
            c["space_id"].as_i64().unwrap(),
            c["count"].as_i64().unwrap(),
        ));
    }
    changed.sort();
    assert_eq!(changed, [(0, -1), (1, 1)]);

    // An operator finds Doorway X mounted the wrong way round and corrects the layout: the
    // arrival was a departure. No crossing arrives, yet the dashboard sees the correction.
    let mut doorway = store.doorways(&roomer_storage::Page::all()).await.unwrap()[0].clone();
    (doorway.exiting_to, doorway.entering_to) = (doorway.entering_to, doorway.exiting_to);
    store.put_doorway(&doorway).await.unwrap();
    let (_, corrected) = room.next().await;
    assert_eq!(
        (&corrected["space_id"], &corrected["count"]),
        (&1.into(), &0.into())
    );

    assert_eq!(
        reqwest::get(format!("{}/api/v1/spaces/42/live", app.http))
            .await
            .unwrap()
            .status(),
        404
    );
    // A server stops promptly even with dashboards still connected.
    app.stop().await;
    drop((room, everything));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_scrapes_metrics_and_checks_readiness() {
    let app = app_with_example_building().await;
    publish_arrival(&app, "2018-02-26T16:06:02.903Z").await;
    publish_raw(&app, "dpus/283/crossings", b"not json").await;
    app.wait_for_crossings(1).await;

    let ready = app.get("/readyz").await;
    assert_eq!(ready, serde_json::json!({"database": "ok", "broker": "ok"}));
    // The worker's counters follow its commit by a moment.
    let metrics = roomer_storage::testing::eventually(
        "the batch in the metrics",
        Duration::from_secs(10),
        || async {
            let body = reqwest::get(format!("{}/metrics", app.http))
                .await
                .ok()?
                .text()
                .await
                .ok()?;
            (body.contains("roomer_crossings_applied_total")
                && body.contains("roomer_rejected_total"))
            .then_some(body)
        },
    )
    .await;
    for expected in [
        "roomer_batch_seconds_bucket",
        "roomer_ingest_lag_seconds_count",
        "roomer_http_request_seconds_bucket{method=\"GET\",route=\"/api/v1/totals\",status=\"200\"",
        "roomer_broker_connections ",
        "roomer_broker_lost_messages 0",
        "roomer_ingest_connected 1",
        "roomer_rejected_total{reason=\"not_json\"} 1",
    ] {
        assert!(
            metrics.contains(expected),
            "{expected} missing from:\n{metrics}"
        );
    }
    app.stop().await;
}
