//! Storage faults heal by themselves: SQLite on a file system that fills up refuses writes
//! (a storage fault, so the worker retries rather than setting anything aside), and once
//! space is freed the same store writes again, with no restart and nothing half-written.
//!
//! Needs root on Linux (mounts a small tmpfs): runs when `TEST_FAULTS` is set, as `.ci/run`
//! does; otherwise reported as ignored.

use occupancy::{Crossing, Direction, DpuId, Timestamp};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs of `megabytes`, unmounted on drop.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(megabytes: u32) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}M"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("mount runs");
        assert!(status.success(), "mounting a tmpfs needs root");
        Self { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Fills the disk but `spare` bytes with a file of its own; returns that file.
    fn fill_all_but(&self, spare: u64) -> PathBuf {
        let filler = self.path().join("filler");
        let free = fs_free(self.path());
        let file = std::fs::File::create(&filler).unwrap();
        file.set_len(0).unwrap();
        use std::io::Write;
        let mut writer = std::io::BufWriter::new(file);
        let chunk = vec![0u8; 64 * 1024];
        let mut left = free.saturating_sub(spare);
        while left > 0 {
            let n = left.min(chunk.len() as u64) as usize;
            if writer.write_all(&chunk[..n]).is_err() {
                break;
            }
            left -= n as u64;
        }
        let _ = writer.flush();
        filler
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

fn fs_free(path: &Path) -> u64 {
    let output = Command::new("df")
        .args(["--output=avail", "-B1"])
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .nth(1)
        .and_then(|l| l.trim().parse().ok())
        .unwrap()
}

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
