//! Rule 5 on every backend: what a late crossing costs. The recount visits the entries after
//! the late crossing in the spaces it touches, never the history before it, and visits as
//! many as the in-memory model does.

use crate::stories::{building, count, crossing, ROOM_A};
use occupancy::ledger::Ledger;
use occupancy::{Crossing, OUTSIDE};
use roomer_storage::Store;

/// Ingests into the store and the in-memory model; answers the store's recount cost after
/// checking it equals the model's.
async fn ingest_both(store: &dyn Store, model: &mut Ledger, batch: &[Crossing]) -> usize {
    let stored = store.ingest(batch).await.unwrap().report;
    let modelled = model.ingest(batch);
    assert_eq!(stored, modelled, "the store did what the model did");
    stored.recounted
}

pub async fn a_late_crossing_costs_the_entries_after_it(store: &dyn Store) {
    store.apply_layout(&building()).await.unwrap();
    let mut model: Ledger = Ledger::default();
    model.apply_layout(&building());
    // 2,000 arrivals into Space A through Doorway X, a minute apart.
    let history: Vec<Crossing> = (0..2_000).map(|m| crossing("283", m, 1)).collect();
    for batch in history.chunks(500) {
        ingest_both(store, &mut model, batch).await;
    }

    // A departure among the last ten minutes: each side recounts about a dozen entries.
    let late = ingest_both(store, &mut model, &[crossing("283", 1_990, -1)]).await;
    assert!((16..=30).contains(&late), "recounted {late}");
    // The same near the start of the history: every later entry of both sides.
    let early = ingest_both(store, &mut model, &[crossing("283", 10, -1)]).await;
    assert!(early >= 2 * 1_990, "recounted {early}");
    assert_eq!(count(store, ROOM_A, None).await, 1_998);
    assert_eq!(count(store, OUTSIDE, None).await, -1_998);
}
