//! Rule 5 on every backend: what a late crossing costs. It updates the summary of its
//! minute and one bucket per tier above it (`roomer_occupancy::tiers`) in the spaces it touches,
//! whatever came after it, and reads as many entries and summaries as the in-memory model.

use crate::stories::{building, count, crossing, ROOM_A};
use roomer_occupancy::ledger::Ledger;
use roomer_occupancy::{Crossing, OUTSIDE};
use roomer_storage::Store;

/// Ingests into the store and the in-memory model; answers the store's cost (entries and
/// summaries read) after checking it equals the model's.
async fn ingest_both(store: &dyn Store, model: &mut Ledger, batch: &[Crossing]) -> usize {
    let stored = store.ingest(batch).await.unwrap().report;
    let modelled = model.ingest(batch);
    assert_eq!(stored, modelled, "the store did what the model did");
    stored.recounted
}

/// At most, per space: the crossings of its minute, then 60 minutes, 24 hours, 30 days and
/// 12 thirty-day buckets.
const BOUND_PER_SPACE: usize = 2 + 60 + 24 + 30 + 12;

pub async fn a_late_crossing_costs_the_same_whatever_came_after_it(store: &dyn Store) {
    store.apply_layout(&building()).await.unwrap();
    let mut model: Ledger = Ledger::default();
    model.apply_layout(&building());
    // 2,000 arrivals into Space A through Doorway X, a minute apart: the room never empties.
    let history: Vec<Crossing> = (0..2_000).map(|m| crossing("283", m, 1)).collect();
    for batch in history.chunks(500) {
        ingest_both(store, &mut model, batch).await;
    }

    // A departure among the last ten minutes, and one near the start of the history (the
    // per-entry series rewrote every later count of both sides for the second).
    let late = ingest_both(store, &mut model, &[crossing("283", 1_990, -1)]).await;
    let early = ingest_both(store, &mut model, &[crossing("283", 10, -1)]).await;
    assert!(late <= 2 * BOUND_PER_SPACE, "read {late}");
    assert!(early <= 2 * BOUND_PER_SPACE, "read {early}");
    assert_eq!(count(store, ROOM_A, None).await, 1_998);
    assert_eq!(count(store, OUTSIDE, None).await, -1_998);
}
