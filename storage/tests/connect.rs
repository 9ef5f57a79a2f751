//! What the database URL selects, and the properties of each backend's schema that
//! operators and later migrations rely on.

mod reference_building;

use roomer_storage::StoreError;
use sqlx::{Connection, Row};

/// A fresh database on the `TEST_DATABASE_URL` server.
async fn fresh_postgres_url() -> String {
    let admin = roomer_storage::testing::postgres_url().expect("TEST_DATABASE_URL");
    roomer_storage::testing::fresh_postgres_database(&admin)
        .await
        .expect("TEST_DATABASE_URL is set but PostgreSQL cannot be reached")
}

/// A store on a fresh database, with the database's URL.
async fn fresh_postgres_store() -> (std::sync::Arc<dyn roomer_storage::Store>, String) {
    let url = fresh_postgres_url().await;
    let store = roomer_storage::connect(&url).await.unwrap();
    (store, url)
}

#[tokio::test]
async fn a_url_of_another_kind_is_refused_with_the_kinds_that_work() {
    for url in ["mysql://localhost/roomer", "roomer.db", ""] {
        match roomer_storage::connect(url).await {
            Err(e @ StoreError::UnsupportedUrl(_)) => {
                assert!(
                    e.to_string().contains("sqlite://PATH or postgres://"),
                    "{e}"
                );
            }
            Err(other) => panic!("{url}: {other}"),
            Ok(_) => panic!("{url} was accepted"),
        }
    }
}

#[tokio::test]
async fn sqlite_is_created_if_missing_and_runs_in_wal_mode() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new.db");
    let url = format!("sqlite://{}", path.display());
    let store = roomer_storage::connect(&url).await.unwrap();
    assert!(path.exists());
    assert_eq!(store.totals().await.unwrap().crossings, 0);
    // WAL lets the API read while the worker writes, and is a property of the file.
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(mode, "wal");
}

/// The time-series tables, each with its time column.
const TIME_SERIES: [(&str, &str); 3] = [
    ("crossings", "ts"),
    ("space_counts", "ts"),
    ("rejected", "received_at"),
];

#[tokio::test]
#[cfg_attr(
    not(roomer_postgres_tests),
    ignore = "set TEST_DATABASE_URL to run against PostgreSQL"
)]
async fn postgres_time_series_keys_include_their_time_column() {
    let url = fresh_postgres_url().await;
    // `postgresql://` is the same as `postgres://`.
    let long_form = url.replacen("postgres://", "postgresql://", 1);
    roomer_storage::connect(&long_form).await.unwrap();

    // What TimescaleDB needs to make a hypertable: every unique index (primary keys
    // included) contains the partitioning column.
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    for (table, time) in TIME_SERIES {
        let indexes = sqlx::query(
            "SELECT i.indexrelid::regclass::text, \
                    array_agg(a.attname::text ORDER BY a.attnum) \
             FROM pg_index i \
             JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) \
             WHERE i.indrelid = $1::regclass AND i.indisunique \
             GROUP BY i.indexrelid",
        )
        .bind(table)
        .fetch_all(&mut conn)
        .await
        .unwrap();
        assert!(!indexes.is_empty(), "{table} has a primary key");
        for index in indexes {
            let (name, columns): (String, Vec<String>) = (index.get(0), index.get(1));
            assert!(
                columns.iter().any(|c| c == time),
                "unique index {name} on {table} lacks {time}: {columns:?}"
            );
        }
    }
}

