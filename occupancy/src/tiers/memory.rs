//! [`TieredSeries`]: a space's series with its tiers, in memory.

use super::{
    append, appendable, count_ranges, fold_buckets, fold_stretch, summarize, Fetched, Folder,
    Piece, Tier,
};
use crate::effect::Effect;
use crate::history::Bucket;
use crate::model::{SpaceId, Timestamp};
use crate::reset::DailyReset;
use crate::series::{EntryKey, SpaceChange, Step};
use chrono::TimeDelta;
use std::collections::{BTreeMap, BTreeSet};

/// A space's series with its tiers, in memory: the model the storage backends follow.
#[derive(Clone, Debug)]
pub struct TieredSeries {
    space: SpaceId,
    reset: Option<DailyReset>,
    entries: BTreeSet<EntryKey>,
    tiers: [BTreeMap<Timestamp, Effect>; 5],
}

impl TieredSeries {
    pub fn new(space: SpaceId, reset: Option<DailyReset>) -> Self {
        Self {
            space,
            reset,
            entries: BTreeSet::new(),
            tiers: Default::default(),
        }
    }

    /// Applies a change; answers how many entries and summaries it read.
    pub fn apply(&mut self, change: &SpaceChange) -> usize {
        let mut touched: BTreeSet<Timestamp> = BTreeSet::new();
        let mut removed: BTreeSet<Timestamp> = BTreeSet::new();
        for key in &change.removes {
            self.entries.remove(key);
            touched.insert(Tier::Minute.floor(key.ts));
            removed.insert(Tier::Minute.floor(key.ts));
        }
        let mut appended: BTreeMap<Timestamp, Vec<Step>> = BTreeMap::new();
        for key in &change.inserts {
            self.entries.insert(key.clone());
            touched.insert(Tier::Minute.floor(key.ts));
            appended
                .entry(Tier::Minute.floor(key.ts))
                .or_default()
                .push(Step::from(key));
        }
        let mut read = 0;
        let mut done = BTreeSet::new();
        for (minute, mut steps) in appended {
            if removed.contains(&minute) || !appendable(self.reset.as_ref(), minute) {
                continue;
            }
            steps.sort();
            let old = self.tiers[Tier::Minute as usize].get(&minute).copied();
            let from_first = self
                .entries_in(steps[0].ts, Tier::Minute.end(minute))
                .count();
            read += from_first + usize::from(old.is_some());
            if from_first == steps.len() {
                let summary = append(self.space, self.reset.as_ref(), minute, old, steps);
                self.put(Tier::Minute, minute, summary);
                done.insert(minute);
            }
        }
        read + self.resummarize_up(touched, &done)
    }

    /// Recomputes the minutes in `touched` but not in `done`, and every bucket above
    /// `touched`; answers how many values it read.
    fn resummarize_up(
        &mut self,
        mut touched: BTreeSet<Timestamp>,
        done: &BTreeSet<Timestamp>,
    ) -> usize {
        let mut read = 0;
        for tier in Tier::ALL {
            read += touched
                .iter()
                .filter(|s| tier != Tier::Minute || !done.contains(s))
                .map(|&s| self.resummarize(tier, s))
                .sum::<usize>();
            let Some(parent) = tier.parent() else { break };
            touched = touched.iter().map(|&s| parent.floor(s)).collect();
        }
        read
    }

    /// Recomputes one bucket; answers how many values it read.
    fn resummarize(&mut self, tier: Tier, start: Timestamp) -> usize {
        let end = tier.end(start);
        let (entries, children): (Vec<Step>, Vec<(Timestamp, Effect)>) = match tier.child() {
            None => (
                self.entries_in(start, end).map(Step::from).collect(),
                Vec::new(),
            ),
            Some(child) => (
                Vec::new(),
                self.tiers[child as usize]
                    .range(start..end)
                    .map(|(s, e)| (*s, *e))
                    .collect(),
            ),
        };
        let read = entries.len() + children.len();
        let summary = summarize(
            self.space,
            self.reset.as_ref(),
            tier,
            start,
            entries,
            &children,
        );
        self.put(tier, start, summary);
        read
    }

