//! The backends measured, each as a store (or the in-memory ledger) to load and ask.

use super::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Backend {
    Ledger,
    Sqlite,
    Postgres,
    Timescale,
}

impl Backend {
    pub(crate) fn all() -> Vec<Backend> {
        let mut all = vec![Backend::Ledger, Backend::Sqlite];
        if postgres_url().is_some() {
            all.push(Backend::Postgres);
        }
        if timescale_url().is_some() {
            all.push(Backend::Timescale);
        }
        // `ROOMER_BENCH_BACKENDS=postgres,timescale` runs only those.
        if let Ok(only) = std::env::var("ROOMER_BENCH_BACKENDS") {
            all.retain(|b| only.split(',').any(|name| name.trim() == b.name()));
        }
        all
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Backend::Ledger => "ledger",
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
            Backend::Timescale => "timescale",
        }
    }
}

/// One fresh store under test and what keeps it alive.
pub(crate) enum Subject {
    Ledger(Box<Ledger>),
    Sqlite {
        store: Arc<dyn Store>,
        _dir: tempfile::TempDir,
    },
    Postgres {
        store: Arc<dyn Store>,
        admin_url: String,
        database: String,
    },
}

impl Subject {
    pub(crate) async fn open(backend: Backend) -> Self {
        match backend {
            Backend::Ledger => Subject::Ledger(Box::default()),
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("a temporary directory");
                let url = format!("sqlite://{}", dir.path().join("bench.db").display());
                let store = roomer_storage::connect(&url).await.expect("open SQLite");
                Subject::Sqlite { store, _dir: dir }
            }
            Backend::Postgres | Backend::Timescale => {
                let admin_url = if backend == Backend::Postgres {
                    postgres_url()
                } else {
                    timescale_url()
                }
                .expect("the backend's URL is set");
                let url = fresh_postgres_database(&admin_url)
                    .await
                    .expect("the backend's URL is set but its server cannot be reached");
                let database = database_name(&url);
                let store = roomer_storage::connect(&url)
                    .await
                    .expect("open PostgreSQL");
                assert_eq!(
                    store.timescale().await.expect("status").is_some(),
                    backend == Backend::Timescale,
                    "TEST_TIMESCALE_URL is TimescaleDB and TEST_DATABASE_URL plain PostgreSQL"
                );
                Subject::Postgres {
                    store,
                    admin_url,
                    database,
                }
            }
        }
    }

    pub(crate) async fn apply_layout(&mut self, layout: &Layout) {
        match self {
            Subject::Ledger(ledger) => ledger.apply_layout(layout),
            Subject::Sqlite { store, .. } | Subject::Postgres { store, .. } => {
                store.apply_layout(layout).await.expect("apply layout");
            }
        }
    }

    pub(crate) async fn ingest(&mut self, batch: &[Crossing]) {
        let inserted = match self {
            Subject::Ledger(ledger) => ledger.ingest(batch).inserted,
            Subject::Sqlite { store, .. } | Subject::Postgres { store, .. } => {
                store.ingest(batch).await.expect("ingest").report.inserted
            }
        };
        assert_eq!(inserted, batch.len(), "every crossing is new");
    }

    pub(crate) async fn catch_up(&self) {
        if let Subject::Sqlite { store, .. } | Subject::Postgres { store, .. } = self {
            store.catch_up().await.expect("summarize noted minutes");
        }
    }

    pub(crate) async fn count_at(&self, space: SpaceId, at: Timestamp) -> i64 {
        match self {
            Subject::Ledger(ledger) => ledger.count_at(space, at),
            Subject::Sqlite { store, .. } | Subject::Postgres { store, .. } => store
                .count_at(space, Some(at))
                .await
                .expect("count_at")
                .expect("the space exists"),
        }
    }

    pub(crate) async fn counts_now(&self, spaces: &[SpaceId]) -> Vec<i64> {
        let mut counts = Vec::new();
        for &space in spaces {
            counts.push(match self {
                Subject::Ledger(ledger) => ledger.current(space),
                Subject::Sqlite { store, .. } | Subject::Postgres { store, .. } => store
                    .count_at(space, None)
                    .await
                    .expect("count_at")
                    .expect("the space exists"),
            });
        }
        counts
    }

    /// Drops the store; a PostgreSQL database is dropped too.
    pub(crate) async fn close(self) {
        if let Subject::Postgres {
            store,
            admin_url,
            database,
        } = self
        {
            drop(store);
            let mut admin = sqlx::PgConnection::connect(&admin_url)
                .await
                .expect("connect to TEST_DATABASE_URL");
            sqlx::query(&format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)"))
                .execute(&mut admin)
                .await
                .expect("drop the bench database");
            let _ = admin.close().await;
        }
    }
}

/// The database name of a `postgres://…/name?params` URL.
pub(crate) fn database_name(url: &str) -> String {
    let base = url.split('?').next().unwrap_or(url);
    base.rsplit('/').next().unwrap_or_default().to_owned()
}
