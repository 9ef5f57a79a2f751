//! A space's count series and the incremental recount.
//!
//! Every crossing that touches a space becomes one *entry* in that space's series. Entries are
//! totally ordered by [`EntryKey`]: event time first; at equal timestamps arrivals (`+1` for
//! this space) before departures (`-1`), so that a person seen entering and leaving in the same
//! instant is never absorbed by the clamp; then by DPU id. Each entry stores the space's count
//! right after it, so "the count at T" is the entry with the greatest key whose timestamp is
//! at or before T: one index lookup, never a scan of history.
//!
//! When entries are inserted or removed (a late event, a re-attributed DPU), every later count
//! may change. [`Recount`] walks forward from the first change and stops as soon as a recounted
//! value equals the stored one after the last change: from there on the old and new histories
//! agree. A late event therefore costs at most the number of entries after it in the spaces it
//! touches, and usually far less (the walk stops at the first moment the space was empty).

use crate::model::{is_clamped, DpuId, SpaceId, Timestamp};
use crate::reset::DailyReset;
use chrono::TimeDelta;
use std::collections::BTreeMap;

/// At equal timestamps, arrivals sort before departures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rank {
    Arrival = 0,
    Departure = 1,
}

impl Rank {
    pub fn from_delta(delta: i64) -> Self {
        if delta > 0 {
            Self::Arrival
        } else {
            Self::Departure
        }
    }

    pub fn delta(self) -> i64 {
        match self {
            Self::Arrival => 1,
            Self::Departure => -1,
        }
    }

    pub fn as_i16(self) -> i16 {
        self as i16
    }

    pub fn from_i16(value: i16) -> Option<Self> {
        match value {
            0 => Some(Self::Arrival),
            1 => Some(Self::Departure),
            _ => None,
        }
    }
}

/// What a summary needs of an entry: its instant and which way it counts. Entries of one
/// instant and rank are interchangeable, so the summarizer reads these rather than whole keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Step {
    pub ts: Timestamp,
    pub rank: Rank,
}

impl From<&EntryKey> for Step {
    fn from(key: &EntryKey) -> Self {
        Self {
            ts: key.ts,
            rank: key.rank,
        }
    }
}

/// The position of one entry in a space's series (unique within the space). `copy` tells
/// apart the crossings of one DPU at one instant in one direction (rule 3: people seen in
/// the same instant, sent with distinct ids); it is 0 for nearly every entry.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EntryKey {
    pub ts: Timestamp,
    pub rank: Rank,
    pub dpu: DpuId,
    pub copy: u32,
}

impl EntryKey {
    pub fn new(ts: Timestamp, delta: i64, dpu: DpuId) -> Self {
        Self {
            ts,
            rank: Rank::from_delta(delta),
            dpu,
            copy: 0,
        }
    }

    /// The same position for another crossing of the same key.
    pub fn copy(self, copy: u32) -> Self {
        Self { copy, ..self }
    }

    pub fn delta(&self) -> i64 {
        self.rank.delta()
    }

    /// The smallest key at `t`.
    pub(crate) fn first_at(t: Timestamp) -> Self {
        Self {
            ts: t,
            rank: Rank::Arrival,
            dpu: DpuId(String::new()),
            copy: 0,
        }
    }

    /// A key greater than every key at or before `t` and smaller than every key after it.
    fn first_after(t: Timestamp) -> Self {
        Self {
            ts: t + TimeDelta::microseconds(1),
            rank: Rank::Arrival,
            dpu: DpuId(String::new()),
            copy: 0,
        }
    }
}

/// One step of the counting rule: add `delta`, and clamp at zero unless the space is Outside.
pub fn step(count_before: i64, delta: i64, clamped: bool) -> i64 {
    let count = count_before + delta;
    if clamped {
        count.max(0)
    } else {
        count
    }
}

/// Inserts and removals to make in one space's series.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SpaceChange {
    pub inserts: Vec<EntryKey>,
    pub removes: Vec<EntryKey>,
}

impl SpaceChange {
    pub fn is_empty(&self) -> bool {
        self.inserts.is_empty() && self.removes.is_empty()
    }

    /// The first and last keys touched; `None` for an empty change.
    pub fn span(&self) -> Option<(&EntryKey, &EntryKey)> {
        let keys = self.inserts.iter().chain(&self.removes);
        let first = keys.clone().min()?;
        let last = keys.max()?;
        Some((first, last))
    }
}

/// What to do with one stored entry during a recount.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Visit {
    /// The stored count is right; keep walking.
    Keep,
    /// Store this count instead.
    Update(i64),
    /// The stored count is right and every later one is too: stop.
    Converged,
}

/// Recomputes counts entry by entry from the first change onwards.
///
/// Feed it, in key order, every entry whose key is at or after the first change (with the
/// change already applied: removed entries gone, inserted ones present with no count).
#[derive(Clone, Debug)]
pub struct Recount {
    running: i64,
    clamped: bool,
    last_change: EntryKey,
    reset: Option<DailyReset>,
    /// The time of the entry before the one visited next.
    previous: Option<Timestamp>,
}

