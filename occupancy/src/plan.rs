//! From crossings to per-space changes: deduplication (rule 3), attribution and
//! re-attribution.
//!
//! Storage backends load what a batch needs to know (which of its crossings are stored already,
//! where the DPUs hung), call these pure functions, and write the resulting plan in one
//! transaction. The in-memory [`crate::ledger::Ledger`] does exactly the same, which is what
//! lets the property tests speak for every backend.

use crate::layout::Attribution;
use crate::model::{Crossing, CrossingKey, Doorway, DoorwayId, SpaceId};
use crate::series::{EntryKey, SpaceChange};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// What storage holds of one crossing key (rule 3): how many crossings it counts as, and the
/// event ids they were sent with. `copies` is the number of distinct ids, or 1 when the
/// crossing was only ever sent without one (then `ids` is empty).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stored {
    pub copies: u32,
    pub ids: BTreeSet<u64>,
}

/// What storage already holds of the keys of a batch.
#[derive(Clone, Debug, Default)]
pub struct Known {
    pub keys: HashMap<CrossingKey, Stored>,
}

/// One crossing to store: `copy` tells apart the crossings of one key (0, 1, …), `crossing`
/// carries the id it was sent with (`None`: sent only without one so far), `doorway` is where
/// it counts (`None`: pending, because no installation covers it yet).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewCrossing {
    pub crossing: Crossing,
    pub copy: u32,
    pub doorway: Option<DoorwayId>,
}

/// The changes a batch makes.
#[derive(Clone, Debug, Default)]
pub struct BatchPlan {
    /// Crossings to store.
    pub new: Vec<NewCrossing>,
    /// Stored crossings sent only without an id so far that now come with one: their copy 0
    /// takes it (they count once, as before).
    pub named: Vec<(CrossingKey, u64)>,
    /// Messages that repeat a stored (or earlier in the batch) crossing.
    pub duplicates: usize,
    /// Entries to insert into each space's series.
    pub changes: BTreeMap<SpaceId, SpaceChange>,
}

impl BatchPlan {
    pub fn pending(&self) -> usize {
        self.new.iter().filter(|n| n.doorway.is_none()).count()
    }
}

/// What one batch did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IngestReport {
    pub inserted: usize,
    pub duplicates: usize,
    pub pending: usize,
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
            recounted: 0,
        }
    }
}

/// The crossings one key counts as, given the ids it was ever sent with and whether it was
/// ever sent at all (rule 3): one per distinct id, or one if it only came without an id.
pub fn copies(ids: usize, sent: bool) -> u32 {
    match (ids, sent) {
        (0, false) => 0,
        (0, true) => 1,
        (n, _) => u32::try_from(n).unwrap_or(u32::MAX),
    }
}

/// Plans a batch (rule 3). A crossing is its (DPU, timestamp, direction); an event id only
/// tells apart crossings that share all three (people seen in the same instant), so per key
/// the crossings counted are one per distinct id sent with it, or one if it was only ever
/// sent without an id. A function of the set of messages received: neither their order nor
/// their batching matters, and an id never refuses, merges or un-counts anything.
pub fn plan_batch(batch: &[Crossing], known: &Known, attribution: &Attribution) -> BatchPlan {
    let mut plan = BatchPlan::default();
    // Per key, in key order: the batch's messages and the ids they carry.
    let mut sent: BTreeMap<CrossingKey, (usize, BTreeSet<u64>)> = BTreeMap::new();
    for crossing in batch {
        let (messages, ids) = sent.entry(crossing.key()).or_default();
        *messages += 1;
        ids.extend(crossing.event_id);
    }
    let empty = Stored::default();
    for (key, (messages, batch_ids)) in sent {
        let stored = known.keys.get(&key).unwrap_or(&empty);
        let mut fresh: Vec<u64> = batch_ids.difference(&stored.ids).copied().collect();
        let before = stored.copies;
        let after = copies(stored.ids.len() + fresh.len(), true).max(before);
        plan.duplicates += messages - (after - before) as usize;
        if before == 1 && stored.ids.is_empty() && !fresh.is_empty() {
            // The crossing sent without an id gets its first id: still one crossing.
            plan.named.push((key.clone(), fresh.remove(0)));
        }
        let mut new_ids = fresh.into_iter().map(Some);
        let doorway = attribution.doorway_at(&key.dpu, key.ts);
        for copy in before..after {
            let event_id = new_ids.next().flatten();
            let crossing = Crossing::new(key.dpu.clone(), key.ts, key.direction, event_id);
            if let Some(doorway) = doorway {
                for (space, entry) in entries(&crossing, copy, doorway) {
                    plan.changes.entry(space).or_default().inserts.push(entry);
                }
            }
            plan.new.push(NewCrossing {
                crossing,
                copy,
                doorway: doorway.map(|d| d.id),
            });
        }
    }
    for change in plan.changes.values_mut() {
        change.inserts.sort();
    }
    plan
}

/// The series entries one crossing (copy `copy` of its key) through `doorway` makes.
pub fn entries(crossing: &Crossing, copy: u32, doorway: &Doorway) -> [(SpaceId, EntryKey); 2] {
    doorway.effects(crossing.direction).map(|(space, delta)| {
        (
            space,
            EntryKey::new(crossing.ts, delta, crossing.dpu.clone()).copy(copy),
        )
    })
}

/// A stored crossing (copy `copy` of its key) with the doorway it is attributed to now,
/// sides as they are stored.
#[derive(Clone, Debug)]
pub struct Attributed {
    pub crossing: Crossing,
    pub copy: u32,
    pub doorway: Option<Doorway>,
}

/// The changes a new layout makes to already stored crossings.
#[derive(Clone, Debug, Default)]
pub struct Reattribution {
    /// Crossing keys whose doorway changes (every copy of the key), with the new one
    /// (`None`: now pending).
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
        if new.map(|d| d.id) != item.doorway.as_ref().map(|d| d.id) && item.copy == 0 {
            moved.push((item.crossing.key(), new.map(|d| d.id)));
        }
        let old = item.doorway.as_ref();
        for (space, key) in old
            .iter()
            .flat_map(|d| entries(&item.crossing, item.copy, d))
        {
            removes.entry(space).or_default().insert(key);
        }
        for (space, key) in new
            .iter()
            .flat_map(|d| entries(&item.crossing, item.copy, d))
        {
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
