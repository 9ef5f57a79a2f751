//! The write paths, written once for every backend.
//!
//! A backend implements [`WriteTx`], a handful of primitive reads and writes inside one
//! transaction; the flows below combine them with the domain's planning and recount rules.
//! Keeping the flow here means SQLite and PostgreSQL cannot drift apart in what they count.

use crate::tiers::{Appended, Note, Span};
use crate::{InUse, IngestOutcome, LayoutReport, Missing, StoreError};
use async_trait::async_trait;
use roomer_occupancy::effect::Effect;
use roomer_occupancy::layout::Attribution;
use roomer_occupancy::plan::{
    plan_batch, plan_reattribution, Attributed, IngestReport, Known, NewCrossing,
};
use roomer_occupancy::reset::DailyReset;
use roomer_occupancy::series::{EntryKey, SpaceChange, Step};
use roomer_occupancy::tiers::Tier;
use roomer_occupancy::{
    Crossing, CrossingKey, Doorway, DoorwayId, DpuId, Installation, Layout, Space, SpaceId,
    Timestamp, OUTSIDE,
};
use std::collections::{BTreeMap, BTreeSet, HashMap};

pub(crate) type Result<T> = std::result::Result<T, StoreError>;

/// The primitive operations of one write transaction.
#[async_trait]
pub(crate) trait WriteTx: Send {
    /// Ingest takes this shared, layout changes exclusive, so attribution cannot change under
    /// a batch. A no-op where the database has a single writer anyway.
    async fn lock_layout(&mut self, exclusive: bool) -> Result<()>;
    /// Takes the summarizer's turn if no other writer has it (`true`); never waits. The turn
    /// lasts until the transaction ends.
    async fn try_lock_summaries(&mut self) -> Result<bool>;
    /// Waits for the summarizer's turn (layout changes, which rebuild summaries).
    async fn lock_summaries(&mut self) -> Result<()>;

    /// Every stored copy of the batch's crossing keys, with the ids they carry.
    async fn known(&mut self, batch: &[Crossing]) -> Result<Known>;
    /// Gives stored crossings sent without an id so far (copy 0) their first id; `false` if
    /// one had changed meanwhile because of another writer.
    async fn name_crossings(&mut self, named: &[(CrossingKey, u64)]) -> Result<bool>;
    /// All doorways, and the installation histories of these DPUs.
    async fn attribution(&mut self, dpus: &[DpuId]) -> Result<Attribution>;
    /// Returns how many rows were new; fewer than given means another writer got there first.
    async fn insert_crossings(
        &mut self,
        rows: &[NewCrossing],
        received_at: Timestamp,
    ) -> Result<usize>;

    async fn remove_entries(&mut self, keys: &[(SpaceId, EntryKey)]) -> Result<()>;
    async fn insert_entries(&mut self, keys: &[(SpaceId, EntryKey)]) -> Result<()>;
    /// How many entries each span holds, in the order given.
    async fn entry_counts(&mut self, spans: &[Span]) -> Result<Vec<usize>>;
    /// The entries inside the spans as steps, ordered by space, instant and rank.
    async fn steps_in(&mut self, spans: &[Span]) -> Result<Vec<(SpaceId, Step)>>;
    /// The summaries of `tier` that start inside the spans, ordered by space and start.
    async fn tier_rows_in(
        &mut self,
        tier: Tier,
        spans: &[Span],
    ) -> Result<Vec<(SpaceId, Timestamp, Effect)>>;
    /// Stores summaries of `tier` (`None`: the bucket has none any more).
    async fn put_tier_rows(
        &mut self,
        tier: Tier,
        rows: &[(SpaceId, Timestamp, Option<Effect>)],
    ) -> Result<()>;
    /// Notes minutes whose summaries are out of date, each with the seconds changed in it
    /// (bits 0 to 59; see `tiers::dense`).
    async fn mark_pending(&mut self, notes: &[(SpaceId, Timestamp, i64)]) -> Result<()>;
    /// Takes (reads and deletes) up to `limit` notes (seconds `None`: the whole minute), the
    /// first by space and minute. A note another writer makes meanwhile stays for the next
    /// turn. In that order, a turn under a backlog takes every note of the minutes it takes,
    /// however many batches made them, and rereads each of their seconds once; taken in the
    /// order they were made, each turn took the notes of a few batches, which touched nearly
    /// every second of a shared space's day, and reread them all again.
    async fn take_pending(&mut self, limit: usize) -> Result<Vec<Note>>;
    /// Forgets every summary of a space, and its notes.
    async fn clear_tiers(&mut self, space: SpaceId) -> Result<()>;
    /// The first instant of every minute that holds an entry of the space.
    async fn entry_minutes(&mut self, space: SpaceId) -> Result<Vec<Timestamp>>;
    /// Whether entries are stored but no summary is (a database from before summaries).
    async fn tiers_missing(&mut self) -> Result<bool>;
    /// Every space with entries.
    async fn spaces_with_entries(&mut self) -> Result<Vec<SpaceId>>;

