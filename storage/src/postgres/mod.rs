//! The PostgreSQL backend (and the base for TimescaleDB).
//!
//! Several ingest workers may write at once: each batch takes a shared advisory lock on the
//! layout (a layout change takes it exclusively) and no lock of the spaces it touches. The
//! summaries are brought up to date by whichever writer holds the summarizer's advisory
//! lock, taken without waiting; a batch that finds it taken notes its minutes for that
//! writer (`crate::tiers`). A
//! batch that races another writer for the same crossing is rolled back and retried.

mod crossings_sql;
mod entries_sql;
mod layout_sql;
mod legacy_ids;
mod liveness;
mod ops_sql;
mod tiers_sql;
mod timescale;
mod write;

use crate::backend::Backend;
use crate::cadence::{self, Background, Cadence, SummarizeNoted};
use crate::engine;
use crate::tiers::TierRead;
use crate::{
    sql, Batch, DpuInfo, IngestOutcome, Page, Rejected, RejectedFilter, Role, StoreError,
    StoreOptions, TimescaleSettings, TimescaleStatus, TokenInfo, TokenSelector, Totals,
};
use async_trait::async_trait;
use roomer_occupancy::{Doorway, DoorwayId, DpuId, Installation, Space, SpaceId, Timestamp};
use sqlx::postgres::{PgPool, PgPoolOptions};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use write::PgTx;
#[cfg(feature = "testing")]
pub(crate) use write::LOCK_SUMMARIES;

/// How often a batch is retried after losing a race with another writer.
const MAX_ATTEMPTS: usize = 5;
/// A batch of at least `2 × MIN_PART` crossings is stored in up to this many parts at once,
/// each on a connection of its own: a statement runs on one server process, and a batch in
/// one transaction left the server's other cores idle while it ran (the bulk column of
/// `docs/benchmarks.md`).
const WRITE_PARTS: usize = 2;
const MIN_PART: usize = 500;

/// Roomer's data in a PostgreSQL database.
#[derive(Clone, Debug)]
pub struct PostgresStore {
    pool: PgPool,
    /// Reads of counts and history, over `pool`.
    reads: tiers_sql::Reader,
    /// The TimescaleDB version, when the database uses it.
    timescale: Option<String>,
    /// The raw retention as last read, and when (re-read after a minute).
    retention: RetentionCache,
    cadence: Arc<Cadence>,
    /// The summarizer's background task (`None` in the task's own copy of the store).
    summarizer: Option<Arc<Background>>,
    /// When pooled connections are checked before use.
    liveness: liveness::Liveness,
}

type RetentionCache = Arc<Mutex<Option<(Instant, Option<Duration>)>>>;

/// How long a read of the raw retention is trusted.
const RETENTION_TTL: Duration = Duration::from_secs(60);

