//! Counts and history folded from the summaries, over a narrow read port.
//!
//! A minute still noted for the summarizer has a stale summary, and so has every bucket
//! above it; the folds descend from such a bucket into its current children and read only
//! the noted minutes from their entries (`plan`), so every read is exact whether or not the
//! summarizer has caught up. History buckets are in `buckets.rs`.

use super::count::{count_at, CountStart};
use crate::engine::Result;
use crate::tiers::dense::DENSE_MINUTE;
use crate::tiers::{plan, Span};
use async_trait::async_trait;
use roomer_occupancy::effect::Effect;
use roomer_occupancy::history::Bucket;
use roomer_occupancy::reset::DailyReset;
use roomer_occupancy::series::{EntryKey, Step};
use roomer_occupancy::tiers::{Folder, Tier};
use roomer_occupancy::{Space, SpaceId, Timestamp};
use std::collections::{BTreeSet, HashMap};

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
    /// The entries in `[from, to)`, in key order (the first `limit` of them).
    async fn entries_between(
        &self,
        space: SpaceId,
        from: Timestamp,
        to: Timestamp,
        limit: Option<usize>,
    ) -> Result<Vec<EntryKey>>;
    /// The space and its ancestors (empty if it does not exist).
    async fn space_chain(&self, space: SpaceId) -> Result<Vec<Space>>;
    /// The instants in `[from, to)` noted for the summarizer (seconds; minutes in a database
    /// noted before seconds were), in order.
    async fn pending_between(
        &self,
        space: SpaceId,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<Timestamp>>;

    // Many spaces in one statement each (`currents`).

    /// The instant of each space's latest entry, in the order given.
    async fn last_entries(&self, spaces: &[SpaceId]) -> Result<Vec<Option<Timestamp>>>;
    /// For each `(space, to)`, the instants before `to` noted for the summarizer, distinct,
    /// ordered by space and instant.
    async fn pending_before_each(
        &self,
        before: &[(SpaceId, Timestamp)],
    ) -> Result<Vec<(SpaceId, Timestamp)>>;
    /// The summaries in each `(space, tier, from, to)` range (from the first with no
    /// `from`), ordered by space, then start (coarser tier first).
    async fn tier_ranges_each(
        &self,
        ranges: &[(SpaceId, Tier, Option<Timestamp>, Timestamp)],
    ) -> Result<Vec<(SpaceId, Tier, Timestamp, Effect)>>;
    /// The entries inside the spans as steps, ordered by space, instant and rank.
    async fn steps_each(&self, spans: &[Span]) -> Result<Vec<(SpaceId, Step)>>;
    /// The first `limit` entries of each span as steps, ordered by space, instant and rank.
    async fn first_steps_each(&self, spans: &[Span], limit: usize) -> Result<Vec<(SpaceId, Step)>>;

    /// What a count at `t` reads first ([`CountStart`]). A database that can reads it in one
    /// statement: one round trip and one snapshot.
    async fn count_start(&self, space: SpaceId, t: Timestamp) -> Result<CountStart> {
        super::count::count_start_by_parts(self, space, t).await
    }
}

/// A space's daily reset and capacity; `None` if the space does not exist.
pub(super) async fn rule_of(
    read: &dyn TierRead,
    space: SpaceId,
) -> Result<Option<(Option<DailyReset>, Option<u32>)>> {
    let chain = read.space_chain(space).await?;
    let Some(found) = chain.iter().find(|s| s.id == space) else {
        return Ok(None);
    };
    Ok(Some((DailyReset::of(space, &chain), found.capacity)))
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
        super::buckets::buckets(read, space, rule.as_ref(), bounds, capacity).await?,
    ))
}

/// [`Store::space`](crate::Store::space): one space with its count now.
pub(crate) async fn space_of(
    read: &dyn TierRead,
    id: SpaceId,
) -> Result<Option<crate::SpaceCount>> {
    let chain = read.space_chain(id).await?;
    let Some(found) = chain.iter().find(|s| s.id == id).cloned() else {
        return Ok(None);
    };
    // The chain is all a daily reset rule needs (the space's own or an ancestor's).
    Ok(with_counts(read, vec![found], &chain).await?.pop())
}

/// Spaces with their current counts; `all` is every space (for reset rules), or empty when
/// none of `spaces` resets.
pub(crate) async fn with_counts(
    read: &dyn TierRead,
    spaces: Vec<Space>,
    all: &[Space],
) -> Result<Vec<crate::SpaceCount>> {
    let now = chrono::Utc::now();
    let rules: Vec<(SpaceId, Option<DailyReset>)> = spaces
        .iter()
        .map(|s| (s.id, DailyReset::of(s.id, all)))
        .collect();
    let counts = currents(read, &rules, now).await?;
    Ok(spaces
        .into_iter()
        .zip(counts)
        .map(|(space, count)| crate::SpaceCount::new(space, count))
        .collect())
}

/// [`Store::counts_now`](crate::Store::counts_now), given every space of the building.
pub(crate) async fn counts_now_of(
    read: &dyn TierRead,
    all: &[Space],
    wanted: &[SpaceId],
) -> Result<Vec<(SpaceId, i64)>> {
    let wanted: BTreeSet<SpaceId> = wanted.iter().copied().collect();
    let rules: Vec<(SpaceId, Option<DailyReset>)> = all
        .iter()
        .filter(|s| wanted.contains(&s.id))
        .map(|s| (s.id, DailyReset::of(s.id, all)))
        .collect();
    let counts = currents(read, &rules, chrono::Utc::now()).await?;
    Ok(rules.iter().map(|(s, _)| *s).zip(counts).collect())
}