    async fn doorways(&mut self) -> Result<Vec<Doorway>>;
    /// Every space, Outside included.
    async fn spaces(&mut self) -> Result<Vec<Space>>;
    /// Deletes a space and its count history; returns whether it existed.
    async fn delete_space(&mut self, id: SpaceId) -> Result<bool>;
    /// Whether any installation, past or present, names this doorway.
    async fn doorway_installed(&mut self, id: DoorwayId) -> Result<bool>;
    async fn delete_doorway(&mut self, id: DoorwayId) -> Result<bool>;
    /// Forgets a DPU's declaration (its installations must be gone); returns whether it was
    /// declared.
    async fn delete_dpu(&mut self, dpu: &DpuId) -> Result<bool>;
    /// Returns whether anything changed.
    async fn upsert_space(&mut self, space: &Space) -> Result<bool>;
    async fn upsert_doorway(&mut self, doorway: &Doorway) -> Result<bool>;
    async fn upsert_dpu(&mut self, dpu: &DpuId) -> Result<bool>;
    async fn installations(&mut self, dpu: &DpuId) -> Result<Vec<Installation>>;
    async fn replace_installations(&mut self, dpu: &DpuId, history: &[Installation]) -> Result<()>;
    /// Stored crossings of these DPUs, or attributed to these doorways, each with its copy.
    async fn crossings_for(
        &mut self,
        dpus: &[DpuId],
        doorways: &[DoorwayId],
    ) -> Result<Vec<(Crossing, u32, Option<DoorwayId>)>>;
    async fn set_doorways(&mut self, moved: &[(CrossingKey, Option<DoorwayId>)]) -> Result<()>;

    /// Keeps refused messages.
    async fn insert_rejected(&mut self, rows: &[crate::Rejected]) -> Result<()>;
    /// Records statuses; per DPU the one with the latest time wins, whatever their order.
    async fn record_statuses(&mut self, statuses: &[(DpuId, bool, Timestamp)]) -> Result<()>;
    /// Records that DPUs were heard from (the latest time per DPU wins).
    async fn record_seen(&mut self, seen: &[(DpuId, Timestamp)]) -> Result<()>;
}

/// Stores a batch. `Ok(None)` means another writer stored some of the same crossings while
/// this one planned (a copy it meant to insert exists, or a crossing it meant to name has an
/// id already): the caller rolls back and tries again, and the retry sees them as known. No
/// lock is needed for that: every change a plan makes to the crossings table is an insert of
/// a new primary key or a conditional update, so a concurrent writer's change shows up as a
/// conflict rather than as a lost update.
pub(crate) async fn ingest(
    tx: &mut dyn WriteTx,
    batch: &[Crossing],
    now: Timestamp,
    summarize: bool,
) -> Result<Option<IngestOutcome>> {
    tx.lock_layout(false).await?;
    let dpus: BTreeSet<DpuId> = batch.iter().map(|c| c.dpu.clone()).collect();
    let dpus: Vec<DpuId> = dpus.into_iter().collect();
    let known = tx.known(batch).await?;
    let attribution = tx.attribution(&dpus).await?;
    let plan = plan_batch(batch, &known, &attribution);
    if tx.insert_crossings(&plan.new, now).await? != plan.new.len()
        || !tx.name_crossings(&plan.named).await?
    {
        return Ok(None);
    }
    let mut report = IngestReport::from(&plan);
    let touched = plan.changes.keys().copied().collect();
    let turn = if summarize { Turn::IfFree } else { Turn::Later };
    report.recounted = apply_changes(tx, plan.changes, turn).await?;
    Ok(Some(IngestOutcome { report, touched }))
}

