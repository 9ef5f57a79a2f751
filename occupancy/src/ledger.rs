//! An in-memory store built from the domain's pieces, exactly as the SQL backends use them.
//!
//! It is what the property tests drive with shuffled, duplicated and batched input, and a
//! baseline for the benchmarks; it keeps nothing across restarts.

use crate::layout::{Attribution, Layout};
use crate::model::{Crossing, CrossingKey, DoorwayId, SpaceId, Timestamp};
use crate::plan::{plan_batch, plan_reattribution, Attributed, IngestReport, Known};
use crate::series::{SpaceChange, SpaceSeries};
use std::collections::{BTreeMap, HashMap};

#[derive(Clone, Debug, Default)]
pub struct Ledger {
    layout: Layout,
    attribution: Attribution,
    crossings: BTreeMap<CrossingKey, (Crossing, Option<DoorwayId>)>,
    series: HashMap<SpaceId, SpaceSeries>,
}

impl Ledger {
    /// Applies a (validated) layout on top of the current one (see [`Layout::merge`]) and
    /// re-attributes stored crossings.
    pub fn apply_layout(&mut self, layout: &Layout) {
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
    }

    pub fn ingest(&mut self, batch: &[Crossing]) -> IngestReport {
        let known = Known {
            keys: batch
                .iter()
                .map(Crossing::key)
                .filter(|k| self.crossings.contains_key(k))
                .collect(),
            ids: self
                .crossings
                .values()
                .filter_map(|(c, _)| c.event_id.map(|id| ((c.dpu.clone(), id), c.key())))
                .collect(),
        };
        let plan = plan_batch(batch, &known, &self.attribution);
        let report = IngestReport::from(&plan);
        for (crossing, doorway) in plan.new {
            self.crossings.insert(crossing.key(), (crossing, doorway));
        }
        self.apply_changes(plan.changes);
        report
    }

    fn apply_changes(&mut self, changes: BTreeMap<SpaceId, SpaceChange>) {
        for (space, change) in changes {
            self.series.entry(space).or_default().apply(space, &change);
        }
    }

    pub fn count_at(&self, space: SpaceId, t: Timestamp) -> i64 {
        self.series.get(&space).map_or(0, |s| s.count_at(t))
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
