//! From crossings to per-space changes: deduplication, attribution and re-attribution.
//!
//! Storage backends load what a batch needs to know (which of its crossings are stored already,
//! where the DPUs hung), call these pure functions, and write the resulting plan in one
//! transaction. The in-memory [`crate::ledger::Ledger`] does exactly the same, which is what
//! lets the property tests speak for every backend.

use crate::layout::Attribution;
use crate::model::{Crossing, CrossingKey, Doorway, DoorwayId, DpuId, SpaceId};
use crate::series::{EntryKey, SpaceChange};
use std::collections::{BTreeMap, HashMap, HashSet};

/// What storage already holds about the crossings of a batch.
#[derive(Clone, Debug, Default)]
pub struct Known {
    /// Keys of stored crossings.
    pub keys: HashSet<CrossingKey>,
    /// Stored `(DPU, event id)` pairs and the crossing that carries each.
    pub ids: HashMap<(DpuId, u64), CrossingKey>,
}

impl Known {
    fn remember(&mut self, crossing: &Crossing) {
        self.keys.insert(crossing.key());
        if let Some(id) = crossing.event_id {
            self.ids.insert((crossing.dpu.clone(), id), crossing.key());
        }
    }
}

/// A crossing whose event id is already used by a different crossing of the same DPU.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdConflict {
    pub crossing: Crossing,
    pub existing: CrossingKey,
}

/// The changes a batch makes.
#[derive(Clone, Debug, Default)]
pub struct BatchPlan {
    /// Crossings to store, each with the doorway it is attributed to (`None`: pending, because
    /// no installation covers it yet).
    pub new: Vec<(Crossing, Option<DoorwayId>)>,
    /// Messages that repeat a stored (or earlier in the batch) crossing.
    pub duplicates: usize,
    /// Crossings refused because their id names another crossing.
    pub conflicts: Vec<IdConflict>,
    /// Entries to insert into each space's series.
    pub changes: BTreeMap<SpaceId, SpaceChange>,
}

impl BatchPlan {
    pub fn pending(&self) -> usize {
        self.new.iter().filter(|(_, d)| d.is_none()).count()
    }
}

/// What one batch did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IngestReport {
    pub inserted: usize,
    pub duplicates: usize,
    pub pending: usize,
    pub conflicts: usize,
    /// Series entries the recount visited, over every space: the cost of the batch's late
    /// corrections (rule 5: it grows with the entries after a late crossing, not with the
    /// history before it). Filled in once the changes are applied.
    pub recounted: usize,
}

impl From<&BatchPlan> for IngestReport {
    fn from(plan: &BatchPlan) -> Self {
        Self {
            inserted: plan.new.len(),
            duplicates: plan.duplicates,
            pending: plan.pending(),
            conflicts: plan.conflicts.len(),
            recounted: 0,
        }
    }
}

/// Plans a batch. The outcome does not depend on the order of `batch`'s elements except for
/// crossings that reuse one event id for different events, which is a device fault: the first
/// one seen wins and the others are reported as conflicts.
pub fn plan_batch(batch: &[Crossing], known: &Known, attribution: &Attribution) -> BatchPlan {
    let mut known = known.clone();
    let mut plan = BatchPlan::default();
    for crossing in batch {
        if known.keys.contains(&crossing.key()) {
            plan.duplicates += 1;
            continue;
        }
        if let Some(id) = crossing.event_id {
            if let Some(existing) = known.ids.get(&(crossing.dpu.clone(), id)) {
                plan.conflicts.push(IdConflict {
                    crossing: crossing.clone(),
                    existing: existing.clone(),
                });
                continue;
            }
        }
        known.remember(crossing);
        let doorway = attribution.doorway_at(&crossing.dpu, crossing.ts);
        if let Some(doorway) = doorway {
            for (space, key) in entries(crossing, doorway) {
                plan.changes.entry(space).or_default().inserts.push(key);
            }
        }
        plan.new.push((crossing.clone(), doorway.map(|d| d.id)));
    }
    plan
}

/// The series entries one crossing through `doorway` makes.
pub fn entries(crossing: &Crossing, doorway: &Doorway) -> [(SpaceId, EntryKey); 2] {
    doorway.effects(crossing.direction).map(|(space, delta)| {
        (
            space,
            EntryKey::new(crossing.ts, delta, crossing.dpu.clone()),
        )
    })
}

/// A stored crossing with the doorway it is attributed to now, sides as they are stored.
#[derive(Clone, Debug)]
pub struct Attributed {
    pub crossing: Crossing,
    pub doorway: Option<Doorway>,
}

/// The changes a new layout makes to already stored crossings.
#[derive(Clone, Debug, Default)]
pub struct Reattribution {
    /// Crossings whose doorway changes, with the new one (`None`: now pending).
    pub moved: Vec<(CrossingKey, Option<DoorwayId>)>,
    pub changes: BTreeMap<SpaceId, SpaceChange>,
}

/// Re-attributes stored crossings under a new layout: each crossing's entries move from the
/// spaces its old doorway implied to those the new one implies. Pending crossings that an
/// installation now covers are counted; crossings no installation covers any more become
/// pending. Entries that stay where they are cancel out, so unaffected spaces do no work.
pub fn plan_reattribution(stored: &[Attributed], attribution: &Attribution) -> Reattribution {
    let mut removes: BTreeMap<SpaceId, HashSet<EntryKey>> = BTreeMap::new();
    let mut inserts: BTreeMap<SpaceId, HashSet<EntryKey>> = BTreeMap::new();
    let mut moved = Vec::new();
    for item in stored {
        let new = attribution.doorway_at(&item.crossing.dpu, item.crossing.ts);
        if new == item.doorway.as_ref() {
            continue;
        }
        if new.map(|d| d.id) != item.doorway.as_ref().map(|d| d.id) {
            moved.push((item.crossing.key(), new.map(|d| d.id)));
        }
        for (space, key) in item.doorway.iter().flat_map(|d| entries(&item.crossing, d)) {
            removes.entry(space).or_default().insert(key);
        }
        for (space, key) in new.iter().flat_map(|d| entries(&item.crossing, d)) {
            let cancelled = removes.get_mut(&space).is_some_and(|r| r.remove(&key));
            if !cancelled {
                inserts.entry(space).or_default().insert(key);
            }
        }
    }
    let mut changes: BTreeMap<SpaceId, SpaceChange> = BTreeMap::new();
    for (space, keys) in removes {
        changes.entry(space).or_default().removes = sorted(keys);
    }
    for (space, keys) in inserts {
        changes.entry(space).or_default().inserts = sorted(keys);
    }
    changes.retain(|_, change| !change.is_empty());
    Reattribution { moved, changes }
}

fn sorted(keys: HashSet<EntryKey>) -> Vec<EntryKey> {
    let mut keys: Vec<EntryKey> = keys.into_iter().collect();
    keys.sort();
    keys
}