/// Applies a layout and re-attributes the stored crossings it affects.
pub(crate) async fn apply_layout(tx: &mut dyn WriteTx, layout: &Layout) -> Result<LayoutReport> {
    layout.validate()?;
    tx.lock_layout(true).await?;
    let old_doorways = doorways_by_id(tx).await?;
    let rules_before = reset_rules(&tx.spaces().await?);
    let mut changed = 0;
    for space in &layout.spaces {
        changed += usize::from(tx.upsert_space(space).await?);
    }
    let mut resided = Vec::new();
    for doorway in &layout.doorways {
        changed += usize::from(tx.upsert_doorway(doorway).await?);
        let old = old_doorways.get(&doorway.id);
        if old.is_some_and(|o| {
            (o.exiting_to, o.entering_to) != (doorway.exiting_to, doorway.entering_to)
        }) {
            resided.push(doorway.id);
        }
    }
    let mut moved_dpus = Vec::new();
    for dpu in &layout.dpus {
        changed += usize::from(tx.upsert_dpu(&dpu.id).await?);
        let mut history = dpu.installations.clone();
        history.sort_by_key(|i| i.from);
        if tx.installations(&dpu.id).await? != history {
            tx.replace_installations(&dpu.id, &history).await?;
            moved_dpus.push(dpu.id.clone());
            changed += 1;
        }
    }
    let reattributed = reattribute(tx, &old_doorways, &moved_dpus, &resided).await?;
    let spaces = tx.spaces().await?;
    recount_changed_rules(tx, &rules_before, &spaces).await?;
    Ok(LayoutReport {
        changed,
        reattributed,
    })
}

/// Replaces one DPU's installation history (registering the DPU if it is new) and
/// re-attributes its stored crossings, pending ones included.
pub(crate) async fn set_installations(
    tx: &mut dyn WriteTx,
    dpu: &DpuId,
    history: &[Installation],
) -> Result<LayoutReport> {
    tx.lock_layout(true).await?;
    let old_doorways = doorways_by_id(tx).await?;
    let known = old_doorways.keys().copied().collect();
    let history = roomer_occupancy::layout::checked_history(dpu, history, &known)?;
    let mut changed = usize::from(tx.upsert_dpu(dpu).await?);
    if tx.installations(dpu).await? == history {
        return Ok(LayoutReport {
            changed,
            reattributed: 0,
        });
    }
    tx.replace_installations(dpu, &history).await?;
    changed += 1;
    let reattributed = reattribute(tx, &old_doorways, std::slice::from_ref(dpu), &[]).await?;
    Ok(LayoutReport {
        changed,
        reattributed,
    })
}

async fn doorways_by_id(tx: &mut dyn WriteTx) -> Result<HashMap<DoorwayId, Doorway>> {
    Ok(tx
        .doorways()
        .await?
        .into_iter()
        .map(|d| (d.id, d))
        .collect())
}

/// Moves the stored crossings of `moved_dpus`, and of doorways whose sides changed, to
/// where the current layout puts them, and recounts the spaces they leave and enter.
/// Returns how many crossings now count for other spaces than before.
async fn reattribute(
    tx: &mut dyn WriteTx,
    old_doorways: &HashMap<DoorwayId, Doorway>,
    moved_dpus: &[DpuId],
    resided: &[DoorwayId],
) -> Result<usize> {
    if moved_dpus.is_empty() && resided.is_empty() {
        return Ok(0);
    }
    let stored = tx.crossings_for(moved_dpus, resided).await?;
    let attributed: Vec<Attributed> = stored
        .into_iter()
        .map(|(crossing, copy, doorway)| Attributed {
            crossing,
            copy,
            doorway: doorway.and_then(|id| old_doorways.get(&id).cloned()),
        })
        .collect();
    let dpus: BTreeSet<DpuId> = attributed.iter().map(|a| a.crossing.dpu.clone()).collect();
    let dpus: Vec<DpuId> = dpus.into_iter().collect();
    let attribution = tx.attribution(&dpus).await?;
    let plan = plan_reattribution(&attributed, &attribution);
    // Crossings that now count for other spaces: those moved to another doorway (or out of
    // or into pending), and those on a doorway whose sides changed.
    let mut affected: BTreeSet<CrossingKey> = plan.moved.iter().map(|(k, _)| k.clone()).collect();
    affected.extend(
        attributed
            .iter()
            .filter(|a| a.doorway.as_ref().is_some_and(|d| resided.contains(&d.id)))
            .map(|a| a.crossing.key()),
    );
    tx.set_doorways(&plan.moved).await?;
    apply_changes(tx, plan.changes, Turn::Wait).await?;
    Ok(affected.len())
}

