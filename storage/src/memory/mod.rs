//! The in-memory backend: the tables as ordered maps, under the same write engine and reads
//! as the SQL backends. Nothing survives the process, so `connect` never opens it: it
//! exists so that property tests run the real engine thousands of times in seconds. Writers
//! take turns on a copy of the tables that replaces them on commit, so a failed batch
//! leaves nothing behind; readers see the last commit.

mod data;
mod reads;

use crate::backend::Backend;
use crate::cadence::{self, Background, Cadence, SummarizeNoted};
use crate::engine;
use crate::tiers::TierRead;
use crate::{
    Batch, DpuInfo, IngestOutcome, Page, Rejected, RejectedFilter, Role, StoreError, StoreOptions,
    TokenInfo, TokenSelector, Totals,
};
use async_trait::async_trait;
use data::{MemoryTx, Token};
use roomer_occupancy::{Doorway, DoorwayId, DpuId, Installation, Space, SpaceId, Timestamp};
use std::ops::Bound;
use std::sync::Arc;

/// Roomer's data in this process's memory.
#[derive(Clone, Debug)]
pub struct MemoryStore {
    reads: reads::Reader,
    turn: Arc<tokio::sync::Mutex<()>>,
    cadence: Arc<Cadence>,
    /// The summarizer's background task (`None` in the task's own copy of the store).
    summarizer: Option<Arc<Background>>,
}

type Result<T> = std::result::Result<T, StoreError>;

impl MemoryStore {
    /// An empty store (Outside only).
    pub fn new(options: StoreOptions) -> Self {
        let mut store = Self {
            reads: reads::Reader::default(),
            turn: Arc::default(),
            cadence: Cadence::new(options.summarize_every),
            summarizer: None,
        };
        store.summarizer = cadence::spawn(store.clone(), store.cadence.clone());
        store
    }
}

#[async_trait]
impl SummarizeNoted for MemoryStore {
    async fn summarize_noted(&self) -> Result<bool> {
        let mut any = false;
        while !self.reads.data().notes.is_empty() {
            let mut tx = self.begin().await?;
            engine::summarize(&mut tx).await?;
            tx.commit();
            any = true;
        }
        Ok(any)
    }
}

#[async_trait]
impl Backend for MemoryStore {
    type Tx = MemoryTx;

    async fn begin(&self) -> Result<MemoryTx> {
        let turn = self.turn.clone().lock_owned().await;
        Ok(MemoryTx {
            data: self.reads.data().clone(),
            committed: self.reads.0.clone(),
            _turn: turn,
        })
    }

    async fn commit(tx: MemoryTx) -> Result<()> {
        tx.commit();
        Ok(())
    }

    fn reads(&self) -> &dyn TierRead {
        &self.reads
    }

    async fn store_batch(&self, batch: &Batch<'_>) -> Result<IngestOutcome> {
        let due = self.cadence.due();
        let began = std::time::Instant::now();
        let mut tx = self.begin().await?;
        let outcome = crate::batch::apply(&mut tx, batch, chrono::Utc::now(), due)
            .await?
            .ok_or_else(|| StoreError::Corrupt("a concurrent writer stored this batch".into()))?;
        tx.commit();
        if due {
            self.cadence.ran(began);
        }
        Ok(outcome)
    }

    async fn insert_rejected(&self, rows: &[Rejected]) -> Result<()> {
        let _turn = self.turn.lock().await;
        self.reads.data().rejected.extend(rows.iter().cloned());
        Ok(())
    }

    async fn record_statuses(&self, statuses: &[(DpuId, bool, Timestamp)]) -> Result<()> {
        let _turn = self.turn.lock().await;
        data::record_statuses(&mut self.reads.data(), statuses);
        Ok(())
    }

    async fn record_seen(&self, seen: &[(DpuId, Timestamp)]) -> Result<()> {
        let _turn = self.turn.lock().await;
        data::record_seen(&mut self.reads.data(), seen);
        Ok(())
    }

    async fn all_spaces(&self) -> Result<Vec<Space>> {
        Ok(self.reads.data().spaces.values().cloned().collect())
    }

    async fn spaces_page(&self, page: &Page<SpaceId>) -> Result<Vec<Space>> {
        let data = self.reads.data();
        Ok(data
            .spaces
            .range(after(page.after))
            .take(page.limit)
            .map(|(_, s)| s.clone())
            .collect())
    }

    async fn doorways_page(&self, page: &Page<DoorwayId>) -> Result<Vec<Doorway>> {
        let data = self.reads.data();
        Ok(data
            .doorways
            .range(after(page.after))
            .take(page.limit)
            .map(|(_, d)| d.clone())
            .collect())
    }

    async fn installations(&self, dpu: &DpuId) -> Result<Vec<Installation>> {
        let data = self.reads.data();
        Ok(data.installations.get(dpu).cloned().unwrap_or_default())
    }

    async fn dpu_known(&self, dpu: &DpuId) -> Result<bool> {
        Ok(self.reads.data().dpus.contains(dpu))
    }

    async fn rejected(&self, filter: &RejectedFilter) -> Result<Vec<Rejected>> {
        let data = self.reads.data();
        let mut found: Vec<(usize, &Rejected)> = data
            .rejected
            .iter()
            .enumerate()
            .filter(|(_, r)| {
                filter
                    .dpu_id
                    .as_ref()
                    .is_none_or(|d| r.dpu_id.as_ref() == Some(d))
            })
            .filter(|(_, r)| filter.reason.as_ref().is_none_or(|w| &r.reason == w))
            .collect();
        // Newest first, then the last kept first (as the SQL backends' ids).
        found.sort_by_key(|(i, r)| std::cmp::Reverse((r.received_at, *i)));
        Ok(found
            .into_iter()
            .take(filter.limit as usize)
            .map(|(_, r)| r.clone())
            .collect())
    }

