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

/// How a stored crossing came to be counted (rule 3): sent at least once without an id
/// (`plain`), and/or named by event ids, each naming the earliest crossing sent under it.
/// A crossing is counted while it has any support.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Support {
    pub plain: bool,
    pub ids: usize,
}

impl Support {
    pub fn counted(&self) -> bool {
        self.plain || self.ids > 0
    }
}

/// What storage already holds about the crossings of a batch.
#[derive(Clone, Debug, Default)]
pub struct Known {
    /// Stored crossings among the batch's keys and the crossings named by its ids, with
    /// their support.
    pub keys: HashMap<CrossingKey, Support>,
    /// The stored crossing each of the batch's `(DPU, event id)` pairs names, if any.
    pub ids: HashMap<(DpuId, u64), CrossingKey>,
}

/// A crossing sent under an event id that names another crossing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdConflict {
    /// The crossing refused (`displaced` false: a message of this batch), or the stored one
    /// an earlier crossing under the same id took the id from and that nothing else supports
    /// (`displaced` true: it stops counting).
    pub crossing: Crossing,
    /// The crossing the id names.
    pub existing: CrossingKey,
    pub displaced: bool,
}

/// An event id now naming another crossing: `previous` as stored (`None`: new), `now`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Naming {
    pub id: (DpuId, u64),
    pub previous: Option<CrossingKey>,
    pub now: CrossingKey,
}

/// The changes a batch makes.
#[derive(Clone, Debug, Default)]
pub struct BatchPlan {
    /// Crossings to store, each with the doorway it is attributed to (`None`: pending, because
    /// no installation covers it yet). A stored crossing's `event_id` is `None` when it was
    /// sent without one, else an id that names it.
    pub new: Vec<(Crossing, Option<DoorwayId>)>,
    /// Stored crossings that no longer count (see [`IdConflict::displaced`]).
    pub displaced: Vec<CrossingKey>,
    /// Stored crossings now also sent without an id (their `event_id` becomes `None`).
    pub made_plain: Vec<CrossingKey>,
    /// Event ids that name another crossing, or are new.
    pub namings: Vec<Naming>,
    /// Messages that repeat a stored (or earlier in the batch) crossing.
    pub duplicates: usize,
    /// Crossings refused (or displaced) because their id names another crossing.
    pub conflicts: Vec<IdConflict>,
    /// Entries to insert into, and remove from, each space's series.
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

/// Plans a batch (rule 3). The crossings counted are those sent at least once without an id,
/// and, for each event id, the earliest crossing (by key) sent under it: a function of the
/// set of messages received, so neither their order nor their batching matters. A later
/// crossing sent under an id is refused as a conflict; an earlier one takes the id over,
/// and the crossing that had it stops counting unless something else supports it.
pub fn plan_batch(batch: &[Crossing], known: &Known, attribution: &Attribution) -> BatchPlan {
    let mut plan = BatchPlan::default();
    // Each id's crossing after this batch: the earliest of the stored one and the batch's.
    let mut named: BTreeMap<(DpuId, u64), CrossingKey> = BTreeMap::new();
    for crossing in batch {
        if let Some(id) = crossing.event_id {
            let id = (crossing.dpu.clone(), id);
            let stored = known.ids.get(&id);
            let earliest = named
                .entry(id)
                .or_insert_with(|| stored.cloned().unwrap_or_else(|| crossing.key()));
            if crossing.key() < *earliest {
                *earliest = crossing.key();
            }
        }
    }
    // Every crossing's support after this batch.
    let mut support: BTreeMap<CrossingKey, Support> = known
        .keys
        .iter()
        .map(|(key, s)| (key.clone(), *s))
        .collect();
    let mut sent: HashMap<CrossingKey, &Crossing> = HashMap::new();
    for crossing in batch {
        sent.entry(crossing.key()).or_insert(crossing);
        if crossing.event_id.is_none() {
            support.entry(crossing.key()).or_default().plain = true;
        }
    }
    for (id, now) in &named {
        let previous = known.ids.get(id);
        if previous == Some(now) {
            continue;
        }
        if let Some(previous) = previous {
            if let Some(s) = support.get_mut(previous) {
                s.ids = s.ids.saturating_sub(1);
            }
        }
        support.entry(now.clone()).or_default().ids += 1;
        plan.namings.push(Naming {
            id: id.clone(),
            previous: previous.cloned(),
            now: now.clone(),
        });
    }
    // Refused messages: sent under an id that names another crossing.
    let mut seen: HashSet<CrossingKey> = HashSet::new();
    for crossing in batch {
        let key = crossing.key();
        let first_time = seen.insert(key.clone());
        if let Some(id) = crossing.event_id {
            let now = &named[&(crossing.dpu.clone(), id)];
            if *now != key {
                plan.conflicts.push(IdConflict {
                    crossing: crossing.clone(),
                    existing: now.clone(),
                    displaced: false,
                });
                continue;
            }
        }
        if !first_time || known.keys.get(&key).is_some_and(Support::counted) {
            plan.duplicates += 1;
        }
    }
    // What starts and stops counting.
    let id_of: HashMap<&CrossingKey, u64> = named.iter().map(|((_, id), now)| (now, *id)).collect();
    for (key, after) in &support {
        let before = known.keys.get(key).copied().unwrap_or_default();
        match (before.counted(), after.counted()) {
            (false, true) => {
                let template = sent
                    .get(key)
                    .expect("only the batch's keys can start counting");
                let event_id = if after.plain {
                    None
                } else {
                    id_of.get(key).copied()
                };
                let crossing = Crossing::new(key.dpu.clone(), key.ts, key.direction, event_id);
                let doorway = attribution.doorway_at(&template.dpu, template.ts);
                if let Some(doorway) = doorway {
                    for (space, entry) in entries(&crossing, doorway) {
                        plan.changes.entry(space).or_default().inserts.push(entry);
                    }
                }
                plan.new.push((crossing, doorway.map(|d| d.id)));
            }
            (true, false) => {
                let (id, existing) = named
                    .iter()
                    .find(|(id, now)| known.ids.get(*id) == Some(key) && *now != key)
                    .map(|((_, id), now)| (*id, now.clone()))
                    .expect("only losing an id stops a crossing counting");
                let crossing = Crossing::new(key.dpu.clone(), key.ts, key.direction, Some(id));
                if let Some(doorway) = attribution.doorway_at(&key.dpu, key.ts) {
                    for (space, entry) in entries(&crossing, doorway) {
                        plan.changes.entry(space).or_default().removes.push(entry);
                    }
                }
                plan.displaced.push(key.clone());
                plan.conflicts.push(IdConflict {
                    crossing,
                    existing,
                    displaced: true,
                });
            }
            (true, true) if after.plain && !before.plain => plan.made_plain.push(key.clone()),
            _ => {}
        }
    }
    for change in plan.changes.values_mut() {
        change.inserts.sort();
        change.removes.sort();
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
