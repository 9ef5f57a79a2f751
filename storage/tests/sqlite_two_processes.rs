//! Two processes on one SQLite file — `roomer serve` ingesting while an operator runs
//! `roomer layout apply` — must both get their writes through, waiting for each other
//! instead of failing with "database is locked".

use chrono::TimeDelta;
use roomer_occupancy::layout::DpuLayout;
use roomer_occupancy::{
    Crossing, Direction, Doorway, DpuId, Installation, Layout, Space, Timestamp,
};

fn t(second: i64) -> Timestamp {
    "2018-02-26T08:00:00Z".parse::<Timestamp>().unwrap() + TimeDelta::seconds(second)
}

fn layout(name: &str) -> Layout {
    Layout {
        spaces: vec![Space::new(1, name)],
        doorways: vec![Doorway {
            id: 1,
            name: "Entrance".into(),
            exiting_to: roomer_occupancy::OUTSIDE,
            entering_to: 1,
        }],
        dpus: vec![DpuLayout {
            id: DpuId::new("283").unwrap(),
            installations: vec![Installation {
                doorway: 1,
                from: t(-1),
                until: None,
            }],
        }],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_process_writing_the_same_file_waits_instead_of_failing() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("roomer.db").display());
    let server = roomer_storage::connect(&url).await.unwrap();
    let operator = roomer_storage::connect(&url).await.unwrap();

    let batches = 200;
    let ingest = tokio::spawn(async move {
        for b in 0..batches {
            let batch: Vec<Crossing> = (0..10)
                .map(|i| {
                    let direction = if i % 2 == 0 { 1 } else { -1 };
                    Crossing::new(
                        DpuId::new("283").unwrap(),
                        t(b * 10 + i),
                        Direction::from_i64(direction).unwrap(),
                        None,
                    )
                })
                .collect();
            server
                .ingest(&batch)
                .await
                .expect("ingest while another process writes");
        }
        server
    });
    for round in 0..100 {
        let name = if round % 2 == 0 { "Room" } else { "Room A" };
        operator
            .apply_layout(&layout(name))
            .await
            .expect("apply a layout while another process ingests");
    }
    let server = ingest.await.unwrap();
    let totals = server.totals().await.unwrap();
    assert_eq!(totals.crossings, batches * 10);
}
