//! Storage benchmarks: what ingesting and reading cost in each backend, with the in-memory
//! `occupancy::ledger::Ledger` as a baseline. It prints figures (medians, and ratios where
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
//!   in each space (from `occupancy::tiers::TieredSeries`, which every backend mirrors).
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

use chrono::TimeDelta;
use occupancy::layout::DpuLayout;
use occupancy::ledger::Ledger;
use occupancy::tiers::TieredSeries;
use occupancy::{
    Crossing, Direction, Doorway, DpuId, Installation, Layout, Space, SpaceId, Timestamp, OUTSIDE,
};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use roomer_simulator::{fleet_events, fleet_layout};
use roomer_storage::testing::{fresh_postgres_database, postgres_url, timescale_url};
use roomer_storage::Store;
use sqlx::Connection;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

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

// ---------------------------------------------------------------------------------------------
// b. Late-event cost vs history, and c. count_at latency

/// The shape of a one-DPU history.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// +1, +1, -1 repeated: the room never empties (and no departure is ever clamped).
    NeverEmpty,
    /// +1, -1, -1 repeated: the room empties every third crossing (the second departure
    /// leaves an empty room, so the clamp absorbs it).
    EmptiesOften,
}

/// Where the late crossing lands.
#[derive(Clone, Copy)]
enum Position {
    /// Before every stored crossing of a `NeverEmpty` history.
    AtStart,
    /// Between an arrival and the departure that empties the room, near the start of an
    /// `EmptiesOften` history.
    BeforeEmpty,
    /// Ten crossings before the end of a `NeverEmpty` history.
    NearEnd,
}

impl Position {
    const ALL: [Position; 3] = [Position::AtStart, Position::BeforeEmpty, Position::NearEnd];

    fn label(self) -> &'static str {
        match self {
            Position::AtStart => "at start, never empty",
            Position::BeforeEmpty => "before an empty moment",
            Position::NearEnd => "10 before the end",
        }
    }

    fn shape(self) -> Shape {
        match self {
            Position::BeforeEmpty => Shape::EmptiesOften,
            Position::AtStart | Position::NearEnd => Shape::NeverEmpty,
        }
    }

    /// The `sample`-th late crossing (each one distinct, all an arrival) for a history of `h`.
    fn late(self, h: usize, sample: usize) -> Crossing {
        let start = base_time();
        let ts = match self {
            // Before the first stored crossing (which is at start + 1 s), after the install.
            Position::AtStart => start + TimeDelta::milliseconds(1 + sample as i64),
            // Crossing i is at start + (i + 1) s; in EmptiesOften, crossing 3j is the arrival
            // and 3j + 1 the departure that empties the room.
            Position::BeforeEmpty => start + second(3 * sample) + TimeDelta::milliseconds(500),
            Position::NearEnd => start + second(h - 10 + sample) + TimeDelta::milliseconds(500),
        };
        Crossing::new(late_dpu(), ts, Direction::In, None)
    }
}

fn second(i: usize) -> TimeDelta {
    TimeDelta::seconds(i as i64 + 1)
}

fn late_dpu() -> DpuId {
    DpuId::new("bench-dpu").expect("valid id")
}

fn one_room_layout() -> Layout {
    Layout {
        spaces: vec![Space::new(ROOM, "Room")],
        doorways: vec![one_room_doorway()],
        dpus: vec![DpuLayout {
            id: late_dpu(),
            installations: vec![Installation {
                doorway: 1,
                from: base_time(),
                until: None,
            }],
        }],
    }
}

fn one_room_doorway() -> Doorway {
    Doorway {
        id: 1,
        name: "Front door".into(),
        exiting_to: OUTSIDE,
        entering_to: ROOM,
    }
}

/// `h` crossings of one DPU, one a second, with event ids like a real DPU's.
fn history(shape: Shape, h: usize) -> Vec<Crossing> {
    let pattern = match shape {
        Shape::NeverEmpty => [Direction::In, Direction::In, Direction::Out],
        Shape::EmptiesOften => [Direction::In, Direction::Out, Direction::Out],
    };
    (0..h)
        .map(|i| {
            Crossing::new(
                late_dpu(),
                base_time() + second(i),
                pattern[i % 3],
                Some(i as u64 + 1),
            )
        })
        .collect()
}

