//! Campus bench: one day of a 100,000-DPU campus (10,000,000 crossings) stored as it arrives
//! after an outage, then read back. It prints figures; it asserts nothing about speed (the
//! property tests prove the answers right).
//!
//! - Layout: `fleet_layout(100,000 DPUs, 10,000 rooms)`, every doorway from Outside into a
//!   room (ten doorways a room), so Outside takes part in every crossing.
//! - Data: each DPU makes 100 crossings at random instants between 07:00 and 19:00 UTC of one
//!   day (nobody leaves a doorway's room more often than people came in). The network was
//!   down all day: each DPU uploads its day in one bulk message, the DPUs in random order,
//!   so nearly every crossing is late for Outside. Stored in batches of 50 uploads (5,000
//!   crossings), as the ingest worker gathers them, and timed until the summaries are up to
//!   date (`Store::catch_up`).
//! - Disk: the database's size per million crossings; on TimescaleDB also after compressing
//!   every chunk, with each hypertable's compression ratio.
//! - Reads at 10,000,000 stored crossings: `count_at` p50 / p99 over 1,000 random instants of
//!   the day (half in Outside, half in random rooms), and 90 days of hourly history (2,160
//!   buckets, Europe/Paris) ending with the campus day, of Outside and of one room, median
//!   of 15; on PostgreSQL and TimescaleDB right after the load and again after `VACUUM
//!   ANALYZE` and `CHECKPOINT` (what autovacuum and the server do within minutes).
//!
//! Rerun (arguments pick backends; `ROOMER_CAMPUS_DPUS` scales the campus down,
//! `ROOMER_SUMMARIZE_EVERY` sets the summarizer's interval in milliseconds; PostgreSQL
//! databases are kept, and `ROOMER_CAMPUS_READ_URL=postgres://…/that_database` reruns only
//! the reads against one):
//!
//! ```text
//! cargo bench -p roomer-storage --bench campus -- sqlite
//! TEST_DATABASE_URL=postgres://postgres:postgres@127.0.0.1:5432/postgres \
//!     cargo bench -p roomer-storage --bench campus -- postgres
//! TEST_TIMESCALE_URL=postgres://postgres:postgres@127.0.0.1:5434/postgres \
//!     cargo bench -p roomer-storage --bench campus -- timescale
//! ```

use chrono::TimeDelta;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use roomer_occupancy::history::{boundaries, Interval};
use roomer_occupancy::{Crossing, Direction, SpaceId, Timestamp, OUTSIDE};
use roomer_simulator::{fleet_dpu_id, fleet_layout};
use roomer_storage::history::{history, Source};
use roomer_storage::testing::{
    compress_all_chunks, fresh_postgres_database, postgres_url, timescale_url,
};
use roomer_storage::{Page, Store, StoreOptions};
use sqlx::{Connection, Row};
use std::time::Instant;

const PER_DPU: usize = 100;
const DPUS_PER_ROOM: usize = 10;
const UPLOADS_PER_BATCH: usize = 50;
const LOOKUPS: usize = 1_000;
const HISTORY_RUNS: usize = 15;
const SEED: u64 = 100_000;

fn dpus() -> usize {
    std::env::var("ROOMER_CAMPUS_DPUS")
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(100_000)
}

/// The store's options: `ROOMER_SUMMARIZE_EVERY` (milliseconds) as `roomer` reads it.
fn options() -> StoreOptions {
    let mut options = StoreOptions::default();
    if let Some(ms) = std::env::var("ROOMER_SUMMARIZE_EVERY")
        .ok()
        .and_then(|v| v.trim_end_matches("ms").parse().ok())
    {
        options.summarize_every = std::time::Duration::from_millis(ms);
    }
    options
}

/// Yesterday (UTC): an outage's uploads are hours late, not weeks (on TimescaleDB, data
/// older than the compression age would be written into compressed chunks).
fn day() -> Timestamp {
    let yesterday = chrono::Utc::now().date_naive() - TimeDelta::days(1);
    yesterday.and_time(chrono::NaiveTime::MIN).and_utc()
}

/// DPU `i`'s day (0-based), in time order.
fn upload(i: usize) -> Vec<Crossing> {
    let mut rng = StdRng::seed_from_u64(SEED ^ i as u64);
    let opens = day() + TimeDelta::hours(7);
    let mut offsets: Vec<i64> = (0..PER_DPU)
        .map(|_| rng.random_range(0..12 * 3_600_000))
        .collect();
    offsets.sort_unstable();
    let dpu = fleet_dpu_id(i + 1);
    let mut inside = 0u32;
    offsets
        .into_iter()
        .enumerate()
        .map(|(k, ms)| {
            let direction = if inside == 0 || rng.random_bool(0.5) {
                inside += 1;
                Direction::In
            } else {
                inside -= 1;
                Direction::Out
            };
            let at = opens + TimeDelta::milliseconds(ms);
            Crossing::new(dpu.clone(), at, direction, Some(k as u64 + 1))
        })
        .collect()
}

