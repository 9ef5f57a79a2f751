//! History benchmark: what a dashboard's history query costs when it is folded from the
//! tiered summaries (what the API does, on every backend) and when it is walked from the raw
//! series, on the same data, on TimescaleDB, plain PostgreSQL and SQLite. It prints medians and
//! ratios; it asserts nothing about speed (the property tests prove the answers equal).
//!
//! - Data: one room behind one doorway, 90 days × 2,000 crossings a day between 07:00 and
//!   19:00 UTC (180,000 crossings, so 180,000 entries in the room's series), stored in
//!   batches of 1,000 in time order; a daily reset at 04:00 Europe/Paris. On TimescaleDB every
//!   chunk is then compressed, as the policies leave old data.
//! - Queries: the 90 days of the room in hours (2,160 buckets, one page of 10,000), days (90)
//!   and weeks (13) in Europe/Paris, hours in Asia/Kolkata (on half hours of UTC, so folded
//!   from minutes and hours) and days in UTC; median of 15 each.
//! - With `TEST_DATABASE_URL` too: the same data on plain PostgreSQL.
//!
//! Rerun (needs a PostgreSQL with `timescaledb` preloaded; see docs/operations.md, TimescaleDB
//! section):
//!
//! ```text
//! TEST_TIMESCALE_URL=postgres://postgres:postgres@127.0.0.1:5434/postgres \
//!     cargo bench -p roomer-storage --bench history
//! ```

use chrono::{NaiveTime, TimeDelta};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use roomer_occupancy::history::{boundaries, Interval};
use roomer_occupancy::layout::DpuLayout;
use roomer_occupancy::{
    Crossing, Direction, Doorway, DpuId, Installation, Layout, Space, SpaceId, Timestamp, OUTSIDE,
};
use roomer_storage::history::{history, Source};
use roomer_storage::testing::{
    compress_all_chunks, fresh_postgres_database, postgres_url, timescale_url,
};
use roomer_storage::{Page, Store};
use std::time::Instant;

const DAYS: i64 = 90;
const PER_DAY: usize = 2_000;
const BATCH: usize = 1_000;
const RUNS: usize = 15;
const ROOM: SpaceId = 1;

fn start() -> Timestamp {
    "2026-06-01T00:00:00Z".parse().expect("constant")
}

fn layout() -> Layout {
    let mut room = Space::new(ROOM, "Room");
    room.time_zone = Some(chrono_tz::Europe::Paris);
    room.daily_reset = NaiveTime::from_hms_opt(4, 0, 0);
    Layout {
        spaces: vec![room],
        doorways: vec![Doorway {
            id: 1,
            name: "Door".into(),
            exiting_to: OUTSIDE,
            entering_to: ROOM,
        }],
        dpus: vec![DpuLayout {
            id: DpuId::new("d1").expect("valid"),
            installations: vec![Installation {
                doorway: 1,
                from: start() - TimeDelta::days(1),
                until: None,
            }],
        }],
    }
}

/// A working day's traffic: people come in and leave again, never more leaving than inside.
fn crossings() -> Vec<Crossing> {
    let mut rng = StdRng::seed_from_u64(7);
    let dpu = DpuId::new("d1").expect("valid");
    let mut out = Vec::with_capacity(DAYS as usize * PER_DAY);
    for day in 0..DAYS {
        let opening = start() + TimeDelta::days(day) + TimeDelta::hours(7);
        let mut instants: Vec<i64> = (0..PER_DAY)
            .map(|_| rng.random_range(0..12 * 3_600_000))
            .collect();
        instants.sort_unstable();
        instants.dedup();
        let mut inside = 0;
        for ms in instants {
            let direction = if inside > 0 && rng.random_bool(0.5) {
                inside -= 1;
                Direction::Out
            } else {
                inside += 1;
                Direction::In
            };
            out.push(Crossing::new(
                dpu.clone(),
                opening + TimeDelta::milliseconds(ms),
                direction,
                None,
            ));
        }
    }
    out
}

