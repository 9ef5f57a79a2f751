//! A fresh, empty store per test.

use roomer_storage::testing::{fresh_postgres_database, fresh_timescale_database, postgres_url};
use roomer_storage::Store;
use std::sync::Arc;

pub struct Fixture {
    pub store: Arc<dyn Store>,
    _dir: Option<tempfile::TempDir>,
}

pub async fn sqlite() -> Fixture {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("roomer.db").display());
    let store = roomer_storage::connect(&url).await.expect("open SQLite");
    Fixture {
        store,
        _dir: Some(dir),
    }
}

pub async fn postgres() -> Fixture {
    postgres_with_url().await.0
}

/// A fresh PostgreSQL store and its database's URL.
pub async fn postgres_with_url() -> (Fixture, String) {
    let admin = postgres_url().expect("TEST_DATABASE_URL must be set for PostgreSQL tests");
    let url = fresh_postgres_database(&admin)
        .await
        .expect("TEST_DATABASE_URL is set but PostgreSQL cannot be reached");
    let store = roomer_storage::connect(&url)
        .await
        .expect("open PostgreSQL");
    (Fixture { store, _dir: None }, url)
}

/// A fresh database on the TimescaleDB server; fails unless it really uses TimescaleDB.
pub async fn timescale() -> Fixture {
    let url = fresh_timescale_database().await;
    let store = roomer_storage::connect(&url)
        .await
        .expect("open TimescaleDB");
    let status = store.timescale().await.expect("read TimescaleDB status");
    assert!(
        status.is_some(),
        "TEST_TIMESCALE_URL names a server without TimescaleDB preloaded"
    );
    Fixture { store, _dir: None }
}
