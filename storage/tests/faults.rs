//! Storage faults: SQLite on a file system that fills up refuses writes (a storage fault, so
//! the worker retries rather than setting anything aside), and once space is freed the same
//! store writes again, with no restart and nothing half-written (needs root on Linux to mount
//! a small tmpfs: runs when `TEST_FAULTS` is set, as `.ci/run` does; otherwise reported as
//! ignored), and the same for a database made read-only (its files immutable, on an ext4
//! image). A database file deleted or replaced while open is refused, not written into.

use roomer_occupancy::{Crossing, Direction, DpuId, Timestamp};
use roomer_storage::testing::SmallDisk;

fn crossings(from: usize, n: usize) -> Vec<Crossing> {
    let start: Timestamp = "2024-01-01T00:00:00Z".parse().unwrap();
    (from..from + n)
        .map(|i| {
            Crossing::new(
                DpuId::new(format!("dpu-{:04}", i % 500)).unwrap(),
                start + chrono::TimeDelta::seconds(i as i64),
                Direction::In,
                Some(i as u64),
            )
        })
        .collect()
}

#[tokio::test]
#[cfg_attr(
    not(roomer_fault_tests),
    ignore = "set TEST_FAULTS=1 (as root) to mount a tmpfs and fill it"
)]
async fn sqlite_on_a_full_disk_refuses_writes_then_heals_once_space_is_freed() {
    let disk = SmallDisk::mount(4);
    let url = format!("sqlite://{}", disk.path().join("roomer.db").display());
    let store = roomer_storage::connect(&url).await.unwrap();
    store.ingest(&crossings(0, 100)).await.unwrap();
    let filler = disk.fill_all_but(64 * 1024);

    // Batches until the disk is full: every refusal is a storage fault.
    let mut stored = 100;
    let mut refused = None;
    for batch in 0..200 {
        match store.ingest(&crossings(stored, 500)).await {
            Ok(_) => stored += 500,
            Err(e) => {
                assert!(e.is_storage_fault(), "batch {batch}: {e}");
                refused = Some(e);
                break;
            }
        }
    }
    let refused = refused.expect("the disk filled up");
    // Still full: refused again, the same way (not a broken connection).
    let again = store.ingest(&crossings(stored, 500)).await.unwrap_err();
    assert!(again.is_storage_fault(), "{again} after {refused}");

    // Space comes back: the same store writes again, and what was refused was not half-kept.
    std::fs::remove_file(filler).unwrap();
    store.ingest(&crossings(stored, 500)).await.unwrap();
    let totals = store.totals().await.unwrap();
    assert_eq!(totals.crossings, stored as i64 + 500);
}

#[tokio::test]
async fn sqlite_whose_file_is_deleted_or_replaced_refuses_to_write_into_it() {
    for replace in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("roomer.db");
        let store = roomer_storage::connect(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        store.ingest(&crossings(0, 10)).await.unwrap();
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
        if replace {
            std::fs::write(&path, b"").unwrap();
        }
        let refused = store.ingest(&crossings(10, 10)).await.unwrap_err();
        assert!(refused.is_storage_fault(), "{refused}");
        assert!(
            refused.to_string().contains("deleted or replaced"),
            "{refused}"
        );
    }
}

#[tokio::test]
#[cfg_attr(
    not(roomer_fault_tests),
    ignore = "set TEST_FAULTS=1 (as root) to loop-mount an ext4 image"
)]
async fn sqlite_made_read_only_refuses_writes_then_heals() {
    let disk = SmallDisk::mount_ext4(16);
    let url = format!("sqlite://{}", disk.path().join("roomer.db").display());
    let store = roomer_storage::connect(&url).await.unwrap();
    store.ingest(&crossings(0, 100)).await.unwrap();

    disk.set_read_only(true);
    for attempt in 0..3 {
        let refused = store.ingest(&crossings(100, 100)).await.unwrap_err();
        assert!(refused.is_storage_fault(), "attempt {attempt}: {refused}");
    }
    disk.set_read_only(false);
    store.ingest(&crossings(100, 100)).await.unwrap();
    assert_eq!(store.totals().await.unwrap().crossings, 200);
}
