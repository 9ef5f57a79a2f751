//! A database written under the earlier rule 3 (an event id named one crossing: reuses were
//! refused or un-counted, and two ids on one crossing counted once), opened by this version:
//! everything the old rule set aside counts, the counts are corrected, the leftovers go, and
//! a second start changes nothing. On SQLite, PostgreSQL and TimescaleDB with its chunks
//! compressed (TEST_DATABASE_URL and TEST_TIMESCALE_URL; unset, those tests fail).

use chrono::TimeDelta;
use roomer_occupancy::{Timestamp, OUTSIDE};
use roomer_storage::testing::timescale_url;
use roomer_storage::testing::{compress_all_chunks, fresh_postgres_database, postgres_url};
use roomer_storage::{RejectedFilter, Store};
use std::borrow::Cow;

const ROOM: i64 = 1;

fn t(minute: i64) -> Timestamp {
    "2024-01-01T08:00:00Z".parse::<Timestamp>().unwrap() + TimeDelta::minutes(minute)
}

/// Migrations up to `last` (the earlier rule: SQLite's 0005, PostgreSQL's 0006), not beyond.
fn before_copies(mut migrator: sqlx::migrate::Migrator, last: i64) -> sqlx::migrate::Migrator {
    let kept: Vec<_> = migrator
        .migrations
        .iter()
        .filter(|m| m.version <= last)
        .cloned()
        .collect();
    migrator.migrations = Cow::Owned(kept);
    migrator
}

/// A new SQLite file migrated up to `last`, as an earlier version left it.
async fn old_sqlite(url: &str, last: i64) -> sqlx::SqlitePool {
    let options = url.parse::<sqlx::sqlite::SqliteConnectOptions>().unwrap();
    let pool = sqlx::SqlitePool::connect_with(options.create_if_missing(true))
        .await
        .unwrap();
    before_copies(sqlx::migrate!("../migrations/sqlite"), last)
        .run(&pool)
        .await
        .unwrap();
    pool
}

/// One room behind DPU 283 (Outside → room), and what the old rule stored and set aside:
/// crossings at minutes 1 (ids 1 and 5), 2 (id 2) and 3 (no id), their series entries;
/// an exit at minute 4 refused because id 1 named minute 1; an entrance at minute 9 that
/// lost id 2 to minute 2; and a malformed message, which must stay.
fn old_state(micros: impl Fn(i64) -> String) -> Vec<String> {
    let at = |minute| micros(minute);
    let json_ts = |minute: i64| t(minute).to_rfc3339();
    vec![
        "INSERT INTO spaces (id, name) VALUES (1, 'Room')".into(),
        "INSERT INTO doorways (id, name, exiting_to, entering_to) VALUES (1, 'Door', 0, 1)".into(),
        "INSERT INTO dpus (id) VALUES ('283')".into(),
        format!(
            "INSERT INTO installations (dpu_id, valid_from, valid_until, doorway_id) \
             VALUES ('283', {}, NULL, 1)",
            at(0)
        ),
        format!(
            "INSERT INTO crossings (dpu_id, ts, direction, event_id, doorway_id, received_at) \
             VALUES ('283', {t1}, 1, 1, 1, {t1}), ('283', {t2}, 1, 2, 1, {t2}), \
                    ('283', {t3}, 1, NULL, 1, {t3})",
            t1 = at(1),
            t2 = at(2),
            t3 = at(3)
        ),
        format!(
            "INSERT INTO event_ids (dpu_id, event_id, ts, direction) \
             VALUES ('283', 1, {t1}, 1), ('283', 2, {t2}, 1), ('283', 5, {t1}, 1)",
            t1 = at(1),
            t2 = at(2)
        ),
        format!(
            "INSERT INTO space_counts (space_id, ts, rank, dpu_id, count) VALUES \
             (1, {t1}, 0, '283', 1), (1, {t2}, 0, '283', 2), (1, {t3}, 0, '283', 3), \
             (0, {t1}, 1, '283', -1), (0, {t2}, 1, '283', -2), (0, {t3}, 1, '283', -3)",
            t1 = at(1),
            t2 = at(2),
            t3 = at(3)
        ),
        format!(
            "INSERT INTO rejected (received_at, source, dpu_id, reason, detail, payload) VALUES \
             ({r}, 'dpus/283/crossings', '283', 'id_conflict', 'id 1 is already used', \
              CAST('[{{\"ts\":\"{t4}\",\"direction\":-1,\"id\":1}},{{\"ts\":\"{t2}\",\"direction\":1,\"id\":2}}]' AS BLOB_TYPE)), \
             ({r}, 'dpus/283/crossings', '283', 'id_conflict', \
              'stored crossing no longer counted: id 2 is already used', \
              CAST('{{\"ts\":\"{t9}\",\"direction\":1,\"id\":2}}' AS BLOB_TYPE)), \
             ({r}, 'dpus/283/crossings', '283', 'not_json', 'payload is not JSON', \
              CAST('oops' AS BLOB_TYPE))",
            r = at(10),
            t2 = json_ts(2),
            t4 = json_ts(4),
            t9 = json_ts(9)
        ),
    ]
}