/// Whether a write waits for the summarizer's turn.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Turn {
    /// Batches: summarize if no other writer is, else leave the notes to it.
    IfFree,
    /// Layout changes, rare and already exclusive: wait, so they end summarized.
    Wait,
    /// Batches between the summarizer's runs (`cadence`): only note the seconds.
    Later,
}

/// Stores the changes' entries; then, with the summarizer's turn, brings the summaries of
/// their minutes (and of any noted by other writers) up to date, or else notes the minutes
/// for whoever has the turn. Answers how many entries and summaries the summarizer read.
async fn apply_changes(
    tx: &mut dyn WriteTx,
    changes: BTreeMap<SpaceId, SpaceChange>,
    turn: Turn,
) -> Result<usize> {
    if changes.is_empty() {
        return Ok(0);
    }
    let mut removes = Vec::new();
    let mut inserts = Vec::new();
    // The seconds changed: what the summarizer rereads of a dense minute (`tiers::dense`).
    let mut seconds = BTreeSet::new();
    let mut removed = BTreeSet::new();
    let mut appended: Appended = BTreeMap::new();
    for (space, change) in changes {
        for key in change.removes {
            seconds.insert((space, Tier::Second.floor(key.ts)));
            removed.insert((space, Tier::Minute.floor(key.ts)));
            removes.push((space, key));
        }
        for key in change.inserts {
            let minute = Tier::Minute.floor(key.ts);
            seconds.insert((space, Tier::Second.floor(key.ts)));
            appended
                .entry((space, minute))
                .or_default()
                .push(Step::from(&key));
            inserts.push((space, key));
        }
    }
    // A minute that also lost entries is recomputed whole.
    appended.retain(|minute, _| !removed.contains(minute));
    tx.remove_entries(&removes).await?;
    tx.insert_entries(&inserts).await?;
    let mine = match turn {
        Turn::IfFree => tx.try_lock_summaries().await?,
        Turn::Wait => {
            tx.lock_summaries().await?;
            true
        }
        Turn::Later => false,
    };
    if !mine {
        tx.mark_pending(&crate::tiers::notes_of(&seconds)).await?;
        return Ok(0);
    }
    Ok(crate::tiers::summarize_pending(tx, seconds, appended)
        .await?
        .read)
}

/// One turn of the summarizer on its own (after a batch that found it taken, or at start):
/// `None` if another writer has the turn, else what it did.
pub(crate) async fn summarize(tx: &mut dyn WriteTx) -> Result<Option<crate::tiers::Summarized>> {
    tx.lock_layout(false).await?;
    if !tx.try_lock_summaries().await? {
        return Ok(None);
    }
    Ok(Some(
        crate::tiers::summarize_pending(tx, BTreeSet::new(), BTreeMap::new()).await?,
    ))
}

/// Each space's daily reset.
pub(crate) fn reset_rules(spaces: &[Space]) -> HashMap<SpaceId, DailyReset> {
    spaces
        .iter()
        .filter_map(|s| Some((s.id, DailyReset::of(s.id, spaces)?)))
        .collect()
}

/// Recounts every space whose reset rule differs between `before` and `after`.
async fn recount_changed_rules(
    tx: &mut dyn WriteTx,
    before: &HashMap<SpaceId, DailyReset>,
    after: &[Space],
) -> Result<()> {
    let after_rules = reset_rules(after);
    let changed: Vec<SpaceId> = after
        .iter()
        .map(|s| s.id)
        .filter(|id| before.get(id) != after_rules.get(id))
        .collect();
    if changed.is_empty() {
        return Ok(());
    }
    tx.lock_summaries().await?;
    crate::tiers::summarize_pending(tx, BTreeSet::new(), BTreeMap::new()).await?;
    for space in changed {
        crate::tiers::rebuild(tx, space, &after_rules).await?;
    }
    Ok(())
}

