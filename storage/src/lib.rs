//! Where crossings and counts live: one [`Store`] trait in domain words, two backends.
//!
//! # Layout
//! - [`Store`] (this file): what the ingest worker, the API and the CLI may ask of storage.
//! - [`history`]: a space's buckets, folded from its tiered summaries (or from the raw
//!   series, to compare with).
//! - [`batch`]: what one ingest batch stores, in one transaction.
//! - `engine`: the write paths (ingest a batch, apply a layout) written once, over the small
//!   [`engine::WriteTx`] port each backend implements; the counting rules themselves come from
//!   the domain crate (`occupancy`).
//! - `tiers`: each space's series as summaries per minute, hour, day, 30 and 360 days
//!   (`occupancy::tiers`): kept by the engine, read over the small `tiers::TierRead` port.
//! - `sqlite`: the zero-setup default (`sqlite://roomer.db`, WAL, one writer connection).
//! - `cadence`: how often the summarizer runs, and the store's background task that runs it.
//! - `postgres`: PostgreSQL; several ingest workers share it without locking each other's
//!   spaces (one advisory lock takes turns at summarizing). With TimescaleDB (`postgres/timescale.rs`) crossings and series are compressed hypertables
//!   (settings in `timescale_settings.rs`).
//! - Migrations live in the workspace's `migrations/{sqlite,postgres}` and are embedded here;
//!   they run on every [`connect`], followed by `upgrade` where stored data needs more than
//!   SQL to reach the current rules (rule 3's event ids, the summaries of older series).
//!
//! SQL appears only inside the two backend modules.
#![forbid(unsafe_code)]

pub mod batch;
mod cadence;
mod engine;
pub mod history;
mod latest;
mod postgres;
mod sqlite;
pub mod testing;
mod tiers;
mod timescale_settings;
mod upgrade;

use async_trait::async_trait;
use occupancy::plan::IngestReport;
use occupancy::{
    Crossing, Doorway, DoorwayId, DpuId, Installation, Layout, Space, SpaceId, Timestamp,
};
use serde::Serialize;
use std::sync::Arc;

pub use batch::Batch;
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;
pub use timescale_settings::{TimescaleSettings, TimescaleStatus};

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
    /// The SQLite file was deleted or replaced while open: writing into it would be lost.
    #[error(
        "the database file {0} was deleted or replaced while in use; restore it, or restart \
         to open the file now at that path"
    )]
    FileGone(String),
    /// A change names something that does not exist.
    #[error(transparent)]
    NotFound(#[from] Missing),
    /// A layout change would leave something dangling (a doorway without its space, …).
    #[error(transparent)]
    InUse(#[from] InUse),
}

/// What a change named that does not exist.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Missing {
    #[error("space {0} does not exist")]
    Space(SpaceId),
    #[error("doorway {0} does not exist")]
    Doorway(DoorwayId),
    #[error("DPU {0} is not declared")]
    Dpu(DpuId),
    /// A token selector by id shorter than 8 hex digits (it could name several tokens).
    #[error("a token id is at least 8 hex digits, as `roomer token list` shows; got {0:?}")]
    TokenId(String),
}

/// Why a layout element cannot be deleted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InUse {
    #[error("Outside (space 0) always exists")]
    Outside,
    #[error("space {space} is a side of doorway {doorway}; delete or change the doorway first")]
    SideOfDoorway { space: SpaceId, doorway: DoorwayId },
    #[error("space {space} is the parent of space {child}")]
    Parent { space: SpaceId, child: SpaceId },
    #[error("doorway {0} is in a DPU's installation history; change that history first")]
    Installed(DoorwayId),
}

