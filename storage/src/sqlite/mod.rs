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

use crate::cadence::{self, Background, Cadence, SummarizeNoted};
use crate::engine;
use crate::{
    Batch, DpuInfo, IngestOutcome, LayoutReport, Missing, Page, Rejected, RejectedFilter, Role,
    Series, SpaceCount, Store, StoreError, StoreOptions, TokenInfo, TokenSelector, Totals,
};
use async_trait::async_trait;
use chrono::DateTime;
use occupancy::{Doorway, DoorwayId, DpuId, Installation, Layout, Space, SpaceId, Timestamp};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::Row;
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

    async fn begin(&self) -> Result<SqliteTx, StoreError> {
        let tx = self.begin_write().await?;
        Ok(SqliteTx::new(tx, self.recycle_writer.clone()))
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
impl Store for SqliteStore {
    async fn apply_layout(&self, layout: &Layout) -> Result<LayoutReport, StoreError> {
        let mut tx = self.begin().await?;
        let report = engine::apply_layout(&mut tx, layout).await?;
        tx.commit().await?;
        Ok(report)
    }

    async fn set_installations(
        &self,
        dpu: &DpuId,
        history: &[Installation],
    ) -> Result<LayoutReport, StoreError> {
        let mut tx = self.begin().await?;
        let report = engine::set_installations(&mut tx, dpu, history).await?;
        tx.commit().await?;
        Ok(report)
    }

    async fn apply_batch(&self, batch: &Batch<'_>) -> Result<IngestOutcome, StoreError> {
        let due = self.cadence.due();
        let mut tx = self.begin().await?;
        match crate::batch::apply(&mut tx, batch, chrono::Utc::now(), due).await? {
            Some(outcome) => {
                tx.commit().await?;
                if due {
                    self.cadence.ran();
                }
                Ok(outcome)
            }
            // Impossible with a single writer connection.
            None => Err(StoreError::Corrupt(
                "a concurrent writer stored crossings of this batch".into(),
            )),
        }
    }

    async fn reject(&self, rejected: &[Rejected]) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        ops_sql::insert_rejected(&mut tx, rejected).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn count_at(
        &self,
        space: SpaceId,
        at: Option<Timestamp>,
    ) -> Result<Option<i64>, StoreError> {
        crate::tiers::count_of(&tiers_sql::Reader(&self.readers), space, at).await
    }

    async fn series(
        &self,
        space: SpaceId,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Option<Series>, StoreError> {
        crate::tiers::series_of(&tiers_sql::Reader(&self.readers), space, from, to).await
    }

    async fn buckets(
        &self,
        space: SpaceId,
        bounds: &[(Timestamp, Timestamp)],
    ) -> Result<Option<Vec<occupancy::history::Bucket>>, StoreError> {
        crate::tiers::buckets_of(&tiers_sql::Reader(&self.readers), space, bounds).await
    }

    async fn spaces(&self, page: &Page<SpaceId>) -> Result<Vec<SpaceCount>, StoreError> {
        layout_sql::spaces_page(&self.readers, page).await
    }

    async fn catch_up(&self) -> Result<(), StoreError> {
        SummarizeNoted::summarize_noted(self).await.map(|_| ())
    }

    async fn counts_now(&self, spaces: &[SpaceId]) -> Result<Vec<(SpaceId, i64)>, StoreError> {
        let all = layout_sql::all_spaces(&mut *self.readers.acquire().await?).await?;
        crate::tiers::counts_now_of(&tiers_sql::Reader(&self.readers), &all, spaces).await
    }

    async fn space(&self, id: SpaceId) -> Result<Option<SpaceCount>, StoreError> {
        crate::tiers::space_of(&tiers_sql::Reader(&self.readers), id).await
    }

    async fn space_chain(&self, id: SpaceId) -> Result<Vec<Space>, StoreError> {
        layout_sql::space_chain(&mut *self.readers.acquire().await?, id).await
    }

    async fn doorways(&self, page: &Page<DoorwayId>) -> Result<Vec<Doorway>, StoreError> {
        layout_sql::doorways_page(&self.readers, page).await
    }

    async fn put_space(&self, space: &Space) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        let changed = engine::put_space(&mut tx, space).await?;
        tx.commit().await?;
        Ok(changed)
    }

    async fn delete_space(&self, id: SpaceId) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        engine::delete_space(&mut tx, id).await?;
        tx.commit().await
    }

    async fn put_doorway(&self, doorway: &Doorway) -> Result<LayoutReport, StoreError> {
        let mut tx = self.begin().await?;
        let report = engine::put_doorway(&mut tx, doorway).await?;
        tx.commit().await?;
        Ok(report)
    }

    async fn delete_doorway(&self, id: DoorwayId) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        engine::delete_doorway(&mut tx, id).await?;
        tx.commit().await
    }

    async fn create_token(&self, hash: &str, role: Role, name: &str) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO api_tokens (hash, role, name, created_at) VALUES (?, ?, ?, ?)")
            .bind(hash)
            .bind(role.as_str())
            .bind(name)
            .bind(micros(chrono::Utc::now()))
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn token_role(&self, hash: &str) -> Result<Option<Role>, StoreError> {
        let role: Option<String> = sqlx::query_scalar("SELECT role FROM api_tokens WHERE hash = ?")
            .bind(hash)
            .fetch_optional(&self.readers)
            .await?;
        Ok(role.as_deref().and_then(Role::parse))
    }

    async fn tokens(&self) -> Result<Vec<TokenInfo>, StoreError> {
        let rows = sqlx::query(
            "SELECT substr(hash, 1, 8), name, role, created_at FROM api_tokens \
             ORDER BY created_at, hash",
        )
        .fetch_all(&self.readers)
        .await?;
        rows.iter()
            .map(|r| {
                let role: String = r.get(2);
                Ok(TokenInfo {
                    id: r.get(0),
                    name: r.get(1),
                    role: Role::parse(&role)
                        .ok_or_else(|| StoreError::Corrupt(format!("token role {role:?}")))?,
                    created_at: from_micros(r.get(3))?,
                })
            })
            .collect()
    }

    async fn revoke_tokens(&self, selector: &TokenSelector) -> Result<u64, StoreError> {
        let query = match selector {
            TokenSelector::Id(prefix)
                if prefix.len() >= 8 && prefix.bytes().all(|b| b.is_ascii_hexdigit()) =>
            {
                sqlx::query("DELETE FROM api_tokens WHERE hash LIKE ?1 || '%'")
                    .bind(prefix.to_ascii_lowercase())
            }
            TokenSelector::Id(prefix) => return Err(Missing::TokenId(prefix.clone()).into()),
            TokenSelector::Name(name) => {
                sqlx::query("DELETE FROM api_tokens WHERE name = ?").bind(name.clone())
            }
        };
        Ok(query.execute(&self.writer).await?.rows_affected())
    }

    async fn installations(&self, dpu: &DpuId) -> Result<Vec<Installation>, StoreError> {
        layout_sql::installations(&self.readers, dpu).await
    }

    async fn delete_dpu(&self, dpu: &DpuId) -> Result<LayoutReport, StoreError> {
        let mut tx = self.begin().await?;
        let report = engine::delete_dpu(&mut tx, dpu).await?;
        tx.commit().await?;
        Ok(report)
    }

    async fn dpu_known(&self, dpu: &DpuId) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT 1 FROM dpus WHERE id = ?")
            .bind(dpu.as_str())
            .fetch_optional(&self.readers)
            .await?;
        Ok(row.is_some())
    }

    async fn rejected(&self, filter: &RejectedFilter) -> Result<Vec<Rejected>, StoreError> {
        let rows = sqlx::query(
            "SELECT received_at, source, dpu_id, reason, detail, payload FROM rejected \
             WHERE (?1 IS NULL OR dpu_id = ?1) AND (?2 IS NULL OR reason = ?2) \
             ORDER BY received_at DESC, id DESC LIMIT ?3",
        )
        .bind(&filter.dpu_id)
        .bind(&filter.reason)
        .bind(filter.limit)
        .fetch_all(&self.readers)
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(Rejected {
                    received_at: from_micros(r.get(0))?,
                    source: r.get(1),
                    dpu_id: r.get(2),
                    reason: r.get(3),
                    detail: r.get(4),
                    payload: r.get(5),
                })
            })
            .collect()
    }

    async fn totals(&self) -> Result<Totals, StoreError> {
        let row = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM crossings), \
                    (SELECT COUNT(*) FROM crossings WHERE doorway_id IS NULL), \
                    (SELECT COUNT(*) FROM rejected)",
        )
        .fetch_one(&self.readers)
        .await?;
        Ok(Totals {
            crossings: row.get(0),
            pending: row.get(1),
            rejected: row.get(2),
        })
    }

    async fn record_status(
        &self,
        dpu: &DpuId,
        online: bool,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        ops_sql::record_statuses(&mut tx, &[(dpu.clone(), online, at)]).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn record_seen(&self, seen: &[(DpuId, Timestamp)]) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        ops_sql::record_seen(&mut tx, seen).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn dpus(
        &self,
        only: Option<&DpuId>,
        page: &Page<String>,
        now: Timestamp,
        day_start: Timestamp,
    ) -> Result<Vec<DpuInfo>, StoreError> {
        let rows = sqlx::query(
            "WITH ids AS (SELECT id AS dpu_id FROM dpus UNION SELECT dpu_id FROM dpu_status) \
             SELECT i.dpu_id, EXISTS (SELECT 1 FROM dpus d WHERE d.id = i.dpu_id), \
                    s.online, s.status_at, s.last_seen, \
                    (SELECT n.doorway_id FROM installations n WHERE n.dpu_id = i.dpu_id \
                        AND n.valid_from <= ?1 AND (n.valid_until IS NULL OR n.valid_until > ?1)), \
                    (SELECT COUNT(*) FROM crossings c \
                        WHERE c.dpu_id = i.dpu_id AND c.received_at >= ?2) \
             FROM ids i LEFT JOIN dpu_status s ON s.dpu_id = i.dpu_id \
             WHERE (?3 IS NULL OR i.dpu_id = ?3) AND (?4 IS NULL OR i.dpu_id > ?4) \
             ORDER BY i.dpu_id LIMIT ?5",
        )
        .bind(micros(now))
        .bind(micros(day_start))
        .bind(only.map(DpuId::as_str))
        .bind(page.after.as_deref())
        .bind(i64::try_from(page.limit).unwrap_or(i64::MAX))
        .fetch_all(&self.readers)
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(DpuInfo {
                    id: r.get(0),
                    declared: r.get(1),
                    online: r.get(2),
                    status_at: r.get::<Option<i64>, _>(3).map(from_micros).transpose()?,
                    last_seen: r.get::<Option<i64>, _>(4).map(from_micros).transpose()?,
                    doorway: r.get(5),
                    events_today: r.get(6),
                })
            })
            .collect()
    }
}
