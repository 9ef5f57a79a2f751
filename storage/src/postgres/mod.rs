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
mod ops_sql;
mod tiers_sql;
mod timescale;
mod write;

use crate::cadence::{self, Background, Cadence, SummarizeNoted};
use crate::engine;
use crate::{
    Batch, DpuInfo, IngestOutcome, LayoutReport, Missing, Page, Rejected, RejectedFilter, Role,
    Series, SpaceCount, Store, StoreError, StoreOptions, TimescaleSettings, TimescaleStatus,
    TokenInfo, TokenSelector, Totals,
};
use async_trait::async_trait;
use occupancy::{Doorway, DoorwayId, DpuId, Installation, Layout, Space, SpaceId, Timestamp};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::Row;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use write::PgTx;
pub(crate) use write::LOCK_SUMMARIES;

/// How often a batch is retried after losing a race with another writer.
const MAX_ATTEMPTS: usize = 5;

/// Roomer's data in a PostgreSQL database.
#[derive(Clone, Debug)]
pub struct PostgresStore {
    pool: PgPool,
    /// The TimescaleDB version, when the database uses it.
    timescale: Option<String>,
    /// The raw retention as last read, and when (re-read after a minute).
    retention: RetentionCache,
    cadence: Arc<Cadence>,
    /// The summarizer's background task (`None` in the task's own copy of the store).
    summarizer: Option<Arc<Background>>,
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
        let pool = PgPoolOptions::new()
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
            pool,
            timescale,
            retention: Arc::default(),
            cadence: Cadence::new(options.summarize_every),
            summarizer: None,
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

    async fn begin(&self) -> Result<PgTx, StoreError> {
        Ok(PgTx::new(
            self.pool.begin().await?,
            self.timescale.is_some(),
        ))
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
        self.settle().await
    }
}

#[async_trait]
impl Store for PostgresStore {
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
        let due = self.cadence.due();
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
                    // Notes left are summarized by a later run, and read exactly meanwhile:
                    // a failure here must not make the caller store the batch again.
                    if due {
                        self.cadence.ran();
                        if let Err(error) = self.settle().await {
                            tracing::warn!(%error, "batch stored; summarizing left for later");
                        }
                    }
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