/// What the current rule counts for the old state, and that nothing else is left over.
async fn counts_follow_the_current_rule(store: &dyn Store) {
    let count = |minute| async move {
        store
            .count_at(ROOM, Some(t(minute)))
            .await
            .unwrap()
            .expect("the room exists")
    };
    assert_eq!(count(1).await, 2, "ids 1 and 5 on one instant: two people");
    assert_eq!(count(3).await, 4);
    assert_eq!(count(4).await, 3, "the exit refused under id 1 counts");
    assert_eq!(count(9).await, 4, "the entrance that lost id 2 counts");
    let outside = store.count_at(OUTSIDE, None).await.unwrap();
    assert_eq!(outside, Some(-4));
    let totals = store.totals().await.unwrap();
    assert_eq!((totals.crossings, totals.rejected), (6, 1));
    let reasons: Vec<String> = store
        .rejected(&RejectedFilter::newest(10))
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.reason)
        .collect();
    assert_eq!(reasons, ["not_json"]);
}

#[tokio::test]
async fn sqlite_data_of_the_earlier_rule_is_counted_by_the_current_one() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("old.db").display());
    {
        let pool = old_sqlite(&url, 5).await;
        let micros = |minute| t(minute).timestamp_micros().to_string();
        for statement in old_state(micros) {
            let statement = statement.replace("BLOB_TYPE", "BLOB");
            sqlx::query(&statement).execute(&pool).await.unwrap();
        }
        pool.close().await;
    }
    let store = roomer_storage::connect(&url).await.unwrap();
    counts_follow_the_current_rule(store.as_ref()).await;
    drop(store);
    let again = roomer_storage::connect(&url).await.unwrap();
    counts_follow_the_current_rule(again.as_ref()).await;
}

/// Writes the old state into a fresh database on `admin`'s server; `compress` compresses
/// every chunk first (TimescaleDB).
async fn old_postgres(admin: &str, compress: bool) -> String {
    let url = fresh_postgres_database(admin).await.unwrap();
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    before_copies(sqlx::migrate!("../migrations/postgres"), 6)
        .run(&pool)
        .await
        .unwrap();
    let micros = |minute| format!("TIMESTAMPTZ '{}'", t(minute).to_rfc3339());
    for statement in old_state(micros) {
        let statement = statement.replace("BLOB_TYPE", "BYTEA");
        sqlx::query(&statement).execute(&pool).await.unwrap();
    }
    pool.close().await;
    if compress {
        compress_all_chunks(&url).await.unwrap();
    }
    url
}

#[tokio::test]
#[cfg_attr(
    not(roomer_postgres_tests),
    ignore = "set TEST_DATABASE_URL to run against PostgreSQL"
)]
async fn postgres_data_of_the_earlier_rule_is_counted_by_the_current_one() {
    let admin = postgres_url().expect("TEST_DATABASE_URL must be set for PostgreSQL tests");
    let url = old_postgres(&admin, false).await;
    let store = roomer_storage::connect(&url).await.unwrap();
    counts_follow_the_current_rule(store.as_ref()).await;
    let again = roomer_storage::connect(&url).await.unwrap();
    counts_follow_the_current_rule(again.as_ref()).await;
}

