//! Storage benchmarks: what ingesting and reading cost in each backend, with the in-memory
//! `roomer_occupancy::ledger::Ledger` as a baseline. It prints figures (medians, and ratios where
//! they tell something); it asserts nothing about speed.
//!
//! - **a. Ingest throughput**: a fleet of 200 DPUs × 100 crossings (`fleet_layout(200, 20, …)`
//!   applied first, then `fleet_events(200, 100, …)`) stored in batches of 500, (i) in
//!   timestamp order and (ii) shuffled, so that every batch is mostly late events. Events/s,
//!   median of 3 runs, a fresh store per run (a single run when it takes over 20 s), and the
//!   shuffled/in-order ratio. Each run is timed until the summaries are up to date
//!   (`Store::catch_up`), not only until the last batch is stored. (iii) **Bulk**: 1,000
//!   DPUs over 100 rooms, each uploading its 100 crossings in one message after an outage,
//!   the uploads in random order, 50 uploads (5,000 crossings) a batch.
//! - **b. Late-event cost vs history**: one DPU over Outside→Room with H crossings stored
//!   (H = 1,000 and 20,000, or `ROOMER_BENCH_HISTORY`), then ONE late crossing: at the very
//!   beginning of a history where the room never empties (a count kept per entry would
//!   rewrite every later one), just
//!   before a moment the room was empty in a history that empties every third crossing, and
//!   10 crossings before the end. Median of 5, plus how many entries and summaries it reads
//!   in each space (from `roomer_occupancy::tiers::TieredSeries`, which every backend mirrors).
//! - **c. `count_at` latency**: median and p99 of 1,000 `count_at(room, Some(random T))` with
//!   H = 1,000 and 20,000 (or `ROOMER_BENCH_HISTORY`) entries, and their ratio (≈1 for an
//!   index lookup).
//!
//! Rerun (SQLite in a temporary file, and the ledger):
//!
//! ```text
//! cargo bench -p roomer-storage --bench storage
//! ```
//!
//! PostgreSQL too (a fresh database per store, dropped afterwards) when `TEST_DATABASE_URL`
//! names a server, and TimescaleDB when `TEST_TIMESCALE_URL` names one:
//!
//! ```text
//! TEST_DATABASE_URL=postgres://postgres:postgres@127.0.0.1:5432/postgres \
//!     cargo bench -p roomer-storage --bench storage
//! ```
//!
//! Arguments after `--` pick sections by name (`ingest`, `late`, `count_at`), e.g.
//! `cargo bench -p roomer-storage --bench storage -- late`.

mod figures;
mod late;
mod subjects;

use chrono::TimeDelta;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use roomer_occupancy::layout::DpuLayout;
use roomer_occupancy::ledger::Ledger;
use roomer_occupancy::tiers::TieredSeries;
use roomer_occupancy::{
    Crossing, Direction, Doorway, DpuId, Installation, Layout, Space, SpaceId, Timestamp, OUTSIDE,
};
use roomer_simulator::{fleet_events, fleet_layout};
use roomer_storage::testing::{fresh_postgres_database, postgres_url, timescale_url};
use roomer_storage::Store;
use sqlx::Connection;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use figures::*;
use late::*;
use subjects::*;

const FLEET_DPUS: usize = 200;
const FLEET_ROOMS: usize = 20;
const FLEET_EVENTS_PER_DPU: usize = 100;
const BATCH: usize = 500;
/// The bulk column: DPUs that each upload their crossings in one message, gathered
/// `BULK_UPLOADS_PER_BATCH` uploads a batch (as the campus bench does).
const BULK_DPUS: usize = 1_000;
const BULK_ROOMS: usize = 100;
const BULK_UPLOADS_PER_BATCH: usize = 50;
const BULK_BATCH: usize = BULK_UPLOADS_PER_BATCH * FLEET_EVENTS_PER_DPU;
const INGEST_RUNS: usize = 3;
/// An ingest run longer than this is not repeated (SQLite, shuffled), to keep the bench short.
const SLOW_RUN: Duration = Duration::from_secs(20);
const LATE_SAMPLES: usize = 5;
const LOOKUPS: usize = 1_000;
/// The histories of sections b and c: 1,000 crossings, and `ROOMER_BENCH_HISTORY` of them
/// (20,000 unless set; the figures in docs/benchmarks.md also use 1,000,000).
fn histories() -> [usize; 2] {
    let large = std::env::var("ROOMER_BENCH_HISTORY")
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(20_000);
    [1_000, large]
}
const SEED: u64 = 20_180_226;

/// The room of the late-event and lookup scenarios.
const ROOM: SpaceId = 1;

