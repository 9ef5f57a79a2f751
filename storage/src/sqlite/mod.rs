//! The SQLite backend: the zero-setup default.
//!
//! One writer connection (SQLite has one writer anyway, and a single connection avoids
//! lock-upgrade failures between deferred transactions), several readers, WAL so readers
//! never wait for the writer. Timestamps are stored as microseconds since the epoch.

mod crossings_sql;
mod entries_sql;
mod layout_sql;
mod legacy_ids;
mod ops_sql;
mod tiers_sql;
mod write;

use crate::backend::Backend;
use crate::cadence::{self, Background, Cadence, SummarizeNoted};
use crate::engine;
use crate::tiers::TierRead;
use crate::{
    sql, Batch, DpuInfo, IngestOutcome, Page, Rejected, RejectedFilter, Role, StoreError,
    StoreOptions, TokenInfo, TokenSelector, Totals,
};
use async_trait::async_trait;
use chrono::DateTime;
use roomer_occupancy::{Doorway, DoorwayId, DpuId, Installation, Space, SpaceId, Timestamp};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use write::SqliteTx;

pub(crate) fn micros(ts: Timestamp) -> i64 {
    ts.timestamp_micros()
}

pub(crate) fn from_micros(us: i64) -> Result<Timestamp, StoreError> {
    DateTime::from_timestamp_micros(us)
        .ok_or_else(|| StoreError::Corrupt(format!("timestamp {us} µs is out of range")))
}

/// Roomer's data in an SQLite file.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    writer: SqlitePool,
    readers: SqlitePool,
    /// Reads of counts and history, over `readers`.
    reads: tiers_sql::Reader,
    /// The database file as opened, to notice it deleted or replaced while open.
    file: Option<OpenedFile>,
    /// Raised when a write failed: the writer connection is replaced before its next use.
    recycle_writer: Arc<AtomicBool>,
    cadence: Arc<Cadence>,
    /// The summarizer's background task (`None` in the task's own copy of the store).
    summarizer: Option<Arc<Background>>,
}

/// A file and its identity (device and inode) when it was opened.
#[derive(Clone, Debug)]
struct OpenedFile {
    path: std::path::PathBuf,
    identity: Option<(u64, u64)>,
}

impl OpenedFile {
    fn identity(path: &std::path::Path) -> Option<(u64, u64)> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt as _;
            std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
        }
        #[cfg(not(unix))]
        {
            std::fs::metadata(path).ok().map(|_| (0, 0))
        }
    }

    /// Fails when the path no longer names the file that was opened: SQLite would go on
    /// writing into the deleted (or replaced) file, and everything written would be gone at
    /// the next start.
    fn check(&self) -> Result<(), StoreError> {
        if Self::identity(&self.path) == self.identity {
            return Ok(());
        }
        tracing::error!(path = %self.path.display(), "the SQLite database file was deleted or replaced while open; refusing to write into it");
        Err(StoreError::FileGone(self.path.display().to_string()))
    }
}

impl SqliteStore {
    /// Opens (creating if missing) the file a `sqlite://PATH` URL names and migrates it.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(url, StoreOptions::default()).await
    }

    /// [`SqliteStore::connect`] with options.
    pub async fn connect_with(url: &str, options: StoreOptions) -> Result<Self, StoreError> {
        let store_options = options;
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(30));
        let recycle_writer = Arc::new(AtomicBool::new(false));
        let recycle = recycle_writer.clone();
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            // A commit that fails on a full disk or a read-only file leaves sqlx's SQLite
            // connection believing it is still in a transaction (SQLite rolled it back
            // already), and every later BEGIN fails with "non-zero transaction depth"; a
            // write refused on a read-only file leaves SQLite's connection read-only even
            // once the file is writable again. The one writer would be stuck for good: after
            // a failed write the connection is closed instead of reused, and the pool opens
            // a fresh one.
            .before_acquire(move |conn, _| {
                let failed = recycle.swap(false, Ordering::AcqRel);
                Box::pin(async move { Ok(!failed && !sqlx::Connection::is_in_transaction(conn)) })
            })
            .connect_with(options.clone())
            .await?;
        sqlx::migrate!("../migrations/sqlite").run(&writer).await?;
        let readers = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.clone().read_only(true))
            .await?;
        let file = options
            .get_filename()
            .to_str()
            .filter(|name| !name.is_empty() && *name != ":memory:")
            .map(|name| {
                let path = std::path::PathBuf::from(name);
                let identity = OpenedFile::identity(&path);
                OpenedFile { path, identity }
            });
        let mut store = Self {
            writer,
            reads: tiers_sql::Reader(readers.clone()),
            readers,
            file,
            recycle_writer,
            cadence: Cadence::new(store_options.summarize_every),
            summarizer: None,
        };
        let mut tx = store.begin().await?;
        crate::tiers::upgrade(&mut tx).await?;
        crate::upgrade::run(&mut tx).await?;
        tx.commit().await?;
        // Notes a previous run left.
        store.summarize_noted().await?;
        store.summarizer = cadence::spawn(store.clone(), store.cadence.clone());
        Ok(store)
    }

    /// A write transaction that takes SQLite's write lock up front. A deferred `BEGIN` would
    /// start as a reader and fail at once with "database is locked" (no busy wait) when
    /// another process — `roomer layout apply` beside a running server — wrote in between.
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, StoreError> {
        if let Some(file) = &self.file {
            file.check()?;
        }
        let begun = self.writer.begin_with("BEGIN IMMEDIATE").await;
        if begun.is_err() {
            self.recycle_writer.store(true, Ordering::Release);
        }
        Ok(begun?)
    }
}

