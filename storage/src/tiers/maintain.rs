//! Keeping the summaries, written once over the write port.
//!
//! A batch stores its entries and takes no lock of the spaces it touches, so writers of a
//! shared space (Outside, a lobby) never queue behind each other. If it gets the
//! summarizer's turn, taken without waiting, it recomputes its own minutes and those other
//! writers noted, and every bucket above them, for all spaces at once, a few statements per
//! tier, and deletes the notes it read; if not, it notes its minutes (`mark_pending`) for the
//! writer that has the turn. Notes made meanwhile stay for the
//! next turn, and the reads fold the entries of noted minutes, so no count waits for it.

use super::dense::{self, DENSE_MINUTE};
use super::{spans, Appended, Span};
use crate::engine::{reset_rules, Result, WriteTx};
use roomer_occupancy::effect::Effect;
use roomer_occupancy::reset::DailyReset;
use roomer_occupancy::tiers::{self, summarize, Tier};
use roomer_occupancy::{SpaceId, Timestamp};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Notes handled per turn: a turn's statements stay bounded after a long outage.
const NOTES_PER_TURN: usize = 50_000;

/// What one turn of the summarizer did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Summarized {
    /// Notes handled (0: there were none).
    pub notes: usize,
    /// Entries and summaries read to recompute them.
    pub read: usize,
}

/// Recomputes `mine` (the seconds the caller's own transaction changed, never noted) and the
/// seconds noted so far (up to [`NOTES_PER_TURN`] of them, taken from the notes), with
/// their minutes and the buckets above them. The caller holds the summarizer's turn.
pub(crate) async fn summarize_pending(
    tx: &mut dyn WriteTx,
    mine: BTreeSet<(SpaceId, Timestamp)>,
    mut appended: Appended,
) -> Result<Summarized> {
    let notes = tx.take_pending(NOTES_PER_TURN).await?;
    let mut touched = mine;
    touched.extend(notes.iter().flat_map(super::seconds_of));
    if touched.is_empty() {
        return Ok(Summarized::default());
    }
    let rules = reset_rules(&tx.spaces().await?);
    // A minute another writer noted holds entries this one has not seen.
    for &(space, minute, _) in &notes {
        appended.remove(&(space, minute));
    }
    let (done, mut read) = append(tx, &rules, appended).await?;
    read += resummarize(tx, &rules, touched, done).await?;
    Ok(Summarized {
        notes: notes.len(),
        read,
    })
}

/// Summarizes the minutes this transaction only appended to (`roomer_occupancy::tiers::append`)
/// from their old summaries and the appended steps, where every entry of the minute from the
/// first appended one on is an appended one; answers the summaries of those minutes, and how
/// many entries and summaries it read to tell. Other minutes are left to [`resummarize`].
async fn append(
    tx: &mut dyn WriteTx,
    rules: &HashMap<SpaceId, DailyReset>,
    mut appended: Appended,
) -> Result<(BTreeMap<(SpaceId, Timestamp), Option<Effect>>, usize)> {
    appended.retain(|&(space, minute), _| tiers::appendable(rules.get(&space), minute));
    if appended.is_empty() {
        return Ok((BTreeMap::new(), 0));
    }
    for steps in appended.values_mut() {
        steps.sort();
    }
    let from_first: Vec<Span> = appended
        .iter()
        .map(|(&(space, minute), steps)| Span {
            space,
            from: steps[0].ts,
            to: Tier::Minute.end(minute),
        })
        .collect();
    let counts = tx.entry_counts(&from_first).await?;
    let minutes: BTreeSet<(SpaceId, Timestamp)> = appended.keys().copied().collect();
    let old: BTreeMap<(SpaceId, Timestamp), Effect> = tx
        .tier_rows_in(Tier::Minute, &spans(Tier::Minute, &minutes))
        .await?
        .into_iter()
        .map(|(space, start, effect)| ((space, start), effect))
        .collect();
    let read = counts.iter().sum::<usize>() + old.len();
    let mut done = BTreeMap::new();
    for (((space, minute), steps), count) in appended.into_iter().zip(counts) {
        let old = old.get(&(space, minute)).copied();
        // A minute that is or becomes dense keeps its seconds too (`dense::recount`).
        let dense = old.as_ref().map_or(0, dense::crossings_in) + steps.len() > DENSE_MINUTE;
        if count == steps.len() && !dense {
            let rule = rules.get(&space);
            let summary = tiers::append(space, rule, minute, old, steps);
            done.insert((space, minute), summary);
        }
    }
    Ok((done, read))
}

