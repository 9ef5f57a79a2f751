//! History buckets folded from the summaries. A bucket of history is cut into the largest
//! summaries that fit (`roomer_occupancy::tiers::pieces`); a summary that holds a minute noted for
//! the summarizer is stale, and is folded instead from its current children and the noted
//! minutes' crossings (`plan::current_inside`), so history is exact whether or not the
//! summarizer has caught up, and costs the noted minutes' crossings rather than the whole
//! stale bucket's.

use super::count::count_at;
use super::plan::{self, TierRange};
use super::read::TierRead;
use crate::engine::Result;
use crate::tiers::Span;
use roomer_occupancy::effect::Effect;
use roomer_occupancy::history::Bucket;
use roomer_occupancy::reset::DailyReset;
use roomer_occupancy::series::{EntryKey, Step};
use roomer_occupancy::tiers::{fold_buckets, pieces, Fetched, Folder, Piece, Tier};
use roomer_occupancy::{SpaceId, Timestamp};
use std::collections::{BTreeMap, BTreeSet};

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
    // The notes first, then the summaries (see `count::reads_for_count`).
    let noted: BTreeSet<Timestamp> = read
        .pending_between(space, first, last)
        .await?
        .into_iter()
        .map(|noted| Tier::Minute.floor(noted))
        .collect();
    let stale = |tier: Tier, start: Timestamp| noted.range(start..tier.end(start)).next().is_some();
    let mut wanted: BTreeSet<Tier> = BTreeSet::new();
    let mut inside: Vec<TierRange> = Vec::new();
    let mut noted_inside: BTreeSet<Timestamp> = BTreeSet::new();
    let mut partial = Vec::new();
    for piece in bounds.iter().flat_map(|&(s, e)| pieces(s, e)) {
        match piece {
            Piece::Bucket(Tier::Minute, start) if stale(Tier::Minute, start) => {
                partial.push((start, Tier::Minute.end(start)));
            }
            Piece::Bucket(tier, start) if stale(tier, start) => {
                inside.extend(plan::current_inside(tier, start, &noted));
                noted_inside.extend(noted.range(start..tier.end(start)));
            }
            Piece::Bucket(tier, _) => {
                wanted.insert(tier);
            }
            Piece::Entries(from, to) => partial.push((from, to)),
        }
    }
    let mut ranges: Vec<TierRange> = wanted
        .into_iter()
        .map(|tier| (tier, Some(first), last))
        .collect();
    ranges.extend(inside);
    let rows: BTreeMap<(Tier, Timestamp), Effect> = read
        .tier_ranges(space, &ranges)
        .await?
        .into_iter()
        .map(|(tier, start, effect)| ((tier, start), effect))
        .collect();
    let mut entries: BTreeMap<Timestamp, Vec<EntryKey>> = BTreeMap::new();
    for (from, to) in partial {
        entries.insert(from, read.entries_between(space, from, to, None).await?);
    }
    let spans: Vec<Span> = noted_inside
        .iter()
        .map(|&minute| Span {
            space,
            from: minute,
            to: Tier::Minute.end(minute),
        })
        .collect();
    let noted_steps: Vec<Step> = if spans.is_empty() {
        Vec::new()
    } else {
        read.steps_each(&spans)
            .await?
            .into_iter()
            .map(|(_, step)| step)
            .collect()
    };
    let carried = count_at(
        read,
        space,
        rule,
        first - chrono::TimeDelta::microseconds(1),
    )
    .await?;
    // The folds cut the bounds into pieces again.
    let fetch = |piece: Piece| match piece {
        Piece::Bucket(Tier::Minute, start) if stale(Tier::Minute, start) => entries
            .get(&start)
            .map(|e| Fetched::Entries(e.iter().collect())),
        Piece::Bucket(tier, start) if stale(tier, start) => {
            stale_bucket(space, rule, tier, start, &noted, &rows, &noted_steps).map(Fetched::Bucket)
        }
        Piece::Bucket(tier, start) => rows.get(&(tier, start)).copied().map(Fetched::Bucket),
        Piece::Entries(from, _) => entries
            .get(&from)
            .map(|e| Fetched::Entries(e.iter().collect())),
    };
    Ok(fold_buckets(space, rule, bounds, carried, capacity, &fetch))
}

/// A stale bucket's summary, folded from its current children and its noted minutes'
/// crossings, as the summarizer would compute it (`None`: it holds no crossing).
fn stale_bucket(
    space: SpaceId,
    rule: Option<&DailyReset>,
    tier: Tier,
    start: Timestamp,
    noted: &BTreeSet<Timestamp>,
    rows: &BTreeMap<(Tier, Timestamp), Effect>,
    noted_steps: &[Step],
) -> Option<Effect> {
    let end = tier.end(start);
    let summaries: Vec<(Tier, Timestamp, Effect)> = plan::current_inside(tier, start, noted)
        .into_iter()
        .flat_map(|(child, from, to)| {
            rows.range((child, from.unwrap_or(start))..(child, to))
                .map(|(&(t, s), e)| (t, s, *e))
        })
        .collect();
    let steps: Vec<Step> = noted_steps
        .iter()
        .filter(|s| start <= s.ts && s.ts < end)
        .copied()
        .collect();
    if summaries.is_empty() && steps.is_empty() {
        return None;
    }
    let mut folder = Folder::new(space, rule, Some(start));
    plan::fold_in_order(&mut folder, summaries, steps);
    folder.finish(end)
}