/// Creates or replaces one space, checked against the spaces stored.
pub(crate) async fn put_space(tx: &mut dyn WriteTx, space: &Space) -> Result<bool> {
    if space.id == OUTSIDE {
        return Err(roomer_occupancy::LayoutError::OutsideDeclared(OUTSIDE).into());
    }
    tx.lock_layout(true).await?;
    let stored = tx.spaces().await?;
    let rules_before = reset_rules(&stored);
    let mut spaces = stored;
    spaces.retain(|s| s.id != OUTSIDE && s.id != space.id);
    spaces.push(space.clone());
    roomer_occupancy::layout::check_space_tree(&spaces)?;
    let changed = tx.upsert_space(space).await?;
    if changed {
        recount_changed_rules(tx, &rules_before, &spaces).await?;
    }
    Ok(changed)
}

pub(crate) async fn delete_space(tx: &mut dyn WriteTx, id: SpaceId) -> Result<()> {
    if id == OUTSIDE {
        return Err(InUse::Outside.into());
    }
    tx.lock_layout(true).await?;
    if let Some(d) = tx
        .doorways()
        .await?
        .into_iter()
        .find(|d| d.exiting_to == id || d.entering_to == id)
    {
        return Err(InUse::SideOfDoorway {
            space: id,
            doorway: d.id,
        }
        .into());
    }
    let spaces = tx.spaces().await?;
    if let Some(child) = spaces.iter().find(|s| s.parent == Some(id)) {
        return Err(InUse::Parent {
            space: id,
            child: child.id,
        }
        .into());
    }
    if !tx.delete_space(id).await? {
        return Err(Missing::Space(id).into());
    }
    Ok(())
}

/// Creates or replaces one doorway; crossings move with its sides.
pub(crate) async fn put_doorway(tx: &mut dyn WriteTx, doorway: &Doorway) -> Result<LayoutReport> {
    tx.lock_layout(true).await?;
    let spaces: BTreeSet<SpaceId> = tx.spaces().await?.into_iter().map(|s| s.id).collect();
    for side in [doorway.exiting_to, doorway.entering_to] {
        if !spaces.contains(&side) {
            return Err(roomer_occupancy::LayoutError::UnknownSpace {
                doorway: doorway.id,
                space: side,
            }
            .into());
        }
    }
    if doorway.exiting_to == doorway.entering_to {
        return Err(roomer_occupancy::LayoutError::SameSpaceBothSides(doorway.id).into());
    }
    roomer_occupancy::layout::check_name("doorway", doorway.id, &doorway.name)?;
    let old_doorways = doorways_by_id(tx).await?;
    let changed = usize::from(tx.upsert_doorway(doorway).await?);
    let resided: Vec<DoorwayId> = old_doorways
        .get(&doorway.id)
        .filter(|o| (o.exiting_to, o.entering_to) != (doorway.exiting_to, doorway.entering_to))
        .map(|o| o.id)
        .into_iter()
        .collect();
    let reattributed = reattribute(tx, &old_doorways, &[], &resided).await?;
    Ok(LayoutReport {
        changed,
        reattributed,
    })
}

pub(crate) async fn delete_doorway(tx: &mut dyn WriteTx, id: DoorwayId) -> Result<()> {
    tx.lock_layout(true).await?;
    if tx.doorway_installed(id).await? {
        return Err(InUse::Installed(id).into());
    }
    if !tx.delete_doorway(id).await? {
        return Err(Missing::Doorway(id).into());
    }
    Ok(())
}

/// Forgets a DPU: its installations go, its crossings become pending (kept).
pub(crate) async fn delete_dpu(tx: &mut dyn WriteTx, dpu: &DpuId) -> Result<LayoutReport> {
    tx.lock_layout(true).await?;
    let old_doorways = doorways_by_id(tx).await?;
    let had_history = !tx.installations(dpu).await?.is_empty();
    if had_history {
        tx.replace_installations(dpu, &[]).await?;
    }
    let reattributed = reattribute(tx, &old_doorways, std::slice::from_ref(dpu), &[]).await?;
    if !tx.delete_dpu(dpu).await? && !had_history {
        return Err(Missing::Dpu(dpu.clone()).into());
    }
    Ok(LayoutReport {
        changed: 1,
        reattributed,
    })
}