/// A store's pooled connections are ended by the server (a restart, a failover, an
/// operator's `pg_terminate_backend`), right after use or while idle: the next reads are
/// answered, not refused. A connection idle for a while is checked before use; one used
/// within the last second is not, so a read that meets it ended is tried again, with every
/// connection checked from then on. Five rounds, since which connection a read meets first
/// varies.
#[tokio::test]
#[cfg_attr(
    not(roomer_postgres_tests),
    ignore = "set TEST_DATABASE_URL to run against PostgreSQL"
)]
async fn connections_ended_by_the_server_are_replaced_unseen() {
    let (store, url) = fresh_postgres_store().await;
    reference_building::apply(store.as_ref()).await;
    let at = Some("2018-02-26T16:06:02Z".parse().unwrap());
    let mut operator = sqlx::PgConnection::connect(&url).await.unwrap();
    let every_space = roomer_storage::Page::all();
    for round in 0..5 {
        // Several counts at once fill the pool with connections.
        let (a, b, c) = tokio::join!(
            store.count_at(1, at),
            store.count_at(2, at),
            store.count_at(0, at)
        );
        assert_eq!(
            (a.unwrap(), b.unwrap(), c.unwrap()),
            (Some(0), Some(0), Some(0))
        );
        let ended: i64 = sqlx::query_scalar(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
        )
        .fetch_one(&mut operator)
        .await
        .unwrap();
        assert!(
            ended >= 2,
            "round {round}: the store's connections were ended ({ended})"
        );
        let (count, totals, spaces, token) = tokio::join!(
            store.count_at(1, at),
            store.totals(),
            store.spaces(&every_space),
            store.token_role("no such hash"),
        );
        assert_eq!(count.expect("count after the connections ended"), Some(0));
        assert_eq!(
            totals
                .expect("totals after the connections ended")
                .crossings,
            0
        );
        assert_eq!(spaces.expect("spaces after the connections ended").len(), 3);
        assert_eq!(
            token.expect("a token check after the connections ended"),
            None
        );
    }
}

#[tokio::test]
#[cfg_attr(
    not(roomer_postgres_tests),
    ignore = "set TEST_DATABASE_URL to run against PostgreSQL"
)]
async fn a_batch_that_fails_anywhere_stores_nothing() {
    use roomer_occupancy::{Crossing, Direction, DpuId};
    let (store, _) = fresh_postgres_store().await;
    reference_building::apply(store.as_ref()).await;
    let crossings = [Crossing::new(
        DpuId::new("283").unwrap(),
        "2018-02-26T16:06:02Z".parse().unwrap(),
        Direction::In,
        None,
    )];
    // A refused message received before PostgreSQL's first representable instant (4713 BC)
    // is written after the crossings and their entries, and fails.
    let impossible = [roomer_storage::Rejected {
        received_at: chrono::DateTime::<chrono::Utc>::MIN_UTC,
        source: "dpus/283/crossings".into(),
        dpu_id: Some("283".into()),
        reason: "not_json".into(),
        detail: "not JSON".into(),
        payload: b"{".to_vec(),
    }];
    let batch = roomer_storage::Batch {
        rejected: &impossible,
        ..roomer_storage::Batch::of(&crossings)
    };
    assert!(store.apply_batch(&batch).await.is_err());
    let totals = store.totals().await.unwrap();
    assert_eq!(
        (totals.crossings, totals.rejected),
        (0, 0),
        "all or nothing"
    );
    assert_eq!(store.count_at(1, None).await.unwrap(), Some(0));
    // The same crossings alone go in.
    store
        .apply_batch(&roomer_storage::Batch::of(&crossings))
        .await
        .unwrap();
    assert_eq!(store.count_at(1, None).await.unwrap(), Some(1));
}

#[tokio::test]
#[cfg_attr(
    not(roomer_postgres_tests),
    ignore = "set TEST_DATABASE_URL to run against PostgreSQL"
)]
async fn a_refusal_with_nul_characters_is_kept() {
    let (store, _) = fresh_postgres_store().await;
    // PostgreSQL text cannot hold U+0000; a message carrying one must still be kept.
    let refused = roomer_storage::Rejected {
        received_at: chrono::Utc::now(),
        source: "dpus/283/crossings".into(),
        dpu_id: Some("283".into()),
        reason: "bad_timestamp".into(),
        detail: "ts \"\0\" is not an RFC 3339 timestamp".into(),
        payload: b"{\"ts\": \"\0\"}".to_vec(),
    };
    store.reject(std::slice::from_ref(&refused)).await.unwrap();
    let kept = store
        .rejected(&roomer_storage::RejectedFilter::newest(1))
        .await
        .unwrap();
    assert_eq!(
        kept[0].detail,
        "ts \"\u{fffd}\" is not an RFC 3339 timestamp"
    );
    assert_eq!(
        kept[0].payload, refused.payload,
        "the payload keeps its bytes"
    );
}