impl PostgresStore {
    /// Connects to a `postgres://…` URL and migrates the database.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(url, StoreOptions::default()).await
    }

    /// [`PostgresStore::connect`] with options.
    pub async fn connect_with(url: &str, options: StoreOptions) -> Result<Self, StoreError> {
        let liveness = liveness::Liveness::default();
        let pool = liveness
            .apply(PgPoolOptions::new())
            .max_connections(8)
            // Fail (and let the caller retry or answer 503) rather than queue for long while
            // the database is away.
            .acquire_timeout(Duration::from_secs(5))
            .connect(url)
            .await?;
        let policies = timescale::policies_before_upgrade(&pool).await?;
        // sqlx takes an advisory lock while migrating, so workers may start together.
        sqlx::migrate!("../migrations/postgres").run(&pool).await?;
        let timescale = timescale::setup(&pool).await?;
        match &timescale {
            Some(version) => tracing::info!(version, "TimescaleDB: hypertables and compression"),
            None => tracing::info!("PostgreSQL without TimescaleDB: plain tables, no compression"),
        }
        if let (Some(settings), Some(_)) = (&policies, &timescale) {
            timescale::configure(&pool, settings).await?;
        }
        let mut store = Self {
            reads: tiers_sql::Reader(pool.clone()),
            pool,
            timescale,
            retention: Arc::default(),
            cadence: Cadence::new(options.summarize_every),
            summarizer: None,
            liveness,
        };
        let mut tx = store.begin().await?;
        crate::tiers::upgrade(&mut tx).await?;
        crate::upgrade::run(&mut tx).await?;
        // Ends the upgrade's transaction (and its layout lock) before summarizing notes a
        // previous run left: the summarizer waits for that lock.
        tx.commit().await?;
        store.settle().await?;
        store.summarizer = cadence::spawn(store.clone(), store.cadence.clone());
        Ok(store)
    }

    /// Stores one batch, again after losing a race with another writer (or a deadlock).
    async fn store_batch_retrying_races(
        &self,
        batch: &Batch<'_>,
        due: bool,
    ) -> Result<IngestOutcome, StoreError> {
        // Statuses and sightings go to the DPUs' status rows after the commit, one
        // autocommit statement each: every worker of a shared subscription hears from every
        // DPU, so a batch holding those rows until its commit made the other workers wait
        // for it, and in another order than theirs (deadlocks). If writing them fails, the
        // caller stores the whole batch again, which changes nothing already stored.
        let stored = Batch {
            statuses: &[],
            seen: &[],
            ..*batch
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut tx = self.begin().await?;
            let result = crate::batch::apply(&mut tx, &stored, chrono::Utc::now(), due).await;
            match result {
                Ok(Some(outcome)) => {
                    tx.commit().await?;
                    let mut conn = self.pool.acquire().await?;
                    ops_sql::record_statuses(&mut conn, batch.statuses).await?;
                    ops_sql::record_seen(&mut conn, batch.seen).await?;
                    drop(conn);
                    return Ok(outcome);
                }
                Ok(None) if attempt < MAX_ATTEMPTS => {
                    tracing::debug!(
                        attempt,
                        "another writer stored part of this batch; retrying"
                    );
                }
                Err(e) if is_transient(&e) && attempt < MAX_ATTEMPTS => {
                    tracing::debug!(attempt, error = %e, "transient database error; retrying");
                }
                Ok(None) => {
                    return Err(StoreError::Corrupt(
                        "kept losing races with other writers for this batch".into(),
                    ))
                }
                Err(e) => return Err(e),
            }
            // Dropping tx rolls it back.
        }
    }

    /// Stores a large batch's crossings in parts by DPU ([`WRITE_PARTS`]), each in its own
    /// transaction and all at once, then what else the batch carries; a small batch in one
    /// transaction. Parts share no crossing (each holds all of its DPUs' crossings, so what
    /// is known, repeated or new is decided within one part) and take no lock of each
    /// other's, as two workers' batches do not. If one fails, the caller stores the whole
    /// batch again: the parts already committed are then known repeats and change nothing
    /// (what every redelivery relies on), and the refusals were not stored yet. Parts only
    /// note their minutes: summarizing inside one part would miss the other's uncommitted
    /// entries of the same busy minutes and reread them again; the caller's `settle` after
    /// both commits summarizes them once.
    async fn store_batch_in_parts(
        &self,
        batch: &Batch<'_>,
        due: bool,
    ) -> Result<IngestOutcome, StoreError> {
        let Some(parts) = crate::batch::parts_by_dpu(batch.crossings, WRITE_PARTS, MIN_PART) else {
            return self.store_batch_retrying_races(batch, due).await;
        };
        let batches: Vec<Batch<'_>> = parts.iter().map(|part| Batch::of(part)).collect();
        let stored = futures_util::future::try_join_all(
            batches
                .iter()
                .map(|part| self.store_batch_retrying_races(part, false)),
        )
        .await?;
        if !batch.rejected.is_empty() {
            Backend::insert_rejected(self, batch.rejected).await?;
        }
        if !batch.statuses.is_empty() {
            self.record_statuses(batch.statuses).await?;
        }
        if !batch.seen.is_empty() {
            self.record_seen(batch.seen).await?;
        }
        let mut outcome = IngestOutcome::default();
        for part in stored {
            outcome.merge(part);
        }
        Ok(outcome)
    }

    /// Summarizes what batches noted until no note is left, or another writer has the turn;
    /// answers whether it summarized anything. A writer whose batch summarized runs this after
    /// it commits, and the turn is only ever given up by a commit, so whoever gives it up last
    /// sees every note made before; notes of batches between the summarizer's runs wait for
    /// the next run of some worker's background task (`cadence`).
    async fn settle(&self) -> Result<bool, StoreError> {
        let mut any = false;
        while entries_sql::any_pending(&self.pool).await? {
            let mut tx = self.begin().await?;
            if engine::summarize(&mut tx).await?.is_none() {
                return Ok(any);
            }
            tx.commit().await?;
            any = true;
        }
        Ok(any)
    }
}

