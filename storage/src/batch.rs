//! One batch of what DPUs sent: crossings, refused messages, statuses and sightings. A
//! backend stores all of it in one transaction, so that a batch is stored wholly or not at
//! all, and the worker acknowledges it only after that commit.

use crate::engine::{self, Result, WriteTx};
use crate::{IngestOutcome, Rejected};
use occupancy::plan::IdConflict;
use occupancy::{Crossing, DpuId, Timestamp};

/// Turns a crossing refused for its event id (found only while storing) into the refused
/// message kept for it.
pub type ConflictRecord<'a> = &'a (dyn Fn(&IdConflict) -> Rejected + Send + Sync);

#[derive(Clone, Copy)]
pub struct Batch<'a> {
    pub crossings: &'a [Crossing],
    /// Messages (or elements of bulk uploads) refused before storing.
    pub rejected: &'a [Rejected],
    /// What DPUs said on their status topics, and when it arrived.
    pub statuses: &'a [(DpuId, bool, Timestamp)],
    /// DPUs heard from, and when.
    pub seen: &'a [(DpuId, Timestamp)],
    /// How to keep id conflicts; without it they are only reported in the outcome.
    pub conflict: Option<ConflictRecord<'a>>,
}

impl<'a> Batch<'a> {
    /// Crossings and nothing else.
    pub fn of(crossings: &'a [Crossing]) -> Self {
        Self {
            crossings,
            rejected: &[],
            statuses: &[],
            seen: &[],
            conflict: None,
        }
    }
}

/// Stores a batch in `tx`. `Ok(None)`: another writer stored some of the same crossings
/// meanwhile; the caller rolls back and tries again.
pub(crate) async fn apply(
    tx: &mut dyn WriteTx,
    batch: &Batch<'_>,
    now: Timestamp,
) -> Result<Option<IngestOutcome>> {
    let Some(outcome) = engine::ingest(tx, batch.crossings, now).await? else {
        return Ok(None);
    };
    let mut rejected = batch.rejected.to_vec();
    if let Some(record) = batch.conflict {
        rejected.extend(outcome.conflicts.iter().map(record));
    }
    tx.insert_rejected(&rejected).await?;
    tx.record_statuses(batch.statuses).await?;
    tx.record_seen(batch.seen).await?;
    Ok(Some(outcome))
}
