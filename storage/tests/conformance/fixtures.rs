//! A fresh, empty store per test.

use roomer_storage::testing::{fresh_postgres_database, fresh_timescale_database, postgres_url};
use roomer_storage::{Store, StoreOptions};
use std::sync::Arc;
use std::time::Duration;

pub struct Fixture {
    pub store: Arc<dyn Store>,
    _dir: Option<tempfile::TempDir>,
}

/// Options under which every batch summarizes its own minutes, so that its report says
/// what the summarizer read for it (the cost test compares that with the in-memory model).
pub const EAGER: StoreOptions = StoreOptions {
    summarize_every: Duration::ZERO,
};

pub async fn memory() -> Fixture {
    memory_with(StoreOptions::default())
}

pub async fn memory_eager() -> Fixture {
    memory_with(EAGER)
}

/// Summarizing at most every millisecond: some batches note their seconds, the next one due
/// summarizes them with its own.
pub async fn memory_often() -> Fixture {
    memory_with(StoreOptions {
        summarize_every: Duration::from_millis(1),
    })
}

/// A fresh in-memory store: the same engine, tables as ordered maps.
pub fn memory_with(options: StoreOptions) -> Fixture {
    Fixture {
        store: Arc::new(roomer_storage::MemoryStore::new(options)),
        _dir: None,
    }
}

pub async fn sqlite() -> Fixture {
    sqlite_with(StoreOptions::default()).await.0
}

pub async fn sqlite_eager() -> Fixture {
    sqlite_with(EAGER).await.0
}

/// A fresh SQLite store and its database's URL.
pub async fn sqlite_with(options: StoreOptions) -> (Fixture, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("roomer.db").display());
    let store = roomer_storage::connect_with(&url, options)
        .await
        .expect("open SQLite");
    let fixture = Fixture {
        store,
        _dir: Some(dir),
    };
    (fixture, url)
}

pub async fn postgres() -> Fixture {
    postgres_with(StoreOptions::default()).await.0
}

pub async fn postgres_eager() -> Fixture {
    postgres_with(EAGER).await.0
}

/// A fresh PostgreSQL store and its database's URL.
pub async fn postgres_with(options: StoreOptions) -> (Fixture, String) {
    let admin = postgres_url().expect("TEST_DATABASE_URL must be set for PostgreSQL tests");
    let url = fresh_postgres_database(&admin)
        .await
        .expect("TEST_DATABASE_URL is set but PostgreSQL cannot be reached");
    let store = roomer_storage::connect_with(&url, options)
        .await
        .expect("open PostgreSQL");
    (Fixture { store, _dir: None }, url)
}

pub async fn timescale() -> Fixture {
    timescale_with(StoreOptions::default()).await.0
}

pub async fn timescale_eager() -> Fixture {
    timescale_with(EAGER).await.0
}

/// A fresh database on the TimescaleDB server; fails unless it really uses TimescaleDB.
pub async fn timescale_with(options: StoreOptions) -> (Fixture, String) {
    let url = fresh_timescale_database().await;
    let store = roomer_storage::connect_with(&url, options)
        .await
        .expect("open TimescaleDB");
    let status = store.timescale().await.expect("read TimescaleDB status");
    assert!(
        status.is_some(),
        "TEST_TIMESCALE_URL names a server without TimescaleDB preloaded"
    );
    (Fixture { store, _dir: None }, url)
}