fn main() {
    // `RUST_LOG=sqlx::query=debug` logs every statement with its time, to stderr
    // (`scripts/statement-times.py` sums them).
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let wanted = |name: &str| filters.is_empty() || filters.iter().any(|f| name.contains(f));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(async {
        let backends = Backend::all();
        println!(
            "roomer-storage benchmarks; backends: {}{}",
            backends
                .iter()
                .map(|b| b.name())
                .collect::<Vec<_>>()
                .join(", "),
            if postgres_url().is_none() {
                " (set TEST_DATABASE_URL for PostgreSQL)"
            } else {
                ""
            }
        );
        let started = Instant::now();
        if wanted("ingest") {
            ingest_throughput(&backends).await;
        }
        if wanted("late") || wanted("count_at") {
            late_events_and_lookups(&backends, wanted("late"), wanted("count_at")).await;
        }
        println!("\ntotal bench time {}", secs(started.elapsed()));
    });
}

// ---------------------------------------------------------------------------------------------
// a. Ingest throughput

async fn ingest_throughput(backends: &[Backend]) {
    let start = recent_time();
    let layout = fleet_layout(FLEET_DPUS, FLEET_ROOMS, start);
    let mut in_order = fleet_events(FLEET_DPUS, FLEET_EVENTS_PER_DPU, start, SEED);
    in_order.sort_by(|a, b| (a.ts, &a.dpu).cmp(&(b.ts, &b.dpu)));
    let mut shuffled = in_order.clone();
    shuffled.shuffle(&mut StdRng::seed_from_u64(SEED));
    let bulk_layout = fleet_layout(BULK_DPUS, BULK_ROOMS, start);
    let bulk = bulk_uploads(start);
    let n = in_order.len();
    println!(
        "\na. Ingest throughput: {FLEET_DPUS} DPUs x {FLEET_EVENTS_PER_DPU} events = {n} \
         crossings into {FLEET_ROOMS} rooms + Outside, batches of {BATCH}; bulk: {BULK_DPUS} \
         DPUs each uploading its {FLEET_EVENTS_PER_DPU} crossings in one message, in random \
         order, {BULK_UPLOADS_PER_BATCH} uploads a batch; median of {INGEST_RUNS} runs \
         (fresh store each; 1 run if over 20 s)"
    );
    println!(
        "{:<10} {:>16} {:>16} {:>18} {:>16}",
        "backend", "in order ev/s", "shuffled ev/s", "shuffled/in-order", "bulk ev/s"
    );
    let mut expected: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
    for &backend in backends {
        let runs = [
            ("fleet", &layout, &in_order, BATCH, FLEET_ROOMS),
            ("fleet", &layout, &shuffled, BATCH, FLEET_ROOMS),
            ("bulk", &bulk_layout, &bulk, BULK_BATCH, BULK_ROOMS),
        ];
        let mut rates = Vec::new();
        for (name, layout, events, batch, rooms) in runs {
            let mut times = Vec::new();
            while times.len() < INGEST_RUNS {
                let (elapsed, counts) = timed_load(backend, layout, events, batch, rooms).await;
                times.push(elapsed.as_secs_f64());
                // Same crossings, any order, any backend: the same counts.
                let expected = expected.entry(name).or_insert_with(|| counts.clone());
                assert_eq!(&counts, expected, "{} disagrees", backend.name());
                if elapsed > SLOW_RUN {
                    break; // Keeps the whole bench within a few minutes.
                }
            }
            rates.push((events.len() as f64 / median(times.clone()), times.len()));
        }
        println!(
            "{:<10} {:>16} {:>16} {:>18} {:>16}",
            backend.name(),
            rate(rates[0]),
            rate(rates[1]),
            format!("{:.3}", rates[1].0 / rates[0].0),
            rate(rates[2]),
        );
    }
}

/// Stores `events` in a fresh store in batches of `batch`, timed until the summaries are up
/// to date (`Store::catch_up`), not only until the last batch is stored; with the counts of
/// Outside and the rooms afterwards.
async fn timed_load(
    backend: Backend,
    layout: &Layout,
    events: &[Crossing],
    batch: usize,
    rooms: usize,
) -> (Duration, Vec<i64>) {
    let mut subject = Subject::open(backend).await;
    subject.apply_layout(layout).await;
    let began = Instant::now();
    for batch in events.chunks(batch) {
        subject.ingest(batch).await;
    }
    subject.catch_up().await;
    let elapsed = began.elapsed();
    let spaces: Vec<SpaceId> = (0..=rooms as SpaceId).collect();
    let counts = subject.counts_now(&spaces).await;
    subject.close().await;
    (elapsed, counts)
}

/// Each DPU's crossings in one upload (in time order), the uploads in random order: what
/// the ingest worker gathers when a fleet comes back online after an outage.
/// `fleet_events` already lists each DPU's crossings together, in time order.
fn bulk_uploads(start: Timestamp) -> Vec<Crossing> {
    let events = fleet_events(BULK_DPUS, FLEET_EVENTS_PER_DPU, start, SEED);
    let mut uploads: Vec<&[Crossing]> = events.chunks(FLEET_EVENTS_PER_DPU).collect();
    uploads.shuffle(&mut StdRng::seed_from_u64(SEED));
    uploads.concat()
}
