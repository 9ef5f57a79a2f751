//! Each space's tiered summaries (`occupancy::tiers`) in storage: the steps that keep them
//! after a change, written once over the write port, and the folds that read counts and
//! history from them over a narrow read port each backend implements.

use crate::engine::{Result, WriteTx};
use async_trait::async_trait;
use occupancy::effect::{Effect, Map};
use occupancy::history::Bucket;
use occupancy::reset::DailyReset;
use occupancy::series::EntryKey;
use occupancy::tiers::{
    count_ranges, fold_buckets, pieces, summarize, Fetched, Folder, Piece, Tier,
};
use occupancy::{Space, SpaceId, Timestamp};
use std::collections::{BTreeMap, BTreeSet};

/// A summary as the eight integers stored beside its space, tier and start.
pub(crate) fn columns(e: &Effect) -> [i64; 8] {
    [
        e.count.floor,
        e.count.shift,
        e.lowest.floor,
        e.lowest.shift,
        e.highest.floor,
        e.highest.shift,
        e.entrances as i64,
        e.exits as i64,
    ]
}

/// The summary stored as [`columns`].
pub(crate) fn from_columns(c: [i64; 8]) -> Effect {
    let map = |floor, shift| Map { floor, shift };
    Effect {
        count: map(c[0], c[1]),
        lowest: map(c[2], c[3]),
        highest: map(c[4], c[5]),
        entrances: c[6].max(0) as u64,
        exits: c[7].max(0) as u64,
    }
}

/// Whether the buckets of `tier` starting at `starts` (in order) cover at least half of the
/// stretch from the first to the end of the last: then one range scan, filtered afterwards,
/// reads them faster than one lookup per bucket (a batch in time order touches consecutive
/// minutes; a late one scattered ones).
pub(crate) fn dense(tier: Tier, starts: &[Timestamp]) -> bool {
    match (starts.first(), starts.last()) {
        (Some(&first), Some(&last)) => {
            let span = (tier.end(last) - first).num_seconds() / tier.seconds();
            span <= 2 * starts.len() as i64
        }
        _ => true,
    }
}

/// Keeps the entries that fall in the buckets of `tier` starting at `starts`.
pub(crate) fn within(tier: Tier, starts: &[Timestamp], entries: Vec<EntryKey>) -> Vec<EntryKey> {
    let starts: BTreeSet<Timestamp> = starts.iter().copied().collect();
    entries
        .into_iter()
        .filter(|k| starts.contains(&tier.floor(k.ts)))
        .collect()
}

/// The tier stored as `value`.
pub(crate) fn tier_of(value: i64) -> Result<Tier> {
    usize::try_from(value)
        .ok()
        .and_then(|i| Tier::ALL.get(i).copied())
        .ok_or_else(|| crate::StoreError::Corrupt(format!("tier {value}")))
}

/// Recomputes the summaries of the minutes in `minutes` and of every bucket above them;
/// answers how many entries and summaries it read.
pub(crate) async fn resummarize(
    tx: &mut dyn WriteTx,
    space: SpaceId,
    rule: Option<&DailyReset>,
    mut touched: BTreeSet<Timestamp>,
) -> Result<usize> {
    let mut read = 0;
    for tier in Tier::ALL {
        if touched.is_empty() {
            break;
        }
        let starts: Vec<Timestamp> = touched.iter().copied().collect();
        let rows: Vec<(Timestamp, Option<Effect>)> = match tier.child() {
            None => {
                let entries = tx.entries_in(space, tier, &starts).await?;
                read += entries.len();
                let mut by_minute: BTreeMap<Timestamp, Vec<EntryKey>> = BTreeMap::new();
                for key in entries {
                    by_minute.entry(tier.floor(key.ts)).or_default().push(key);
                }
                starts
                    .iter()
                    .map(|&s| {
                        let keys = by_minute.get(&s).map(Vec::as_slice).unwrap_or_default();
                        (s, summarize(space, rule, tier, s, keys, &[]))
                    })
                    .collect()
            }
            Some(child) => {
                let children = tx.tier_rows_in(space, child, tier, &starts).await?;
                read += children.len();
                let mut by_parent: BTreeMap<Timestamp, Vec<(Timestamp, Effect)>> = BTreeMap::new();
                for (start, effect) in children {
                    by_parent
                        .entry(tier.floor(start))
                        .or_default()
                        .push((start, effect));
                }
                starts
                    .iter()
                    .map(|&s| {
                        let kids = by_parent.get(&s).map(Vec::as_slice).unwrap_or_default();
                        (s, summarize(space, rule, tier, s, [], kids))
                    })
                    .collect()
            }
        };
        tx.put_tier_rows(space, tier, &rows).await?;
        let Some(parent) = tier.parent() else { break };
        touched = touched.iter().map(|&s| parent.floor(s)).collect();
    }
    Ok(read)
}

