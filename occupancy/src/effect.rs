//! What a stretch of a space's series does to its count, as one value that composes.
//!
//! A crossing into a clamped space maps the count `c` to `max(0, c + d)`; into Outside to
//! `c + d`; a daily reset maps every count to 0. Each is `c ↦ max(a, c + b)` (`a = −∞` where
//! nothing clamps, `b = −∞` for a reset), and two such maps compose into the same form:
//! `max(a₂, max(a₁, c + b₁) + b₂) = max(max(a₂, a₁ + b₂), c + b₁ + b₂)`. So any stretch of a
//! series, one minute or ten years, is summarized by two numbers, and the summaries of two
//! consecutive stretches compose into the summary of both. A late crossing changes the
//! summaries of the stretches that hold it and nothing after them; the count at `T` is a
//! fold of summaries.
//!
//! History buckets also need the lowest and highest count a stretch passes through. Both are
//! of the same form in the count the stretch starts from:
//! - the highest count after a crossing is `max` over the crossings of `max(aₖ, c + bₖ)`,
//!   which is `max(max aₖ, c + max bₖ)`;
//! - the lowest count (after a crossing or at a reset) in a clamped space is 0 if the clamp
//!   engages or a reset happens, and otherwise `c + (the lowest prefix sum)`: that is
//!   `max(0, c + m)` with `m = −∞` when a reset happens. In Outside it is `c + m`.
//!
//! The lowest-count form holds for the series Roomer has: a clamped space starts from a
//! count ≥ 0, and only clamped spaces reset (Outside has no daily reset). The property
//! tests below check every part against a step-by-step walk.

/// −∞ of the extended integers these maps use; any sum with it is −∞.
const NEG: i64 = i64::MIN / 4;

fn add(x: i64, y: i64) -> i64 {
    if x <= NEG || y <= NEG {
        NEG
    } else {
        (x + y).max(NEG)
    }
}

/// `c ↦ max(floor, c + shift)`, with −∞ allowed in both.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Map {
    pub floor: i64,
    pub shift: i64,
}

impl Map {
    /// The map that never applies (−∞ everywhere): the highest count of a stretch without
    /// crossings.
    const NONE: Self = Self {
        floor: NEG,
        shift: NEG,
    };

    pub fn at(self, c: i64) -> i64 {
        self.floor.max(add(c, self.shift))
    }

    /// `other ∘ self`: first `self`, then `other`.
    fn then(self, other: Self) -> Self {
        Self {
            floor: other.floor.max(add(self.floor, other.shift)),
            shift: add(self.shift, other.shift),
        }
    }
}

/// The summary of a non-empty stretch of one space's series.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Effect {
    /// The count at the end of the stretch.
    pub count: Map,
    /// The lowest count after a crossing or at a reset in the stretch.
    pub lowest: Map,
    /// The highest count after a crossing in the stretch ([`Map::NONE`] without crossings).
    pub highest: Map,
    pub entrances: u64,
    pub exits: u64,
}

/// What a stretch did, given the count it started from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The count at its end.
    pub count: i64,
    /// The lowest and highest count during it, the starting count included.
    pub min: i64,
    pub max: i64,
    pub entrances: u64,
    pub exits: u64,
}

impl Effect {
    /// One crossing of `delta` (±1) in a space that is `clamped` at zero or not.
    pub fn crossing(delta: i64, clamped: bool) -> Self {
        let floor = if clamped { 0 } else { NEG };
        let map = Map {
            floor,
            shift: delta,
        };
        Self {
            count: map,
            lowest: map,
            highest: map,
            entrances: u64::from(delta > 0),
            exits: u64::from(delta < 0),
        }
    }

    /// A daily reset: the count becomes 0 (and so is the lowest count).
    pub fn reset() -> Self {
        let zero = Map {
            floor: 0,
            shift: NEG,
        };
        Self {
            count: zero,
            lowest: zero,
            highest: Map::NONE,
            entrances: 0,
            exits: 0,
        }
    }

    /// This stretch followed by `next`.
    pub fn then(&self, next: &Self) -> Self {
        let next_lowest = self.count.then(next.lowest);
        let next_highest = self.count.then(next.highest);
        Self {
            count: self.count.then(next.count),
            lowest: Map {
                floor: self.lowest.floor.min(next_lowest.floor),
                shift: self.lowest.shift.min(next_lowest.shift),
            },
            highest: Map {
                floor: self.highest.floor.max(next_highest.floor),
                shift: self.highest.shift.max(next_highest.shift),
            },
            entrances: self.entrances + next.entrances,
            exits: self.exits + next.exits,
        }
    }

    /// Composes a sequence in order; `None` for an empty one.
    pub fn fold<'a>(effects: impl IntoIterator<Item = &'a Self>) -> Option<Self> {
        effects.into_iter().fold(None, |acc, e| match acc {
            None => Some(*e),
            Some(acc) => Some(acc.then(e)),
        })
    }

    /// The count at the end, starting from `c`.
    pub fn count_from(&self, c: i64) -> i64 {
        self.count.at(c)
    }

    /// What the stretch did, starting from `c`.
    pub fn outcome(&self, c: i64) -> Outcome {
        Outcome {
            count: self.count.at(c),
            min: c.min(self.lowest.at(c)),
            max: c.max(self.highest.at(c)),
            entrances: self.entrances,
            exits: self.exits,
        }
    }
}

/// Applies an optional stretch to a count.
pub fn count_after(c: i64, effect: Option<&Effect>) -> i64 {
    effect.map_or(c, |e| e.count_from(c))
}

#[cfg(test)]
mod tests;
