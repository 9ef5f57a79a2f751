//! The narrow port each backend implements, and every capability of [`crate::Store`]
//! implemented once over it. A backend provides transactions for the write engine
//! (`engine::WriteTx`), reads of the tiered series (`tiers::TierRead`) and a few plain
//! statements (their SQL text shared in `sql.rs` where the databases agree); what a layout
//! change, a count or a token check does with them is written here, once.

use crate::cadence::SummarizeNoted;
use crate::capabilities::{
    CountStore, DpuSecretStore, IngestStore, LayoutStore, OperationsStore, TokenStore,
};
use crate::engine::{self, WriteTx};
use crate::secrets;
use crate::tiers::{self, TierRead};
use crate::{
    Batch, DpuInfo, IngestOutcome, LayoutReport, Missing, Page, Rejected, RejectedFilter, Role,
    Series, SpaceCount, StoreError, TimescaleSettings, TimescaleStatus, TokenInfo, TokenSelector,
    Totals,
};
use async_trait::async_trait;
use roomer_occupancy::history::Bucket;
use roomer_occupancy::{
    Doorway, DoorwayId, DpuId, Installation, Layout, Space, SpaceId, Timestamp,
};

type Result<T> = std::result::Result<T, StoreError>;

/// What a backend provides.
#[async_trait]
pub(crate) trait Backend: SummarizeNoted + Send + Sync + 'static {
    type Tx: WriteTx;

    /// A write transaction for the engine (SQLite takes its write lock up front).
    async fn begin(&self) -> Result<Self::Tx>;
    async fn commit(tx: Self::Tx) -> Result<()>;
    /// Reads of counts and history.
    fn reads(&self) -> &dyn TierRead;
    /// Whether `error` says the connection a statement used had been ended by the server.
    /// If so, the backend checks connections before use for a while, and a read that failed
    /// with it is worth one more try.
    fn lost_connection(&self, _error: &StoreError) -> bool {
        false
    }
    /// Stores one batch with `crate::batch::apply`: backends differ in whether another
    /// writer can race it (PostgreSQL retries) and where DPU statuses are written.
    async fn store_batch(&self, batch: &Batch<'_>) -> Result<IngestOutcome>;

    async fn insert_rejected(&self, rows: &[Rejected]) -> Result<()>;
    async fn record_statuses(&self, statuses: &[(DpuId, bool, Timestamp)]) -> Result<()>;
    async fn record_seen(&self, seen: &[(DpuId, Timestamp)]) -> Result<()>;

    /// Every space (what daily reset rules are looked up in).
    async fn all_spaces(&self) -> Result<Vec<Space>>;
    /// One page of spaces, by id.
    async fn spaces_page(&self, page: &Page<SpaceId>) -> Result<Vec<Space>>;
    async fn doorways_page(&self, page: &Page<DoorwayId>) -> Result<Vec<Doorway>>;
    async fn installations(&self, dpu: &DpuId) -> Result<Vec<Installation>>;
    async fn dpu_known(&self, dpu: &DpuId) -> Result<bool>;

    async fn rejected(&self, filter: &RejectedFilter) -> Result<Vec<Rejected>>;
    async fn totals(&self) -> Result<Totals>;
    async fn dpus(
        &self,
        only: Option<&DpuId>,
        page: &Page<String>,
        now: Timestamp,
        day_start: Timestamp,
    ) -> Result<Vec<DpuInfo>>;

    async fn insert_token(&self, hash: &str, role: Role, name: &str, at: Timestamp) -> Result<()>;
    /// The stored role text of the token with this hash.
    async fn token_role(&self, hash: &str) -> Result<Option<String>>;
    async fn tokens(&self) -> Result<Vec<TokenInfo>>;
    /// Deletes by a lower-case hash prefix already checked, or by name.
    async fn delete_tokens(&self, selector: &TokenSelector) -> Result<u64>;

    /// Keeps `hash` as `dpu`'s secret, replacing any other, changed at `at`.
    async fn put_dpu_secret(&self, dpu: &DpuId, hash: &str, at: Timestamp) -> Result<()>;
    async fn dpu_secret_hash(&self, dpu: &DpuId) -> Result<Option<String>>;
    /// Forgets `dpu`'s hash (keeping when it changed); false if it had none.
    async fn withdraw_dpu_secret(&self, dpu: &DpuId, at: Timestamp) -> Result<bool>;
    async fn secrets_changed_since(&self, since: Timestamp) -> Result<Vec<(String, Timestamp)>>;
    async fn secret_hashes(&self) -> Result<Vec<(String, String)>>;

    /// See [`IngestStore::oldest_kept`].
    async fn oldest_kept(&self, _now: Timestamp) -> Result<Option<Timestamp>> {
        Ok(None)
    }
    async fn timescale(&self) -> Result<Option<TimescaleStatus>> {
        Ok(None)
    }
    async fn configure_timescale(
        &self,
        _settings: &TimescaleSettings,
    ) -> Result<Option<TimescaleStatus>> {
        Ok(None)
    }
}

