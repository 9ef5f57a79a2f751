//! Brings data stored under the earlier rule 3 to the current one, once, right after the
//! migrations.
//!
//! Until then an event id named one crossing of its DPU: a crossing sent under an id that
//! already named another was refused (kept in `rejected` as `id_conflict`), or took the id
//! over and un-counted the crossing that had it (kept the same way), and a crossing that two
//! ids named counted once. Now an id only tells apart crossings of one (DPU, timestamp,
//! direction). Replaying through today's rule what the old one set aside, together with
//! every (DPU, id) → crossing it kept in `event_ids`, counts all of it: repeats are
//! recognized as repeats, so the replay changes only what the rules disagree on. Then the
//! `event_ids` table and the `id_conflict` refusals go.

use crate::engine::{self, Result, WriteTx};
use async_trait::async_trait;
use chrono::TimeDelta;
use roomer_occupancy::payload::{parse_message, parse_topic, Topic, Validation};
use roomer_occupancy::{Crossing, DpuId, Timestamp};

/// Crossings replayed per batch.
const CHUNK: usize = 1000;

/// A refusal kept under the earlier rule for an id conflict.
pub(crate) struct Refusal {
    pub dpu_id: Option<String>,
    pub source: String,
    pub payload: Vec<u8>,
}

/// What the upgrade reads and removes, inside the write transaction it runs in.
#[async_trait]
pub(crate) trait LegacyIds: WriteTx {
    /// Whether the earlier rule's `event_ids` table is still there.
    async fn has_event_ids(&mut self) -> Result<bool>;
    /// Every id the earlier rule kept, as the crossing it named, sent with that id.
    async fn event_ids(&mut self) -> Result<Vec<Crossing>>;
    /// The refusals kept as `id_conflict`.
    async fn id_conflicts(&mut self) -> Result<Vec<Refusal>>;
    /// Deletes the `id_conflict` refusals and drops `event_ids`.
    async fn forget_legacy_ids(&mut self) -> Result<()>;
}

/// What the upgrade did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Upgrade {
    /// Crossings replayed (ids kept, and those in refused messages).
    pub replayed: usize,
    /// Crossings that count now and did not before.
    pub counted: usize,
}

/// Runs the upgrade if the `event_ids` table is still there (the caller commits); `None` if
/// it is not.
pub(crate) async fn run<T: LegacyIds>(tx: &mut T) -> Result<Option<Upgrade>> {
    if !tx.has_event_ids().await? {
        return Ok(None);
    }
    let mut crossings = tx.event_ids().await?;
    for refusal in tx.id_conflicts().await? {
        crossings.extend(crossings_of(&refusal));
    }
    let now = chrono::Utc::now();
    let mut upgrade = Upgrade {
        replayed: crossings.len(),
        counted: 0,
    };
    for chunk in crossings.chunks(CHUNK) {
        let outcome = engine::ingest(tx, chunk, now, true)
            .await?
            .expect("a single transaction holding the layout lock has no concurrent writer");
        upgrade.counted += outcome.report.inserted;
    }
    tx.forget_legacy_ids().await?;
    tracing::info!(
        replayed = upgrade.replayed,
        counted = upgrade.counted,
        "stored data brought to rule 3 of this version (event ids tell apart crossings of one \
         instant only)"
    );
    Ok(Some(upgrade))
}

/// The crossings a refused message carried, read as leniently as the data allows: it was
/// valid when it arrived, so neither its age nor the clock it was measured against matter.
fn crossings_of(refusal: &Refusal) -> Vec<Crossing> {
    let dpu = match (&refusal.dpu_id, parse_topic(&refusal.source)) {
        (Some(id), _) => DpuId::new(id.clone()).ok(),
        (None, Ok(Topic::Crossings(dpu))) => Some(dpu),
        _ => None,
    };
    let Some(dpu) = dpu else {
        return Vec::new();
    };
    let validation = Validation {
        now: Timestamp::MAX_UTC - TimeDelta::days(1),
        max_future: TimeDelta::zero(),
        oldest: None,
    };
    parse_message(&dpu, &refusal.payload, &validation).crossings
}
