//! The count of one space at an instant: what it reads, in one round trip when nothing
//! before the instant awaits the summarizer (the common case), and how it folds that.

use super::dense::DENSE_MINUTE;
use super::plan;
use super::read::{noted_spans, rule_of, TierRead};
use super::Span;
use crate::engine::Result;
use roomer_occupancy::effect::Effect;
use roomer_occupancy::reset::DailyReset;
use roomer_occupancy::series::Step;
use roomer_occupancy::tiers::{Folder, Tier};
use roomer_occupancy::{SpaceId, Timestamp};
use std::collections::BTreeSet;

/// What a count at `t` reads first, whatever awaits the summarizer: enough to answer alone
/// when no minute before `t`'s own is noted, which a backend reads in one snapshot where it
/// can ([`TierRead::count_start`]).
#[derive(Debug, Default)]
pub(crate) struct CountStart {
    /// The minutes up to `t`'s own noted for the summarizer (in any order, perhaps repeated).
    pub noted: Vec<Timestamp>,
    /// The summaries of [`start_ranges`]: those a count up to `t`'s minute folds when nothing
    /// is noted, and the seconds of `t`'s minute before `t`'s second.
    pub summaries: Vec<(Tier, Timestamp, Effect)>,
    /// The first `DENSE_MINUTE + 1` entries of `t`'s minute up to `t`: all of them if the
    /// minute is sparse, and the sign that it is dense if there are more.
    pub minute: Vec<Step>,
    /// The entries of `t`'s second up to `t` (what a dense minute folds after its seconds; a
    /// backend may leave it empty when `minute` shows the minute sparse).
    pub second: Vec<Step>,
}

/// The summary ranges of [`CountStart::summaries`].
pub(crate) fn start_ranges(t: Timestamp) -> Vec<plan::TierRange> {
    let mut ranges = plan::current_ranges(Tier::Minute.floor(t), &BTreeSet::new());
    ranges.extend(plan::rest_of_dense_minute(t, false).0);
    ranges
}

/// [`TierRead::count_start`] over the port's other reads: the notes first, then the rest
/// (see [`reads_for_count`] on why in that order).
pub(crate) async fn count_start_by_parts<R: TierRead + ?Sized>(
    read: &R,
    space: SpaceId,
    t: Timestamp,
) -> Result<CountStart> {
    let minute = Tier::Minute.floor(t);
    let after = t + chrono::TimeDelta::microseconds(1);
    let noted = read
        .pending_before_each(&[(space, Tier::Minute.end(minute))])
        .await?;
    let ranges = start_ranges(t);
    let (summaries, own) = tokio::try_join!(
        read.tier_ranges(space, &ranges),
        read.entries_between(space, minute, after, Some(DENSE_MINUTE + 1)),
    )?;
    // A sparse minute's first crossings are all of it, its second's among them.
    let second = if own.len() > DENSE_MINUTE {
        read.entries_between(space, Tier::Second.floor(t), after, None)
            .await?
    } else {
        Vec::new()
    };
    Ok(CountStart {
        noted: noted.into_iter().map(|(_, n)| n).collect(),
        summaries,
        minute: own.iter().map(Step::from).collect(),
        second: second.iter().map(Step::from).collect(),
    })
}

/// [`Store::count_at`](crate::Store::count_at): at `t`, or now.
pub(crate) async fn count_of(
    read: &dyn TierRead,
    space: SpaceId,
    at: Option<Timestamp>,
) -> Result<Option<i64>> {
    let Some(t) = at else {
        let Some((rule, _)) = rule_of(read, space).await? else {
            return Ok(None);
        };
        let counts = super::read::currents(read, &[(space, rule)], chrono::Utc::now()).await?;
        return Ok(counts.first().copied());
    };
    // The space's rule and what the count folds are read at the same time.
    let (found, reads) = tokio::try_join!(rule_of(read, space), reads_for_count(read, space, t))?;
    let Some((rule, _)) = found else {
        return Ok(None);
    };
    Ok(Some(fold_count(space, rule.as_ref(), reads, t)))
}

/// The count of `space` right after everything at or before `t`: the summaries up to the
/// first minute still noted for the summarizer (or `t`'s own minute), then the entries.
pub(super) async fn count_at(
    read: &dyn TierRead,
    space: SpaceId,
    rule: Option<&DailyReset>,
    t: Timestamp,
) -> Result<i64> {
    let reads = reads_for_count(read, space, t).await?;
    Ok(fold_count(space, rule, reads, t))
}

/// What a count at `t` folds: current summaries, and the crossings of the minutes noted for
/// the summarizer and of `t`'s own minute up to `t` (see `plan`).
struct CountReads {
    summaries: Vec<(Tier, Timestamp, Effect)>,
    steps: Vec<Step>,
}

/// Reads what a count at `t` folds. [`CountStart`] answers alone unless a minute before `t`'s
/// own is noted, or `t`'s minute is dense and noted (its seconds' summaries may be stale);
/// then the summaries around the noted minutes and the crossings [`CountStart`] lacks are
/// read after it. The notes must be read before the summaries, or together with them: the
/// summarizer updates summaries and drops notes in one commit, so summaries read later are
/// at least as new as the notes seen (read at the same time, a summarizer's commit between
/// the two reads made stale summaries look up to date; the property test caught it). A
/// minute with more crossings than a sparse one holds is dense: its seconds before `t`'s
/// are folded from their summaries and only `t`'s own second from its crossings (`dense`).
async fn reads_for_count(read: &dyn TierRead, space: SpaceId, t: Timestamp) -> Result<CountReads> {
    let minute = Tier::Minute.floor(t);
    let after = t + chrono::TimeDelta::microseconds(1);
    let start = read.count_start(space, t).await?;
    let mut noted: BTreeSet<Timestamp> =
        start.noted.iter().map(|&n| Tier::Minute.floor(n)).collect();
    let own_noted = noted.remove(&minute);
    let dense = start.minute.len() > DENSE_MINUTE;
    let (seconds, from) = plan::rest_of_dense_minute(t, own_noted);
    let (steps, mut spans) = match (dense, own_noted) {
        (false, _) => (start.minute, Vec::new()),
        (true, false) => (start.second, Vec::new()),
        // Its seconds' summaries may be stale: the minute up to `t` from its crossings.
        (true, true) => (
            Vec::new(),
            vec![Span {
                space,
                from,
                to: after,
            }],
        ),
    };
    if noted.is_empty() && spans.is_empty() {
        let mut summaries = start.summaries;
        if !dense {
            summaries.retain(|&(tier, _, _)| tier != Tier::Second);
        }
        return Ok(CountReads { summaries, steps });
    }
    let mut ranges = plan::current_ranges(minute, &noted);
    if dense {
        ranges.extend(seconds);
    }
    spans.extend(noted_spans(space, &noted));
    let (summaries, more) = tokio::try_join!(read.tier_ranges(space, &ranges), async {
        if spans.is_empty() {
            return Ok(Vec::new());
        }
        read.steps_each(&spans).await
    })?;
    let mut steps = steps;
    steps.extend(more.into_iter().map(|(_, step)| step));
    Ok(CountReads { summaries, steps })
}

fn fold_count(space: SpaceId, rule: Option<&DailyReset>, reads: CountReads, t: Timestamp) -> i64 {
    let mut folder = Folder::new(space, rule, None);
    let mut steps = reads.steps;
    steps.sort();
    plan::fold_in_order(&mut folder, reads.summaries, steps);
    let after = t + chrono::TimeDelta::microseconds(1);
    roomer_occupancy::effect::count_after(0, folder.finish(after).as_ref())
}
