//! One batch of what DPUs sent: crossings, refused messages, statuses and sightings. A
//! backend stores all of it in one transaction, so that a batch is stored wholly or not at
//! all, and the worker acknowledges it only after that commit. (PostgreSQL records
//! statuses and sightings right after the commit, so that workers sharing a subscription do
//! not wait for each other's DPU rows, and stores a large batch's crossings in parts by DPU
//! at once ([`parts_by_dpu`]); a batch stored again after a part failed changes nothing
//! already stored. See `PostgresStore::store_batch_in_parts`.)

use crate::engine::{self, Result, WriteTx};
use crate::{IngestOutcome, Rejected};
use roomer_occupancy::{Crossing, DpuId, Timestamp};
use std::collections::BTreeMap;
#[cfg(test)]
use std::collections::BTreeSet;

#[derive(Clone, Copy)]
pub struct Batch<'a> {
    pub crossings: &'a [Crossing],
    /// Messages (or elements of bulk uploads) refused before storing.
    pub rejected: &'a [Rejected],
    /// What DPUs said on their status topics, and when it arrived.
    pub statuses: &'a [(DpuId, bool, Timestamp)],
    /// DPUs heard from, and when.
    pub seen: &'a [(DpuId, Timestamp)],
}

impl<'a> Batch<'a> {
    /// Crossings and nothing else.
    pub fn of(crossings: &'a [Crossing]) -> Self {
        Self {
            crossings,
            rejected: &[],
            statuses: &[],
            seen: &[],
        }
    }
}

/// Stores a batch in `tx`, summarizing if `summarize` (else noting its minutes; see
/// `cadence`). `Ok(None)`: another writer stored some of the same crossings meanwhile; the
/// caller rolls back and tries again.
pub(crate) async fn apply(
    tx: &mut dyn WriteTx,
    batch: &Batch<'_>,
    now: Timestamp,
    summarize: bool,
) -> Result<Option<IngestOutcome>> {
    let Some(outcome) = engine::ingest(tx, batch.crossings, now, summarize).await? else {
        return Ok(None);
    };
    tx.insert_rejected(batch.rejected).await?;
    tx.record_statuses(batch.statuses).await?;
    tx.record_seen(batch.seen).await?;
    Ok(Some(outcome))
}

/// Splits crossings into at most `parts` groups of whole DPUs (every crossing of a DPU in
/// the same group), each of about `min_part` crossings or more, the largest DPUs placed first,
/// each into the smallest group so far; `None` (store them whole, nothing copied) when they
/// are too few for two groups or come from one DPU.
pub(crate) fn parts_by_dpu(
    crossings: &[Crossing],
    parts: usize,
    min_part: usize,
) -> Option<Vec<Vec<Crossing>>> {
    let parts = parts.min(crossings.len() / min_part.max(1));
    if parts < 2 {
        return None;
    }
    let mut by_dpu: BTreeMap<&DpuId, Vec<&Crossing>> = BTreeMap::new();
    for c in crossings {
        by_dpu.entry(&c.dpu).or_default().push(c);
    }
    let mut groups: Vec<Vec<&Crossing>> = by_dpu.into_values().collect();
    groups.sort_by_key(|g| std::cmp::Reverse(g.len()));
    let mut out: Vec<Vec<Crossing>> = vec![Vec::new(); parts];
    for group in groups {
        if let Some(smallest) = out.iter_mut().min_by_key(|p| p.len()) {
            smallest.extend(group.into_iter().cloned());
        }
    }
    out.retain(|p| !p.is_empty());
    (out.len() > 1).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use roomer_occupancy::Direction;

    fn crossings(per_dpu: &[usize]) -> Vec<Crossing> {
        let start: Timestamp = "2026-01-05T08:00:00Z".parse().unwrap();
        per_dpu
            .iter()
            .enumerate()
            .flat_map(|(d, &n)| {
                (0..n).map(move |i| {
                    let dpu = DpuId::new(format!("d{d}")).unwrap();
                    let ts = start + chrono::TimeDelta::seconds(i as i64);
                    Crossing::new(dpu, ts, Direction::In, None)
                })
            })
            .collect()
    }

    #[test]
    fn parts_hold_whole_dpus_and_every_crossing_once() {
        let all = crossings(&[700, 300, 300, 200, 100, 1]);
        let parts = parts_by_dpu(&all, 2, 500).expect("two parts");
        assert_eq!(parts.len(), 2);
        let sizes: Vec<usize> = parts.iter().map(Vec::len).collect();
        assert_eq!(
            sizes,
            [801, 800],
            "balanced: 700 + 100 + 1, 300 + 300 + 200"
        );
        let dpus_of = |p: &Vec<Crossing>| p.iter().map(|c| c.dpu.clone()).collect::<BTreeSet<_>>();
        assert!(dpus_of(&parts[0]).is_disjoint(&dpus_of(&parts[1])));
        let mut joined: Vec<Crossing> = parts.concat();
        let mut expected = all.clone();
        joined.sort_by(|a, b| (&a.dpu, a.ts).cmp(&(&b.dpu, b.ts)));
        expected.sort_by(|a, b| (&a.dpu, a.ts).cmp(&(&b.dpu, b.ts)));
        assert_eq!(joined, expected);
    }

    #[test]
    fn small_batches_and_single_dpus_stay_whole() {
        assert!(parts_by_dpu(&crossings(&[600, 399]), 2, 500).is_none());
        assert!(parts_by_dpu(&crossings(&[3_000]), 2, 500).is_none());
        let three = parts_by_dpu(&crossings(&[600, 600, 600]), 4, 500).expect("parts");
        assert_eq!(three.len(), 3);
    }
}