/// How many entries and summaries a late crossing reads in the room and in Outside when it
/// lands on `history`: `TieredSeries::apply` is the in-memory twin of every backend's.
fn late_reads(history: &[Crossing], late: &Crossing) -> (usize, usize) {
    let doorway = one_room_doorway();
    let mut series: BTreeMap<SpaceId, TieredSeries> = BTreeMap::new();
    let mut apply = |crossings: &[Crossing]| {
        let mut changes: BTreeMap<SpaceId, occupancy::series::SpaceChange> = BTreeMap::new();
        for crossing in crossings {
            for (space, key) in occupancy::plan::entries(crossing, 0, &doorway) {
                changes.entry(space).or_default().inserts.push(key);
            }
        }
        changes
            .into_iter()
            .map(|(space, change)| {
                (
                    space,
                    series
                        .entry(space)
                        .or_insert_with(|| TieredSeries::new(space, None))
                        .apply(&change),
                )
            })
            .collect::<BTreeMap<SpaceId, usize>>()
    };
    apply(history);
    let visited = apply(std::slice::from_ref(late));
    (visited[&ROOM], visited[&OUTSIDE])
}

async fn late_events_and_lookups(backends: &[Backend], late: bool, lookups: bool) {
    if late {
        println!(
            "\nb. Late-event cost vs history: one DPU over Outside->Room, H crossings stored \
             (batches of {BATCH}), then ONE late arrival; median of {LATE_SAMPLES}"
        );
        println!(
            "   entries and summaries a late crossing reads (room + Outside), the same in every backend:"
        );
        for h in histories() {
            let cells: Vec<String> = Position::ALL
                .iter()
                .map(|p| {
                    let (room, outside) = late_reads(&history(p.shape(), h), &p.late(h, 0));
                    format!("{}: {room} + {outside}", p.label())
                })
                .collect();
            println!("   H={h:<6} {}", cells.join(" | "));
        }
        println!(
            "{:<10} {:>7} {:>24} {:>24} {:>20}",
            "backend",
            "H",
            Position::AtStart.label(),
            Position::BeforeEmpty.label(),
            Position::NearEnd.label()
        );
    }
    // [backend][h] -> per-position medians (seconds) and lookup stats.
    let mut late_rows: Vec<(Backend, usize, Vec<f64>)> = Vec::new();
    let mut lookup_rows: Vec<(Backend, usize, f64, f64)> = Vec::new();
    for &backend in backends {
        for h in histories() {
            let mut never_empty = Subject::open(backend).await;
            never_empty.apply_layout(&one_room_layout()).await;
            for batch in history(Shape::NeverEmpty, h).chunks(BATCH) {
                never_empty.ingest(batch).await;
            }
            if lookups {
                let (p50, p99) = count_at_latency(&never_empty, h).await;
                lookup_rows.push((backend, h, p50, p99));
            }
            if late {
                let mut emptying = Subject::open(backend).await;
                emptying.apply_layout(&one_room_layout()).await;
                for batch in history(Shape::EmptiesOften, h).chunks(BATCH) {
                    emptying.ingest(batch).await;
                }
                let mut medians = Vec::new();
                for position in Position::ALL {
                    let subject = match position.shape() {
                        Shape::NeverEmpty => &mut never_empty,
                        Shape::EmptiesOften => &mut emptying,
                    };
                    let mut samples = Vec::new();
                    for sample in 0..LATE_SAMPLES {
                        let crossing = position.late(h, sample);
                        let began = Instant::now();
                        subject.ingest(std::slice::from_ref(&crossing)).await;
                        samples.push(began.elapsed().as_secs_f64());
                    }
                    medians.push(median(samples));
                }
                println!(
                    "{:<10} {:>7} {:>24} {:>24} {:>20}",
                    backend.name(),
                    h,
                    time(medians[0]),
                    time(medians[1]),
                    time(medians[2])
                );
                late_rows.push((backend, h, medians));
                emptying.close().await;
            }
            never_empty.close().await;
        }
    }
    if late {
        let [small, large] = histories();
        println!(
            "   cost ratio H={large} / H={small} (history x{}):",
            large / small
        );
        for &backend in backends {
            let row = |h: usize| {
                late_rows
                    .iter()
                    .find(|(b, hh, _)| *b == backend && *hh == h)
                    .map(|(_, _, m)| m.clone())
                    .expect("measured")
            };
            let (a, b) = (row(small), row(large));
            println!(
                "{:<10} {:>7} {:>24} {:>24} {:>20}",
                backend.name(),
                "",
                format!("x{:.1}", b[0] / a[0]),
                format!("x{:.1}", b[1] / a[1]),
                format!("x{:.1}", b[2] / a[2])
            );
        }
    }
    if lookups {
        let [small, large] = histories();
        println!(
            "\nc. count_at latency: {LOOKUPS} lookups of the room at random instants, one at a time"
        );
        println!(
            "{:<10} {:>14} {:>14} {:>14} {:>14} {:>16}",
            "backend",
            format!("p50 H={small}"),
            format!("p99 H={small}"),
            format!("p50 H={large}"),
            format!("p99 H={large}"),
            "p50 ratio"
        );
        for &backend in backends {
            let stats = |h: usize| {
                lookup_rows
                    .iter()
                    .find(|(b, hh, _, _)| *b == backend && *hh == h)
                    .map(|&(_, _, p50, p99)| (p50, p99))
                    .expect("measured")
            };
            let (a, b) = (stats(small), stats(large));
            println!(
                "{:<10} {:>14} {:>14} {:>14} {:>14} {:>16}",
                backend.name(),
                time(a.0),
                time(a.1),
                time(b.0),
                time(b.1),
                format!("{:.2}", b.0 / a.0)
            );
        }
    }
}