/// With `ROOMER_CAMPUS_READ_URL`, only the reads, against a campus stored by an earlier run
/// (its database is kept): what they cost once the database has settled.
async fn read_only(url: &str, dpus: usize) {
    println!("\n== reads of {url}");
    let store = roomer_storage::connect_with(url, options())
        .await
        .expect("open the store");
    reads(store.as_ref(), dpus / DPUS_PER_ROOM).await;
}

fn main() {
    // `RUST_LOG=sqlx::query=debug` logs every statement with its time, for
    // `scripts/statement-times.py`.
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let wanted: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(async {
        let dpus = dpus();
        println!(
            "campus bench: {dpus} DPUs × {PER_DPU} crossings ({} crossings) into {} rooms, \
             one bulk upload per DPU in random order, batches of {UPLOADS_PER_BATCH} uploads",
            dpus * PER_DPU,
            dpus / DPUS_PER_ROOM
        );
        if let Ok(url) = std::env::var("ROOMER_CAMPUS_READ_URL") {
            return read_only(&url, dpus).await;
        }
        for backend in ["sqlite", "postgres", "timescale"] {
            if wanted.is_empty() || wanted.iter().any(|w| backend.contains(w.as_str())) {
                run(backend, dpus).await;
            }
        }
    });
}

async fn run(backend: &str, dpus: usize) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let url = match backend {
        "sqlite" => format!("sqlite://{}", dir.path().join("campus.db").display()),
        "postgres" | "timescale" => {
            let admin = if backend == "postgres" {
                postgres_url()
            } else {
                timescale_url()
            };
            let Some(admin) = admin else {
                println!("\n{backend}: skipped (set TEST_DATABASE_URL / TEST_TIMESCALE_URL)");
                return;
            };
            fresh_postgres_database(&admin).await.expect("reachable")
        }
        _ => unreachable!(),
    };
    println!("\n== {backend}");
    let store = roomer_storage::connect_with(&url, options())
        .await
        .expect("open the store");
    assert_eq!(
        store.timescale().await.expect("status").is_some(),
        backend == "timescale",
        "TEST_TIMESCALE_URL is TimescaleDB and TEST_DATABASE_URL plain PostgreSQL"
    );
    let rooms = dpus / DPUS_PER_ROOM;
    let began = Instant::now();
    store
        .apply_layout(&fleet_layout(dpus, rooms, day()))
        .await
        .expect("apply the campus layout");
    println!("layout of {dpus} DPUs applied in {:.1} s", secs(began));

    let mut order: Vec<usize> = (0..dpus).collect();
    order.shuffle(&mut StdRng::seed_from_u64(SEED));
    let began = Instant::now();
    let mut stored = 0usize;
    // Progress at every tenth, with the rate of that tenth alone: whether a crossing costs
    // more as the day fills.
    let tenth = (dpus * PER_DPU / 10).max(1);
    let mut tenth_began = Instant::now();
    for uploads in order.chunks(UPLOADS_PER_BATCH) {
        let batch: Vec<Crossing> = uploads.iter().flat_map(|&i| upload(i)).collect();
        let outcome = store.ingest(&batch).await.expect("ingest");
        assert_eq!(
            outcome.report.inserted,
            batch.len(),
            "every crossing is new"
        );
        let before = stored / tenth;
        stored += batch.len();
        if stored / tenth > before {
            println!(
                "  {stored} stored: {:.0} crossings/s over the last tenth",
                tenth as f64 / secs(tenth_began)
            );
            tenth_began = Instant::now();
        }
    }
    let batches_took = secs(began);
    store.catch_up().await.expect("catch up");
    let took = secs(began);
    println!(
        "stored {stored} crossings in {took:.1} s: {:.0} crossings/s (the last batch after \
         {batches_took:.1} s, then {:.1} s until every summary was up to date)",
        stored as f64 / took,
        took - batches_took
    );

    let millions = stored as f64 / 1e6;
    let size = database_bytes(&url, dir.path()).await;
    println!(
        "disk: {} MB, {:.0} MB per million crossings",
        size / 1_000_000,
        size as f64 / 1e6 / millions
    );
    if backend == "timescale" {
        let began = Instant::now();
        compress_all_chunks(&url).await.expect("compress");
        println!("compressed every chunk in {:.1} s", secs(began));
        let size = database_bytes(&url, dir.path()).await;
        println!(
            "disk compressed: {} MB, {:.0} MB per million crossings",
            size / 1_000_000,
            size as f64 / 1e6 / millions
        );
        compression_ratios(&url).await;
    }

    println!("reads right after the load:");
    reads(store.as_ref(), rooms).await;
    if !url.starts_with("sqlite:") {
        // What autovacuum does within minutes of a load this size; the figures of the target
        // (reads at 10,000,000 stored crossings) are these.
        vacuum_analyze(&url).await;
        println!("reads after VACUUM ANALYZE:");
        reads(store.as_ref(), rooms).await;
    }
}

