//! Fresh databases for tests: a new SQLite file, or a new PostgreSQL database on the server
//! `TEST_DATABASE_URL` (or, with TimescaleDB, `TEST_TIMESCALE_URL`) names. Used by this crate's conformance suite and by end-to-end tests.

use crate::StoreError;
use sqlx::{Connection, PgConnection, SqliteConnection};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};

/// Polls `check` until it returns `Some`, failing the test with `what` after `within`.
/// Tests wait for asynchronous work with this instead of sleeping a fixed time.
pub async fn eventually<T, F, Fut>(what: &str, within: std::time::Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {within:?} waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// The PostgreSQL server tests use, if any.
pub fn postgres_url() -> Option<String> {
    std::env::var("TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
}

/// The TimescaleDB server tests use, if any (a PostgreSQL with `timescaledb` preloaded).
pub fn timescale_url() -> Option<String> {
    std::env::var("TEST_TIMESCALE_URL")
        .ok()
        .filter(|u| !u.is_empty())
}

/// A fresh database on the `TEST_TIMESCALE_URL` server. Panics (fails the test, never skips
/// it) when the variable is unset or the server cannot be reached.
pub async fn fresh_timescale_database() -> String {
    let admin = timescale_url().expect("TEST_TIMESCALE_URL must be set for TimescaleDB tests");
    fresh_postgres_database(&admin)
        .await
        .expect("TEST_TIMESCALE_URL is set but its server cannot be reached")
}

/// Compresses every chunk of both hypertables, as the compression policy does to old ones
/// (TimescaleDB only). For tests and benchmarks that need late data to land in compressed
/// chunks.
pub async fn compress_all_chunks(url: &str) -> Result<(), StoreError> {
    let mut conn = PgConnection::connect(url).await?;
    for table in ["space_counts", "crossings"] {
        let chunks: Vec<String> =
            sqlx::query_scalar(&format!("SELECT c::text FROM show_chunks('{table}') c"))
                .fetch_all(&mut conn)
                .await?;
        for chunk in chunks {
            let compressed = sqlx::query(&format!(
                "SELECT compress_chunk('{chunk}', if_not_compressed => true)"
            ))
            .execute(&mut conn)
            .await;
            match compressed {
                // The compression policy's job compressed it between the check and ours.
                Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42710") => {}
                other => {
                    other?;
                }
            }
        }
    }
    Ok(())
}

/// Creates an empty database on the server `admin_url` points at and returns its URL.
/// Fails (never skips) when the server cannot be reached.
pub async fn fresh_postgres_database(admin_url: &str) -> Result<String, StoreError> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let name = format!(
        "roomer_test_{}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        chrono::Utc::now().timestamp_micros()
    );
    let mut admin = PgConnection::connect(admin_url).await?;
    drop_stale_databases(&mut admin).await;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await?;
    admin.close().await?;
    Ok(with_database(admin_url, &name))
}

/// How old a test database must be before another test run may drop it: older than any test.
const STALE_AFTER: chrono::Duration = chrono::Duration::hours(1);

/// Drops the test databases of earlier runs (once per process), so that a machine that runs
/// the suite again and again does not fill its disk. Databases younger than [`STALE_AFTER`]
/// may belong to a test still running in another process and are left alone. Best effort:
/// a failure here only means the disk is cleaned later.
async fn drop_stale_databases(admin: &mut PgConnection) {
    static DONE: std::sync::Once = std::sync::Once::new();
    let mut first = false;
    DONE.call_once(|| first = true);
    if !first {
        return;
    }
    let Ok(names) = sqlx::query_scalar::<_, String>(
        "SELECT datname FROM pg_database WHERE datname LIKE 'roomer\\_test\\_%'",
    )
    .fetch_all(&mut *admin)
    .await
    else {
        return;
    };
    let cutoff = (chrono::Utc::now() - STALE_AFTER).timestamp_micros();
    for name in names {
        let created = name.rsplit('_').next().and_then(|t| t.parse::<i64>().ok());
        if created.is_some_and(|created| created < cutoff) {
            let dropped = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut *admin)
                .await;
            if let Err(error) = dropped {
                eprintln!("could not drop stale test database {name}: {error}");
            }
        }
    }
}

/// Replaces the database name in a `postgres://…/name?params` URL.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let authority_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    let mut out = format!("{}/{}", &base[..authority_end], name);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

/// Makes an SQLite database stall, as a slow or stuck database would: holds its write lock
/// (writers wait on it) until the returned connection is given to [`release_sqlite`].
pub async fn stall_sqlite(url: &str) -> SqliteConnection {
    let mut lock = SqliteConnection::connect(url)
        .await
        .expect("open SQLite to stall it");
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut lock)
        .await
        .expect("take SQLite's write lock");
    lock
}

/// Lets writers through again after [`stall_sqlite`].
pub async fn release_sqlite(mut lock: SqliteConnection) {
    sqlx::query("ROLLBACK")
        .execute(&mut lock)
        .await
        .expect("release SQLite's write lock");
}