/// Deadlocks and serialization failures are worth another try.
fn is_transient(error: &StoreError) -> bool {
    match error {
        StoreError::Database(sqlx::Error::Database(e)) => {
            matches!(e.code().as_deref(), Some("40001" | "40P01"))
        }
        _ => false,
    }
}

#[async_trait]
impl SummarizeNoted for PostgresStore {
    async fn summarize_noted(&self) -> Result<bool, StoreError> {
        let settled = self.settle().await;
        if let Err(e) = &settled {
            self.lost_connection(e);
        }
        settled
    }

    /// Another writer (the background task of this store, or another worker) may hold the
    /// summarizer's turn: its run ends, and the notes made meanwhile are summarized here.
    async fn catch_up(&self) -> Result<(), StoreError> {
        while entries_sql::any_pending(&self.pool).await? {
            if !self.settle().await? {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
        Ok(())
    }
}

#[async_trait]
impl Backend for PostgresStore {
    type Tx = PgTx;

    async fn begin(&self) -> Result<PgTx, StoreError> {
        // Nothing is done yet when `BEGIN` meets an ended connection: begin again.
        let tx = match self.pool.begin().await.map_err(StoreError::from) {
            Err(e) if self.lost_connection(&e) => self.pool.begin().await?,
            begun => begun?,
        };
        Ok(PgTx::new(tx, self.timescale.is_some()))
    }

    fn lost_connection(&self, error: &StoreError) -> bool {
        let lost = error.is_lost_connection();
        if lost {
            tracing::debug!(%error, "a pooled connection was ended by the server; trying again");
            self.liveness.connection_lost();
        }
        lost
    }

    async fn commit(tx: PgTx) -> Result<(), StoreError> {
        tx.commit().await
    }

    fn reads(&self) -> &dyn TierRead {
        &self.reads
    }

    async fn store_batch(&self, batch: &Batch<'_>) -> Result<IngestOutcome, StoreError> {
        let due = self.cadence.due();
        let began = Instant::now();
        let stored = self.store_batch_in_parts(batch, due).await;
        if stored.is_ok() && due {
            // Notes left are summarized by a later run, and read exactly meanwhile:
            // a failure here must not make the caller store the batch again.
            if let Err(error) = self.settle().await {
                tracing::warn!(%error, "batch stored; summarizing left for later");
            }
            self.cadence.ran(began);
        }
        if let Err(e) = &stored {
            // The caller stores the batch again: on checked connections if this one was lost.
            self.lost_connection(e);
        }
        stored
    }

    async fn insert_rejected(&self, rejected: &[Rejected]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        ops_sql::insert_rejected(&mut tx, rejected).await?;
        Ok(tx.commit().await?)
    }

    async fn record_statuses(
        &self,
        statuses: &[(DpuId, bool, Timestamp)],
    ) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await?;
        ops_sql::record_statuses(&mut conn, statuses).await
    }

    async fn record_seen(&self, seen: &[(DpuId, Timestamp)]) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await?;
        ops_sql::record_seen(&mut conn, seen).await
    }

    async fn all_spaces(&self) -> Result<Vec<Space>, StoreError> {
        layout_sql::all_spaces(&mut *self.pool.acquire().await?).await
    }

    async fn spaces_page(&self, page: &Page<SpaceId>) -> Result<Vec<Space>, StoreError> {
        layout_sql::spaces_page(&self.pool, page).await
    }

    async fn doorways_page(&self, page: &Page<DoorwayId>) -> Result<Vec<Doorway>, StoreError> {
        layout_sql::doorways_page(&self.pool, page).await
    }