/// Median and p99 (seconds) of `LOOKUPS` lookups at random instants within the history.
async fn count_at_latency(subject: &Subject, h: usize) -> (f64, f64) {
    let mut rng = StdRng::seed_from_u64(SEED ^ h as u64);
    let span_ms = (h as i64 + 1) * 1_000;
    let at = |rng: &mut StdRng| base_time() + TimeDelta::milliseconds(rng.random_range(0..span_ms));
    for _ in 0..20 {
        subject.count_at(ROOM, at(&mut rng)).await; // warm up
    }
    let mut samples = Vec::with_capacity(LOOKUPS);
    for _ in 0..LOOKUPS {
        let t = at(&mut rng);
        let began = Instant::now();
        let count = subject.count_at(ROOM, t).await;
        samples.push(began.elapsed().as_secs_f64());
        assert!(count >= 0);
    }
    samples.sort_by(f64::total_cmp);
    (median(samples.clone()), percentile(&samples, 0.99))
}

// ---------------------------------------------------------------------------------------------
// Backends

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Backend {
    Ledger,
    Sqlite,
    Postgres,
    Timescale,
}

impl Backend {
    fn all() -> Vec<Backend> {
        let mut all = vec![Backend::Ledger, Backend::Sqlite];
        if postgres_url().is_some() {
            all.push(Backend::Postgres);
        }
        if timescale_url().is_some() {
            all.push(Backend::Timescale);
        }
        all
    }

    fn name(self) -> &'static str {
        match self {
            Backend::Ledger => "ledger",
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
            Backend::Timescale => "timescale",
        }
    }
}

/// One fresh store under test and what keeps it alive.
enum Subject {
    Ledger(Box<Ledger>),
    Sqlite {
        store: Arc<dyn Store>,
        _dir: tempfile::TempDir,
    },
    Postgres {
        store: Arc<dyn Store>,
        admin_url: String,
        database: String,
    },
}

