//! The in-memory backend's tables, and its write transaction: a copy of the tables that
//! replaces them on commit (writers take turns, as on SQLite; readers see the last commit).

use crate::engine::{Result, WriteTx};
use crate::tiers::{Note, Span};
use crate::{Rejected, Role};
use async_trait::async_trait;
use roomer_occupancy::effect::Effect;
use roomer_occupancy::layout::Attribution;
use roomer_occupancy::plan::{Known, NewCrossing};
use roomer_occupancy::series::{EntryKey, Step};
use roomer_occupancy::tiers::Tier;
use roomer_occupancy::{
    Crossing, CrossingKey, Doorway, DoorwayId, DpuId, Installation, Space, SpaceId, Timestamp,
    OUTSIDE,
};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

/// A stored crossing besides its key and copy.
#[derive(Clone, Debug)]
pub(super) struct StoredCrossing {
    pub(super) event_id: Option<u64>,
    pub(super) doorway: Option<DoorwayId>,
}

/// What a DPU said about itself, and when it was last heard from.
#[derive(Clone, Debug, Default)]
pub(super) struct Status {
    pub(super) online: Option<bool>,
    pub(super) status_at: Option<Timestamp>,
    pub(super) last_seen: Option<Timestamp>,
}

/// A token by its hash.
#[derive(Clone, Debug)]
pub(super) struct Token {
    pub(super) role: Role,
    pub(super) name: String,
    pub(super) created_at: Timestamp,
}

/// Every table, as the SQL backends have them.
#[derive(Clone, Debug)]
pub(super) struct Data {
    pub(super) spaces: BTreeMap<SpaceId, Space>,
    pub(super) doorways: BTreeMap<DoorwayId, Doorway>,
    pub(super) dpus: BTreeSet<DpuId>,
    pub(super) installations: BTreeMap<DpuId, Vec<Installation>>,
    pub(super) crossings: BTreeMap<(CrossingKey, u32), StoredCrossing>,
    /// Each space's entries by instant (a range read is a range of this map).
    pub(super) entries: BTreeMap<(SpaceId, Timestamp), BTreeSet<EntryKey>>,
    pub(super) tiers: BTreeMap<(SpaceId, Tier, Timestamp), Effect>,
    pub(super) notes: BTreeMap<i64, (SpaceId, Timestamp, Option<i64>)>,
    pub(super) next_note: i64,
    pub(super) rejected: Vec<Rejected>,
    pub(super) statuses: BTreeMap<DpuId, Status>,
    pub(super) tokens: BTreeMap<String, Token>,
    /// Each DPU's secret hash (none once withdrawn) and when it last changed.
    pub(super) dpu_secrets: BTreeMap<DpuId, (Option<String>, Timestamp)>,
}

impl Default for Data {
    fn default() -> Self {
        let outside = Space::new(OUTSIDE, "Outside");
        Self {
            spaces: BTreeMap::from([(OUTSIDE, outside)]),
            doorways: BTreeMap::new(),
            dpus: BTreeSet::new(),
            installations: BTreeMap::new(),
            crossings: BTreeMap::new(),
            entries: BTreeMap::new(),
            tiers: BTreeMap::new(),
            notes: BTreeMap::new(),
            next_note: 1,
            rejected: Vec::new(),
            statuses: BTreeMap::new(),
            tokens: BTreeMap::new(),
            dpu_secrets: BTreeMap::new(),
        }
    }
}

impl Data {
    /// The entries of a space in `[from, to)`, in key order.
    pub(super) fn entries_in(
        &self,
        space: SpaceId,
        from: Timestamp,
        to: Timestamp,
    ) -> impl Iterator<Item = &EntryKey> {
        let range = (from < to).then(|| self.entries.range((space, from)..(space, to)));
        range.into_iter().flatten().flat_map(|(_, keys)| keys)
    }

    /// The instant of a space's latest entry.
    pub(super) fn last_entry(&self, space: SpaceId) -> Option<Timestamp> {
        self.entries
            .range((space, Timestamp::MIN_UTC)..=(space, Timestamp::MAX_UTC))
            .next_back()
            .map(|((_, ts), _)| *ts)
    }

    pub(super) fn steps_in(&self, spans: &[Span]) -> Vec<(SpaceId, Step)> {
        let mut steps: Vec<(SpaceId, Step)> = spans
            .iter()
            .flat_map(|s| {
                self.entries_in(s.space, s.from, s.to)
                    .map(move |k| (s.space, Step::from(k)))
            })
            .collect();
        steps.sort();
        steps
    }