    async fn installations(&self, dpu: &DpuId) -> Result<Vec<Installation>, StoreError> {
        layout_sql::installations(&self.pool, dpu).await
    }

    async fn dpu_known(&self, dpu: &DpuId) -> Result<bool, StoreError> {
        let row = sqlx::query(sql::DPU_KNOWN)
            .bind(dpu.as_str())
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

    async fn rejected(&self, filter: &RejectedFilter) -> Result<Vec<Rejected>, StoreError> {
        ops_sql::rejected(&self.pool, filter).await
    }

    async fn totals(&self) -> Result<Totals, StoreError> {
        ops_sql::totals(&self.pool).await
    }

    async fn dpus(
        &self,
        only: Option<&DpuId>,
        page: &Page<String>,
        now: Timestamp,
        day_start: Timestamp,
    ) -> Result<Vec<DpuInfo>, StoreError> {
        ops_sql::dpus(&self.pool, only, page, now, day_start).await
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
            .bind(at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn token_role(&self, hash: &str) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar(sql::TOKEN_ROLE)
            .bind(hash)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn tokens(&self) -> Result<Vec<TokenInfo>, StoreError> {
        ops_sql::tokens(&self.pool).await
    }

    async fn delete_tokens(&self, selector: &TokenSelector) -> Result<u64, StoreError> {
        let query = match selector {
            TokenSelector::Id(prefix) => sqlx::query(sql::DELETE_TOKENS_BY_PREFIX).bind(prefix),
            TokenSelector::Name(name) => sqlx::query(sql::DELETE_TOKENS_BY_NAME).bind(name),
        };
        Ok(query.execute(&self.pool).await?.rows_affected())
    }

    async fn put_dpu_secret(
        &self,
        dpu: &DpuId,
        hash: &str,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        ops_sql::put_dpu_secret(&self.pool, dpu, hash, at).await
    }

    async fn dpu_secret_hash(&self, dpu: &DpuId) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar(sql::DPU_SECRET_HASH)
            .bind(dpu.as_str())
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn withdraw_dpu_secret(&self, dpu: &DpuId, at: Timestamp) -> Result<bool, StoreError> {
        ops_sql::withdraw_dpu_secret(&self.pool, dpu, at).await
    }

    async fn secrets_changed_since(
        &self,
        since: Timestamp,
    ) -> Result<Vec<(String, Timestamp)>, StoreError> {
        ops_sql::secrets_changed_since(&self.pool, since).await
    }

    async fn secret_hashes(&self) -> Result<Vec<(String, String)>, StoreError> {
        Ok(sqlx::query_as(sql::DPU_SECRET_HASHES)
            .fetch_all(&self.pool)
            .await?)
    }

    async fn oldest_kept(&self, now: Timestamp) -> Result<Option<Timestamp>, StoreError> {
        if self.timescale.is_none() {
            return Ok(None);
        }
        let cached = *self.retention.lock().expect("retention cache");
        let retention = match cached {
            Some((read, retention)) if read.elapsed() < RETENTION_TTL => retention,
            _ => {
                let retention = timescale::raw_retention(&self.pool).await?;
                *self.retention.lock().expect("retention cache") =
                    Some((Instant::now(), retention));
                retention
            }
        };
        Ok(retention.and_then(|r| chrono::TimeDelta::from_std(r).ok().map(|r| now - r)))
    }

    async fn timescale(&self) -> Result<Option<TimescaleStatus>, StoreError> {
        match &self.timescale {
            Some(version) => Ok(Some(timescale::status(&self.pool, version).await?)),
            None => Ok(None),
        }
    }

    async fn configure_timescale(
        &self,
        settings: &TimescaleSettings,
    ) -> Result<Option<TimescaleStatus>, StoreError> {
        let Some(version) = &self.timescale else {
            return Ok(None);
        };
        timescale::configure(&self.pool, settings).await?;
        let status = timescale::status(&self.pool, version).await?;
        *self.retention.lock().expect("retention cache") =
            Some((Instant::now(), status.raw_retention));
        Ok(Some(status))
    }
}
