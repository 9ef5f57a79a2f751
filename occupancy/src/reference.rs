//! The reference model: the counting rules written as plainly as possible, with no index, no
//! incremental state and no shared code with the engine (it even finds installations by a
//! linear search). Slow on purpose; every property test compares against it.

use crate::layout::Layout;
use crate::model::{is_clamped, Crossing, SpaceId, Timestamp};
use crate::reset::DailyReset;
use std::collections::{BTreeMap, BTreeSet};

/// The count of `space` at `t` given a layout and every message received (in any order, with
/// any repeats).
pub fn count_at(layout: &Layout, messages: &[Crossing], space: SpaceId, t: Timestamp) -> i64 {
    let events = events(messages);

    // Rules 1 and 6: each event counts in the spaces of the doorway its DPU hung over at the
    // event's own time; events no installation covers count nowhere.
    let mut deltas: Vec<(Timestamp, i64, String)> = Vec::new();
    for ((ts, dpu, direction), copies) in &events {
        if *ts > t {
            continue;
        }
        let Some(dpu_layout) = layout.dpus.iter().find(|d| d.id.as_str() == dpu) else {
            continue;
        };
        let Some(installation) = dpu_layout
            .installations
            .iter()
            .find(|i| i.from <= *ts && (i.until.is_none() || *ts < i.until.unwrap()))
        else {
            continue;
        };
        let doorway = layout
            .doorways
            .iter()
            .find(|d| d.id == installation.doorway)
            .expect("validated layout");
        for _ in 0..*copies {
            if doorway.entering_to == space {
                deltas.push((*ts, *direction, dpu.clone()));
            }
            if doorway.exiting_to == space {
                deltas.push((*ts, -*direction, dpu.clone()));
            }
        }
    }

    // Rule 1's tie-break: by time, then arrivals before departures, then by DPU id.
    deltas.sort_by(|a, b| (a.0, -a.1, &a.2).cmp(&(b.0, -b.1, &b.2)));

    // The daily reset: every reset instant up to `t` is an event that sets the count to 0,
    // placed before the crossings at the same instant.
    let resets: Vec<Timestamp> = match (DailyReset::of(space, &layout.spaces), deltas.first()) {
        (Some(rule), Some(first)) => rule.instants(first.0, t + chrono::TimeDelta::microseconds(1)),
        _ => Vec::new(),
    };

    // Rule 2: clamp at zero, except Outside.
    let mut count = 0;
    let mut pending_resets = resets.iter().peekable();
    for (ts, delta, _) in deltas {
        while pending_resets.next_if(|r| **r <= ts).is_some() {
            count = 0;
        }
        count += delta;
        if is_clamped(space) && count < 0 {
            count = 0;
        }
    }
    if pending_resets.next().is_some() {
        count = 0;
    }
    count
}

/// How many distinct crossings count, by rule 3, among every message received.
pub fn counted(messages: &[Crossing]) -> usize {
    events(messages).values().sum()
}

/// Rule 3: a crossing is its (DPU, timestamp, direction); per such key, one crossing per
/// distinct id it was sent with, or one if it was only ever sent without an id.
fn events(messages: &[Crossing]) -> BTreeMap<(Timestamp, String, i64), usize> {
    let mut ids: BTreeMap<(Timestamp, String, i64), BTreeSet<u64>> = BTreeMap::new();
    for c in messages {
        let key = (c.ts, c.dpu.as_str().to_owned(), c.direction.as_i64());
        ids.entry(key).or_default().extend(c.event_id);
    }
    ids.into_iter()
        .map(|(key, ids)| (key, ids.len().max(1)))
        .collect()
}