    async fn totals(&self) -> Result<Totals> {
        let data = self.reads.data();
        Ok(Totals {
            crossings: data.crossings.len() as i64,
            pending: data
                .crossings
                .values()
                .filter(|c| c.doorway.is_none())
                .count() as i64,
            rejected: data.rejected.len() as i64,
        })
    }

    async fn dpus(
        &self,
        only: Option<&DpuId>,
        page: &Page<String>,
        now: Timestamp,
        day_start: Timestamp,
    ) -> Result<Vec<DpuInfo>> {
        let data = self.reads.data();
        let ids: std::collections::BTreeSet<&DpuId> =
            data.dpus.iter().chain(data.statuses.keys()).collect();
        Ok(ids
            .into_iter()
            .filter(|id| only.is_none_or(|o| o == *id))
            .filter(|id| page.after.as_deref().is_none_or(|a| id.as_str() > a))
            .take(page.limit)
            .map(|id| {
                let status = data.statuses.get(id).cloned().unwrap_or_default();
                let doorway = data
                    .installations
                    .get(id)
                    .into_iter()
                    .flatten()
                    .find(|i| i.from <= now && i.until.is_none_or(|u| u > now))
                    .map(|i| i.doorway);
                let events_today = data
                    .crossings
                    .iter()
                    .filter(|((k, _), _)| &k.dpu == id && k.ts >= day_start)
                    .count() as i64;
                DpuInfo {
                    id: id.as_str().to_owned(),
                    declared: data.dpus.contains(id),
                    online: status.online,
                    status_at: status.status_at,
                    last_seen: status.last_seen,
                    doorway,
                    events_today,
                }
            })
            .collect())
    }

    async fn insert_token(&self, hash: &str, role: Role, name: &str, at: Timestamp) -> Result<()> {
        let _turn = self.turn.lock().await;
        let token = Token {
            role,
            name: name.to_owned(),
            created_at: at,
        };
        self.reads.data().tokens.insert(hash.to_owned(), token);
        Ok(())
    }

    async fn token_role(&self, hash: &str) -> Result<Option<String>> {
        let data = self.reads.data();
        Ok(data.tokens.get(hash).map(|t| t.role.as_str().to_owned()))
    }

    async fn tokens(&self) -> Result<Vec<TokenInfo>> {
        let data = self.reads.data();
        let mut tokens: Vec<TokenInfo> = data
            .tokens
            .iter()
            .map(|(hash, t)| TokenInfo {
                id: hash.chars().take(8).collect(),
                name: t.name.clone(),
                role: t.role,
                created_at: t.created_at,
            })
            .collect();
        tokens.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(tokens)
    }

    async fn delete_tokens(&self, selector: &TokenSelector) -> Result<u64> {
        let _turn = self.turn.lock().await;
        let mut data = self.reads.data();
        let before = data.tokens.len();
        data.tokens.retain(|hash, t| match selector {
            TokenSelector::Id(prefix) => !hash.starts_with(prefix.as_str()),
            TokenSelector::Name(name) => &t.name != name,
        });
        Ok((before - data.tokens.len()) as u64)
    }

    async fn put_dpu_secret(&self, dpu: &DpuId, hash: &str, at: Timestamp) -> Result<()> {
        let _turn = self.turn.lock().await;
        let secret = (Some(hash.to_owned()), at);
        self.reads.data().dpu_secrets.insert(dpu.clone(), secret);
        Ok(())
    }

    async fn dpu_secret_hash(&self, dpu: &DpuId) -> Result<Option<String>> {
        let data = self.reads.data();
        Ok(data.dpu_secrets.get(dpu).and_then(|(hash, _)| hash.clone()))
    }

    async fn withdraw_dpu_secret(&self, dpu: &DpuId, at: Timestamp) -> Result<bool> {
        let _turn = self.turn.lock().await;
        let mut data = self.reads.data();
        match data.dpu_secrets.get_mut(dpu) {
            Some((hash @ Some(_), changed)) => {
                *hash = None;
                *changed = at;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn secrets_changed_since(&self, since: Timestamp) -> Result<Vec<(String, Timestamp)>> {
        let data = self.reads.data();
        let mut changed: Vec<(String, Timestamp)> = data
            .dpu_secrets
            .iter()
            .filter(|(_, (_, at))| *at >= since)
            .map(|(dpu, (_, at))| (dpu.as_str().to_owned(), *at))
            .collect();
        changed.sort_by(|a, b| (a.1, &a.0).cmp(&(b.1, &b.0)));
        Ok(changed)
    }

    async fn secret_hashes(&self) -> Result<Vec<(String, String)>> {
        let data = self.reads.data();
        Ok(data
            .dpu_secrets
            .iter()
            .filter_map(|(dpu, (hash, _))| Some((dpu.as_str().to_owned(), hash.clone()?)))
            .collect())
    }
}

/// The keys after `after` (all with `None`).
fn after<K: Copy>(after: Option<K>) -> (Bound<K>, Bound<K>) {
    match after {
        Some(k) => (Bound::Excluded(k), Bound::Unbounded),
        None => (Bound::Unbounded, Bound::Unbounded),
    }
}
