//! Scale-out ingest benchmark: an external Mosquitto (its own config on a free port,
//! `max_inflight_messages 1000` so that a worker's batches are not capped at Mosquitto's
//! default of 20 unacknowledged messages), N separate `roomer ingest` processes sharing one
//! subscription (`--shared-group roomer`, client ids `worker-1`…`worker-N`, batches at the
//! defaults, at most 1,000 messages by Mosquitto's window), all writing to one fresh
//! PostgreSQL database; N = 1 and 3.
//!
//! Workload: a fleet of 200 simulated DPUs in 20 rooms (`fleet_layout(200, 20, …)` applied
//! first), then `fleet_events(200, 50, …)` replayed over MQTT as fast as Mosquitto
//! acknowledges, with one crossing per message (`batch=1`) and bulk uploads of 50 (`batch=50`).
//!
//! It measures the wall time from the start of the replay until `totals().crossings` equals the
//! number of distinct crossings (polled every 10 ms) and prints events/s (median of 3 runs, a
//! fresh database, Mosquitto and workers each; each run's publish time in brackets), the ratio
//! N=3 / N=1, and how the work was split: crossings stored / batches committed per worker
//! (from their `batch applied` debug logs, last run), and lock waits: every 5 ms while the
//! workers store, a separate connection counts the database's backends waiting for a lock
//! (`pg_stat_activity.wait_event_type = 'Lock'`, advisory locks included); printed as the
//! share of samples with a waiter, the most waiters seen and what they waited for (all runs
//! together). It asserts
//! nothing about speed; a run
//! that has not stored everything within 120 s is reported as FAILED. Mind the core count it prints: on 2 cores, 3 workers + PostgreSQL + Mosquitto + the
//! publisher compete for CPU, so N=3 cannot be expected to beat N=1 there. A publish time of
//! about 1.0 s is not the workers: the 200 DPU clients connect at once and overflow Mosquitto's
//! listen backlog (100; `nstat TcpExtListenOverflows`), and the kernel retries after 1 s.
//!
//! Rerun (needs both variables; without them it says so and exits):
//!
//! ```text
//! TEST_DATABASE_URL=postgres://postgres:postgres@127.0.0.1:5432/postgres \
//! TEST_MOSQUITTO=/usr/sbin/mosquitto \
//!     cargo bench -p roomer --bench scale_out
//! ```