async fn load(store: &dyn Store, events: &[Crossing]) -> f64 {
    store.apply_layout(&layout()).await.expect("layout");
    let started = Instant::now();
    for batch in events.chunks(BATCH) {
        store.ingest(batch).await.expect("ingest");
    }
    events.len() as f64 / started.elapsed().as_secs_f64()
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// Median milliseconds of `RUNS` history queries, and how many buckets came from summaries.
async fn time(
    store: &dyn Store,
    interval: Interval,
    tz: chrono_tz::Tz,
    source: Source,
) -> (f64, usize, usize) {
    let spaces: Vec<Space> = store
        .spaces(&Page::all())
        .await
        .expect("spaces")
        .into_iter()
        .map(|s| s.space)
        .collect();
    let bounds = boundaries(
        start(),
        start() + TimeDelta::days(DAYS),
        interval,
        tz,
        10_000,
    );
    let mut samples = Vec::new();
    let mut rolled = 0;
    for _ in 0..RUNS {
        let started = Instant::now();
        let answer = history(store, ROOM, &spaces, &bounds, source)
            .await
            .expect("history")
            .expect("the room exists");
        samples.push(started.elapsed().as_secs_f64() * 1e3);
        rolled = answer.from_summaries;
    }
    (median(samples), rolled, bounds.len())
}

fn main() {
    let Some(admin) = timescale_url() else {
        println!(
            "history bench: set TEST_TIMESCALE_URL to a PostgreSQL with timescaledb preloaded"
        );
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(async {
        let events = crossings();
        println!(
            "history bench: {} crossings over {DAYS} days into one room (daily reset 04:00 Paris)",
            events.len()
        );
        let url = fresh_postgres_database(&admin).await.expect("TimescaleDB reachable");
        let timescale = roomer_storage::connect(&url).await.expect("open TimescaleDB");
        let status = timescale.timescale().await.expect("status");
        assert!(status.is_some(), "TEST_TIMESCALE_URL has no TimescaleDB");
        let rate = load(timescale.as_ref(), &events).await;
        println!("TimescaleDB ingest (in order, batches of {BATCH}): {rate:.0} crossings/s");
        compress_all_chunks(&url).await.expect("compress");
        if let Some(status) = timescale.timescale().await.expect("status") {
            println!("{status}");
        }

        // Plain PostgreSQL, when TEST_DATABASE_URL names one: what TimescaleDB costs at ingest.
        let plain = match postgres_url() {
            Some(admin) => {
                let url = fresh_postgres_database(&admin).await.expect("PostgreSQL reachable");
                let store = roomer_storage::connect(&url).await.expect("open PostgreSQL");
                let rate = load(store.as_ref(), &events).await;
                println!("plain PostgreSQL ingest (same data): {rate:.0} crossings/s");
                Some(store)
            }
            None => None,
        };

        let dir = tempfile::tempdir().expect("temp dir");
        let sqlite_url = format!("sqlite://{}", dir.path().join("bench.db").display());
        let sqlite = roomer_storage::connect(&sqlite_url).await.expect("open SQLite");
        load(sqlite.as_ref(), &events).await;

        println!(
            "\n{:<22} {:>8} {:>14} {:>12} {:>8} {:>14} {:>12} {:>12}",
            "query (90 days)", "buckets", "TimescaleDB ms", "its raw ms", "ratio", "plain PG ms", "SQLite ms", "SQLite raw"
        );
        for (name, interval, tz) in [
            ("hours, Europe/Paris", Interval::Minutes(60), chrono_tz::Europe::Paris),
            ("days, Europe/Paris", Interval::Day, chrono_tz::Europe::Paris),
            ("weeks, Europe/Paris", Interval::Week, chrono_tz::Europe::Paris),
            ("hours, Asia/Kolkata", Interval::Minutes(60), chrono_tz::Asia::Kolkata),
            ("days, UTC", Interval::Day, chrono_tz::UTC),
        ] {
            let (folded_ms, folded, buckets) =
                time(timescale.as_ref(), interval, tz, Source::Summaries).await;
            assert_eq!(folded, buckets, "every bucket from the summaries");
            let (raw_ms, _, _) = time(timescale.as_ref(), interval, tz, Source::Raw).await;
            let (sqlite_ms, _, _) = time(sqlite.as_ref(), interval, tz, Source::Summaries).await;
            let (sqlite_raw_ms, _, _) = time(sqlite.as_ref(), interval, tz, Source::Raw).await;
            let plain_ms = match &plain {
                Some(store) => format!("{:.2}", time(store.as_ref(), interval, tz, Source::Summaries).await.0),
                None => "-".into(),
            };
            println!(
                "{name:<22} {buckets:>8} {folded_ms:>14.2} {raw_ms:>12.2} {:>7.1}x {plain_ms:>14} {sqlite_ms:>12.2} {sqlite_raw_ms:>12.2}",
                raw_ms / folded_ms
            );
        }
    });
}
