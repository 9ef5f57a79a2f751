//! A batch's DPU statuses and sightings reduced to one per DPU, ordered by DPU: one
//! statement never upserts a DPU twice (PostgreSQL refuses that), and concurrent batches
//! take the rows' locks in the same order.

use roomer_occupancy::{DpuId, Timestamp};
use std::collections::BTreeMap;

/// Each DPU's latest status; of two at the same time the later in the batch wins, as it
/// would recorded one by one.
pub(crate) fn latest_status_per_dpu(
    statuses: &[(DpuId, bool, Timestamp)],
) -> Vec<(DpuId, bool, Timestamp)> {
    let mut latest: BTreeMap<&DpuId, (bool, Timestamp)> = BTreeMap::new();
    for (dpu, online, at) in statuses {
        let entry = latest.entry(dpu).or_insert((*online, *at));
        if *at >= entry.1 {
            *entry = (*online, *at);
        }
    }
    latest
        .into_iter()
        .map(|(d, (online, at))| (d.clone(), online, at))
        .collect()
}

/// Each DPU's latest sighting.
pub(crate) fn latest_per_dpu(seen: &[(DpuId, Timestamp)]) -> Vec<(DpuId, Timestamp)> {
    let mut latest: BTreeMap<&DpuId, Timestamp> = BTreeMap::new();
    for (dpu, at) in seen {
        let entry = latest.entry(dpu).or_insert(*at);
        *entry = (*entry).max(*at);
    }
    latest.into_iter().map(|(d, t)| (d.clone(), t)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dpu(id: &str) -> DpuId {
        DpuId::new(id).expect("valid id")
    }

    fn at(second: u32) -> Timestamp {
        chrono::DateTime::from_timestamp(1_780_000_000 + i64::from(second), 0).expect("valid")
    }

    #[test]
    fn the_latest_status_wins_and_a_tie_goes_to_the_later_message() {
        let statuses = [
            (dpu("b"), true, at(5)),
            (dpu("a"), false, at(9)),
            (dpu("b"), false, at(3)), // older: ignored
            (dpu("a"), true, at(9)),  // same time, later in the batch: wins
            (dpu("c"), false, at(1)),
        ];
        assert_eq!(
            latest_status_per_dpu(&statuses),
            [
                (dpu("a"), true, at(9)),
                (dpu("b"), true, at(5)),
                (dpu("c"), false, at(1)),
            ]
        );
    }

    #[test]
    fn the_latest_sighting_wins_in_any_order() {
        let seen = [
            (dpu("z"), at(2)),
            (dpu("y"), at(7)),
            (dpu("z"), at(8)),
            (dpu("z"), at(4)),
        ];
        assert_eq!(
            latest_per_dpu(&seen),
            [(dpu("y"), at(7)), (dpu("z"), at(8))]
        );
    }
}
