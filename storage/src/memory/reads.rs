//! Reads of the in-memory backend, over its last committed tables.

use super::data::Data;
use crate::engine::Result;
use crate::tiers::{Span, TierRead};
use async_trait::async_trait;
use roomer_occupancy::effect::Effect;
use roomer_occupancy::series::{EntryKey, Step};
use roomer_occupancy::tiers::Tier;
use roomer_occupancy::{Space, SpaceId, Timestamp};
use std::cmp::Reverse;
use std::sync::{Arc, Mutex, MutexGuard};

/// The committed tables, shared with the store's writers.
#[derive(Clone, Debug, Default)]
pub(super) struct Reader(pub(super) Arc<Mutex<Data>>);

impl Reader {
    pub(super) fn data(&self) -> MutexGuard<'_, Data> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl TierRead for Reader {
    async fn tier_ranges(
        &self,
        space: SpaceId,
        ranges: &[(Tier, Option<Timestamp>, Timestamp)],
    ) -> Result<Vec<(Tier, Timestamp, Effect)>> {
        let data = self.data();
        let mut rows: Vec<(Tier, Timestamp, Effect)> = ranges
            .iter()
            .flat_map(|&(tier, from, to)| {
                data.tier_range(space, tier, from, to)
                    .map(move |(start, effect)| (tier, start, effect))
            })
            .collect();
        rows.sort_by_key(|&(tier, start, _)| (start, Reverse(tier)));
        Ok(rows)
    }

    async fn entries_between(
        &self,
        space: SpaceId,
        from: Timestamp,
        to: Timestamp,
        limit: Option<usize>,
    ) -> Result<Vec<EntryKey>> {
        let data = self.data();
        let entries = data.entries_in(space, from, to).cloned();
        Ok(entries.take(limit.unwrap_or(usize::MAX)).collect())
    }

    async fn space_chain(&self, space: SpaceId) -> Result<Vec<Space>> {
        Ok(self.data().space_chain(space))
    }

    async fn pending_between(
        &self,
        space: SpaceId,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<Timestamp>> {
        Ok(self
            .data()
            .noted(space, Some(from), to)
            .into_iter()
            .collect())
    }

    async fn last_entries(&self, spaces: &[SpaceId]) -> Result<Vec<Option<Timestamp>>> {
        let data = self.data();
        Ok(spaces.iter().map(|&space| data.last_entry(space)).collect())
    }

    async fn pending_before_each(
        &self,
        before: &[(SpaceId, Timestamp)],
    ) -> Result<Vec<(SpaceId, Timestamp)>> {
        let data = self.data();
        let mut noted: Vec<(SpaceId, Timestamp)> = before
            .iter()
            .flat_map(|&(space, to)| {
                data.noted(space, None, to)
                    .into_iter()
                    .map(move |m| (space, m))
            })
            .collect();
        noted.sort();
        noted.dedup();
        Ok(noted)
    }

    async fn tier_ranges_each(
        &self,
        ranges: &[(SpaceId, Tier, Option<Timestamp>, Timestamp)],
    ) -> Result<Vec<(SpaceId, Tier, Timestamp, Effect)>> {
        let data = self.data();
        let mut rows: Vec<(SpaceId, Tier, Timestamp, Effect)> = ranges
            .iter()
            .flat_map(|&(space, tier, from, to)| {
                data.tier_range(space, tier, from, to)
                    .map(move |(start, effect)| (space, tier, start, effect))
            })
            .collect();
        rows.sort_by_key(|&(space, tier, start, _)| (space, start, Reverse(tier)));
        Ok(rows)
    }

    async fn steps_each(&self, spans: &[Span]) -> Result<Vec<(SpaceId, Step)>> {
        Ok(self.data().steps_in(spans))
    }

    async fn first_steps_each(&self, spans: &[Span], limit: usize) -> Result<Vec<(SpaceId, Step)>> {
        let data = self.data();
        let mut steps: Vec<(SpaceId, Step)> = spans
            .iter()
            .flat_map(|s| {
                let entries = data.entries_in(s.space, s.from, s.to).take(limit);
                entries.map(move |k| (s.space, Step::from(k)))
            })
            .collect();
        steps.sort();
        Ok(steps)
    }
}