#[tokio::test]
#[cfg_attr(
    not(roomer_timescale_tests),
    ignore = "set TEST_TIMESCALE_URL to run against TimescaleDB"
)]
async fn timescale_data_of_the_earlier_rule_is_counted_by_the_current_one() {
    let admin = timescale_url().expect("TEST_TIMESCALE_URL must be set for TimescaleDB tests");
    let url = old_postgres(&admin, true).await;
    {
        // An operator's own compression age, which the upgrade must keep.
        let pool = sqlx::PgPool::connect(&url).await.unwrap();
        for table in ["crossings", "space_counts"] {
            sqlx::query(&format!(
                "SELECT remove_compression_policy('{table}', if_exists => true), \
                        add_compression_policy('{table}', INTERVAL '3 days')"
            ))
            .execute(&pool)
            .await
            .unwrap();
        }
        pool.close().await;
    }
    let store = roomer_storage::connect(&url).await.unwrap();
    counts_follow_the_current_rule(store.as_ref()).await;
    let status = store
        .timescale()
        .await
        .unwrap()
        .expect("TimescaleDB in use");
    assert_eq!(
        status.compress_after,
        Some(std::time::Duration::from_secs(3 * 86_400))
    );
    compress_all_chunks(&url).await.unwrap();
    let again = roomer_storage::connect(&url).await.unwrap();
    counts_follow_the_current_rule(again.as_ref()).await;
}

/// Notes for the summarizer left by the version that kept a row per batch and minute (SQLite
/// 0010): the migration to one row per minute merges a minute noted twice into a note of the
/// whole minute, and the store summarizes them at start as before.
#[tokio::test]
async fn sqlite_notes_of_the_earlier_version_are_merged_and_summarized() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("notes.db").display());
    let micros = |minute: i64| t(minute).timestamp_micros();
    {
        let pool = old_sqlite(&url, 10).await;
        let mut statements = vec![
            "INSERT INTO spaces (id, name) VALUES (1, 'Room')".to_owned(),
            "INSERT INTO doorways (id, name, exiting_to, entering_to) VALUES (1, 'Door', 0, 1)"
                .to_owned(),
            "INSERT INTO dpus (id) VALUES ('283')".to_owned(),
            format!(
                "INSERT INTO installations (dpu_id, valid_from, valid_until, doorway_id) \
                 VALUES ('283', {}, NULL, 1)",
                micros(0)
            ),
        ];
        // Three entrances in minute 1, at seconds 0, 5 and 7, stored with their entries;
        // no summaries yet, and the minute noted by two batches, once per second changed.
        for second in [0, 5, 7] {
            let at = micros(1) + second * 1_000_000;
            statements.push(format!(
                "INSERT INTO crossings (dpu_id, ts, direction, doorway_id, received_at) \
                 VALUES ('283', {at}, 1, 1, {at})"
            ));
            statements.push(format!(
                "INSERT INTO space_counts (space_id, ts, rank, dpu_id) \
                 VALUES (1, {at}, 0, '283'), (0, {at}, 1, '283')"
            ));
        }
        for (space, bits) in [(1, 1 | 1 << 5), (1, 1 << 7), (0, 1 | 1 << 5 | 1 << 7)] {
            statements.push(format!(
                "INSERT INTO tier_pending (space_id, minute, seconds) \
                 VALUES ({space}, {}, {bits})",
                micros(1)
            ));
        }
        for statement in statements {
            sqlx::query(&statement).execute(&pool).await.unwrap();
        }
        pool.close().await;
    }
    let store = roomer_storage::connect(&url).await.unwrap();
    store.catch_up().await.unwrap();
    let count = |minute| {
        let store = store.clone();
        async move { store.count_at(ROOM, Some(t(minute))).await.unwrap() }
    };
    assert_eq!(count(0).await, Some(0));
    assert_eq!(count(2).await, Some(3));
    assert_eq!(store.count_at(OUTSIDE, None).await.unwrap(), Some(-3));
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let (left,): (i64,) = sqlx::query_as("SELECT count(*) FROM tier_pending")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(left, 0, "every note summarized");
}
