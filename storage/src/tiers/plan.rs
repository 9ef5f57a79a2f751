//! What a count folds while minutes wait for the summarizer.
//!
//! A noted minute's summary is stale, and so is every bucket above it; every other summary is
//! current (the summarizer updates a minute and its ancestors in one commit). So a count
//! folds the current summaries, descending from a stale bucket into its children, and reads
//! only the noted minutes from their crossings: its cost is the noted minutes' crossings and
//! at most 60, 24, 30 and 12 summaries per stale bucket, not everything after the first note.

use roomer_occupancy::effect::Effect;
use roomer_occupancy::series::Step;
use roomer_occupancy::tiers::{count_ranges, Folder, Tier};
use roomer_occupancy::Timestamp;
use std::collections::BTreeSet;
use std::ops::Bound;

/// A range of one tier's summaries: those starting in `[from, to)` (from the first with no
/// `from`).
pub(crate) type TierRange = (Tier, Option<Timestamp>, Timestamp);

/// The summary ranges a count up to `minute` (exclusive) folds when the minutes in `noted`
/// (all before `minute`) await the summarizer; those minutes are read from their crossings.
pub(crate) fn current_ranges(minute: Timestamp, noted: &BTreeSet<Timestamp>) -> Vec<TierRange> {
    let mut out = Vec::new();
    for (tier, from, to) in count_ranges(minute) {
        split(tier, from, to, noted, &mut out);
    }
    out
}

/// The current summary ranges inside a bucket of `tier` that holds a noted minute: its
/// children's, descending again into those that hold one (the noted minutes left out).
pub(crate) fn current_inside(
    tier: Tier,
    start: Timestamp,
    noted: &BTreeSet<Timestamp>,
) -> Vec<TierRange> {
    let mut out = Vec::new();
    if let Some(child) = tier.child() {
        split(child, Some(start), tier.end(start), noted, &mut out);
    }
    out
}

/// `[from, to)` of `tier` without its buckets that hold a noted minute, whose children are
/// split in turn (a noted minute itself is left out).
fn split(
    tier: Tier,
    from: Option<Timestamp>,
    to: Timestamp,
    noted: &BTreeSet<Timestamp>,
    out: &mut Vec<TierRange>,
) {
    if from.is_some_and(|f| f >= to) {
        return;
    }
    let lower = from.map_or(Bound::Unbounded, Bound::Included);
    let stale: BTreeSet<Timestamp> = noted
        .range((lower, Bound::Excluded(to)))
        .map(|&n| tier.floor(n))
        .collect();
    let mut cursor = from;
    for bucket in stale {
        if cursor.is_none_or(|c| c < bucket) {
            out.push((tier, cursor, bucket));
        }
        if let Some(child) = tier.child() {
            split(child, Some(bucket), tier.end(bucket), noted, out);
        }
        cursor = Some(tier.end(bucket));
    }
    if cursor.is_none_or(|c| c < to) {
        out.push((tier, cursor, to));
    }
}

/// What a count up to `t` still reads of `t`'s own minute once its first crossings showed it
/// dense (`dense::DENSE_MINUTE`): the summaries of its seconds before `t`'s, unless the
/// minute is `noted` (they may be stale), and the crossings from the instant answered up to
/// `t`.
pub(crate) fn rest_of_dense_minute(t: Timestamp, noted: bool) -> (Option<TierRange>, Timestamp) {
    let minute = Tier::Minute.floor(t);
    if noted {
        return (None, minute);
    }
    let second = Tier::Second.floor(t);
    (Some((Tier::Second, Some(minute), second)), second)
}

/// Folds summaries and crossings that cover disjoint stretches, in time order.
pub(crate) fn fold_in_order(
    folder: &mut Folder<'_>,
    mut summaries: Vec<(Tier, Timestamp, Effect)>,
    steps: Vec<Step>,
) {
    summaries.sort_by_key(|&(_, start, _)| start);
    let mut steps = steps.into_iter().peekable();
    for (tier, start, effect) in summaries {
        while let Some(step) = steps.next_if(|s| s.ts < start) {
            folder.step(step);
        }
        folder.bucket(start, tier.end(start), &effect);
    }
    for step in steps {
        folder.step(step);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn without_notes_the_ranges_are_those_of_a_count() {
        let t = at("2026-03-04T05:06:00Z");
        assert_eq!(current_ranges(t, &BTreeSet::new()), count_ranges(t));
    }

    #[test]
    fn a_noted_minute_is_left_out_and_its_buckets_descend() {
        let t = at("2026-03-04T05:06:00Z");
        let noted = BTreeSet::from([at("2026-03-04T02:30:00Z")]);
        let ranges = current_ranges(t, &noted);
        // The day of the note is read as hours around the note's hour, that hour as
        // minutes around the note, and the note itself not at all.
        let hour = at("2026-03-04T02:00:00Z");
        assert!(ranges.contains(&(Tier::Hour, Some(at("2026-03-04T00:00:00Z")), hour)));
        assert!(ranges.contains(&(Tier::Minute, Some(hour), noted.first().copied().unwrap())));
        assert!(ranges.contains(&(
            Tier::Minute,
            Some(at("2026-03-04T02:31:00Z")),
            at("2026-03-04T03:00:00Z")
        )));
        assert!(ranges.contains(&(
            Tier::Hour,
            Some(at("2026-03-04T03:00:00Z")),
            at("2026-03-04T05:00:00Z")
        )));
        // No range holds the noted minute, and ranges of one tier do not overlap.
        for &(tier, from, to) in &ranges {
            let n = *noted.first().unwrap();
            assert!(!(from.is_none_or(|f| tier.floor(n) >= f) && tier.floor(n) < to));
        }
    }
}