    fn put(&mut self, tier: Tier, start: Timestamp, summary: Option<Effect>) {
        let bucket = &mut self.tiers[tier as usize];
        match summary {
            Some(effect) => bucket.insert(start, effect),
            None => bucket.remove(&start),
        };
    }

    fn entries_in(&self, from: Timestamp, to: Timestamp) -> impl Iterator<Item = &EntryKey> {
        let first = EntryKey::first_at(from);
        self.entries.range(first..).take_while(move |k| k.ts < to)
    }

    /// The count right after everything at or before `t`.
    pub fn count_at(&self, t: Timestamp) -> i64 {
        let mut folder = Folder::new(self.space, self.reset.as_ref(), None);
        for (tier, from, to) in count_ranges(t) {
            let buckets = &self.tiers[tier as usize];
            let range = match from {
                Some(from) => buckets.range(from..to),
                None => buckets.range(..to),
            };
            for (start, effect) in range {
                folder.bucket(*start, tier.end(*start), effect);
            }
        }
        let minute = Tier::Minute.floor(t);
        for key in self.entries_in(minute, t + TimeDelta::microseconds(1)) {
            folder.entry(key);
        }
        crate::effect::count_after(0, folder.finish(t + TimeDelta::microseconds(1)).as_ref())
    }

    /// The summary of `[from, to)` (see [`pieces`]); `None` if nothing happened in it.
    pub fn stretch(&self, from: Timestamp, to: Timestamp) -> Option<Effect> {
        fold_stretch(self.space, self.reset.as_ref(), from, to, &|p| {
            self.fetch(p)
        })
    }

    /// History buckets over consecutive `bounds`, from the summaries alone (plus the
    /// crossings of partial minutes).
    pub fn buckets(&self, bounds: &[(Timestamp, Timestamp)], capacity: Option<u32>) -> Vec<Bucket> {
        let Some(&(first, _)) = bounds.first() else {
            return Vec::new();
        };
        let carried = self.count_at(first - TimeDelta::microseconds(1));
        fold_buckets(
            self.space,
            self.reset.as_ref(),
            bounds,
            carried,
            capacity,
            &|p| self.fetch(p),
        )
    }

    fn fetch(&self, piece: Piece) -> Option<Fetched<'_>> {
        match piece {
            Piece::Bucket(tier, start) => self.tiers[tier as usize]
                .get(&start)
                .map(|e| Fetched::Bucket(*e)),
            Piece::Entries(from, to) => Some(Fetched::Entries(self.entries_in(from, to).collect())),
        }
    }

    /// Changes the daily reset rule, which every summary depends on: all are recomputed.
    pub fn set_reset(&mut self, reset: Option<DailyReset>) {
        if self.reset != reset {
            self.reset = reset;
            *self = self.rebuilt();
        }
    }

    /// The count right after the latest crossing (0 without any).
    pub fn current(&self) -> i64 {
        self.entries.last().map_or(0, |last| self.count_at(last.ts))
    }

    /// The summaries of one tier (for tests and for the storage backends to compare with).
    pub fn tier(&self, tier: Tier) -> &BTreeMap<Timestamp, Effect> {
        &self.tiers[tier as usize]
    }

    /// The same entries, every summary recomputed from scratch (never appended to).
    pub fn rebuilt(&self) -> Self {
        let mut fresh = Self::new(self.space, self.reset);
        fresh.entries = self.entries.clone();
        let minutes = fresh
            .entries
            .iter()
            .map(|k| Tier::Minute.floor(k.ts))
            .collect();
        fresh.resummarize_up(minutes, &BTreeSet::new());
        fresh
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}