    /// The summaries of `tier` starting in `[from, to)` (from the first with no `from`).
    pub(super) fn tier_range(
        &self,
        space: SpaceId,
        tier: Tier,
        from: Option<Timestamp>,
        to: Timestamp,
    ) -> impl Iterator<Item = (Timestamp, Effect)> + '_ {
        let from = from.unwrap_or(Timestamp::MIN_UTC);
        let range = (from < to).then(|| self.tiers.range((space, tier, from)..(space, tier, to)));
        range
            .into_iter()
            .flatten()
            .map(|((_, _, start), effect)| (*start, *effect))
    }

    /// Noted minutes of a space in `[from, to)` (from the first with no `from`), in order.
    pub(super) fn noted(
        &self,
        space: SpaceId,
        from: Option<Timestamp>,
        to: Timestamp,
    ) -> BTreeSet<Timestamp> {
        self.notes
            .values()
            .filter(|(s, m, _)| *s == space && from.is_none_or(|f| *m >= f) && *m < to)
            .map(|(_, m, _)| *m)
            .collect()
    }

    pub(super) fn space_chain(&self, id: SpaceId) -> Vec<Space> {
        let mut chain = Vec::new();
        let mut next = Some(id);
        while let Some(space) = next.and_then(|id| self.spaces.get(&id)) {
            if chain.iter().any(|s: &Space| s.id == space.id) {
                break;
            }
            chain.push(space.clone());
            next = space.parent;
        }
        chain
    }
}

/// A write transaction: its own copy of the tables, and the writer's turn.
pub(crate) struct MemoryTx {
    pub(super) data: Data,
    pub(super) committed: Arc<Mutex<Data>>,
    pub(super) _turn: tokio::sync::OwnedMutexGuard<()>,
}

impl MemoryTx {
    pub(super) fn commit(self) {
        *self.committed.lock().unwrap_or_else(|p| p.into_inner()) = self.data;
    }
}

#[async_trait]
impl WriteTx for MemoryTx {
    async fn lock_layout(&mut self, _exclusive: bool) -> Result<()> {
        Ok(()) // Writers take turns already.
    }

    async fn try_lock_summaries(&mut self) -> Result<bool> {
        Ok(true)
    }

    async fn lock_summaries(&mut self) -> Result<()> {
        Ok(())
    }

    async fn known(&mut self, batch: &[Crossing]) -> Result<Known> {
        let mut known = Known::default();
        let keys: BTreeSet<CrossingKey> = batch.iter().map(Crossing::key).collect();
        for key in keys {
            for ((_, _), stored) in self
                .data
                .crossings
                .range((key.clone(), 0)..=(key.clone(), u32::MAX))
            {
                let entry = known.keys.entry(key.clone()).or_default();
                entry.copies += 1;
                entry.ids.extend(stored.event_id);
            }
        }
        Ok(known)
    }

    async fn name_crossings(&mut self, named: &[(CrossingKey, u64)]) -> Result<bool> {
        for (key, id) in named {
            match self.data.crossings.get_mut(&(key.clone(), 0)) {
                Some(stored) if stored.event_id.is_none() => stored.event_id = Some(*id),
                _ => return Ok(false),
            }
        }
        Ok(true)
    }

    async fn attribution(&mut self, dpus: &[DpuId]) -> Result<Attribution> {
        let mut rows = Vec::new();
        for dpu in dpus {
            for installation in self.data.installations.get(dpu).into_iter().flatten() {
                if let Some(doorway) = self.data.doorways.get(&installation.doorway) {
                    rows.push((dpu.clone(), installation.clone(), doorway.clone()));
                }
            }
        }
        Ok(Attribution::from_installed(rows))
    }

    async fn insert_crossings(
        &mut self,
        rows: &[NewCrossing],
        _received_at: Timestamp,
    ) -> Result<usize> {
        let mut inserted = 0;
        for new in rows {
            let key = (new.crossing.key(), new.copy);
            if let std::collections::btree_map::Entry::Vacant(slot) = self.data.crossings.entry(key)
            {
                slot.insert(StoredCrossing {
                    event_id: new.crossing.event_id,
                    doorway: new.doorway,
                });
                inserted += 1;
            }
        }
        Ok(inserted)
    }