/// Keeps the summarizer's turn on a PostgreSQL database, as a busy writer elsewhere would:
/// batches then store their entries and leave their minutes noted, until the returned
/// connection is given to [`release_summaries`].
pub async fn hold_summaries(url: &str) -> sqlx::PgConnection {
    use sqlx::Connection;
    let mut held = sqlx::PgConnection::connect(url)
        .await
        .expect("connect to hold the summarizer's turn");
    sqlx::query("SELECT pg_advisory_lock($1, 0)")
        .bind(crate::postgres::LOCK_SUMMARIES)
        .execute(&mut held)
        .await
        .expect("take the summarizer's turn");
    held
}

/// Gives the summarizer's turn back after [`hold_summaries`].
pub async fn release_summaries(mut held: sqlx::PgConnection) {
    sqlx::query("SELECT pg_advisory_unlock($1, 0)")
        .bind(crate::postgres::LOCK_SUMMARIES)
        .execute(&mut held)
        .await
        .expect("give the summarizer's turn back");
}

/// How many minutes wait for the summarizer in the database a URL names.
pub async fn pending_minutes(url: &str) -> i64 {
    use sqlx::Connection;
    let count = "SELECT count(*) FROM tier_pending";
    let (n,): (i64,) = if url.starts_with("sqlite:") {
        let mut conn = sqlx::SqliteConnection::connect(url).await.expect("connect");
        sqlx::query_as(count).fetch_one(&mut conn).await
    } else {
        let mut conn = sqlx::PgConnection::connect(url).await.expect("connect");
        sqlx::query_as(count).fetch_one(&mut conn).await
    }
    .expect("count notes");
    n
}

/// A tmpfs of a few megabytes, to fill up (storage-fault tests); unmounted on drop.
pub struct SmallDisk {
    dir: PathBuf,
    /// The ext4 image behind a loop mount, if that is what it is.
    image: Option<PathBuf>,
}

impl SmallDisk {
    /// A tmpfs (root on Linux only; panics otherwise).
    pub fn mount(megabytes: u32) -> Self {
        let dir = Self::mount_point();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}M"), "tmpfs"])
            .arg(&dir)
            .status()
            .expect("mount runs");
        assert!(status.success(), "mounting a tmpfs needs root");
        Self { dir, image: None }
    }

    /// An ext4 file system in a loop-mounted image, where files can be made immutable, which
    /// even root cannot write (root on Linux with e2fsprogs only; panics otherwise).
    pub fn mount_ext4(megabytes: u32) -> Self {
        let dir = Self::mount_point();
        let image = dir.with_extension("img");
        let file = std::fs::File::create(&image).unwrap();
        file.set_len(u64::from(megabytes) << 20).unwrap();
        let made = Command::new("mkfs.ext4")
            .args(["-q", "-F"])
            .arg(&image)
            .status()
            .expect("mkfs.ext4 runs");
        assert!(made.success(), "mkfs.ext4");
        let status = Command::new("mount")
            .args(["-o", "loop"])
            .arg(&image)
            .arg(&dir)
            .status()
            .expect("mount runs");
        assert!(status.success(), "loop-mounting an ext4 image needs root");
        Self {
            dir,
            image: Some(image),
        }
    }

    fn mount_point() -> PathBuf {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "roomer-small-disk-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Makes its files immutable (writes fail, even through open files and for root), or
    /// writable again (ext4 only). SQLite's shared-memory index (`-shm`) is left alone: it is
    /// mapped into memory, where a write to an immutable file is a SIGBUS, not an error.
    pub fn set_read_only(&self, read_only: bool) {
        let flag = if read_only { "+i" } else { "-i" };
        for entry in std::fs::read_dir(&self.dir).unwrap().flatten() {
            let shared_memory = entry.file_name().to_string_lossy().ends_with("-shm");
            if entry.file_type().is_ok_and(|t| t.is_file()) && !shared_memory {
                let status = Command::new("chattr")
                    .arg(flag)
                    .arg(entry.path())
                    .status()
                    .expect("chattr runs");
                assert!(status.success(), "chattr {flag} {}", entry.path().display());
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Fills the disk but `spare` bytes with a file of its own; returns that file.
    pub fn fill_all_but(&self, spare: u64) -> PathBuf {
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
        // Lazily: the store's connections close in the background, after the test.
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        let _ = std::fs::remove_dir(&self.dir);
        if let Some(image) = &self.image {
            let _ = std::fs::remove_file(image);
        }
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

#[cfg(test)]
mod tests {
    #[test]
    fn database_names_are_replaced_in_urls() {
        use super::with_database;
        assert_eq!(
            with_database("postgres://u:p@h:5432/db", "x"),
            "postgres://u:p@h:5432/x"
        );
        assert_eq!(
            with_database("postgres://h/db?sslmode=disable", "x"),
            "postgres://h/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h", "x"), "postgres://h/x");
    }
}