async fn vacuum_analyze(url: &str) {
    let mut conn = sqlx::PgConnection::connect(url).await.expect("connect");
    let began = Instant::now();
    sqlx::query("VACUUM ANALYZE")
        .execute(&mut conn)
        .await
        .expect("vacuum");
    // The vacuum dirtied most pages of the day; without this the reads met the checkpoint
    // writing them out (the server's own checkpoint, due within minutes).
    sqlx::query("CHECKPOINT")
        .execute(&mut conn)
        .await
        .expect("checkpoint");
    println!("VACUUM ANALYZE and CHECKPOINT took {:.1} s", secs(began));
}

/// `count_at` at random instants, and 90 days of hourly history.
async fn reads(store: &dyn Store, rooms: usize) {
    lookups(store, rooms).await;
    let spaces: Vec<_> = store
        .spaces(&Page::all())
        .await
        .expect("spaces")
        .into_iter()
        .map(|s| s.space)
        .collect();
    for (name, space) in [("Outside", OUTSIDE), ("Room 1", 1)] {
        let ms = hourly_90_days(store, &spaces, space).await;
        println!("90 days of hourly history of {name} (2,160 buckets): median {ms:.1} ms");
    }
}

/// `count_at` p50 and p99 at random instants of the day, half in Outside.
async fn lookups(store: &dyn Store, rooms: usize) {
    let mut rng = StdRng::seed_from_u64(SEED ^ 1);
    let mut samples = Vec::with_capacity(LOOKUPS);
    for n in 0..LOOKUPS + 20 {
        let space: SpaceId = if n % 2 == 0 {
            OUTSIDE
        } else {
            rng.random_range(1..=rooms as i64)
        };
        let at = day() + TimeDelta::milliseconds(rng.random_range(0..86_400_000));
        let began = Instant::now();
        let count = store.count_at(space, Some(at)).await.expect("count_at");
        if n >= 20 {
            samples.push(secs(began) * 1e3);
        }
        assert!(count.is_some(), "space {space} exists");
    }
    samples.sort_by(f64::total_cmp);
    let at = |p: f64| samples[((samples.len() - 1) as f64 * p).round() as usize];
    println!(
        "count_at over {LOOKUPS} instants: p50 {:.2} ms, p99 {:.2} ms",
        at(0.5),
        at(0.99)
    );
}

async fn hourly_90_days(
    store: &dyn Store,
    spaces: &[roomer_occupancy::Space],
    space: SpaceId,
) -> f64 {
    let end = day() + TimeDelta::days(1);
    let bounds = boundaries(
        end - TimeDelta::days(90),
        end,
        Interval::Minutes(60),
        chrono_tz::Europe::Paris,
        10_000,
    );
    let mut samples = Vec::new();
    for _ in 0..HISTORY_RUNS {
        let began = Instant::now();
        let answer = history(store, space, spaces, &bounds, Source::Summaries)
            .await
            .expect("history")
            .expect("the space exists");
        samples.push(secs(began) * 1e3);
        assert_eq!(answer.buckets.len(), bounds.len());
    }
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

/// The size of the database: the SQLite file with its WAL, or PostgreSQL's database.
async fn database_bytes(url: &str, dir: &std::path::Path) -> u64 {
    if url.starts_with("sqlite:") {
        return std::fs::read_dir(dir)
            .expect("the bench directory")
            .map(|e| e.expect("an entry").metadata().expect("metadata").len())
            .sum();
    }
    let mut conn = sqlx::PgConnection::connect(url).await.expect("connect");
    sqlx::query("CHECKPOINT")
        .execute(&mut conn)
        .await
        .expect("checkpoint");
    let bytes: i64 = sqlx::query_scalar("SELECT pg_database_size(current_database())")
        .fetch_one(&mut conn)
        .await
        .expect("database size");
    bytes as u64
}

async fn compression_ratios(url: &str) {
    let mut conn = sqlx::PgConnection::connect(url).await.expect("connect");
    for table in ["crossings", "space_counts"] {
        let row = sqlx::query(&format!(
            "SELECT sum(before_compression_total_bytes)::float8, \
                    sum(after_compression_total_bytes)::float8 \
             FROM hypertable_compression_stats('{table}')"
        ))
        .fetch_one(&mut conn)
        .await
        .expect("compression stats");
        let (before, after): (Option<f64>, Option<f64>) = (row.get(0), row.get(1));
        if let (Some(before), Some(after)) = (before, after) {
            println!(
                "  {table}: {:.0} MB → {:.0} MB compressed, ratio {:.1}",
                before / 1e6,
                after / 1e6,
                before / after
            );
        }
    }
}

fn secs(began: Instant) -> f64 {
    began.elapsed().as_secs_f64()
}
