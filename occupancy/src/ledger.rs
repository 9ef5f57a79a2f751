//! An in-memory store built from the domain's pieces, exactly as the SQL backends use them.
//!
//! It is what the property tests drive with shuffled, duplicated and batched input, and a
//! baseline for the benchmarks; it keeps nothing across restarts.

use crate::layout::{Attribution, Layout};
use crate::model::{Crossing, CrossingKey, DoorwayId, DpuId, SpaceId, Timestamp};
use crate::plan::{plan_batch, plan_reattribution, Attributed, IngestReport, Known, Support};
use crate::reset::DailyReset;
use crate::series::{SpaceChange, SpaceSeries};
use std::collections::{BTreeMap, HashMap};

#[derive(Clone, Debug, Default)]
pub struct Ledger {
    layout: Layout,
    attribution: Attribution,
    crossings: BTreeMap<CrossingKey, (Crossing, Option<DoorwayId>)>,
    /// The crossing each `(DPU, event id)` names (the earliest sent under it).
    ids: HashMap<(DpuId, u64), CrossingKey>,
    /// How many ids name each crossing.
    named: HashMap<CrossingKey, usize>,
    series: HashMap<SpaceId, SpaceSeries>,
}

impl Ledger {
    /// Applies a (validated) layout on top of the current one (see [`Layout::merge`]) and
    /// re-attributes stored crossings.
    pub fn apply_layout(&mut self, layout: &Layout) {
        let rules_before = self.rules();
        self.layout.merge(layout);
        let attribution = Attribution::from_layout(&self.layout);
        let stored: Vec<Attributed> = self
            .crossings
            .values()
            .map(|(crossing, doorway)| Attributed {
                crossing: crossing.clone(),
                doorway: doorway.and_then(|d| self.attribution.doorway(d).cloned()),
            })
            .collect();
        let plan = plan_reattribution(&stored, &attribution);
        for (key, doorway) in plan.moved {
            if let Some(entry) = self.crossings.get_mut(&key) {
                entry.1 = doorway;
            }
        }
        self.apply_changes(plan.changes);
        self.attribution = attribution;
        // A space whose reset rule changed is recounted from its first entry.
        let rules = self.rules();
        for (space, series) in &mut self.series {
            if rules.get(space) != rules_before.get(space) {
                series.recount_all(*space, rules.get(space));
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

    pub fn ingest(&mut self, batch: &[Crossing]) -> IngestReport {
        let ids: HashMap<(DpuId, u64), CrossingKey> = batch
            .iter()
            .filter_map(|c| {
                let id = (c.dpu.clone(), c.event_id?);
                self.ids.get(&id).map(|key| (id, key.clone()))
            })
            .collect();
        let keys = batch
            .iter()
            .map(Crossing::key)
            .chain(ids.values().cloned())
            .filter_map(|key| {
                let (crossing, _) = self.crossings.get(&key)?;
                let support = Support {
                    plain: crossing.event_id.is_none(),
                    ids: self.named.get(&key).copied().unwrap_or(0),
                };
                Some((key, support))
            })
            .collect();
        let plan = plan_batch(batch, &Known { keys, ids }, &self.attribution);
        let mut report = IngestReport::from(&plan);
        for key in &plan.displaced {
            self.crossings.remove(key);
        }
        for key in &plan.made_plain {
            if let Some((crossing, _)) = self.crossings.get_mut(key) {
                crossing.event_id = None;
            }
        }
        for naming in plan.namings {
            if let Some(previous) = &naming.previous {
                if let Some(n) = self.named.get_mut(previous) {
                    *n -= 1;
                }
            }
            *self.named.entry(naming.now.clone()).or_default() += 1;
            self.ids.insert(naming.id, naming.now);
        }
        for (crossing, doorway) in plan.new {
            self.crossings.insert(crossing.key(), (crossing, doorway));
        }
        report.recounted = self.apply_changes(plan.changes);
        report
    }

    /// Applies the changes; answers how many entries the recounts visited.
    fn apply_changes(&mut self, changes: BTreeMap<SpaceId, SpaceChange>) -> usize {
        let rules = self.rules();
        let mut visited = 0;
        for (space, change) in changes {
            let rule = rules.get(&space);
            visited += self
                .series
                .entry(space)
                .or_default()
                .apply(space, &change, rule);
        }
        visited
    }

    pub fn count_at(&self, space: SpaceId, t: Timestamp) -> i64 {
        let rule = DailyReset::of(space, &self.layout.spaces);
        self.series
            .get(&space)
            .map_or(0, |s| s.count_at(t, rule.as_ref()))
    }

    pub fn current(&self, space: SpaceId) -> i64 {
        self.series.get(&space).map_or(0, SpaceSeries::current)
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
    fn an_event_id_names_one_crossing_across_batches() {
        let mut ledger = Ledger::default();
        assert_eq!(ledger.ingest(&[crossing(1, 7)]).inserted, 1);
        let report = ledger.ingest(&[crossing(1, 7), crossing(2, 7), crossing(3, 8)]);
        assert_eq!(
            (report.inserted, report.duplicates, report.conflicts),
            (1, 1, 1)
        );
        assert_eq!(ledger.len(), 2);
    }
}