/// Recomputes the summaries of the minutes of the seconds in `changed` and of every bucket
/// above them, for all their spaces at once, except the minutes already summarized in
/// `done`, which are stored as given; answers how many entries and summaries it read.
pub(crate) async fn resummarize(
    tx: &mut dyn WriteTx,
    rules: &HashMap<SpaceId, DailyReset>,
    changed: BTreeSet<(SpaceId, Timestamp)>,
    done: BTreeMap<(SpaceId, Timestamp), Option<Effect>>,
) -> Result<usize> {
    let mut touched: BTreeSet<(SpaceId, Timestamp)> = changed
        .iter()
        .map(|&(space, s)| (space, Tier::Minute.floor(s)))
        .collect();
    let mut read = 0;
    for tier in Tier::ALL {
        if touched.is_empty() {
            break;
        }
        let summarized: Vec<(SpaceId, Timestamp, Option<Effect>)> = match tier.child() {
            None => {
                let recount: BTreeSet<(SpaceId, Timestamp)> = touched
                    .iter()
                    .filter(|m| !done.contains_key(m))
                    .copied()
                    .collect();
                let (recounted, n) = dense::recount(tx, rules, &recount, &changed).await?;
                read += n;
                touched
                    .iter()
                    .map(|m| {
                        let summary = done.get(m).or_else(|| recounted.get(m));
                        (m.0, m.1, summary.copied().flatten())
                    })
                    .collect()
            }
            Some(child) => {
                let children = tx.tier_rows_in(child, &spans(tier, &touched)).await?;
                read += children.len();
                let mut by_bucket: BTreeMap<(SpaceId, Timestamp), Vec<(Timestamp, Effect)>> =
                    BTreeMap::new();
                for (space, start, effect) in children {
                    by_bucket
                        .entry((space, tier.floor(start)))
                        .or_default()
                        .push((start, effect));
                }
                touched
                    .iter()
                    .map(|&(space, s)| {
                        let kids = by_bucket.get(&(space, s)).map(Vec::as_slice);
                        let rule = rules.get(&space);
                        let effect = summarize(space, rule, tier, s, [], kids.unwrap_or_default());
                        (space, s, effect)
                    })
                    .collect()
            }
        };
        tx.put_tier_rows(tier, &summarized).await?;
        let Some(parent) = tier.parent() else { break };
        touched = touched
            .iter()
            .map(|&(space, s)| (space, parent.floor(s)))
            .collect();
    }
    Ok(read)
}

/// Rebuilds every summary of a space (its reset rule changed). The caller holds the
/// summarizer's turn.
pub(crate) async fn rebuild(
    tx: &mut dyn WriteTx,
    space: SpaceId,
    rules: &HashMap<SpaceId, DailyReset>,
) -> Result<usize> {
    tx.clear_tiers(space).await?;
    // Each minute given by its first second: with its summaries cleared, it is read whole.
    let minutes = tx
        .entry_minutes(space)
        .await?
        .into_iter()
        .map(|m| (space, m))
        .collect();
    resummarize(tx, rules, minutes, BTreeMap::new()).await
}

/// Summarizes the series stored before summaries were kept, once, right after the migration
/// that added them (several workers may start together: the first one does it). Answers how
/// many spaces it summarized, `None` if nothing needed it; the caller commits.
pub(crate) async fn upgrade(tx: &mut dyn WriteTx) -> Result<Option<usize>> {
    if !tx.tiers_missing().await? {
        return Ok(None);
    }
    tx.lock_layout(true).await?;
    tx.lock_summaries().await?;
    if !tx.tiers_missing().await? {
        return Ok(None);
    }
    let rules = reset_rules(&tx.spaces().await?);
    let spaces = tx.spaces_with_entries().await?;
    for &space in &spaces {
        rebuild(tx, space, &rules).await?;
    }
    tracing::info!(
        spaces = spaces.len(),
        "stored count series summarized per minute, hour, day, 30 and 360 days"
    );
    Ok(Some(spaces.len()))
}
