//! No message can halt the stream: a message that storage refuses (here a trigger in the
//! real SQLite database refuses crossings of DPU "poison", as a constraint or a bug in
//! storage would) is tried a few times, then set aside in the rejected list with its raw
//! payload and the error, and acknowledged; the messages around it, and every later one, are
//! stored.

mod common;

use common::{publish, spawn_worker, wait_for_totals};
use roomer_storage::RejectedFilter;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_storage_refuses_is_set_aside_and_the_stream_goes_on() {
    let worker = spawn_worker().await;
    let database = sqlx::SqlitePool::connect(&worker.database_url)
        .await
        .unwrap();
    sqlx::query(
        "CREATE TRIGGER poison BEFORE INSERT ON crossings WHEN NEW.dpu_id = 'poison' \
         BEGIN SELECT RAISE(ABORT, 'this crossing poisons the batch'); END",
    )
    .execute(&database)
    .await
    .unwrap();

    let poison = r#"{"ts": "2018-02-26T16:06:01Z", "direction": 1}"#;
    publish(
        worker.broker.local_addr(),
        &[
            (
                "dpus/283/crossings",
                r#"{"ts": "2018-02-26T16:06:00Z", "direction": 1}"#,
            ),
            ("dpus/poison/crossings", poison),
            (
                "dpus/283/crossings",
                r#"{"ts": "2018-02-26T16:06:02Z", "direction": 1}"#,
            ),
        ],
    )
    .await;
    wait_for_totals(&worker.store, 2, 1).await;
    let rejected = worker
        .store
        .rejected(&RejectedFilter::newest(10))
        .await
        .unwrap();
    assert_eq!(rejected.len(), 1);
    let kept = &rejected[0];
    assert_eq!(kept.reason, "unappliable");
    assert_eq!(kept.source, "dpus/poison/crossings");
    assert_eq!(kept.dpu_id.as_deref(), Some("poison"));
    assert_eq!(kept.payload, poison.as_bytes());
    assert!(
        kept.detail.contains("this crossing poisons the batch"),
        "{}",
        kept.detail
    );

    // The stream goes on.
    publish(
        worker.broker.local_addr(),
        &[(
            "dpus/283/crossings",
            r#"{"ts": "2018-02-26T16:06:03Z", "direction": 1}"#,
        )],
    )
    .await;
    wait_for_totals(&worker.store, 3, 1).await;
    let stats = worker.stats.snapshot();
    assert_eq!(stats.rejected, 1, "{stats:?}");
    database.close().await;
    let _dir = worker.stop().await;
}
