//! A space's series summarized in nested time buckets, so that a late crossing costs the
//! same whatever came after it.
//!
//! Each bucket with crossings keeps an [`Effect`]: a minute's from its crossings, an hour's
//! from its minutes, and so on up to 360-day buckets (all aligned to the Unix epoch in UTC,
//! so hours and days are also the history rollups' buckets). A daily reset inside a bucket is
//! part of its summary; one in a gap between buckets is applied while folding.
//!
//! - A late crossing recomputes its minute from that minute's crossings, then one bucket per
//!   tier from at most 60, 24, 30 and 12 children: bounded work, whatever the space's history
//!   after it.
//! - The count at `T` folds, from the top tier down, the buckets before `T`'s own bucket of
//!   each tier, then the crossings of `T`'s minute up to `T`: at most a few hundred values.
//!
//! [`TieredSeries`] is the in-memory form; the storage backends keep the same buckets in
//! tables and use the same functions to compute them.

use crate::effect::{Effect, Outcome};
use crate::history::Bucket;
use crate::model::{is_clamped, SpaceId, Timestamp};
use crate::reset::DailyReset;
use crate::series::{EntryKey, Step};
use chrono::TimeDelta;

/// The nested bucket lengths, finest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Tier {
    Minute = 0,
    Hour = 1,
    Day = 2,
    Days30 = 3,
    Days360 = 4,
    /// A second of a dense minute: not part of the nested buckets above (a minute's summary
    /// is folded from its crossings or, when it holds many, from its seconds'), kept so that
    /// a late crossing into a busy minute rereads its second, not the whole minute.
    Second = 5,
}

impl Tier {
    pub const ALL: [Self; 5] = [
        Self::Minute,
        Self::Hour,
        Self::Day,
        Self::Days30,
        Self::Days360,
    ];

    pub fn seconds(self) -> i64 {
        match self {
            Self::Second => 1,
            Self::Minute => 60,
            Self::Hour => 3_600,
            Self::Day => 86_400,
            Self::Days30 => 30 * 86_400,
            Self::Days360 => 360 * 86_400,
        }
    }

    /// The start of this tier's bucket that holds `t`.
    pub fn floor(self, t: Timestamp) -> Timestamp {
        let seconds = t.timestamp();
        let floored = seconds - seconds.rem_euclid(self.seconds());
        Timestamp::from_timestamp(floored, 0).unwrap_or(t)
    }

    /// The end (exclusive) of the bucket that starts at `start`.
    pub fn end(self, start: Timestamp) -> Timestamp {
        start + TimeDelta::seconds(self.seconds())
    }

    /// The next coarser tier.
    pub fn parent(self) -> Option<Self> {
        match self {
            Self::Second => Some(Self::Minute),
            _ => Self::ALL.get(self as usize + 1).copied(),
        }
    }

    /// The next finer tier of the nested buckets (a minute has none: its summary is its
    /// crossings', whether folded from them or from its seconds').
    pub fn child(self) -> Option<Self> {
        match self {
            Self::Second => None,
            _ => (self as usize).checked_sub(1).map(|i| Self::ALL[i]),
        }
    }

    /// The tier stored as `code` (`tier as i64`).
    pub fn from_code(code: i64) -> Option<Self> {
        match code {
            5 => Some(Self::Second),
            _ => usize::try_from(code)
                .ok()
                .and_then(|i| Self::ALL.get(i).copied()),
        }
    }
}

/// Whether a daily reset falls in `[from, to)`.
fn resets_in(rule: &DailyReset, from: Timestamp, to: Timestamp) -> bool {
    from < to && rule.last_at_or_before(to - TimeDelta::microseconds(1)) >= from
}

/// Composes a stretch of a series in time order, applying the daily resets that fall in the
/// gaps between what it is given.
pub struct Folder<'a> {
    rule: Option<&'a DailyReset>,
    clamped: bool,
    acc: Option<Effect>,
    /// Resets before this instant are accounted for (`None`: nothing counted yet, so a reset
    /// changes nothing).
    cursor: Option<Timestamp>,
}

