//! What one ingest batch stores, in one transaction: crossings, refused messages, statuses
//! and sightings.

use crate::stories::{building, crossing, dpu, t};
use roomer_occupancy::{Crossing, Direction};
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
