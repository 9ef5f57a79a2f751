//! Scale-out ingest benchmark: an external Mosquitto (its own config on a free port,
//! `max_inflight_messages 1000` so that a worker's batches are not capped at Mosquitto's
//! default of 20 unacknowledged messages), N separate `roomer ingest` processes sharing one
//! subscription (`--shared-group roomer`, client ids `worker-1`…`worker-N`, batches at the
//! defaults of 500 messages / 50 ms), all writing to one fresh PostgreSQL database; N = 1 and 3.
//!
//! Workload: a fleet of 200 simulated DPUs in 20 rooms (`fleet_layout(200, 20, …)` applied
//! first), then `fleet_events(200, 50, …)` replayed over MQTT as fast as Mosquitto
//! acknowledges, with one crossing per message (`batch=1`) and bulk uploads of 50 (`batch=50`).
//!
//! It measures the wall time from the start of the replay until `totals().crossings` equals the
//! number of distinct crossings (polled every 10 ms) and prints events/s (median of 3 runs, a
//! fresh database, Mosquitto and workers each), the ratio N=3 / N=1, and how the messages were
//! split between the workers (from their `batch applied` debug logs, last run). It asserts
//! nothing about speed; a run that has not stored everything within 120 s is reported as
//! FAILED. Mind the core count it prints: on 2 cores, 3 workers + PostgreSQL + Mosquitto + the
//! publisher compete for CPU, so N=3 cannot be expected to beat N=1 there.
//!
//! Rerun (needs both variables; without them it says so and exits):
//!
//! ```text
//! TEST_DATABASE_URL=postgres://postgres:postgres@127.0.0.1:5432/postgres \
//! TEST_MOSQUITTO=/usr/sbin/mosquitto \
//!     cargo bench -p roomer --bench scale_out
//! ```

use occupancy::Crossing;
use roomer_simulator::{fleet_events, fleet_layout, MqttTarget, ReplayOptions};
use roomer_storage::testing::{fresh_postgres_database, postgres_url};
use sqlx::Connection;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const DPUS: usize = 200;
const ROOMS: usize = 20;
const EVENTS_PER_DPU: usize = 50;
const BATCHES: [usize; 2] = [1, 50];
const WORKERS: [usize; 2] = [1, 3];
const RUNS: usize = 3;
/// A run that has not stored everything by then is reported as failed.
const DEADLINE: Duration = Duration::from_secs(120);
const POLL: Duration = Duration::from_millis(10);
const SEED: u64 = 20_180_226;
/// Info for the "subscribed" line, debug for one "batch applied" line per batch.
const WORKER_LOG: &str = "warn,roomer_ingest=info,roomer_ingest::applier=debug";

fn main() {
    let (Some(admin), Ok(mosquitto)) = (postgres_url(), std::env::var("TEST_MOSQUITTO")) else {
        println!(
            "roomer scale-out benchmark skipped: set TEST_DATABASE_URL (a PostgreSQL server) and \
             TEST_MOSQUITTO (the mosquitto binary)"
        );
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(async {
        let n = DPUS * EVENTS_PER_DPU;
        let cores = std::thread::available_parallelism().map_or(0, |c| c.get());
        println!(
            "roomer scale-out benchmark: {DPUS} DPUs x {EVENTS_PER_DPU} = {n} crossings over \
             Mosquitto into {ROOMS} rooms + Outside; N `roomer ingest` processes in one shared \
             group, one PostgreSQL; {cores} cores"
        );
        println!(
            "{:>6} {:>8} {:>9} {:>10} {:>10} {:>10}  {:<26} messages per worker (last run)",
            "batch", "workers", "messages", "published", "stored", "events/s", "runs (stored)"
        );
        let started = Instant::now();
        let mut rates = Vec::new();
        for batch in BATCHES {
            for workers in WORKERS {
                let mut runs: Vec<Run> = Vec::new();
                let mut failure = None;
                while runs.len() < RUNS {
                    match run_once(&admin, &mosquitto, batch, workers).await {
                        Ok(run) => runs.push(run),
                        Err(why) => {
                            failure = Some(format!("{why:#}"));
                            break;
                        }
                    }
                }
                let label = format!("{batch:>6} {workers:>8} {:>9}", n.div_ceil(batch));
                if let Some(why) = failure {
                    println!("{label}  FAILED after {} good run(s): {why}", runs.len());
                    continue;
                }
                let stored = median(runs.iter().map(|r| r.stored.as_secs_f64()).collect());
                let published = median(runs.iter().map(|r| r.published.as_secs_f64()).collect());
                let rate = n as f64 / stored;
                rates.push((batch, workers, rate));
                let each: Vec<String> = runs
                    .iter()
                    .map(|r| format!("{:.2}", r.stored.as_secs_f64()))
                    .collect();
                let split = runs.last().map(|r| &r.per_worker).expect("a run");
                println!(
                    "{label} {:>10} {:>10} {rate:>10.0}  {:<26} {}",
                    format!("{published:.2} s"),
                    format!("{stored:.2} s"),
                    format!("{} s", each.join(", ")),
                    split
                        .iter()
                        .map(|m| m.to_string())
                        .collect::<Vec<_>>()
                        .join(" / ")
                );
            }
        }
        println!();
        for batch in BATCHES {
            let rate = |w: usize| {
                rates
                    .iter()
                    .find(|&&(b, ws, _)| b == batch && ws == w)
                    .map(|&(_, _, r)| r)
            };
            match (rate(1), rate(3)) {
                (Some(one), Some(three)) => {
                    println!("batch {batch:>2}: N=3 / N=1 = {:.2}", three / one)
                }
                _ => println!("batch {batch:>2}: N=3 / N=1 = n/a (a row failed)"),
            }
        }
        println!(
            "\ntotal bench time {:.1} s on {cores} cores",
            started.elapsed().as_secs_f64()
        );
    });
}

struct Run {
    /// From the start of the replay until Mosquitto had acknowledged every message.
    published: Duration,
    /// From the start of the replay until every crossing was stored.
    stored: Duration,
    /// MQTT messages each worker applied.
    per_worker: Vec<u64>,
}

/// One run on a fresh database, Mosquitto and workers; all of them gone when it returns.
async fn run_once(admin: &str, mosquitto: &str, batch: usize, n: usize) -> anyhow::Result<Run> {
    let dir = tempfile::tempdir()?;
    let database_url = fresh_postgres_database(admin).await?;
    let outcome = measure(dir.path(), &database_url, mosquitto, batch, n).await;
    let mut conn = sqlx::PgConnection::connect(admin).await?;
    let name = database_url.rsplit('/').next().unwrap_or_default();
    let name = name.split('?').next().unwrap_or_default();
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut conn)
        .await?;
    let _ = conn.close().await;
    outcome
}