impl<'a> Folder<'a> {
    /// A fold that starts at `from` (resets from there on count) or, with `None`, before
    /// anything happened.
    pub fn new(space: SpaceId, rule: Option<&'a DailyReset>, from: Option<Timestamp>) -> Self {
        Self {
            rule,
            clamped: is_clamped(space),
            acc: None,
            cursor: from,
        }
    }

    fn push(&mut self, effect: &Effect) {
        self.acc = Some(match &self.acc {
            None => *effect,
            Some(acc) => acc.then(effect),
        });
    }

    /// Applies a reset if one falls between the cursor and `to`.
    fn gap_to(&mut self, to: Timestamp) {
        if let (Some(rule), Some(from)) = (self.rule, self.cursor) {
            if resets_in(rule, from, to) {
                self.push(&Effect::reset());
            }
        }
        if self.cursor.is_none_or(|c| c < to) {
            self.cursor = Some(to);
        }
    }

    /// A bucket's summary, covering `[start, end)`.
    pub fn bucket(&mut self, start: Timestamp, end: Timestamp, effect: &Effect) {
        self.gap_to(start);
        self.push(effect);
        self.cursor = Some(end);
    }

    /// One crossing (a reset at its own instant comes before it).
    pub fn entry(&mut self, key: &EntryKey) {
        self.step(Step::from(key));
    }

    /// One crossing, given as its instant and direction.
    pub fn step(&mut self, step: Step) {
        let after = step.ts + TimeDelta::microseconds(1);
        self.gap_to(after);
        self.push(&Effect::crossing(step.rank.delta(), self.clamped));
    }

    /// The summary of everything folded, with the resets up to `end` (exclusive).
    pub fn finish(mut self, end: Timestamp) -> Option<Effect> {
        self.gap_to(end);
        self.acc
    }
}

/// The summary of the bucket `[start, tier.end(start))` of `tier`, from its crossings (a
/// minute) or from its children's summaries (any other tier), given in order.
pub fn summarize(
    space: SpaceId,
    rule: Option<&DailyReset>,
    tier: Tier,
    start: Timestamp,
    entries: impl IntoIterator<Item = Step>,
    children: &[(Timestamp, Effect)],
) -> Option<Effect> {
    let mut folder = Folder::new(space, rule, Some(start));
    let mut any = false;
    for step in entries {
        folder.step(step);
        any = true;
    }
    if let Some(child) = tier.child() {
        for (child_start, effect) in children {
            folder.bucket(*child_start, child.end(*child_start), effect);
            any = true;
        }
    }
    // A bucket without crossings has no summary; its resets are applied as a gap.
    any.then(|| folder.finish(tier.end(start))).flatten()
}

/// Whether a minute's summary can follow crossings appended to it without rereading it:
/// no daily reset of the space falls inside the minute, so its summary is the plain
/// composition of its crossings. The caller also checks that every crossing of the minute
/// from the first appended one on is an appended one (a count of one range scan).
pub fn appendable(rule: Option<&DailyReset>, minute: Timestamp) -> bool {
    rule.is_none_or(|rule| !resets_in(rule, minute, Tier::Minute.end(minute)))
}

/// The summary of an [`appendable`] minute after `steps` (in order, all after every
/// crossing it held) were appended to it: its old summary `old` followed by theirs, one by
/// one, which is exactly what [`summarize`] computes from all its crossings.
pub fn append(
    space: SpaceId,
    rule: Option<&DailyReset>,
    minute: Timestamp,
    old: Option<Effect>,
    steps: impl IntoIterator<Item = Step>,
) -> Option<Effect> {
    let mut folder = Folder::new(space, rule, Some(minute));
    folder.acc = old;
    for step in steps {
        folder.step(step);
    }
    folder.finish(Tier::Minute.end(minute))
}