impl Recount {
    /// `count_before` is the count of the last entry before the first change (0 if none).
    pub fn new(space: SpaceId, count_before: i64, last_change: EntryKey) -> Self {
        Self {
            running: count_before,
            clamped: is_clamped(space),
            last_change,
            reset: None,
            previous: None,
        }
    }

    /// The space resets daily; `previous` is the time of the entry `count_before` came from.
    pub fn with_reset(mut self, reset: Option<DailyReset>, previous: Option<Timestamp>) -> Self {
        self.reset = reset;
        self.previous = previous;
        self
    }

    pub fn visit(&mut self, key: &EntryKey, stored: Option<i64>) -> Visit {
        if let Some(reset) = &self.reset {
            if self.previous.is_some() && reset.between(self.previous, key.ts) {
                self.running = 0;
            }
        }
        self.previous = Some(key.ts);
        self.running = step(self.running, key.delta(), self.clamped);
        if stored != Some(self.running) {
            Visit::Update(self.running)
        } else if *key > self.last_change {
            Visit::Converged
        } else {
            Visit::Keep
        }
    }
}

/// A space's series held in memory: the in-memory twin of the storage backends' table.
#[derive(Clone, Debug, Default)]
pub struct SpaceSeries {
    entries: BTreeMap<EntryKey, Option<i64>>,
}

impl SpaceSeries {
    /// Applies a change and recounts; returns how many entries the recount visited.
    pub fn apply(
        &mut self,
        space: SpaceId,
        change: &SpaceChange,
        reset: Option<&DailyReset>,
    ) -> usize {
        let Some((first, last)) = change.span() else {
            return 0;
        };
        let (first, last) = (first.clone(), last.clone());
        let before = self.entries.range(..&first).next_back();
        let count_before = before.and_then(|(_, count)| *count).unwrap_or(0);
        let previous = before.map(|(key, _)| key.ts);
        for key in &change.removes {
            self.entries.remove(key);
        }
        for key in &change.inserts {
            self.entries.insert(key.clone(), None);
        }
        let mut recount =
            Recount::new(space, count_before, last).with_reset(reset.copied(), previous);
        let mut visited = 0;
        for (key, stored) in self.entries.range_mut(first..) {
            visited += 1;
            match recount.visit(key, *stored) {
                Visit::Keep => {}
                Visit::Update(count) => *stored = Some(count),
                Visit::Converged => break,
            }
        }
        visited
    }

    /// The count right after every entry at or before `t` (0 before the first entry, and
    /// after a reset that followed the last one).
    pub fn count_at(&self, t: Timestamp, reset: Option<&DailyReset>) -> i64 {
        let last = self.entries.range(..EntryKey::first_after(t)).next_back();
        let count = last.and_then(|(_, count)| *count).unwrap_or(0);
        crate::reset::apply(reset, count, last.map(|(key, _)| key.ts), t)
    }

    /// Recounts every entry, after the space's reset rule changed.
    pub fn recount_all(&mut self, space: SpaceId, reset: Option<&DailyReset>) {
        let Some(last) = self.entries.keys().next_back().cloned() else {
            return;
        };
        let mut recount = Recount::new(space, 0, last).with_reset(reset.copied(), None);
        for (key, stored) in self.entries.iter_mut() {
            if let Visit::Update(count) = recount.visit(key, *stored) {
                *stored = Some(count);
            }
        }
    }

    /// The entries in `[from, to)` with the count right after each.
    pub fn points(&self, from: Timestamp, to: Timestamp) -> Vec<crate::history::SeriesPoint> {
        self.entries
            .range(EntryKey::first_at(from)..EntryKey::first_at(to))
            .map(|(key, count)| crate::history::SeriesPoint {
                ts: key.ts,
                arrival: key.rank == Rank::Arrival,
                count: count.unwrap_or(0),
            })
            .collect()
    }

    /// The count after the latest entry.
    pub fn current(&self) -> i64 {
        self.entries
            .values()
            .next_back()
            .and_then(|count| *count)
            .unwrap_or(0)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// A space's [`SpaceSeries`] with its space and reset rule: the ledger's default series.
#[derive(Clone, Debug)]
pub struct PerEntry {
    space: SpaceId,
    reset: Option<DailyReset>,
    series: SpaceSeries,
}

impl crate::ledger::SeriesModel for PerEntry {
    fn new(space: SpaceId, reset: Option<DailyReset>) -> Self {
        Self {
            space,
            reset,
            series: SpaceSeries::default(),
        }
    }
    fn apply(&mut self, change: &SpaceChange) -> usize {
        self.series.apply(self.space, change, self.reset.as_ref())
    }
    fn count_at(&self, t: Timestamp) -> i64 {
        self.series.count_at(t, self.reset.as_ref())
    }
    fn current(&self) -> i64 {
        self.series.current()
    }
    fn set_reset(&mut self, reset: Option<DailyReset>) {
        self.reset = reset;
        self.series.recount_all(self.space, reset.as_ref());
    }
}

#[cfg(test)]
mod tests;