/// Rebuilds every summary of a space (its reset rule changed).
pub(crate) async fn rebuild(
    tx: &mut dyn WriteTx,
    space: SpaceId,
    rule: Option<&DailyReset>,
) -> Result<usize> {
    tx.clear_tiers(space).await?;
    let minutes: BTreeSet<Timestamp> = tx.entry_minutes(space).await?.into_iter().collect();
    resummarize(tx, space, rule, minutes).await
}

/// Summarizes the series stored before summaries were kept, once, right after the migration
/// that added them (several workers may start together: the first one does it). Answers how
/// many spaces it summarized, `None` if nothing needed it; the caller commits.
pub(crate) async fn upgrade(tx: &mut dyn WriteTx) -> Result<Option<usize>> {
    if !tx.tiers_missing().await? {
        return Ok(None);
    }
    tx.lock_layout(true).await?;
    if !tx.tiers_missing().await? {
        return Ok(None);
    }
    let rules = crate::engine::reset_rules(&tx.spaces().await?);
    let spaces = tx.spaces_with_entries().await?;
    for &space in &spaces {
        rebuild(tx, space, rules.get(&space)).await?;
    }
    tracing::info!(
        spaces = spaces.len(),
        "stored count series summarized per minute, hour, day, 30 and 360 days"
    );
    Ok(Some(spaces.len()))
}