impl StoreError {
    /// Whether this is the storage failing rather than the data it was given: the database
    /// is unreachable, full, read-only, busy, restarting or refusing the login. Such faults
    /// heal (the disk is freed, the server comes back) and what failed must simply be tried
    /// again; every other error would fail the same way however often it is tried.
    pub fn is_storage_fault(&self) -> bool {
        let database = match self {
            Self::Database(e) => e,
            Self::UnsupportedUrl(_) | Self::Migration(_) | Self::FileGone(_) => return true,
            Self::Layout(_) | Self::Corrupt(_) | Self::NotFound(_) | Self::InUse(_) => {
                return false
            }
        };
        match database {
            sqlx::Error::Database(e) => match e.code() {
                // SQLite's result codes are numbers (the primary code in the low byte): busy,
                // locked, out of memory, read-only, I/O, full, cannot open, not a database.
                Some(code) => match code.parse::<u32>() {
                    Ok(sqlite) => matches!(sqlite & 0xff, 5 | 6 | 7 | 8 | 10 | 13 | 14 | 26),
                    // PostgreSQL's SQLSTATE classes: connection, invalid transaction state,
                    // authorization, transaction rollback, insufficient resources, operator
                    // intervention (shutdown), system error.
                    Err(_) => matches!(
                        &code[..code.len().min(2)],
                        "08" | "25" | "28" | "40" | "53" | "57" | "58"
                    ),
                },
                None => true,
            },
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed
            | sqlx::Error::Configuration(_) => true,
            _ => false,
        }
    }
}

/// What a bearer token allows: `admin` reads and writes, `read` only reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Read,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Read => "read",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "admin" => Some(Self::Admin),
            "read" => Some(Self::Read),
            _ => None,
        }
    }
}

/// A token as `roomer token list` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenInfo {
    /// The first 8 hex digits of the token's hash: enough to name it, useless to use it.
    pub id: String,
    pub name: String,
    pub role: Role,
    pub created_at: Timestamp,
}

/// Which tokens to revoke.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenSelector {
    /// Hash prefix, as `TokenInfo::id` shows it.
    Id(String),
    Name(String),
}

/// A space, its settings and its current count.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SpaceCount {
    #[serde(flatten)]
    pub space: Space,
    pub count: i64,
    /// `count / capacity`, when the space has a capacity.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub utilization: Option<f64>,
}

impl SpaceCount {
    pub fn new(space: Space, count: i64) -> Self {
        let utilization = space.capacity.map(|c| count as f64 / f64::from(c));
        Self {
            space,
            count,
            utilization,
        }
    }
}

/// A stretch of a space's count series (see [`Store::series`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Series {
    pub carried_in: i64,
    /// When the entry `carried_in` comes from happened (`None`: no entry before).
    pub carried_at: Option<Timestamp>,
    pub points: Vec<occupancy::history::SeriesPoint>,
}

/// One page of a list ordered by id: the items after `after` (all from the start when
/// `None`), at most `limit`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page<K> {
    pub after: Option<K>,
    pub limit: usize,
}

impl<K> Page<K> {
    /// Everything (for callers that need the whole list, such as the ingest worker).
    pub fn all() -> Self {
        Self {
            after: None,
            limit: i64::MAX as usize,
        }
    }
}

/// What a batch did.
#[derive(Clone, Debug, Default)]
pub struct IngestOutcome {
    pub report: IngestReport,
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DpuInfo {
    pub id: String,
    /// Declared in the layout.
    pub declared: bool,
    /// What it last published on `dpus/{id}/status` (`None`: never).
    pub online: Option<bool>,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub status_at: Option<Timestamp>,
    /// When it was last heard from (a status or a crossings message).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub last_seen: Option<Timestamp>,
    /// The doorway it hangs over now, if any installation covers now.
    pub doorway: Option<occupancy::DoorwayId>,
    /// Crossings received since the start of the day asked about.
    pub events_today: i64,
}

/// Totals, for operators and for tests that wait for ingestion to finish.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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

