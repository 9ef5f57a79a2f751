//! Each space's tiered summaries (`roomer_occupancy::tiers`) in storage.
//!
//! Layout: [`maintain`] keeps the summaries (the writer with the summarizer's turn recomputes
//! the minutes changed, its own and those other writers noted, and the buckets above, for all
//! spaces at once, over the write port); [`read`] folds counts and history from them over a
//! narrow read port each backend implements, reading the entries of minutes still noted
//! instead of their summaries; [`count`] is the count at an instant, read in one round trip
//! when nothing before it is noted.

mod buckets;
mod count;
mod dense;
mod maintain;
mod plan;
mod read;

pub(crate) use maintain::{rebuild, summarize_pending, upgrade, Summarized};

pub(crate) use count::{count_of, start_ranges, CountStart};
pub(crate) use dense::DENSE_MINUTE;
pub(crate) use read::{buckets_of, counts_now_of, series_of, space_of, with_counts, TierRead};

use crate::engine::Result;
use roomer_occupancy::effect::{Effect, Map};
use roomer_occupancy::series::Step;
use roomer_occupancy::tiers::Tier;
use roomer_occupancy::{SpaceId, Timestamp};
use std::collections::{BTreeMap, BTreeSet};

/// A note for the summarizer: its space, minute, and the seconds changed in the minute
/// (bits 0 to 59; `None`, from a version that noted minutes only: all of them).
pub(crate) type Note = (SpaceId, Timestamp, Option<i64>);

/// The changed seconds as notes, one per minute.
pub(crate) fn notes_of(seconds: &BTreeSet<(SpaceId, Timestamp)>) -> Vec<(SpaceId, Timestamp, i64)> {
    let mut notes: BTreeMap<(SpaceId, Timestamp), i64> = BTreeMap::new();
    for &(space, second) in seconds {
        let minute = Tier::Minute.floor(second);
        let bit = (second - minute).num_seconds().clamp(0, 59);
        *notes.entry((space, minute)).or_default() |= 1 << bit;
    }
    notes
        .into_iter()
        .map(|((space, minute), bits)| (space, minute, bits))
        .collect()
}

/// The seconds a note names.
pub(crate) fn seconds_of(note: &Note) -> impl Iterator<Item = (SpaceId, Timestamp)> + '_ {
    let &(space, minute, bits) = note;
    (0..60)
        .filter(move |bit| bits.is_none_or(|b| b & (1 << bit) != 0))
        .map(move |bit| (space, minute + chrono::TimeDelta::seconds(bit)))
}

/// The steps a transaction appended to each minute it only added entries to, by space and
/// minute (`maintain::append` summarizes them without rereading the minute).
pub(crate) type Appended = BTreeMap<(SpaceId, Timestamp), Vec<Step>>;

/// Consecutive buckets of one space, `[from, to)`: what the write port reads in one range
/// scan each (a batch in time order touches consecutive minutes, a late one scattered ones).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Span {
    pub space: SpaceId,
    pub from: Timestamp,
    pub to: Timestamp,
}

/// The buckets of `tier` starting at `starts` (sorted by space, then start), merged into
/// spans of consecutive buckets.
pub(crate) fn spans(tier: Tier, starts: &BTreeSet<(SpaceId, Timestamp)>) -> Vec<Span> {
    let mut spans: Vec<Span> = Vec::new();
    for &(space, start) in starts {
        match spans.last_mut() {
            Some(last) if last.space == space && last.to == start => last.to = tier.end(start),
            _ => spans.push(Span {
                space,
                from: start,
                to: tier.end(start),
            }),
        }
    }
    spans
}

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

/// The tier stored as `value`.
pub(crate) fn tier_of(value: i64) -> Result<Tier> {
    Tier::from_code(value).ok_or_else(|| crate::StoreError::Corrupt(format!("tier {value}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn notes_name_each_minute_once_with_its_changed_seconds() {
        let at = |s: i64| chrono::Utc.timestamp_opt(s, 0).unwrap();
        let seconds: BTreeSet<(SpaceId, Timestamp)> =
            [(1, at(60)), (1, at(119)), (1, at(180)), (2, at(61))]
                .into_iter()
                .collect();
        let notes = notes_of(&seconds);
        assert_eq!(
            notes,
            vec![
                (1, at(60), 1 | 1 << 59),
                (1, at(180), 1),
                (2, at(60), 1 << 1)
            ]
        );
        let back: BTreeSet<(SpaceId, Timestamp)> = notes
            .iter()
            .flat_map(|&(space, minute, bits)| {
                let note = (space, minute, Some(bits));
                seconds_of(&note).collect::<Vec<_>>()
            })
            .collect();
        assert_eq!(back, seconds);
        // A note from before seconds were noted stands for its whole minute.
        assert_eq!(seconds_of(&(1, at(60), None)).count(), 60);
    }

    #[test]
    fn consecutive_buckets_of_a_space_merge_into_one_span() {
        let at = |m: i64| chrono::Utc.timestamp_opt(m * 60, 0).unwrap();
        let starts: BTreeSet<(SpaceId, Timestamp)> =
            [(1, at(0)), (1, at(1)), (1, at(3)), (2, at(4)), (2, at(5))]
                .into_iter()
                .collect();
        let span = |space, from, to| Span {
            space,
            from: at(from),
            to: at(to),
        };
        assert_eq!(
            spans(Tier::Minute, &starts),
            vec![span(1, 0, 2), span(1, 3, 4), span(2, 4, 6)]
        );
    }
}
