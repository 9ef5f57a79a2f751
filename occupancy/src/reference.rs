//! The reference model: the counting rules written as plainly as possible, with no index, no
//! incremental state and no shared code with the engine (it even finds installations by a
//! linear search). Slow on purpose; every property test compares against it.

use crate::layout::Layout;
use crate::model::{is_clamped, Crossing, SpaceId, Timestamp};
use std::collections::BTreeSet;

/// The count of `space` at `t` given a layout and every message received (in any order, with
/// any repeats).
pub fn count_at(layout: &Layout, messages: &[Crossing], space: SpaceId, t: Timestamp) -> i64 {
    // Rule 3: one event per (DPU, timestamp, direction).
    let events: BTreeSet<(Timestamp, String, i64)> = messages
        .iter()
        .map(|c| (c.ts, c.dpu.as_str().to_owned(), c.direction.as_i64()))
        .collect();

    // Rules 1 and 6: each event counts in the spaces of the doorway its DPU hung over at the
    // event's own time; events no installation covers count nowhere.
    let mut deltas: Vec<(Timestamp, i64, String)> = Vec::new();
    for (ts, dpu, direction) in &events {
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
        if doorway.entering_to == space {
            deltas.push((*ts, *direction, dpu.clone()));
        }
        if doorway.exiting_to == space {
            deltas.push((*ts, -*direction, dpu.clone()));
        }
    }

    // Rule 1's tie-break: by time, then arrivals before departures, then by DPU id.
    deltas.sort_by(|a, b| (a.0, -a.1, &a.2).cmp(&(b.0, -b.1, &b.2)));

    // Rule 2: clamp at zero, except Outside.
    let mut count = 0;
    for (_, delta, _) in deltas {
        count += delta;
        if is_clamped(space) && count < 0 {
            count = 0;
        }
    }
    count
}
