//! What the rest of Roomer asks of storage, split by capability: the ingest worker stores
//! ([`IngestStore`]), dashboards read counts ([`CountStore`]), operators change the layout
//! ([`LayoutStore`]), the API checks tokens ([`TokenStore`]), the broker checks DPU secrets
//! ([`DpuSecretStore`]) and operators inspect ([`OperationsStore`]). [`Store`] is all of
//! them. Each is implemented once, in
//! `backend.rs`, over the narrow port every backend provides.

use crate::{
    Batch, DpuInfo, IngestOutcome, LayoutReport, Page, Rejected, RejectedFilter, Role, Series,
    SpaceCount, StoreError, TimescaleSettings, TimescaleStatus, TokenInfo, TokenSelector, Totals,
};
use async_trait::async_trait;
use roomer_occupancy::{history::Bucket, Timestamp};
use roomer_occupancy::{Crossing, Doorway, DoorwayId, DpuId, Installation, Layout, Space, SpaceId};

/// Everything storage does. A `dyn Store` answers every capability's methods; code that
/// holds a concrete store (`SqliteStore`) brings them into scope with
/// `use roomer_storage::prelude::*`.
pub trait Store:
    IngestStore + CountStore + LayoutStore + TokenStore + DpuSecretStore + OperationsStore
{
}

impl<T> Store for T where
    T: IngestStore + CountStore + LayoutStore + TokenStore + DpuSecretStore + OperationsStore
{
}

/// Storing what DPUs send.
#[async_trait]
pub trait IngestStore: Send + Sync + 'static {
    /// Stores a batch in one transaction: its crossings, correcting every affected count
    /// (repeats of stored crossings are counted as duplicates and change nothing), its
    /// refused messages, statuses and sightings.
    async fn apply_batch(&self, batch: &Batch<'_>) -> Result<IngestOutcome, StoreError>;

    /// [`IngestStore::apply_batch`] of crossings alone.
    async fn ingest(&self, crossings: &[Crossing]) -> Result<IngestOutcome, StoreError> {
        self.apply_batch(&Batch::of(crossings)).await
    }

    /// Keeps refused messages for inspection.
    async fn reject(&self, rejected: &[Rejected]) -> Result<(), StoreError>;

    /// Brings the summaries up to date with what batches noted, now rather than at the
    /// summarizer's next turn ([`crate::StoreOptions::summarize_every`]); if another writer
    /// on the same database holds the turn, waits for it and summarizes what was noted
    /// meanwhile, until no note is left. Reads are exact either way: this only moves work
    /// (benchmarks time ingest with it; a store that opens a database with notes left
    /// summarizes them itself).
    async fn catch_up(&self) -> Result<(), StoreError>;

    /// With raw-event retention (TimescaleDB), the oldest instant whose crossings are still
    /// kept at `now`: older ones must be refused, as a repeat of a dropped crossing could no
    /// longer be recognized. `None`: everything is kept. May lag a settings change by a minute.
    async fn oldest_kept(&self, now: Timestamp) -> Result<Option<Timestamp>, StoreError>;

    /// Records what a DPU said on its status topic at `at`.
    async fn record_status(
        &self,
        dpu: &DpuId,
        online: bool,
        at: Timestamp,
    ) -> Result<(), StoreError>;

    /// Records that these DPUs were heard from (keeps the latest time per DPU).
    async fn record_seen(&self, seen: &[(DpuId, Timestamp)]) -> Result<(), StoreError>;
}