#[async_trait]
impl SummarizeNoted for SqliteStore {
    async fn summarize_noted(&self) -> Result<bool, StoreError> {
        let mut any = false;
        while entries_sql::any_pending(&self.readers).await? {
            let mut tx = self.begin().await?;
            engine::summarize(&mut tx).await?;
            tx.commit().await?;
            any = true;
        }
        Ok(any)
    }
}

#[async_trait]
impl Backend for SqliteStore {
    type Tx = SqliteTx;

    async fn begin(&self) -> Result<SqliteTx, StoreError> {
        let tx = self.begin_write().await?;
        Ok(SqliteTx::new(tx, self.recycle_writer.clone()))
    }

    async fn commit(tx: SqliteTx) -> Result<(), StoreError> {
        tx.commit().await
    }

    fn reads(&self) -> &dyn TierRead {
        &self.reads
    }

    async fn store_batch(&self, batch: &Batch<'_>) -> Result<IngestOutcome, StoreError> {
        let due = self.cadence.due();
        let began = std::time::Instant::now();
        let mut tx = self.begin().await?;
        match crate::batch::apply(&mut tx, batch, chrono::Utc::now(), due).await? {
            Some(outcome) => {
                tx.commit().await?;
                if due {
                    self.cadence.ran(began);
                }
                Ok(outcome)
            }
            // Impossible with a single writer connection.
            None => Err(StoreError::Corrupt(
                "a concurrent writer stored crossings of this batch".into(),
            )),
        }
    }

    async fn insert_rejected(&self, rejected: &[Rejected]) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        ops_sql::insert_rejected(&mut tx, rejected).await?;
        Ok(tx.commit().await?)
    }

    async fn record_statuses(
        &self,
        statuses: &[(DpuId, bool, Timestamp)],
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        ops_sql::record_statuses(&mut tx, statuses).await?;
        Ok(tx.commit().await?)
    }

    async fn record_seen(&self, seen: &[(DpuId, Timestamp)]) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        ops_sql::record_seen(&mut tx, seen).await?;
        Ok(tx.commit().await?)
    }

    async fn all_spaces(&self) -> Result<Vec<Space>, StoreError> {
        layout_sql::all_spaces(&mut *self.readers.acquire().await?).await
    }

    async fn spaces_page(&self, page: &Page<SpaceId>) -> Result<Vec<Space>, StoreError> {
        layout_sql::spaces_page(&self.readers, page).await
    }

    async fn doorways_page(&self, page: &Page<DoorwayId>) -> Result<Vec<Doorway>, StoreError> {
        layout_sql::doorways_page(&self.readers, page).await
    }

    async fn installations(&self, dpu: &DpuId) -> Result<Vec<Installation>, StoreError> {
        layout_sql::installations(&self.readers, dpu).await
    }

    async fn dpu_known(&self, dpu: &DpuId) -> Result<bool, StoreError> {
        let row = sqlx::query(sql::DPU_KNOWN)
            .bind(dpu.as_str())
            .fetch_optional(&self.readers)
            .await?;
        Ok(row.is_some())
    }

    async fn rejected(&self, filter: &RejectedFilter) -> Result<Vec<Rejected>, StoreError> {
        ops_sql::rejected(&self.readers, filter).await
    }

    async fn totals(&self) -> Result<Totals, StoreError> {
        ops_sql::totals(&self.readers).await
    }

    async fn dpus(
        &self,
        only: Option<&DpuId>,
        page: &Page<String>,
        now: Timestamp,
        day_start: Timestamp,
    ) -> Result<Vec<DpuInfo>, StoreError> {
        ops_sql::dpus(&self.readers, only, page, now, day_start).await
    }

    async fn insert_token(
        &self,
        hash: &str,
        role: Role,
        name: &str,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        sqlx::query(sql::INSERT_TOKEN)
            .bind(hash)
            .bind(role.as_str())
            .bind(name)
            .bind(micros(at))
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn token_role(&self, hash: &str) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar(sql::TOKEN_ROLE)
            .bind(hash)
            .fetch_optional(&self.readers)
            .await?)
    }

    async fn tokens(&self) -> Result<Vec<TokenInfo>, StoreError> {
        ops_sql::tokens(&self.readers).await
    }

    async fn delete_tokens(&self, selector: &TokenSelector) -> Result<u64, StoreError> {
        let query = match selector {
            TokenSelector::Id(prefix) => sqlx::query(sql::DELETE_TOKENS_BY_PREFIX).bind(prefix),
            TokenSelector::Name(name) => sqlx::query(sql::DELETE_TOKENS_BY_NAME).bind(name),
        };
        Ok(query.execute(&self.writer).await?.rows_affected())
    }

    async fn put_dpu_secret(
        &self,
        dpu: &DpuId,
        hash: &str,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        ops_sql::put_dpu_secret(&self.writer, dpu, hash, at).await
    }

    async fn dpu_secret_hash(&self, dpu: &DpuId) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar(sql::DPU_SECRET_HASH)
            .bind(dpu.as_str())
            .fetch_optional(&self.readers)
            .await?)
    }

    async fn withdraw_dpu_secret(&self, dpu: &DpuId, at: Timestamp) -> Result<bool, StoreError> {
        ops_sql::withdraw_dpu_secret(&self.writer, dpu, at).await
    }

    async fn secrets_changed_since(
        &self,
        since: Timestamp,
    ) -> Result<Vec<(String, Timestamp)>, StoreError> {
        ops_sql::secrets_changed_since(&self.readers, since).await
    }

    async fn secret_hashes(&self) -> Result<Vec<(String, String)>, StoreError> {
        Ok(sqlx::query_as(sql::DPU_SECRET_HASHES)
            .fetch_all(&self.readers)
            .await?)
    }
}