    async fn reject(&self, rejected: &[Rejected]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        ops_sql::insert_rejected(&mut tx, rejected).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn count_at(
        &self,
        space: SpaceId,
        at: Option<Timestamp>,
    ) -> Result<Option<i64>, StoreError> {
        crate::tiers::count_of(&tiers_sql::Reader(&self.pool), space, at).await
    }

    async fn series(
        &self,
        space: SpaceId,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Option<Series>, StoreError> {
        crate::tiers::series_of(&tiers_sql::Reader(&self.pool), space, from, to).await
    }

    async fn buckets(
        &self,
        space: SpaceId,
        bounds: &[(Timestamp, Timestamp)],
    ) -> Result<Option<Vec<occupancy::history::Bucket>>, StoreError> {
        crate::tiers::buckets_of(&tiers_sql::Reader(&self.pool), space, bounds).await
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

    async fn spaces(&self, page: &Page<SpaceId>) -> Result<Vec<SpaceCount>, StoreError> {
        layout_sql::spaces_page(&self.pool, page).await
    }

    async fn catch_up(&self) -> Result<(), StoreError> {
        SummarizeNoted::summarize_noted(self).await.map(|_| ())
    }

    async fn counts_now(&self, spaces: &[SpaceId]) -> Result<Vec<(SpaceId, i64)>, StoreError> {
        let all = layout_sql::all_spaces(&mut *self.pool.acquire().await?).await?;
        crate::tiers::counts_now_of(&tiers_sql::Reader(&self.pool), &all, spaces).await
    }

    async fn space(&self, id: SpaceId) -> Result<Option<SpaceCount>, StoreError> {
        crate::tiers::space_of(&tiers_sql::Reader(&self.pool), id).await
    }

    async fn space_chain(&self, id: SpaceId) -> Result<Vec<Space>, StoreError> {
        layout_sql::space_chain(&mut *self.pool.acquire().await?, id).await
    }

    async fn doorways(&self, page: &Page<DoorwayId>) -> Result<Vec<Doorway>, StoreError> {
        layout_sql::doorways_page(&self.pool, page).await
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
        sqlx::query(
            "INSERT INTO api_tokens (hash, role, name, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(hash)
        .bind(role.as_str())
        .bind(name)
        .bind(chrono::Utc::now())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn token_role(&self, hash: &str) -> Result<Option<Role>, StoreError> {
        let role: Option<String> =
            sqlx::query_scalar("SELECT role FROM api_tokens WHERE hash = $1")
                .bind(hash)
                .fetch_optional(&self.pool)
                .await?;
        Ok(role.as_deref().and_then(Role::parse))
    }

    async fn tokens(&self) -> Result<Vec<TokenInfo>, StoreError> {
        let rows = sqlx::query(
            "SELECT substr(hash, 1, 8), name, role, created_at FROM api_tokens \
             ORDER BY created_at, hash",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let role: String = r.get(2);
                Ok(TokenInfo {
                    id: r.get(0),
                    name: r.get(1),
                    role: Role::parse(&role)
                        .ok_or_else(|| StoreError::Corrupt(format!("token role {role:?}")))?,
                    created_at: r.get(3),
                })
            })
            .collect()
    }

    async fn revoke_tokens(&self, selector: &TokenSelector) -> Result<u64, StoreError> {
        let query = match selector {
            TokenSelector::Id(prefix)
                if prefix.len() >= 8 && prefix.bytes().all(|b| b.is_ascii_hexdigit()) =>
            {
                sqlx::query("DELETE FROM api_tokens WHERE hash LIKE $1 || '%'")
                    .bind(prefix.to_ascii_lowercase())
            }
            TokenSelector::Id(prefix) => return Err(Missing::TokenId(prefix.clone()).into()),
            TokenSelector::Name(name) => {
                sqlx::query("DELETE FROM api_tokens WHERE name = $1").bind(name.clone())
            }
        };
        Ok(query.execute(&self.pool).await?.rows_affected())
    }

    async fn installations(&self, dpu: &DpuId) -> Result<Vec<Installation>, StoreError> {
        layout_sql::installations(&self.pool, dpu).await
    }

    async fn delete_dpu(&self, dpu: &DpuId) -> Result<LayoutReport, StoreError> {
        let mut tx = self.begin().await?;
        let report = engine::delete_dpu(&mut tx, dpu).await?;
        tx.commit().await?;
        Ok(report)
    }

    async fn dpu_known(&self, dpu: &DpuId) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT 1 FROM dpus WHERE id = $1")
            .bind(dpu.as_str())
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

    async fn rejected(&self, filter: &RejectedFilter) -> Result<Vec<Rejected>, StoreError> {
        let rows = sqlx::query(
            "SELECT received_at, source, dpu_id, reason, detail, payload FROM rejected \
             WHERE ($1::text IS NULL OR dpu_id = $1) AND ($2::text IS NULL OR reason = $2) \
             ORDER BY received_at DESC, id DESC LIMIT $3",
        )
        .bind(&filter.dpu_id)
        .bind(&filter.reason)
        .bind(i64::from(filter.limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| Rejected {
                received_at: r.get(0),
                source: r.get(1),
                dpu_id: r.get(2),
                reason: r.get(3),
                detail: r.get(4),
                payload: r.get(5),
            })
            .collect())
    }

    async fn totals(&self) -> Result<Totals, StoreError> {
        let row = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM crossings), \
                    (SELECT COUNT(*) FROM crossings WHERE doorway_id IS NULL), \
                    (SELECT COUNT(*) FROM rejected)",
        )
        .fetch_one(&self.pool)
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
        let mut conn = self.pool.acquire().await?;
        ops_sql::record_statuses(&mut conn, &[(dpu.clone(), online, at)]).await
    }

    async fn record_seen(&self, seen: &[(DpuId, Timestamp)]) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await?;
        ops_sql::record_seen(&mut conn, seen).await
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
                        AND n.valid_from <= $1 AND (n.valid_until IS NULL OR n.valid_until > $1)), \
                    (SELECT COUNT(*) FROM crossings c \
                        WHERE c.dpu_id = i.dpu_id AND c.received_at >= $2) \
             FROM ids i LEFT JOIN dpu_status s ON s.dpu_id = i.dpu_id \
             WHERE ($3::text IS NULL OR i.dpu_id = $3) AND ($4::text IS NULL OR i.dpu_id > $4) \
             ORDER BY i.dpu_id LIMIT $5",
        )
        .bind(now)
        .bind(day_start)
        .bind(only.map(DpuId::as_str))
        .bind(page.after.as_deref())
        .bind(i64::try_from(page.limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| DpuInfo {
                id: r.get(0),
                declared: r.get(1),
                online: r.get(2),
                status_at: r.get(3),
                last_seen: r.get(4),
                doorway: r.get(5),
                events_today: r.get(6),
            })
            .collect())
    }
}