/// Runs a read, and runs it once more if it met a connection the server had ended.
macro_rules! read {
    ($backend:expr, $read:expr) => {{
        match $read.await {
            Err(e) if $backend.lost_connection(&e) => $read.await,
            done => done,
        }
    }};
}

/// Runs one engine step in its own transaction, committed if it succeeds.
macro_rules! in_tx {
    ($backend:expr, |$tx:ident| $step:expr) => {{
        let mut $tx = $backend.begin().await?;
        let done = $step.await?;
        B::commit($tx).await?;
        Ok(done)
    }};
}

#[async_trait]
impl<B: Backend> IngestStore for B {
    async fn apply_batch(&self, batch: &Batch<'_>) -> Result<IngestOutcome> {
        self.store_batch(batch).await
    }

    async fn reject(&self, rejected: &[Rejected]) -> Result<()> {
        self.insert_rejected(rejected).await
    }

    async fn catch_up(&self) -> Result<()> {
        SummarizeNoted::catch_up(self).await
    }

    async fn oldest_kept(&self, now: Timestamp) -> Result<Option<Timestamp>> {
        read!(self, Backend::oldest_kept(self, now))
    }

    async fn record_status(&self, dpu: &DpuId, online: bool, at: Timestamp) -> Result<()> {
        self.record_statuses(&[(dpu.clone(), online, at)]).await
    }

    async fn record_seen(&self, seen: &[(DpuId, Timestamp)]) -> Result<()> {
        Backend::record_seen(self, seen).await
    }
}

#[async_trait]
impl<B: Backend> CountStore for B {
    async fn count_at(&self, space: SpaceId, at: Option<Timestamp>) -> Result<Option<i64>> {
        read!(self, tiers::count_of(self.reads(), space, at))
    }

    async fn counts_now(&self, spaces: &[SpaceId]) -> Result<Vec<(SpaceId, i64)>> {
        read!(self, async {
            let all = self.all_spaces().await?;
            tiers::counts_now_of(self.reads(), &all, spaces).await
        })
    }

    async fn series(
        &self,
        space: SpaceId,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Option<Series>> {
        read!(self, tiers::series_of(self.reads(), space, from, to))
    }

    async fn buckets(
        &self,
        space: SpaceId,
        bounds: &[(Timestamp, Timestamp)],
    ) -> Result<Option<Vec<Bucket>>> {
        read!(self, tiers::buckets_of(self.reads(), space, bounds))
    }

    async fn spaces(&self, page: &Page<SpaceId>) -> Result<Vec<SpaceCount>> {
        read!(self, async {
            let read = self.spaces_page(page).await?;
            // Reset rules may come from an ancestor outside the page.
            let all = if read.iter().any(|s| s.daily_reset.is_some()) {
                self.all_spaces().await?
            } else {
                Vec::new()
            };
            tiers::with_counts(self.reads(), read, &all).await
        })
    }

    async fn space(&self, id: SpaceId) -> Result<Option<SpaceCount>> {
        read!(self, tiers::space_of(self.reads(), id))
    }

    async fn space_chain(&self, id: SpaceId) -> Result<Vec<Space>> {
        read!(self, self.reads().space_chain(id))
    }
}

#[async_trait]
impl<B: Backend> LayoutStore for B {
    async fn apply_layout(&self, layout: &Layout) -> Result<LayoutReport> {
        in_tx!(self, |tx| engine::apply_layout(&mut tx, layout))
    }

    async fn set_installations(
        &self,
        dpu: &DpuId,
        history: &[Installation],
    ) -> Result<LayoutReport> {
        in_tx!(self, |tx| engine::set_installations(&mut tx, dpu, history))
    }

    async fn doorways(&self, page: &Page<DoorwayId>) -> Result<Vec<Doorway>> {
        read!(self, self.doorways_page(page))
    }

    async fn put_space(&self, space: &Space) -> Result<bool> {
        in_tx!(self, |tx| engine::put_space(&mut tx, space))
    }

    async fn delete_space(&self, id: SpaceId) -> Result<()> {
        in_tx!(self, |tx| engine::delete_space(&mut tx, id))
    }

    async fn put_doorway(&self, doorway: &Doorway) -> Result<LayoutReport> {
        in_tx!(self, |tx| engine::put_doorway(&mut tx, doorway))
    }