/// The ranges of each tier's buckets that the count at `t` folds, coarsest first: all top-tier
/// buckets before `t`'s, then per tier those between the coarser tier's bucket of `t` and its
/// own. The crossings of `t`'s minute up to `t` follow.
pub fn count_ranges(t: Timestamp) -> Vec<(Tier, Option<Timestamp>, Timestamp)> {
    Tier::ALL
        .iter()
        .rev()
        .map(|&tier| (tier, tier.parent().map(|p| p.floor(t)), tier.floor(t)))
        .collect()
}

/// One part of a stretch of a series: a tier's bucket, or the crossings in part of a minute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Piece {
    Bucket(Tier, Timestamp),
    Entries(Timestamp, Timestamp),
}

/// `[from, to)` cut into the largest tier buckets that fit, and the crossings of the partial
/// minutes at either end (history bounds fall on whole minutes, so usually there are none).
pub fn pieces(from: Timestamp, to: Timestamp) -> Vec<Piece> {
    let mut out = Vec::new();
    let mut cursor = from;
    while cursor < to {
        let fits = Tier::ALL
            .iter()
            .rev()
            .find(|t| t.floor(cursor) == cursor && t.end(cursor) <= to);
        let end = match fits {
            Some(&tier) => {
                out.push(Piece::Bucket(tier, cursor));
                tier.end(cursor)
            }
            None => {
                let stop = Tier::Minute.end(Tier::Minute.floor(cursor)).min(to);
                out.push(Piece::Entries(cursor, stop));
                stop
            }
        };
        cursor = end;
    }
    out
}

/// What one [`Piece`] holds, as read from wherever the tiers are kept.
pub enum Fetched<'a> {
    Bucket(Effect),
    Entries(Vec<&'a EntryKey>),
}

/// The summary of `[from, to)`, given what each of its [`pieces`] holds (`None`: nothing).
pub fn fold_stretch<'a>(
    space: SpaceId,
    rule: Option<&DailyReset>,
    from: Timestamp,
    to: Timestamp,
    fetch: &dyn Fn(Piece) -> Option<Fetched<'a>>,
) -> Option<Effect> {
    let mut folder = Folder::new(space, rule, Some(from));
    for piece in pieces(from, to) {
        match fetch(piece) {
            Some(Fetched::Bucket(effect)) => {
                if let Piece::Bucket(tier, start) = piece {
                    folder.bucket(start, tier.end(start), &effect);
                }
            }
            Some(Fetched::Entries(keys)) => {
                for key in keys {
                    folder.entry(key);
                }
            }
            None => {}
        }
    }
    folder.finish(to)
}

/// History buckets over consecutive `bounds`, `carried` being the count just before the
/// first; each bucket is the fold of its pieces (see [`fold_stretch`]).
pub fn fold_buckets<'a>(
    space: SpaceId,
    rule: Option<&DailyReset>,
    bounds: &[(Timestamp, Timestamp)],
    carried: i64,
    capacity: Option<u32>,
    fetch: &dyn Fn(Piece) -> Option<Fetched<'a>>,
) -> Vec<Bucket> {
    let mut count = carried;
    bounds
        .iter()
        .map(|&(start, end)| {
            // A reset at the bucket's first instant is the count it starts with.
            if rule.is_some_and(|r| r.last_at_or_before(start) == start) {
                count = 0;
            }
            let out = fold_stretch(space, rule, start, end, fetch).map_or(
                Outcome {
                    count,
                    min: count,
                    max: count,
                    entrances: 0,
                    exits: 0,
                },
                |e| e.outcome(count),
            );
            count = out.count;
            Bucket {
                start,
                end,
                count: out.count,
                min: out.min,
                max: out.max,
                entrances: out.entrances,
                exits: out.exits,
                utilization: capacity.map(|c| out.count as f64 / f64::from(c)),
            }
        })
        .collect()
}

mod memory;
pub use memory::TieredSeries;

#[cfg(test)]
mod tests;