async fn measure(
    dir: &Path,
    database_url: &str,
    mosquitto: &str,
    batch: usize,
    n: usize,
) -> anyhow::Result<Run> {
    // In the past, so that no event is refused as too far in the future.
    let start = chrono::Utc::now() - chrono::TimeDelta::days(1);
    let store = roomer_storage::connect(database_url).await?;
    store
        .apply_layout(&fleet_layout(DPUS, ROOMS, start))
        .await?;
    let events = fleet_events(DPUS, EVENTS_PER_DPU, start, SEED);
    let expected = events
        .iter()
        .map(Crossing::key)
        .collect::<BTreeSet<_>>()
        .len() as i64;

    let port = free_port();
    let config = dir.join("mosquitto.conf");
    std::fs::write(
        &config,
        format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\nuser root\npersistence false\n\
             max_queued_messages 0\nmax_queued_bytes 0\nmax_inflight_messages 1000\n"
        ),
    )?;
    let mut children = Children(Vec::new());
    let log = std::fs::File::create(dir.join("mosquitto.log"))?;
    children.0.push(
        Command::new(mosquitto)
            .arg("-c")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()?,
    );
    let url = format!("mqtt://127.0.0.1:{port}");
    let ready = Instant::now();
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        anyhow::ensure!(ready.elapsed() < DEADLINE, "mosquitto is not listening");
        tokio::time::sleep(POLL).await;
    }

    let logs: Vec<PathBuf> = (1..=n)
        .map(|i| dir.join(format!("worker-{i}.log")))
        .collect();
    for (i, log) in logs.iter().enumerate() {
        let id = format!("worker-{}", i + 1);
        let args = ["ingest", "--mqtt-url", &url, "--client-id", &id];
        children.0.push(
            Command::new(env!("CARGO_BIN_EXE_roomer"))
                .args(args)
                .args(["--shared-group", "roomer"])
                .env("DATABASE_URL", database_url)
                .env("RUST_LOG", WORKER_LOG)
                .env("NO_COLOR", "1")
                .env_remove("ROOMER_BATCH_SIZE")
                .env_remove("ROOMER_BATCH_WAIT")
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(log)?)
                .spawn()?,
        );
    }
    let ready = Instant::now();
    while !logs.iter().all(|log| read(log).contains("subscribed")) {
        anyhow::ensure!(
            ready.elapsed() < Duration::from_secs(30),
            "not every worker subscribed within 30 s"
        );
        tokio::time::sleep(POLL).await;
    }

    let mut options = ReplayOptions::new(MqttTarget::parse(&url)?);
    options.batch = batch;
    let began = Instant::now();
    let mut replay = tokio::spawn(async move { roomer_simulator::replay(events, &options).await });
    let mut published = None;
    let stored = loop {
        if published.is_none() && replay.is_finished() {
            (&mut replay).await??;
            published = Some(began.elapsed());
        }
        let totals = store.totals().await?;
        if totals.crossings == expected {
            anyhow::ensure!(totals.rejected == 0, "rejected: {totals:?}");
            break began.elapsed();
        }
        if began.elapsed() > DEADLINE {
            replay.abort();
            anyhow::bail!(
                "{} of {expected} crossings stored after {DEADLINE:?} (replay {}); messages \
                 per worker {:?}",
                totals.crossings,
                if published.is_some() {
                    "done"
                } else {
                    "unfinished"
                },
                logs.iter().map(|l| applied(l)).collect::<Vec<_>>()
            );
        }
        tokio::time::sleep(POLL).await;
    };
    let published = match published {
        Some(p) => p,
        // Stored before the publisher saw its last acknowledgement: wait for that too.
        None => {
            tokio::time::timeout(DEADLINE, replay).await???;
            began.elapsed()
        }
    };
    drop(children);
    let per_worker = logs.iter().map(|l| applied(l)).collect();
    Ok(Run {
        published,
        stored,
        per_worker,
    })
}

/// Killed (SIGKILL) and reaped on drop, on every path out of a run.
struct Children(Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A log file without ANSI colour codes (in case `NO_COLOR` is not honoured).
fn read(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            chars.by_ref().find(|c| c.is_ascii_alphabetic());
        } else {
            out.push(c);
        }
    }
    out
}

/// The MQTT messages a worker applied: the sum of `messages=` over its "batch applied" lines.
fn applied(log: &Path) -> u64 {
    read(log)
        .lines()
        .filter(|line| line.contains("batch applied"))
        .filter_map(|line| {
            line.split("messages=")
                .nth(1)?
                .split(' ')
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum()
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