    async fn remove_entries(&mut self, keys: &[(SpaceId, EntryKey)]) -> Result<()> {
        for (space, key) in keys {
            if let Some(at) = self.data.entries.get_mut(&(*space, key.ts)) {
                at.remove(key);
                if at.is_empty() {
                    self.data.entries.remove(&(*space, key.ts));
                }
            }
        }
        Ok(())
    }

    async fn insert_entries(&mut self, keys: &[(SpaceId, EntryKey)]) -> Result<()> {
        for (space, key) in keys {
            let at = self.data.entries.entry((*space, key.ts)).or_default();
            at.insert(key.clone());
        }
        Ok(())
    }

    async fn entry_counts(&mut self, spans: &[Span]) -> Result<Vec<usize>> {
        Ok(spans
            .iter()
            .map(|s| self.data.entries_in(s.space, s.from, s.to).count())
            .collect())
    }

    async fn steps_in(&mut self, spans: &[Span]) -> Result<Vec<(SpaceId, Step)>> {
        Ok(self.data.steps_in(spans))
    }

    async fn tier_rows_in(
        &mut self,
        tier: Tier,
        spans: &[Span],
    ) -> Result<Vec<(SpaceId, Timestamp, Effect)>> {
        let mut rows: Vec<(SpaceId, Timestamp, Effect)> = spans
            .iter()
            .flat_map(|s| {
                self.data
                    .tier_range(s.space, tier, Some(s.from), s.to)
                    .map(move |(start, effect)| (s.space, start, effect))
            })
            .collect();
        rows.sort_by_key(|(space, start, _)| (*space, *start));
        rows.dedup_by_key(|(space, start, _)| (*space, *start));
        Ok(rows)
    }

    async fn put_tier_rows(
        &mut self,
        tier: Tier,
        rows: &[(SpaceId, Timestamp, Option<Effect>)],
    ) -> Result<()> {
        for (space, start, effect) in rows {
            match effect {
                Some(effect) => self.data.tiers.insert((*space, tier, *start), *effect),
                None => self.data.tiers.remove(&(*space, tier, *start)),
            };
        }
        Ok(())
    }

    async fn mark_pending(&mut self, notes: &[(SpaceId, Timestamp, i64)]) -> Result<()> {
        for &(space, minute, seconds) in notes {
            let id = self.data.next_note;
            self.data.next_note += 1;
            self.data.notes.insert(id, (space, minute, Some(seconds)));
        }
        Ok(())
    }

    async fn take_pending(&mut self, limit: usize) -> Result<Vec<Note>> {
        let mut ids: Vec<(SpaceId, Timestamp, i64)> = self
            .data
            .notes
            .iter()
            .map(|(&id, &(space, minute, _))| (space, minute, id))
            .collect();
        ids.sort_unstable();
        let ids: Vec<i64> = ids.into_iter().take(limit).map(|(_, _, id)| id).collect();
        Ok(ids
            .iter()
            .filter_map(|id| self.data.notes.remove(id))
            .collect())
    }

    async fn clear_tiers(&mut self, space: SpaceId) -> Result<()> {
        self.data.tiers.retain(|(s, _, _), _| *s != space);
        self.data.notes.retain(|_, (s, _, _)| *s != space);
        Ok(())
    }

    async fn entry_minutes(&mut self, space: SpaceId) -> Result<Vec<Timestamp>> {
        let minutes: BTreeSet<Timestamp> = self
            .data
            .entries
            .range((space, Timestamp::MIN_UTC)..=(space, Timestamp::MAX_UTC))
            .map(|((_, ts), _)| Tier::Minute.floor(*ts))
            .collect();
        Ok(minutes.into_iter().collect())
    }

    async fn tiers_missing(&mut self) -> Result<bool> {
        let data = &self.data;
        Ok(!data.entries.is_empty() && data.tiers.is_empty() && data.notes.is_empty())
    }

    async fn spaces_with_entries(&mut self) -> Result<Vec<SpaceId>> {
        let spaces: BTreeSet<SpaceId> = self.data.entries.keys().map(|(s, _)| *s).collect();
        Ok(spaces.into_iter().collect())
    }

    async fn doorways(&mut self) -> Result<Vec<Doorway>> {
        Ok(self.data.doorways.values().cloned().collect())
    }

