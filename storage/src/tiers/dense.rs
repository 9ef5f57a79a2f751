//! Minutes summarized from their crossings, or from their seconds when they hold many.
//!
//! A space that every doorway opens onto (Outside, a lobby) gathers thousands of crossings a
//! minute on a campus, and a minute's summary read from all of them made each late crossing
//! cost its whole minute. A minute with more than [`DENSE_MINUTE`] crossings therefore also
//! keeps a summary per second that holds any ([`Tier::Second`]): a late crossing rereads its
//! own second, and the minute is folded from at most 60 second summaries. Sparse minutes (a
//! room's) keep none, so they cost no extra rows.
//!
//! What the reads rely on: a minute not noted for the summarizer that holds more than
//! [`DENSE_MINUTE`] crossings has a current summary for every second that holds one, and a
//! minute with second summaries holds more than [`DENSE_MINUTE`] crossings (so the
//! summarizer's shortcut for appends, which does not keep seconds, never sees one).

use super::spans;
use crate::engine::{Result, WriteTx};
use roomer_occupancy::effect::Effect;
use roomer_occupancy::reset::DailyReset;
use roomer_occupancy::series::Step;
use roomer_occupancy::tiers::{summarize, Folder, Tier};
use roomer_occupancy::{SpaceId, Timestamp};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Crossings a minute holds before it keeps summaries per second as well.
pub(crate) const DENSE_MINUTE: usize = 64;

/// Crossings summarized by one [`Effect`] (each is an entrance or an exit).
pub(crate) fn crossings_in(effect: &Effect) -> usize {
    usize::try_from(effect.entrances + effect.exits).unwrap_or(usize::MAX)
}

/// The summaries of the minutes in `minutes`, recomputed: a minute with second summaries
/// from them, after rereading only its `changed` seconds; any other from all its crossings
/// (and given second summaries if it now holds more than [`DENSE_MINUTE`]). Stores the
/// second summaries; answers the minutes' summaries and how many rows it read.
pub(crate) async fn recount(
    tx: &mut dyn WriteTx,
    rules: &HashMap<SpaceId, DailyReset>,
    minutes: &BTreeSet<(SpaceId, Timestamp)>,
    changed: &BTreeSet<(SpaceId, Timestamp)>,
) -> Result<(BTreeMap<(SpaceId, Timestamp), Option<Effect>>, usize)> {
    let mut seconds_of: BTreeMap<(SpaceId, Timestamp), BTreeMap<Timestamp, Effect>> =
        BTreeMap::new();
    for (space, start, effect) in tx
        .tier_rows_in(Tier::Second, &spans(Tier::Minute, minutes))
        .await?
    {
        seconds_of
            .entry((space, Tier::Minute.floor(start)))
            .or_default()
            .insert(start, effect);
    }
    let mut read = seconds_of.values().map(BTreeMap::len).sum::<usize>();
    // Dense minutes reread their changed seconds; the others are read whole.
    let reread: BTreeSet<(SpaceId, Timestamp)> = changed
        .iter()
        .filter(|&&(space, s)| seconds_of.contains_key(&(space, Tier::Minute.floor(s))))
        .copied()
        .collect();
    let whole: BTreeSet<(SpaceId, Timestamp)> = minutes
        .iter()
        .filter(|m| !seconds_of.contains_key(m))
        .copied()
        .collect();
    let mut wanted = spans(Tier::Second, &reread);
    wanted.extend(spans(Tier::Minute, &whole));
    wanted.sort_by_key(|s| (s.space, s.from));
    let steps = tx.steps_in(&wanted).await?;
    read += steps.len();
    let mut steps_of: BTreeMap<(SpaceId, Timestamp), Vec<Step>> = BTreeMap::new();
    for (space, step) in steps {
        steps_of
            .entry((space, Tier::Minute.floor(step.ts)))
            .or_default()
            .push(step);
    }

    let mut out = BTreeMap::new();
    let mut second_rows: Vec<(SpaceId, Timestamp, Option<Effect>)> = Vec::new();
    for &(space, minute) in minutes {
        let rule = rules.get(&space);
        let steps = steps_of.remove(&(space, minute)).unwrap_or_default();
        let (summary, rows) = match seconds_of.remove(&(space, minute)) {
            Some(mut seconds) => {
                let fresh = by_second(space, rule, steps);
                let mut gone: BTreeSet<Timestamp> = seconds.keys().copied().collect();
                let mut rows = Vec::new();
                let inside = (space, minute)..(space, Tier::Minute.end(minute));
                for &(_, second) in changed.range(inside) {
                    let effect = fresh.get(&second).copied();
                    match effect {
                        Some(e) => seconds.insert(second, e),
                        None => seconds.remove(&second),
                    };
                    rows.push((space, second, effect));
                    gone.insert(second);
                }
                let summary = from_seconds(space, rule, minute, &seconds);
                if summary.as_ref().map_or(0, crossings_in) <= DENSE_MINUTE {
                    // Sparse again (crossings moved away): its seconds go.
                    rows = gone.into_iter().map(|s| (space, s, None)).collect();
                }
                (summary, rows)
            }
            None => {
                let summary = summarize(space, rule, Tier::Minute, minute, steps.clone(), &[]);
                let rows = if steps.len() > DENSE_MINUTE {
                    by_second(space, rule, steps)
                        .into_iter()
                        .map(|(s, e)| (space, s, Some(e)))
                        .collect()
                } else {
                    Vec::new()
                };
                (summary, rows)
            }
        };
        second_rows.extend(rows);
        out.insert((space, minute), summary);
    }
    if !second_rows.is_empty() {
        tx.put_tier_rows(Tier::Second, &second_rows).await?;
    }
    Ok((out, read))
}

/// The summary of each second that holds any of `steps` (in order).
fn by_second(
    space: SpaceId,
    rule: Option<&DailyReset>,
    steps: Vec<Step>,
) -> BTreeMap<Timestamp, Effect> {
    let mut grouped: BTreeMap<Timestamp, Vec<Step>> = BTreeMap::new();
    for step in steps {
        grouped
            .entry(Tier::Second.floor(step.ts))
            .or_default()
            .push(step);
    }
    grouped
        .into_iter()
        .filter_map(|(second, steps)| {
            let effect = summarize(space, rule, Tier::Second, second, steps, &[])?;
            Some((second, effect))
        })
        .collect()
}

/// A minute's summary folded from its seconds' (the resets between them applied as gaps,
/// as an hour is folded from its minutes).
fn from_seconds(
    space: SpaceId,
    rule: Option<&DailyReset>,
    minute: Timestamp,
    seconds: &BTreeMap<Timestamp, Effect>,
) -> Option<Effect> {
    if seconds.is_empty() {
        return None;
    }
    let mut folder = Folder::new(space, rule, Some(minute));
    for (&start, effect) in seconds {
        folder.bucket(start, Tier::Second.end(start), effect);
    }
    folder.finish(Tier::Minute.end(minute))
}
