//! One batch of what DPUs sent: crossings, refused messages, statuses and sightings. A
//! backend stores all of it in one transaction, so that a batch is stored wholly or not at
//! all, and the worker acknowledges it only after that commit. (PostgreSQL records
//! statuses and sightings right after the commit, so that workers sharing a subscription do
//! not wait for each other's DPU rows; see `PostgresStore::apply_batch`.)

use crate::engine::{self, Result, WriteTx};
use crate::{IngestOutcome, Rejected};
use roomer_occupancy::{Crossing, DpuId, Timestamp};

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