    async fn spaces(&mut self) -> Result<Vec<Space>> {
        Ok(self.data.spaces.values().cloned().collect())
    }

    async fn delete_space(&mut self, id: SpaceId) -> Result<bool> {
        self.data.entries.retain(|(s, _), _| *s != id);
        self.clear_tiers(id).await?;
        Ok(self.data.spaces.remove(&id).is_some())
    }

    async fn doorway_installed(&mut self, id: DoorwayId) -> Result<bool> {
        Ok(self
            .data
            .installations
            .values()
            .flatten()
            .any(|i| i.doorway == id))
    }

    async fn delete_doorway(&mut self, id: DoorwayId) -> Result<bool> {
        Ok(self.data.doorways.remove(&id).is_some())
    }

    async fn delete_dpu(&mut self, dpu: &DpuId) -> Result<bool> {
        Ok(self.data.dpus.remove(dpu))
    }

    async fn upsert_space(&mut self, space: &Space) -> Result<bool> {
        let old = self.data.spaces.insert(space.id, space.clone());
        Ok(old.as_ref() != Some(space))
    }

    async fn upsert_doorway(&mut self, doorway: &Doorway) -> Result<bool> {
        let old = self.data.doorways.insert(doorway.id, doorway.clone());
        Ok(old.as_ref() != Some(doorway))
    }

    async fn upsert_dpu(&mut self, dpu: &DpuId) -> Result<bool> {
        Ok(self.data.dpus.insert(dpu.clone()))
    }

    async fn installations(&mut self, dpu: &DpuId) -> Result<Vec<Installation>> {
        Ok(self
            .data
            .installations
            .get(dpu)
            .cloned()
            .unwrap_or_default())
    }

    async fn replace_installations(&mut self, dpu: &DpuId, history: &[Installation]) -> Result<()> {
        let mut history = history.to_vec();
        history.sort_by_key(|i| i.from);
        if history.is_empty() {
            self.data.installations.remove(dpu);
        } else {
            self.data.installations.insert(dpu.clone(), history);
        }
        Ok(())
    }

    async fn crossings_for(
        &mut self,
        dpus: &[DpuId],
        doorways: &[DoorwayId],
    ) -> Result<Vec<(Crossing, u32, Option<DoorwayId>)>> {
        Ok(self
            .data
            .crossings
            .iter()
            .filter(|((key, _), stored)| {
                dpus.contains(&key.dpu) || stored.doorway.is_some_and(|d| doorways.contains(&d))
            })
            .map(|((key, copy), stored)| {
                let crossing =
                    Crossing::new(key.dpu.clone(), key.ts, key.direction, stored.event_id);
                (crossing, *copy, stored.doorway)
            })
            .collect())
    }

    async fn set_doorways(&mut self, moved: &[(CrossingKey, Option<DoorwayId>)]) -> Result<()> {
        for (key, doorway) in moved {
            for (_, stored) in self
                .data
                .crossings
                .range_mut((key.clone(), 0)..=(key.clone(), u32::MAX))
            {
                stored.doorway = *doorway;
            }
        }
        Ok(())
    }

    async fn insert_rejected(&mut self, rows: &[Rejected]) -> Result<()> {
        self.data.rejected.extend(rows.iter().cloned());
        Ok(())
    }

    async fn record_statuses(&mut self, statuses: &[(DpuId, bool, Timestamp)]) -> Result<()> {
        record_statuses(&mut self.data, statuses);
        Ok(())
    }

    async fn record_seen(&mut self, seen: &[(DpuId, Timestamp)]) -> Result<()> {
        record_seen(&mut self.data, seen);
        Ok(())
    }
}

/// Per DPU the status with the latest time wins, whatever the order.
pub(super) fn record_statuses(data: &mut Data, statuses: &[(DpuId, bool, Timestamp)]) {
    for (dpu, online, at) in statuses {
        let status = data.statuses.entry(dpu.clone()).or_default();
        if status.status_at.is_none_or(|s| *at >= s) {
            status.online = Some(*online);
            status.status_at = Some(*at);
        }
        status.last_seen = status.last_seen.max(Some(*at));
    }
}

/// The latest time per DPU wins.
pub(super) fn record_seen(data: &mut Data, seen: &[(DpuId, Timestamp)]) {
    for (dpu, at) in seen {
        let status = data.statuses.entry(dpu.clone()).or_default();
        status.last_seen = status.last_seen.max(Some(*at));
    }
}