    async fn delete_doorway(&self, id: DoorwayId) -> Result<()> {
        in_tx!(self, |tx| engine::delete_doorway(&mut tx, id))
    }

    async fn installations(&self, dpu: &DpuId) -> Result<Vec<Installation>> {
        read!(self, Backend::installations(self, dpu))
    }

    async fn delete_dpu(&self, dpu: &DpuId) -> Result<LayoutReport> {
        in_tx!(self, |tx| engine::delete_dpu(&mut tx, dpu))
    }

    async fn dpu_known(&self, dpu: &DpuId) -> Result<bool> {
        read!(self, Backend::dpu_known(self, dpu))
    }
}

#[async_trait]
impl<B: Backend> TokenStore for B {
    async fn create_token(&self, hash: &str, role: Role, name: &str) -> Result<()> {
        self.insert_token(hash, role, name, chrono::Utc::now())
            .await
    }

    async fn token_role(&self, hash: &str) -> Result<Option<Role>> {
        let role = read!(self, Backend::token_role(self, hash))?;
        Ok(role.as_deref().and_then(Role::parse))
    }

    async fn tokens(&self) -> Result<Vec<TokenInfo>> {
        read!(self, Backend::tokens(self))
    }

    async fn revoke_tokens(&self, selector: &TokenSelector) -> Result<u64> {
        let selector = match selector {
            TokenSelector::Id(prefix)
                if prefix.len() >= 8 && prefix.bytes().all(|b| b.is_ascii_hexdigit()) =>
            {
                TokenSelector::Id(prefix.to_ascii_lowercase())
            }
            TokenSelector::Id(prefix) => return Err(Missing::TokenId(prefix.clone()).into()),
            TokenSelector::Name(name) => TokenSelector::Name(name.clone()),
        };
        self.delete_tokens(&selector).await
    }
}

#[async_trait]
impl<B: Backend> DpuSecretStore for B {
    async fn issue_dpu_secret(&self, dpu: &DpuId) -> Result<String> {
        let secret = secrets::new_secret();
        self.put_dpu_secret(dpu, &secrets::hash_secret(&secret), chrono::Utc::now())
            .await?;
        Ok(secret)
    }

    async fn check_dpu_secret(&self, dpu: &DpuId, secret: &str) -> Result<bool> {
        let kept = read!(self, Backend::dpu_secret_hash(self, dpu))?;
        Ok(kept.is_some_and(|kept| secrets::verify_secret(secret, &kept)))
    }

    async fn revoke_dpu_secret(&self, dpu: &DpuId) -> Result<bool> {
        self.withdraw_dpu_secret(dpu, chrono::Utc::now()).await
    }

    async fn dpu_secrets_changed(&self, since: Timestamp) -> Result<Vec<(DpuId, Timestamp)>> {
        let rows = read!(self, Backend::secrets_changed_since(self, since))?;
        rows.into_iter()
            .map(|(dpu, at)| Ok((stored_dpu(dpu)?, at)))
            .collect()
    }

    async fn dpu_secret_hashes(&self) -> Result<Vec<(DpuId, String)>> {
        let rows = read!(self, Backend::secret_hashes(self))?;
        rows.into_iter()
            .map(|(dpu, hash)| Ok((stored_dpu(dpu)?, hash)))
            .collect()
    }
}

/// A DPU id read back from the database (where only valid ones are written).
fn stored_dpu(id: String) -> Result<DpuId> {
    DpuId::new(id).map_err(|e| StoreError::Corrupt(e.to_string()))
}

#[async_trait]
impl<B: Backend> OperationsStore for B {
    async fn rejected(&self, filter: &RejectedFilter) -> Result<Vec<Rejected>> {
        read!(self, Backend::rejected(self, filter))
    }

    async fn totals(&self) -> Result<Totals> {
        read!(self, Backend::totals(self))
    }

    async fn dpus(
        &self,
        only: Option<&DpuId>,
        page: &Page<String>,
        now: Timestamp,
        day_start: Timestamp,
    ) -> Result<Vec<DpuInfo>> {
        read!(self, Backend::dpus(self, only, page, now, day_start))
    }

    async fn timescale(&self) -> Result<Option<TimescaleStatus>> {
        read!(self, Backend::timescale(self))
    }

    async fn configure_timescale(
        &self,
        settings: &TimescaleSettings,
    ) -> Result<Option<TimescaleStatus>> {
        Backend::configure_timescale(self, settings).await
    }
}

/// A token's role as stored, or why it cannot be read.
pub(crate) fn stored_role(role: &str) -> Result<Role> {
    Role::parse(role).ok_or_else(|| StoreError::Corrupt(format!("token role {role:?}")))
}
