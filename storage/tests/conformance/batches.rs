//! What one ingest batch stores, in one transaction: crossings, refused messages, statuses
//! and sightings.

use crate::stories::{building, crossing, dpu, t};
use roomer_occupancy::ledger::Ledger;
use roomer_occupancy::series::PerEntry;
use roomer_occupancy::{Crossing, Direction, SpaceId};
use roomer_storage::{Batch, Page, Rejected, RejectedFilter, Store};

fn refused(reason: &str, detail: &str) -> Rejected {
    Rejected {
        received_at: t(0),
        source: "dpus/283/crossings".into(),
        dpu_id: Some("283".into()),
        reason: reason.into(),
        detail: detail.into(),
        payload: b"{}".to_vec(),
    }
}

pub async fn a_batch_stores_everything_its_messages_said(store: &dyn Store) {
    store.apply_layout(&building()).await.unwrap();
    let with_id = |minute, id| Crossing::new(dpu("283"), t(minute), Direction::In, Some(id));
    store.ingest(&[with_id(1, 7)]).await.unwrap();

    let crossings = [crossing("283", 2, 1), with_id(3, 7)];
    let rejected = [refused("not_json", "payload is not JSON")];
    let statuses = [(dpu("283"), true, t(4)), (dpu("999"), false, t(5))];
    let seen = [(dpu("283"), t(6))];
    let outcome = store
        .apply_batch(&Batch {
            crossings: &crossings,
            rejected: &rejected,
            statuses: &statuses,
            seen: &seen,
        })
        .await
        .unwrap();
    assert_eq!(outcome.report.inserted, 2, "id 7 again, at another time");

    let totals = store.totals().await.unwrap();
    assert_eq!((totals.crossings, totals.rejected), (3, 1));
    let reasons: Vec<String> = store
        .rejected(&RejectedFilter::newest(100))
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.reason)
        .collect();
    assert_eq!(reasons, ["not_json"]);
    let now = chrono::Utc::now();
    let dpus = store.dpus(None, &Page::all(), now, now).await.unwrap();
    let status = |id: &str| {
        let found = dpus.iter().find(|d| d.id == id).expect("listed");
        (found.online, found.status_at, found.last_seen)
    };
    assert_eq!(status("283"), (Some(true), Some(t(4)), Some(t(6))));
    assert_eq!(status("999"), (Some(false), Some(t(5)), Some(t(5))));
}

/// A batch large enough that PostgreSQL stores it in parts by DPU, on several connections
/// at once: with repeats inside the batch, refusals, statuses and sightings, and sent a
/// second time whole (as after a part failed), it counts exactly as the reference model,
/// and everything else it carries is stored once per delivery.
pub async fn a_large_batch_of_many_dpus_counts_as_the_reference_model(store: &dyn Store) {
    const DPUS: usize = 60;
    const ROOMS: usize = 12;
    let start = t(0);
    let layout = roomer_simulator::fleet_layout(DPUS, ROOMS, start);
    store.apply_layout(&layout).await.unwrap();
    let mut crossings = roomer_simulator::fleet_events(DPUS, 50, start, 7);
    // Repeats inside the batch: a DPU that resent part of its upload.
    crossings.extend_from_within(100..400);
    let rejected = [refused("not_json", "payload is not JSON")];
    let statuses = [(dpu("sim-00000"), true, t(1))];
    let seen = [(dpu("sim-00000"), t(2))];
    let batch = Batch {
        crossings: &crossings,
        rejected: &rejected,
        statuses: &statuses,
        seen: &seen,
    };
    let mut model: Ledger<PerEntry> = Ledger::default();
    model.apply_layout(&layout);
    let expected = model.ingest(&crossings);

    let first = store.apply_batch(&batch).await.unwrap();
    assert_eq!(first.report.inserted, expected.inserted);
    assert_eq!(first.report.duplicates, expected.duplicates);
    let mut touched = first.touched.clone();
    touched.sort_unstable();
    touched.dedup();
    assert_eq!(touched, first.touched, "each touched space once, in order");
    let again = store.apply_batch(&batch).await.unwrap();
    assert_eq!(again.report.inserted, 0, "the second delivery adds nothing");
    store.catch_up().await.unwrap();

    let spaces: Vec<SpaceId> = (0..=ROOMS as SpaceId).collect();
    let now = store.counts_now(&spaces).await.unwrap();
    assert_eq!(now.len(), spaces.len());
    for (space, count) in now {
        assert_eq!(count, model.current(space), "space {space} now");
    }
    for minute in [10, 200, 1_000] {
        for &space in &spaces {
            let at = start + chrono::TimeDelta::minutes(minute);
            let stored = store.count_at(space, Some(at)).await.unwrap();
            assert_eq!(
                stored,
                Some(model.count_at(space, at)),
                "space {space} at {at}"
            );
        }
    }
    let totals = store.totals().await.unwrap();
    assert_eq!(totals.crossings, expected.inserted as i64);
    assert_eq!(totals.rejected, 2, "one refusal per delivery");
    let dpus = store.dpus(None, &Page::all(), t(3), t(0)).await.unwrap();
    let first_dpu = dpus.iter().find(|d| d.id == "sim-00000").expect("listed");
    assert_eq!(
        (first_dpu.online, first_dpu.last_seen),
        (Some(true), Some(t(2)))
    );
}