/// The counts now of distinct spaces, in three round trips whatever their number: each
/// after its latest crossing (even one stamped ahead of `now`), and 0 if a daily reset came
/// between that crossing and `now`.
pub(crate) async fn currents(
    read: &dyn TierRead,
    spaces: &[(SpaceId, Option<DailyReset>)],
    now: Timestamp,
) -> Result<Vec<i64>> {
    let ids: Vec<SpaceId> = spaces.iter().map(|(s, _)| *s).collect();
    debug_assert_eq!(
        ids.iter().collect::<BTreeSet<_>>().len(),
        ids.len(),
        "distinct spaces"
    );
    let lasts = read.last_entries(&ids).await?;
    // (index in `spaces`, space, its latest entry): only these have anything to fold.
    let counted: Vec<(usize, SpaceId, Timestamp)> = lasts
        .iter()
        .enumerate()
        .filter_map(|(i, last)| last.map(|t| (i, ids[i], t)))
        .collect();
    let minutes: Vec<(SpaceId, Timestamp)> = counted
        .iter()
        .map(|&(_, space, last)| (space, Tier::Minute.floor(last)))
        .collect();
    // The notes first, then the summaries (see `reads_for_count`); each space's last minute
    // is read meanwhile, up to one crossing more than a sparse minute holds.
    let before: Vec<(SpaceId, Timestamp)> = minutes
        .iter()
        .map(|&(space, minute)| (space, Tier::Minute.end(minute)))
        .collect();
    let last_minutes: Vec<Span> = counted
        .iter()
        .zip(&minutes)
        .map(|(&(_, space, last), &(_, minute))| Span {
            space,
            from: minute,
            to: last + chrono::TimeDelta::microseconds(1),
        })
        .collect();
    let (notes, firsts) = tokio::try_join!(
        read.pending_before_each(&before),
        read.first_steps_each(&last_minutes, DENSE_MINUTE + 1),
    )?;
    let mut noted_of: HashMap<SpaceId, BTreeSet<Timestamp>> = HashMap::new();
    for (space, noted) in notes {
        noted_of
            .entry(space)
            .or_default()
            .insert(Tier::Minute.floor(noted));
    }
    let mut firsts_of: HashMap<SpaceId, Vec<Step>> = HashMap::new();
    for (space, step) in firsts {
        firsts_of.entry(space).or_default().push(step);
    }
    let mut ranges = Vec::new();
    let mut spans = Vec::new();
    let mut steps_of: HashMap<SpaceId, Vec<Step>> = HashMap::new();
    for (&(_, space, last), &(_, minute)) in counted.iter().zip(&minutes) {
        let mut noted = noted_of.remove(&space).unwrap_or_default();
        let own_noted = noted.remove(&minute);
        ranges.extend(
            plan::current_ranges(minute, &noted)
                .into_iter()
                .map(|(tier, from, to)| (space, tier, from, to)),
        );
        spans.extend(noted_spans(space, &noted));
        let after = last + chrono::TimeDelta::microseconds(1);
        let own = firsts_of.remove(&space).unwrap_or_default();
        if own.len() <= DENSE_MINUTE {
            steps_of.insert(space, own);
        } else {
            let (seconds, from) = plan::rest_of_dense_minute(last, own_noted);
            ranges.extend(seconds.map(|(tier, from, to)| (space, tier, from, to)));
            spans.push(Span {
                space,
                from,
                to: after,
            });
        }
    }
    spans.sort_by_key(|s| (s.space, s.from));
    let read_steps = async {
        if spans.is_empty() {
            return Ok(Vec::new());
        }
        read.steps_each(&spans).await
    };
    let (summaries, steps) = tokio::try_join!(read.tier_ranges_each(&ranges), read_steps)?;
    let mut summaries_of: HashMap<SpaceId, Vec<(Tier, Timestamp, Effect)>> = HashMap::new();
    for (space, tier, start, effect) in summaries {
        summaries_of
            .entry(space)
            .or_default()
            .push((tier, start, effect));
    }
    for (space, step) in steps {
        steps_of.entry(space).or_default().push(step);
    }
    let mut out = vec![0; spaces.len()];
    for (i, space, last) in counted {
        let rule = spaces[i].1.as_ref();
        let mut folder = Folder::new(space, rule, None);
        let mut steps = steps_of.remove(&space).unwrap_or_default();
        steps.sort();
        plan::fold_in_order(
            &mut folder,
            summaries_of.remove(&space).unwrap_or_default(),
            steps,
        );
        let after = last + chrono::TimeDelta::microseconds(1);
        let count = roomer_occupancy::effect::count_after(0, folder.finish(after).as_ref());
        out[i] = roomer_occupancy::reset::apply(rule, count, Some(last), now);
    }
    Ok(out)
}

/// The noted minutes of a space, as spans of its crossings to read.
pub(super) fn noted_spans(
    space: SpaceId,
    noted: &BTreeSet<Timestamp>,
) -> impl Iterator<Item = Span> + '_ {
    noted.iter().map(move |&minute| Span {
        space,
        from: minute,
        to: Tier::Minute.end(minute),
    })
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
    let clamped = roomer_occupancy::is_clamped(space);
    let mut count = carried_in;
    let mut previous = before;
    let mut points = Vec::new();
    for key in read.entries_between(space, from, to, None).await? {
        if rule.is_some_and(|r| r.between(Some(previous), key.ts)) {
            count = 0;
        }
        previous = key.ts;
        count = roomer_occupancy::series::step(count, key.delta(), clamped);
        points.push(roomer_occupancy::history::SeriesPoint {
            ts: key.ts,
            arrival: key.rank == roomer_occupancy::series::Rank::Arrival,
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