use roomer_occupancy::Crossing;
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
            " batch  workers  messages  published     stored   events/s  {:<40} {:<22} \
             crossings/batches per worker",
            "runs: stored (published)", "lock waits"
        );
        let started = Instant::now();
        let mut ratios = Vec::new();
        for batch in BATCHES {
            let mut rates = Vec::new();
            for workers in WORKERS {
                let mut runs: Vec<Run> = Vec::new();
                let mut failure = None;
                while runs.len() < RUNS && failure.is_none() {
                    match run_once(&admin, &mosquitto, batch, workers).await {
                        Ok(run) => runs.push(run),
                        Err(why) => failure = Some(format!("{why:#}")),
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
                rates.push((workers, rate));
                let each: Vec<String> = runs
                    .iter()
                    .map(|r| {
                        let (s, p) = (r.stored.as_secs_f64(), r.published.as_secs_f64());
                        format!("{s:.2} ({p:.2})")
                    })
                    .collect();
                let (mut samples, mut waited, mut most) = (0, 0, 0);
                let mut kinds = BTreeSet::new();
                for (s, w, m, k) in runs.iter().map(|r| &r.lock_waits) {
                    (samples, waited, most) = (samples + s, waited + w, most.max(*m));
                    kinds.extend(k.iter().cloned());
                }
                let share = 100.0 * waited as f64 / samples.max(1) as f64;
                let kinds: Vec<String> = kinds.into_iter().collect();
                println!(
                    "{label} {:>10} {:>10} {rate:>10.0}  {:<40} {:<22} {}",
                    format!("{published:.2} s"),
                    format!("{stored:.2} s"),
                    format!("{} s", each.join(", ")),
                    format!("{share:.1}% (max {most}) {}", kinds.join("+")),
                    runs[RUNS - 1].per_worker.join(" + ")
                );
            }
            ratios.push(match rates[..] {
                [(1, one), (3, three)] => {
                    format!("batch {batch:>2}: N=3 / N=1 = {:.2}", three / one)
                }
                _ => format!("batch {batch:>2}: N=3 / N=1 = n/a (a row failed)"),
            });
        }
        println!("\n{}", ratios.join("\n"));
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
    /// `crossings/batches` each worker stored and committed.
    per_worker: Vec<String>,
    lock_waits: LockWaits,
}

/// Lock-wait samples taken, those with a backend waiting, the most waiting at once, and what
/// they waited for (`pg_stat_activity.wait_event`).
type LockWaits = (u64, u64, i64, BTreeSet<String>);

/// Samples, every 5 ms until stopped, how many of the database's backends wait for a lock.
async fn sample_lock_waits(
    database_url: String,
    stop: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<LockWaits> {
    let mut conn = sqlx::PgConnection::connect(&database_url).await?;
    let (mut samples, mut waited, mut most) = (0, 0, 0);
    let mut kinds = BTreeSet::new();
    while !*stop.borrow() {
        let (waiting, events): (i64, Option<String>) = sqlx::query_as(
            "SELECT count(*), string_agg(DISTINCT wait_event, ',') FROM pg_stat_activity \
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(&mut conn)
        .await?;
        kinds.extend(events.iter().flat_map(|e| e.split(',')).map(str::to_owned));
        samples += 1;
        if waiting > 0 {
            waited += 1;
        }
        most = most.max(waiting);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok((samples, waited, most, kinds))
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
    let keys: BTreeSet<_> = events.iter().map(Crossing::key).collect();
    let expected = keys.len() as u64;

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
    let spawned = Command::new(mosquitto)
        .arg("-c")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()?;
    children.0.push(spawned);
    let url = format!("mqtt://127.0.0.1:{port}");
    until("mosquitto to listen", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    })
    .await?;

    let logs: Vec<PathBuf> = (1..=n)
        .map(|i| dir.join(format!("worker-{i}.log")))
        .collect();
    for (i, log) in logs.iter().enumerate() {
        let id = format!("worker-{}", i + 1);
        let args = ["ingest", "--mqtt-url", &url, "--client-id", &id];
        let spawned = Command::new(env!("CARGO_BIN_EXE_roomer"))
            .args(args)
            .args(["--shared-group", "roomer"])
            .env("DATABASE_URL", database_url)
            .env("RUST_LOG", WORKER_LOG)
            .env("NO_COLOR", "1")
            .env_remove("ROOMER_BATCH_SIZE")
            .env_remove("ROOMER_BATCH_WAIT")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log)?)
            .spawn()?;
        children.0.push(spawned);
    }
    until("every worker to subscribe", || {
        logs.iter()
            .all(|log| std::fs::read_to_string(log).is_ok_and(|t| t.contains("subscribed")))
    })
    .await?;

    let mut options = ReplayOptions::new(MqttTarget::parse(&url)?);
    options.batch = batch;
    let (stop_sampling, sampling) = tokio::sync::watch::channel(false);
    let sampler = tokio::spawn(sample_lock_waits(database_url.to_owned(), sampling));
    let began = Instant::now();
    let replay = tokio::spawn(async move {
        let report = roomer_simulator::replay(events, &options).await;
        (report, began.elapsed())
    });
    let stored = loop {
        let totals = store.totals().await?;
        if totals.crossings as u64 == expected {
            anyhow::ensure!(totals.rejected == 0, "rejected: {totals:?}");
            break began.elapsed();
        }
        if began.elapsed() > DEADLINE {
            let replayed = if replay.is_finished() {
                "done"
            } else {
                "unfinished"
            };
            replay.abort();
            anyhow::bail!(
                "{} of {expected} crossings stored after {DEADLINE:?} (replay {replayed}); \
                 crossings/batches per worker {:?}",
                totals.crossings,
                logs.iter().map(|l| applied(l)).collect::<Vec<_>>()
            );
        }
        tokio::time::sleep(POLL).await;
    };
    stop_sampling.send_replace(true);
    let lock_waits = sampler.await??;
    // Usually done long before; all crossings can be stored before the last PUBACK arrives.
    let (report, published) = tokio::time::timeout(DEADLINE, replay).await??;
    report?;
    // A worker logs its batch just after the commit that the poll saw.
    let mut per_worker = Vec::new();
    let _ = until("every batch to be logged", || {
        per_worker = logs.iter().map(|l| applied(l)).collect();
        per_worker.iter().map(|&(c, _)| c).sum::<u64>() == expected
    })
    .await;
    drop(children);
    let per_worker = per_worker.iter().map(|(c, b)| format!("{c}/{b}")).collect();
    Ok(Run {
        published,
        stored,
        per_worker,
        lock_waits,
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

/// Polls `done` every `POLL` for up to 30 s.
async fn until(what: &str, mut done: impl FnMut() -> bool) -> anyhow::Result<()> {
    let began = Instant::now();
    while !done() {
        anyhow::ensure!(
            began.elapsed() < Duration::from_secs(30),
            "timed out after 30 s waiting for {what}"
        );
        tokio::time::sleep(POLL).await;
    }
    Ok(())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// The new crossings a worker stored (the sum of `new=` over its "batch applied" lines; the
/// logs are plain text thanks to `NO_COLOR`) and how many batches it committed.
fn applied(log: &Path) -> (u64, u64) {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let batches: Vec<&str> = text
        .lines()
        .filter(|line| line.contains("batch applied"))
        .collect();
    let new = batches
        .iter()
        .filter_map(|line| {
            line.split(" new=")
                .nth(1)?
                .split(' ')
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum();
    (new, batches.len() as u64)
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
