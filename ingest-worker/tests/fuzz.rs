//! No message can halt the stream, whatever it says: hundreds of generated messages (DPU ids
//! in any script, timestamps in every shape RFC 3339 allows and many it does not, leap
//! seconds, directions and ids of every JSON type, arrays, garbage) go through the real
//! broker and worker into SQLite, PostgreSQL and TimescaleDB; a last, valid crossing is still stored, the
//! worker never stopped, and every message was either stored or kept with a reason.

mod common;

use common::{publish, spawn_worker_on};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use roomer_storage::testing::{
    eventually, fresh_postgres_database, fresh_timescale_database, postgres_url,
};
use std::time::Duration;

const MESSAGES: usize = 300;

fn timestamp() -> impl Strategy<Value = String> {
    prop_oneof![
        (
            1i32..=9999,
            1u32..=12,
            1u32..=31,
            0u32..=23,
            0u32..=60,
            "[0-9]{0,10}",
            prop::sample::select(vec!["Z", "+23:59", "-23:59", "+00:00", "z", ""])
        )
            .prop_map(|(y, mo, d, h, s, digits, offset)| {
                let fraction = if digits.is_empty() {
                    String::new()
                } else {
                    format!(".{digits}")
                };
                format!("{y:04}-{mo:02}-{d:02}T{h:02}:59:{s:02}{fraction}{offset}")
            }),
        Just("2016-12-31T23:59:60Z".to_owned()),
        Just("2017-01-01T00:00:00Z".to_owned()),
        "\\PC{0,12}",
    ]
}

fn element() -> impl Strategy<Value = String> {
    let direction = prop::sample::select(vec![
        "1", "-1", "\"1\"", "\"-1\"", "0", "2", "null", "\"in\"", "1.0",
    ]);
    let id = prop::sample::select(vec![
        "",
        ", \"id\": 7",
        ", \"id\": -1",
        ", \"id\": 18446744073709551615",
        ", \"id\": \"7\"",
        ", \"id\": 1.5",
        ", \"id\": 9223372036854775807",
    ]);
    (timestamp(), direction, id).prop_map(|(ts, direction, id)| {
        format!(
            r#"{{"ts": {}, "direction": {direction}{id}}}"#,
            serde_json::json!(ts)
        )
    })
}

fn message() -> impl Strategy<Value = (String, String)> {
    let dpu = prop_oneof![
        3 => Just("283".to_owned()),
        1 => "[a-zA-Z0-9._-]{1,70}",
        1 => "[^/+#\u{0}]{1,12}",
    ];
    let kind = prop::sample::select(vec!["crossings", "crossings", "crossings", "status"]);
    let payload = prop_oneof![
        4 => element(),
        2 => prop::collection::vec(element(), 0..6).prop_map(|e| format!("[{}]", e.join(","))),
        1 => prop::sample::select(vec!["online", "offline", "", "{}", "[]", "null", "[[1]]"]).prop_map(str::to_owned),
        1 => "\\PC{0,40}",
    ];
    (dpu, kind, payload).prop_map(|(dpu, kind, payload)| (format!("dpus/{dpu}/{kind}"), payload))
}

async fn fuzz(database_url: Option<String>) {
    let worker = spawn_worker_on(database_url, |_| {}).await;
    let mut runner = TestRunner::deterministic();
    let messages: Vec<(String, String)> = (0..MESSAGES)
        .map(|_| message().new_tree(&mut runner).unwrap().current())
        .collect();
    let borrowed: Vec<(&str, &str)> = messages
        .iter()
        .map(|(t, p)| (t.as_str(), p.as_str()))
        .collect();
    for chunk in borrowed.chunks(50) {
        publish(worker.broker.local_addr(), chunk).await;
    }
    let sentinel = r#"{"ts": "2018-02-26T16:06:02.903Z", "direction": 1, "id": 424242}"#;
    publish(
        worker.broker.local_addr(),
        &[("dpus/283/crossings", sentinel)],
    )
    .await;

    eventually(
        "every message to be handled",
        Duration::from_secs(60),
        || {
            let stats = worker.stats.clone();
            async move { (stats.snapshot().messages == MESSAGES as u64 + 1).then_some(()) }
        },
    )
    .await;
    let stats = worker.stats.snapshot();
    assert!(stats.connected, "the worker is still running: {stats:?}");
    let t = "2018-02-26T16:06:02.903Z".parse().unwrap();
    eventually(
        "the last crossing to count",
        Duration::from_secs(30),
        || {
            let store = worker.store.clone();
            async move { (store.count_at(1, Some(t)).await.ok()?? >= 1).then_some(()) }
        },
    )
    .await;
    let _dir = worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_messages_never_halt_the_stream_on_sqlite() {
    fuzz(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(roomer_postgres_tests),
    ignore = "set TEST_DATABASE_URL to run against PostgreSQL"
)]
async fn generated_messages_never_halt_the_stream_on_postgres() {
    let admin = postgres_url().expect("TEST_DATABASE_URL must be set for PostgreSQL tests");
    fuzz(Some(fresh_postgres_database(&admin).await.unwrap())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(roomer_timescale_tests),
    ignore = "set TEST_TIMESCALE_URL to run against TimescaleDB"
)]
async fn generated_messages_never_halt_the_stream_on_timescaledb() {
    fuzz(Some(fresh_timescale_database().await)).await;
}