/// What the reads need from a backend.
#[async_trait]
pub(crate) trait TierRead: Send + Sync {
    /// The summaries in each `(tier, from, to)` range (starting in `[from, to)`, from the
    /// first with no `from`), in one round trip, ordered by start.
    async fn tier_ranges(
        &self,
        space: SpaceId,
        ranges: &[(Tier, Option<Timestamp>, Timestamp)],
    ) -> Result<Vec<(Tier, Timestamp, Effect)>>;
    /// The entries in `[from, to)`, in key order.
    async fn entries_between(
        &self,
        space: SpaceId,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<EntryKey>>;
    /// The instant of the space's latest entry.
    async fn last_entry(&self, space: SpaceId) -> Result<Option<Timestamp>>;
    /// The space and its ancestors (empty if it does not exist).
    async fn space_chain(&self, space: SpaceId) -> Result<Vec<Space>>;
}

/// A space's daily reset and capacity; `None` if the space does not exist.
async fn rule_of(
    read: &dyn TierRead,
    space: SpaceId,
) -> Result<Option<(Option<DailyReset>, Option<u32>)>> {
    let chain = read.space_chain(space).await?;
    let Some(found) = chain.iter().find(|s| s.id == space) else {
        return Ok(None);
    };
    Ok(Some((DailyReset::of(space, &chain), found.capacity)))
}

/// [`Store::count_at`](crate::Store::count_at): at `t`, or now.
pub(crate) async fn count_of(
    read: &dyn TierRead,
    space: SpaceId,
    at: Option<Timestamp>,
) -> Result<Option<i64>> {
    let Some((rule, _)) = rule_of(read, space).await? else {
        return Ok(None);
    };
    let count = match at {
        Some(t) => count_at(read, space, rule.as_ref(), t).await?,
        None => current(read, space, rule.as_ref(), chrono::Utc::now()).await?,
    };
    Ok(Some(count))
}

/// [`Store::series`](crate::Store::series).
pub(crate) async fn series_of(
    read: &dyn TierRead,
    space: SpaceId,
    from: Timestamp,
    to: Timestamp,
) -> Result<Option<crate::Series>> {
    let Some((rule, _)) = rule_of(read, space).await? else {
        return Ok(None);
    };
    Ok(Some(series(read, space, rule.as_ref(), from, to).await?))
}

/// [`Store::buckets`](crate::Store::buckets).
pub(crate) async fn buckets_of(
    read: &dyn TierRead,
    space: SpaceId,
    bounds: &[(Timestamp, Timestamp)],
) -> Result<Option<Vec<Bucket>>> {
    let Some((rule, capacity)) = rule_of(read, space).await? else {
        return Ok(None);
    };
    Ok(Some(
        buckets(read, space, rule.as_ref(), bounds, capacity).await?,
    ))
}

/// Spaces with their current counts; `all` is every space (for reset rules), or empty when
/// none of `spaces` resets.
pub(crate) async fn with_counts(
    read: &dyn TierRead,
    spaces: Vec<Space>,
    all: &[Space],
) -> Result<Vec<crate::SpaceCount>> {
    let now = chrono::Utc::now();
    let mut out = Vec::with_capacity(spaces.len());
    for space in spaces {
        let rule = DailyReset::of(space.id, all);
        let count = current(read, space.id, rule.as_ref(), now).await?;
        out.push(crate::SpaceCount::new(space, count));
    }
    Ok(out)
}

/// The count of `space` now: after its latest crossing (even one stamped ahead of `now`),
/// and 0 if a daily reset came between that crossing and `now`.
pub(crate) async fn current(
    read: &dyn TierRead,
    space: SpaceId,
    rule: Option<&DailyReset>,
    now: Timestamp,
) -> Result<i64> {
    let Some(last) = read.last_entry(space).await? else {
        return Ok(0);
    };
    let count = count_at(read, space, rule, last).await?;
    Ok(occupancy::reset::apply(rule, count, Some(last), now))
}

/// The count of `space` right after everything at or before `t`.
pub(crate) async fn count_at(
    read: &dyn TierRead,
    space: SpaceId,
    rule: Option<&DailyReset>,
    t: Timestamp,
) -> Result<i64> {
    let mut folder = Folder::new(space, rule, None);
    // The ranges follow each other in time, so ordered by start the rows are in fold order.
    for (tier, start, effect) in read.tier_ranges(space, &count_ranges(t)).await? {
        folder.bucket(start, tier.end(start), &effect);
    }
    let after = t + chrono::TimeDelta::microseconds(1);
    for key in read
        .entries_between(space, Tier::Minute.floor(t), after)
        .await?
    {
        folder.entry(&key);
    }
    Ok(occupancy::effect::count_after(
        0,
        folder.finish(after).as_ref(),
    ))
}

/// History buckets over consecutive `bounds`, from the summaries (and the crossings of
/// partial minutes, if a bound is not on a whole minute).
pub(crate) async fn buckets(
    read: &dyn TierRead,
    space: SpaceId,
    rule: Option<&DailyReset>,
    bounds: &[(Timestamp, Timestamp)],
    capacity: Option<u32>,
) -> Result<Vec<Bucket>> {
    let (Some(&(first, _)), Some(&(_, last))) = (bounds.first(), bounds.last()) else {
        return Ok(Vec::new());
    };
    let plans: Vec<Vec<Piece>> = bounds.iter().map(|&(s, e)| pieces(s, e)).collect();
    let mut wanted: BTreeSet<Tier> = BTreeSet::new();
    let mut partial = Vec::new();
    for piece in plans.iter().flatten() {
        match *piece {
            Piece::Bucket(tier, _) => {
                wanted.insert(tier);
            }
            Piece::Entries(from, to) => partial.push((from, to)),
        }
    }
    let ranges: Vec<(Tier, Option<Timestamp>, Timestamp)> = wanted
        .into_iter()
        .map(|tier| (tier, Some(first), last))
        .collect();
    let rows: BTreeMap<(Tier, Timestamp), Effect> = read
        .tier_ranges(space, &ranges)
        .await?
        .into_iter()
        .map(|(tier, start, effect)| ((tier, start), effect))
        .collect();
    let mut entries: BTreeMap<Timestamp, Vec<EntryKey>> = BTreeMap::new();
    for (from, to) in partial {
        entries.insert(from, read.entries_between(space, from, to).await?);
    }
    let carried = count_at(
        read,
        space,
        rule,
        first - chrono::TimeDelta::microseconds(1),
    )
    .await?;
    let fetch = |piece: Piece| match piece {
        Piece::Bucket(tier, start) => rows.get(&(tier, start)).copied().map(Fetched::Bucket),
        Piece::Entries(from, _) => entries
            .get(&from)
            .map(|e| Fetched::Entries(e.iter().collect())),
    };
    Ok(fold_buckets(space, rule, bounds, carried, capacity, &fetch))
}

/// The entries in `[from, to)` with the count after each, walked one by one from the count
/// just before `from` (the raw path history is checked against).
pub(crate) async fn series(
    read: &dyn TierRead,
    space: SpaceId,
    rule: Option<&DailyReset>,
    from: Timestamp,
    to: Timestamp,
) -> Result<crate::Series> {
    let before = from - chrono::TimeDelta::microseconds(1);
    let carried_in = count_at(read, space, rule, before).await?;
    let clamped = occupancy::is_clamped(space);
    let mut count = carried_in;
    let mut previous = before;
    let mut points = Vec::new();
    for key in read.entries_between(space, from, to).await? {
        if rule.is_some_and(|r| r.between(Some(previous), key.ts)) {
            count = 0;
        }
        previous = key.ts;
        count = occupancy::series::step(count, key.delta(), clamped);
        points.push(occupancy::history::SeriesPoint {
            ts: key.ts,
            arrival: key.rank == occupancy::series::Rank::Arrival,
            count,
        });
    }
    Ok(crate::Series {
        carried_in,
        // `carried_in` already went through the resets before `from`.
        carried_at: None,
        points,
    })
}
