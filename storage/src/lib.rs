//! Where crossings and counts live: one [`Store`] trait in domain words, two backends.
//!
//! # Layout
//! - [`Store`] (this file): what the ingest worker, the API and the CLI may ask of storage.
//! - `engine`: the write paths (ingest a batch, apply a layout) written once, over the small
//!   [`engine::WriteTx`] port each backend implements; the counting rules themselves come from
//!   the domain crate (`occupancy`).
//! - `sqlite`: the zero-setup default (`sqlite://roomer.db`, WAL, one writer connection).
//! - `postgres`: PostgreSQL (and later TimescaleDB); per-space advisory locks make several
//!   ingest workers safe.
//! - Migrations live in the workspace's `migrations/{sqlite,postgres}` and are embedded here;
//!   they run on every [`connect`].
//!
//! SQL appears only inside the two backend modules.
#![forbid(unsafe_code)]

mod engine;
mod postgres;
mod sqlite;
pub mod testing;

use async_trait::async_trait;
use occupancy::plan::{IdConflict, IngestReport};
use occupancy::{Crossing, DpuId, Installation, Layout, SpaceId, Timestamp};
use serde::Serialize;
use std::sync::Arc;

pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

/// Errors from storage. Messages may contain database internals: log them, do not show them
/// to HTTP clients.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("unsupported database URL {0:?}: use sqlite://PATH or postgres://…")]
    UnsupportedUrl(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    #[error("invalid layout: {0}")]
    Layout(#[from] occupancy::LayoutError),
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
}

/// A space with its current count.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SpaceCount {
    pub id: SpaceId,
    pub name: String,
    pub count: i64,
}

/// What a batch did, and the crossings refused because their event id names another one.
#[derive(Clone, Debug, Default)]
pub struct IngestOutcome {
    pub report: IngestReport,
    pub conflicts: Vec<IdConflict>,
    /// Spaces whose counts the batch changed (at some instant, not necessarily now), by id.
    pub touched: Vec<SpaceId>,
}

/// What applying a layout changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LayoutReport {
    /// Spaces, doorways, DPUs and installation histories created or changed.
    pub changed: usize,
    /// Stored crossings moved to another doorway (or from pending to counted, or back).
    pub reattributed: usize,
}

/// A message (or one element of a bulk upload) that could not be applied, kept with its
/// raw payload so nothing is lost.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Rejected {
    pub received_at: Timestamp,
    /// Where it came from: the MQTT topic, or `http`.
    pub source: String,
    pub dpu_id: Option<String>,
    /// A stable code (`not_json`, `bad_direction`, …), see `occupancy::payload::Rejection`.
    pub reason: String,
    /// The human-readable reason.
    pub detail: String,
    pub payload: Vec<u8>,
}

/// Which refused messages to list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RejectedFilter {
    /// Only this DPU's.
    pub dpu_id: Option<String>,
    /// Only this reason code's.
    pub reason: Option<String>,
    pub limit: u32,
}

impl RejectedFilter {
    /// The newest `limit`, of any DPU and reason.
    pub fn newest(limit: u32) -> Self {
        Self {
            dpu_id: None,
            reason: None,
            limit,
        }
    }
}

/// A DPU as operators see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DpuInfo {
    pub id: String,
    /// Declared in the layout.
    pub declared: bool,
    /// What it last published on `dpus/{id}/status` (`None`: never).
    pub online: Option<bool>,
    pub status_at: Option<Timestamp>,
    /// When it was last heard from (a status or a crossings message).
    pub last_seen: Option<Timestamp>,
    /// The doorway it hangs over now, if any installation covers now.
    pub doorway: Option<occupancy::DoorwayId>,
    /// Crossings received since the start of the day asked about.
    pub events_today: i64,
}

/// Totals, for operators and for tests that wait for ingestion to finish.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    /// Distinct crossings stored (counted or pending).
    pub crossings: i64,
    /// Crossings no installation covers yet.
    pub pending: i64,
    pub rejected: i64,
}

/// Everything the rest of Roomer asks of storage.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Creates or updates spaces, doorways, DPUs and installation histories, and re-attributes
    /// stored crossings to match. Idempotent.
    async fn apply_layout(&self, layout: &Layout) -> Result<LayoutReport, StoreError>;

    /// Replaces one DPU's installation history (registering the DPU if it is new; its
    /// doorways must exist) and re-attributes its stored crossings, including those kept
    /// while no installation covered them.
    async fn set_installations(
        &self,
        dpu: &DpuId,
        history: &[Installation],
    ) -> Result<LayoutReport, StoreError>;

    /// Stores a batch of crossings in one transaction and corrects every affected count.
    /// Repeats of stored crossings are counted as duplicates and change nothing.
    async fn ingest(&self, batch: &[Crossing]) -> Result<IngestOutcome, StoreError>;

    /// Keeps refused messages for inspection.
    async fn reject(&self, rejected: &[Rejected]) -> Result<(), StoreError>;

    /// The count of a space at `at` (`None`: now, i.e. after its latest crossing);
    /// `None` if the space does not exist.
    async fn count_at(
        &self,
        space: SpaceId,
        at: Option<Timestamp>,
    ) -> Result<Option<i64>, StoreError>;

    /// Every space with its current count, by id.
    async fn spaces(&self) -> Result<Vec<SpaceCount>, StoreError>;

    /// Whether a DPU is declared in the layout.
    async fn dpu_known(&self, dpu: &DpuId) -> Result<bool, StoreError>;

    /// The most recently refused messages that match `filter`, newest first.
    async fn rejected(&self, filter: &RejectedFilter) -> Result<Vec<Rejected>, StoreError>;

    async fn totals(&self) -> Result<Totals, StoreError>;

    /// Records what a DPU said on its status topic at `at`.
    async fn record_status(
        &self,
        dpu: &DpuId,
        online: bool,
        at: Timestamp,
    ) -> Result<(), StoreError>;

    /// Records that these DPUs were heard from (keeps the latest time per DPU).
    async fn record_seen(&self, seen: &[(DpuId, Timestamp)]) -> Result<(), StoreError>;

    /// Every DPU declared or heard from (or only `only`), by id, as of `now`, counting
    /// crossings received since `day_start`.
    async fn dpus(
        &self,
        only: Option<&DpuId>,
        now: Timestamp,
        day_start: Timestamp,
    ) -> Result<Vec<DpuInfo>, StoreError>;
}

/// The latest time per DPU, so one statement never upserts a DPU twice.
fn latest_per_dpu(seen: &[(DpuId, Timestamp)]) -> Vec<(DpuId, Timestamp)> {
    let mut latest: std::collections::BTreeMap<&DpuId, Timestamp> = Default::default();
    for (dpu, at) in seen {
        let entry = latest.entry(dpu).or_insert(*at);
        *entry = (*entry).max(*at);
    }
    latest.into_iter().map(|(d, t)| (d.clone(), t)).collect()
}

/// Opens the database a URL names (`sqlite://…` or `postgres://…`), creating an SQLite file
/// if missing, and brings its schema up to date.
pub async fn connect(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::connect(url).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(PostgresStore::connect(url).await?))
    } else {
        Err(StoreError::UnsupportedUrl(url.to_owned()))
    }
}
