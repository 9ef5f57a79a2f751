//! An in-memory store built from the domain's pieces, exactly as the SQL backends use them.
//! Each space's series is kept as tiered summaries ([`crate::tiers`]) by default, as the SQL
//! backends keep it (so their ingest reports match), or per entry
//! ([`crate::series::PerEntry`]), which the property tests check as well.
//!
//! It is what the property tests drive with shuffled, duplicated and batched input, and a
//! baseline for the benchmarks; it keeps nothing across restarts.

use crate::layout::{Attribution, Layout};
use crate::model::{Crossing, CrossingKey, DoorwayId, SpaceId, Timestamp};
use crate::plan::{plan_batch, plan_reattribution, Attributed, IngestReport, Known, Stored};
use crate::reset::DailyReset;
use crate::series::SpaceChange;
use crate::tiers::TieredSeries;
use std::collections::{BTreeMap, HashMap};

/// A space's series as the ledger keeps it.
pub trait SeriesModel: Clone + std::fmt::Debug {
    fn new(space: SpaceId, reset: Option<DailyReset>) -> Self;
    /// Applies a change; answers the work it took (the ingest report's `recounted`).
    fn apply(&mut self, change: &SpaceChange) -> usize;
    /// The count right after everything at or before `t`.
    fn count_at(&self, t: Timestamp) -> i64;
    /// The count right after the latest crossing.
    fn current(&self) -> i64;
    /// The space's daily reset rule changed: every count after its first entry may change.
    fn set_reset(&mut self, reset: Option<DailyReset>);
}

impl SeriesModel for TieredSeries {
    fn new(space: SpaceId, reset: Option<DailyReset>) -> Self {
        TieredSeries::new(space, reset)
    }
    fn apply(&mut self, change: &SpaceChange) -> usize {
        TieredSeries::apply(self, change)
    }
    fn count_at(&self, t: Timestamp) -> i64 {
        TieredSeries::count_at(self, t)
    }
    fn current(&self) -> i64 {
        TieredSeries::current(self)
    }
    fn set_reset(&mut self, reset: Option<DailyReset>) {
        TieredSeries::set_reset(self, reset)
    }
}

#[derive(Clone, Debug)]
pub struct Ledger<S: SeriesModel = TieredSeries> {
    layout: Layout,
    attribution: Attribution,
    /// Stored crossings by key and copy (rule 3).
    crossings: BTreeMap<(CrossingKey, u32), (Crossing, Option<DoorwayId>)>,
    series: HashMap<SpaceId, S>,
}

impl<S: SeriesModel> Default for Ledger<S> {
    fn default() -> Self {
        Self {
            layout: Layout::default(),
            attribution: Attribution::default(),
            crossings: BTreeMap::new(),
            series: HashMap::new(),
        }
    }
}

impl<S: SeriesModel> Ledger<S> {
    /// Applies a (validated) layout on top of the current one (see [`Layout::merge`]) and
    /// re-attributes stored crossings.
    pub fn apply_layout(&mut self, layout: &Layout) {
        let rules_before = self.rules();
        self.layout.merge(layout);
        let attribution = Attribution::from_layout(&self.layout);
        let stored: Vec<Attributed> = self
            .crossings
            .iter()
            .map(|((_, copy), (crossing, doorway))| Attributed {
                crossing: crossing.clone(),
                copy: *copy,
                doorway: doorway.and_then(|d| self.attribution.doorway(d).cloned()),
            })
            .collect();
        let plan = plan_reattribution(&stored, &attribution);
        for (key, doorway) in plan.moved {
            for (_, entry) in self.crossings.range_mut(Self::copies_of(&key)) {
                entry.1 = doorway;
            }
        }
        self.apply_changes(plan.changes);
        self.attribution = attribution;
        // A space whose reset rule changed is summarized again from its first entry.
        let rules = self.rules();
        for (space, series) in &mut self.series {
            if rules.get(space) != rules_before.get(space) {
                series.set_reset(rules.get(space).copied());
            }
        }
    }

    /// Each space's daily reset, by the current layout.
    fn rules(&self) -> HashMap<SpaceId, DailyReset> {
        self.layout
            .spaces
            .iter()
            .filter_map(|s| Some((s.id, DailyReset::of(s.id, &self.layout.spaces)?)))
            .collect()
    }

    /// Every copy of one key, as a range of `crossings`.
    fn copies_of(key: &CrossingKey) -> std::ops::RangeInclusive<(CrossingKey, u32)> {
        (key.clone(), 0)..=(key.clone(), u32::MAX)
    }

    pub fn ingest(&mut self, batch: &[Crossing]) -> IngestReport {
        let mut keys: HashMap<CrossingKey, Stored> = HashMap::new();
        for crossing in batch {
            let key = crossing.key();
            if keys.contains_key(&key) {
                continue;
            }
            let mut stored = Stored::default();
            for (_, (c, _)) in self.crossings.range(Self::copies_of(&key)) {
                stored.copies += 1;
                stored.ids.extend(c.event_id);
            }
            if stored.copies > 0 {
                keys.insert(key, stored);
            }
        }
        let plan = plan_batch(batch, &Known { keys }, &self.attribution);
        let mut report = IngestReport::from(&plan);
        for (key, id) in plan.named {
            if let Some((crossing, _)) = self.crossings.get_mut(&(key, 0)) {
                crossing.event_id = Some(id);
            }
        }
        for new in plan.new {
            let key = (new.crossing.key(), new.copy);
            self.crossings.insert(key, (new.crossing, new.doorway));
        }
        report.recounted = self.apply_changes(plan.changes);
        report
    }

    /// Applies the changes; answers how many entries and summaries they read.
    fn apply_changes(&mut self, changes: BTreeMap<SpaceId, SpaceChange>) -> usize {
        let rules = self.rules();
        let mut read = 0;
        for (space, change) in changes {
            let rule = rules.get(&space).copied();
            read += self
                .series
                .entry(space)
                .or_insert_with(|| S::new(space, rule))
                .apply(&change);
        }
        read
    }

    pub fn count_at(&self, space: SpaceId, t: Timestamp) -> i64 {
        self.series.get(&space).map_or(0, |s| s.count_at(t))
    }

    pub fn current(&self, space: SpaceId) -> i64 {
        self.series.get(&space).map_or(0, S::current)
    }

    /// Distinct crossings stored, counted or pending.
    pub fn len(&self) -> usize {
        self.crossings.len()
    }

    pub fn is_empty(&self) -> bool {
        self.crossings.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Direction, DpuId};

    fn crossing(second: i64, id: u64) -> Crossing {
        let ts = "2018-02-26T08:00:00Z".parse::<Timestamp>().unwrap()
            + chrono::TimeDelta::seconds(second);
        Crossing::new(DpuId::new("283").unwrap(), ts, Direction::In, Some(id))
    }

    #[test]
    fn ids_tell_apart_crossings_of_one_instant_and_never_refuse_others() {
        let mut ledger: Ledger = Ledger::default();
        assert_eq!(ledger.ingest(&[crossing(1, 7)]).inserted, 1);
        // Id 7 again at another time is another crossing; id 8 at second 1 is a second
        // person seen in that instant; the repeat of (1, 7) is a duplicate.
        let report = ledger.ingest(&[crossing(1, 7), crossing(2, 7), crossing(1, 8)]);
        assert_eq!((report.inserted, report.duplicates), (2, 1));
        assert_eq!(ledger.len(), 3);
    }
}