impl Subject {
    async fn open(backend: Backend) -> Self {
        match backend {
            Backend::Ledger => Subject::Ledger(Box::default()),
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("a temporary directory");
                let url = format!("sqlite://{}", dir.path().join("bench.db").display());
                let store = roomer_storage::connect(&url).await.expect("open SQLite");
                Subject::Sqlite { store, _dir: dir }
            }
            Backend::Postgres | Backend::Timescale => {
                let admin_url = if backend == Backend::Postgres {
                    postgres_url()
                } else {
                    timescale_url()
                }
                .expect("the backend's URL is set");
                let url = fresh_postgres_database(&admin_url)
                    .await
                    .expect("the backend's URL is set but its server cannot be reached");
                let database = database_name(&url);
                let store = roomer_storage::connect(&url)
                    .await
                    .expect("open PostgreSQL");
                assert_eq!(
                    store.timescale().await.expect("status").is_some(),
                    backend == Backend::Timescale,
                    "TEST_TIMESCALE_URL is TimescaleDB and TEST_DATABASE_URL plain PostgreSQL"
                );
                Subject::Postgres {
                    store,
                    admin_url,
                    database,
                }
            }
        }
    }

    async fn apply_layout(&mut self, layout: &Layout) {
        match self {
            Subject::Ledger(ledger) => ledger.apply_layout(layout),
            Subject::Sqlite { store, .. } | Subject::Postgres { store, .. } => {
                store.apply_layout(layout).await.expect("apply layout");
            }
        }
    }

    async fn ingest(&mut self, batch: &[Crossing]) {
        let inserted = match self {
            Subject::Ledger(ledger) => ledger.ingest(batch).inserted,
            Subject::Sqlite { store, .. } | Subject::Postgres { store, .. } => {
                store.ingest(batch).await.expect("ingest").report.inserted
            }
        };
        assert_eq!(inserted, batch.len(), "every crossing is new");
    }

    async fn catch_up(&self) {
        if let Subject::Sqlite { store, .. } | Subject::Postgres { store, .. } = self {
            store.catch_up().await.expect("summarize noted minutes");
        }
    }

    async fn count_at(&self, space: SpaceId, at: Timestamp) -> i64 {
        match self {
            Subject::Ledger(ledger) => ledger.count_at(space, at),
            Subject::Sqlite { store, .. } | Subject::Postgres { store, .. } => store
                .count_at(space, Some(at))
                .await
                .expect("count_at")
                .expect("the space exists"),
        }
    }

    async fn counts_now(&self, spaces: &[SpaceId]) -> Vec<i64> {
        let mut counts = Vec::new();
        for &space in spaces {
            counts.push(match self {
                Subject::Ledger(ledger) => ledger.current(space),
                Subject::Sqlite { store, .. } | Subject::Postgres { store, .. } => store
                    .count_at(space, None)
                    .await
                    .expect("count_at")
                    .expect("the space exists"),
            });
        }
        counts
    }

    /// Drops the store; a PostgreSQL database is dropped too.
    async fn close(self) {
        if let Subject::Postgres {
            store,
            admin_url,
            database,
        } = self
        {
            drop(store);
            let mut admin = sqlx::PgConnection::connect(&admin_url)
                .await
                .expect("connect to TEST_DATABASE_URL");
            sqlx::query(&format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)"))
                .execute(&mut admin)
                .await
                .expect("drop the bench database");
            let _ = admin.close().await;
        }
    }
}

/// The database name of a `postgres://…/name?params` URL.
fn database_name(url: &str) -> String {
    let base = url.split('?').next().unwrap_or(url);
    base.rsplit('/').next().unwrap_or_default().to_owned()
}

// ---------------------------------------------------------------------------------------------
// Helpers

fn base_time() -> Timestamp {
    "2024-03-04T08:00:00Z".parse().expect("constant")
}

/// 08:00 UTC yesterday: uploads after an outage are hours late, not years (on TimescaleDB,
/// data older than the compression age would be written into compressed chunks).
fn recent_time() -> Timestamp {
    let yesterday = chrono::Utc::now().date_naive() - TimeDelta::days(1);
    yesterday.and_time(chrono::NaiveTime::MIN).and_utc() + TimeDelta::hours(8)
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    }
}

/// The `p` quantile of sorted samples (nearest rank).
fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Seconds as a human-sized duration.
fn time(seconds: f64) -> String {
    if seconds < 1e-3 {
        format!("{:.1} µs", seconds * 1e6)
    } else if seconds < 1.0 {
        format!("{:.2} ms", seconds * 1e3)
    } else {
        format!("{seconds:.2} s")
    }
}

fn secs(d: Duration) -> String {
    time(d.as_secs_f64())
}

/// Events/s, and how many runs it is the median of when fewer than `INGEST_RUNS`.
fn rate((per_second, runs): (f64, usize)) -> String {
    if runs < INGEST_RUNS {
        format!("{per_second:.0} ({runs} run)")
    } else {
        format!("{per_second:.0}")
    }
}