    /// Stores a batch in one transaction: its crossings, correcting every affected count
    /// (repeats of stored crossings are counted as duplicates and change nothing), its
    /// refused messages, statuses and sightings.
    async fn apply_batch(&self, batch: &Batch<'_>) -> Result<IngestOutcome, StoreError>;

    /// [`Store::apply_batch`] of crossings alone.
    async fn ingest(&self, crossings: &[Crossing]) -> Result<IngestOutcome, StoreError> {
        self.apply_batch(&Batch::of(crossings)).await
    }

    /// Keeps refused messages for inspection.
    async fn reject(&self, rejected: &[Rejected]) -> Result<(), StoreError>;

    /// The count of a space at `at` (`None`: now, i.e. after its latest crossing);
    /// `None` if the space does not exist.
    async fn count_at(
        &self,
        space: SpaceId,
        at: Option<Timestamp>,
    ) -> Result<Option<i64>, StoreError>;

    /// The count of `space` just before `from` and its series entries in `[from, to)`, in
    /// series order; `None` if the space does not exist.
    async fn series(
        &self,
        space: SpaceId,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Option<Series>, StoreError>;

    /// History buckets of a space over consecutive `bounds`, folded from its tiered
    /// summaries (`occupancy::tiers`); `None` if the space does not exist.
    async fn buckets(
        &self,
        space: SpaceId,
        bounds: &[(Timestamp, Timestamp)],
    ) -> Result<Option<Vec<occupancy::history::Bucket>>, StoreError>;

    /// With raw-event retention (TimescaleDB), the oldest instant whose crossings are still
    /// kept at `now`: older ones must be refused, as a repeat of a dropped crossing could no
    /// longer be recognized. `None`: everything is kept. May lag a settings change by a minute.
    async fn oldest_kept(&self, _now: Timestamp) -> Result<Option<Timestamp>, StoreError> {
        Ok(None)
    }

    /// What TimescaleDB runs with; `None` without TimescaleDB.
    async fn timescale(&self) -> Result<Option<TimescaleStatus>, StoreError> {
        Ok(None)
    }

    /// Changes TimescaleDB settings and answers the new status; `None` without TimescaleDB.
    async fn configure_timescale(
        &self,
        _settings: &TimescaleSettings,
    ) -> Result<Option<TimescaleStatus>, StoreError> {
        Ok(None)
    }

    /// Spaces with their settings and current counts, by id.
    async fn spaces(&self, page: &Page<SpaceId>) -> Result<Vec<SpaceCount>, StoreError>;

    /// Brings the summaries up to date with the minutes batches noted, now rather than at
    /// the summarizer's next turn ([`StoreOptions::summarize_every`]); if another writer on
    /// the same database holds the turn, leaves it to that one. Reads are exact either way:
    /// this only moves work (benchmarks time ingest with it; a store that opens a database
    /// with notes left summarizes them itself).
    async fn catch_up(&self) -> Result<(), StoreError>;

    /// The current counts of those of `spaces` that exist, by id, in a few statements
    /// whatever their number (what the count publisher reads after each commit).
    async fn counts_now(&self, spaces: &[SpaceId]) -> Result<Vec<(SpaceId, i64)>, StoreError>;

    /// One space with its settings and current count; `None` if it does not exist.
    async fn space(&self, id: SpaceId) -> Result<Option<SpaceCount>, StoreError>;

    /// The space and its ancestors, in no particular order (what its time zone, capacity and
    /// daily reset depend on); empty if it does not exist.
    async fn space_chain(&self, id: SpaceId) -> Result<Vec<Space>, StoreError>;

    /// Doorways, by id.
    async fn doorways(&self, page: &Page<DoorwayId>) -> Result<Vec<Doorway>, StoreError>;

    /// Creates or replaces one space (its parent must exist; Outside cannot be changed).
    /// Returns whether anything changed.
    async fn put_space(&self, space: &Space) -> Result<bool, StoreError>;

    /// Deletes a space no doorway and no other space refers to, with its count history.
    async fn delete_space(&self, id: SpaceId) -> Result<(), StoreError>;

    /// Creates or replaces one doorway; if its sides change, its crossings move with them.
    async fn put_doorway(&self, doorway: &Doorway) -> Result<LayoutReport, StoreError>;

    /// Deletes a doorway that no installation (past or present) refers to.
    async fn delete_doorway(&self, id: DoorwayId) -> Result<(), StoreError>;

    /// Keeps a token's hash with what it allows.
    async fn create_token(&self, hash: &str, role: Role, name: &str) -> Result<(), StoreError>;

    /// What the token with this hash allows, if it exists.
    async fn token_role(&self, hash: &str) -> Result<Option<Role>, StoreError>;

    /// Every token's name, role, creation time and hash prefix (never the token), oldest
    /// first.
    async fn tokens(&self) -> Result<Vec<TokenInfo>, StoreError>;

    /// Deletes the tokens whose hash starts with `hash_prefix` (at least 8 hex digits) or,
    /// with `name`, every token of that name; returns how many went.
    async fn revoke_tokens(&self, selector: &TokenSelector) -> Result<u64, StoreError>;

    /// A DPU's installation history, oldest first (empty if it has none).
    async fn installations(&self, dpu: &DpuId) -> Result<Vec<Installation>, StoreError>;

    /// Forgets a DPU's declaration and installation history; its crossings are kept, as
    /// pending, and counted again if it is registered anew.
    async fn delete_dpu(&self, dpu: &DpuId) -> Result<LayoutReport, StoreError>;

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

    /// DPUs declared or heard from (one page of them, or only `only`), by id, as of `now`,
    /// counting crossings received since `day_start`.
    async fn dpus(
        &self,
        only: Option<&DpuId>,
        page: &Page<String>,
        now: Timestamp,
        day_start: Timestamp,
    ) -> Result<Vec<DpuInfo>, StoreError>;
}

/// A space from its stored columns: settings are kept as text (an IANA zone name, a local
/// time `HH:MM:SS`) the same way in every backend.
pub(crate) fn space_from_columns(
    id: SpaceId,
    name: String,
    parent: Option<SpaceId>,
    time_zone: Option<String>,
    capacity: Option<i64>,
    daily_reset: Option<String>,
) -> Result<Space, StoreError> {
    let corrupt = |what: String| StoreError::Corrupt(format!("space {id}: {what}"));
    Ok(Space {
        id,
        name,
        parent,
        time_zone: time_zone
            .map(|z| z.parse().map_err(|_| corrupt(format!("time zone {z:?}"))))
            .transpose()?,
        capacity: capacity
            .map(|c| u32::try_from(c).map_err(|_| corrupt(format!("capacity {c}"))))
            .transpose()?,
        daily_reset: daily_reset
            .map(|r| r.parse().map_err(|_| corrupt(format!("daily reset {r:?}"))))
            .transpose()?,
    })
}

/// The stored text of a space's settings, as [`space_from_columns`] reads them back.
pub(crate) fn space_columns(space: &Space) -> (Option<String>, Option<i64>, Option<String>) {
    (
        space.time_zone.map(|z| z.name().to_owned()),
        space.capacity.map(i64::from),
        space.daily_reset.map(|t| t.format("%H:%M:%S").to_string()),
    )
}

pub use cadence::DEFAULT_SUMMARIZE_EVERY;

/// How a store runs, beyond the database it opens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreOptions {
    /// The summarizer runs at most this often (zero: in every batch); batches in between
    /// note their minutes, and counts stay exact meanwhile (see `cadence`).
    pub summarize_every: std::time::Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            summarize_every: DEFAULT_SUMMARIZE_EVERY,
        }
    }
}

/// Opens the database a URL names (`sqlite://…` or `postgres://…`), creating an SQLite file
/// if missing, and brings its schema up to date.
pub async fn connect(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    connect_with(url, StoreOptions::default()).await
}

/// [`connect`] with options.
pub async fn connect_with(url: &str, options: StoreOptions) -> Result<Arc<dyn Store>, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::connect_with(url, options).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(PostgresStore::connect_with(url, options).await?))
    } else {
        Err(StoreError::UnsupportedUrl(url.to_owned()))
    }
}