/// Counts now, at a moment and over time.
#[async_trait]
pub trait CountStore: Send + Sync + 'static {
    /// The count of a space at `at` (`None`: now, i.e. after its latest crossing);
    /// `None` if the space does not exist.
    async fn count_at(
        &self,
        space: SpaceId,
        at: Option<Timestamp>,
    ) -> Result<Option<i64>, StoreError>;

    /// The current counts of those of `spaces` that exist, by id, in a few statements
    /// whatever their number (what the count publisher reads after each commit).
    async fn counts_now(&self, spaces: &[SpaceId]) -> Result<Vec<(SpaceId, i64)>, StoreError>;

    /// The count of `space` just before `from` and its series entries in `[from, to)`, in
    /// series order; `None` if the space does not exist.
    async fn series(
        &self,
        space: SpaceId,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Option<Series>, StoreError>;

    /// History buckets of a space over consecutive `bounds`, folded from its tiered
    /// summaries (`roomer_occupancy::tiers`); `None` if the space does not exist.
    async fn buckets(
        &self,
        space: SpaceId,
        bounds: &[(Timestamp, Timestamp)],
    ) -> Result<Option<Vec<Bucket>>, StoreError>;

    /// Spaces with their settings and current counts, by id.
    async fn spaces(&self, page: &Page<SpaceId>) -> Result<Vec<SpaceCount>, StoreError>;

    /// One space with its settings and current count; `None` if it does not exist.
    async fn space(&self, id: SpaceId) -> Result<Option<SpaceCount>, StoreError>;

    /// The space and its ancestors, in no particular order (what its time zone, capacity and
    /// daily reset depend on); empty if it does not exist.
    async fn space_chain(&self, id: SpaceId) -> Result<Vec<Space>, StoreError>;
}

/// The building: spaces, doorways, DPUs and where they hang.
#[async_trait]
pub trait LayoutStore: Send + Sync + 'static {
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

    /// A DPU's installation history, oldest first (empty if it has none).
    async fn installations(&self, dpu: &DpuId) -> Result<Vec<Installation>, StoreError>;

    /// Forgets a DPU's declaration and installation history; its crossings are kept, as
    /// pending, and counted again if it is registered anew.
    async fn delete_dpu(&self, dpu: &DpuId) -> Result<LayoutReport, StoreError>;

    /// Whether a DPU is declared in the layout.
    async fn dpu_known(&self, dpu: &DpuId) -> Result<bool, StoreError>;
}

/// The API's bearer tokens, kept as hashes.
#[async_trait]
pub trait TokenStore: Send + Sync + 'static {
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
}

/// The secrets DPUs log in to the embedded broker with: one per DPU, kept only as a hash
/// (Mosquitto's password-file form, see `secrets`), shown once when issued.
#[async_trait]
pub trait DpuSecretStore: Send + Sync + 'static {
    /// Issues a new secret for `dpu`, replacing any earlier one, and returns it: the only
    /// time anyone sees it. The DPU need not be declared in the layout yet.
    async fn issue_dpu_secret(&self, dpu: &DpuId) -> Result<String, StoreError>;

    /// Whether `secret` is `dpu`'s current secret.
    async fn check_dpu_secret(&self, dpu: &DpuId, secret: &str) -> Result<bool, StoreError>;

    /// Withdraws `dpu`'s secret; false if it had none.
    async fn revoke_dpu_secret(&self, dpu: &DpuId) -> Result<bool, StoreError>;

    /// The DPUs whose secret was issued or withdrawn at or after `since`, with when, oldest
    /// first: what a broker polls to end connections that a withdrawn secret opened.
    async fn dpu_secrets_changed(
        &self,
        since: Timestamp,
    ) -> Result<Vec<(DpuId, Timestamp)>, StoreError>;

    /// Every DPU with a current secret and the hash kept for it, by id (what a Mosquitto
    /// password file is written from).
    async fn dpu_secret_hashes(&self) -> Result<Vec<(DpuId, String)>, StoreError>;
}

/// What operators look at: refused messages, totals, DPUs, TimescaleDB.
#[async_trait]
pub trait OperationsStore: Send + Sync + 'static {
    /// The most recently refused messages that match `filter`, newest first.
    async fn rejected(&self, filter: &RejectedFilter) -> Result<Vec<Rejected>, StoreError>;

    async fn totals(&self) -> Result<Totals, StoreError>;

    /// DPUs declared or heard from (one page of them, or only `only`), by id, as of `now`,
    /// counting crossings received since `day_start`.
    async fn dpus(
        &self,
        only: Option<&DpuId>,
        page: &Page<String>,
        now: Timestamp,
        day_start: Timestamp,
    ) -> Result<Vec<DpuInfo>, StoreError>;

    /// What TimescaleDB runs with; `None` without TimescaleDB.
    async fn timescale(&self) -> Result<Option<TimescaleStatus>, StoreError>;

    /// Changes TimescaleDB settings and answers the new status; `None` without TimescaleDB.
    async fn configure_timescale(
        &self,
        settings: &TimescaleSettings,
    ) -> Result<Option<TimescaleStatus>, StoreError>;
}
