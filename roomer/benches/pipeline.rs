//! End-to-end ingest benchmark: the whole app in this process (embedded MQTT broker, ingest
//! worker, HTTP API; `roomer::serve` on free 127.0.0.1 ports, ingest settings at the
//! `roomer serve` defaults: batches of up to 500 messages or 2 ms), a fleet of 200 simulated
//! DPUs in 20 rooms (`fleet_layout(200, 20, …)` applied first), and `fleet_events(200, 50, …)`
//! replayed over MQTT as fast as the broker acknowledges, with one crossing per message
//! (`batch=1`) and bulk uploads of 50 (`batch=50`).
//!
//! It measures the wall time from the start of the replay until `GET /api/v1/totals` reports
//! every crossing stored, and prints events/s (median of 3 runs, a fresh app and database
//! each; a single run when one takes longer than 20 s), plus when the broker had acknowledged
//! the last message. It asserts nothing about speed; a configuration that has not stored
//! everything within 60 s is reported as FAILED and the bench moves on.
//!
//! Rerun (SQLite in a temporary file):
//!
//! ```text
//! cargo bench -p roomer --bench pipeline
//! ```
//!
//! PostgreSQL too (a fresh database per run, dropped afterwards) when `TEST_DATABASE_URL`
//! names a server:
//!
//! ```text
//! TEST_DATABASE_URL=postgres://postgres:postgres@127.0.0.1:5432/postgres \
//!     cargo bench -p roomer --bench pipeline
//! ```
//!
//! Arguments after `--` pick backends by name, e.g. `cargo bench -p roomer --bench pipeline -- sqlite`;
//! `RUST_LOG=warn` (say) prints the app's logs to stderr.

use roomer::{Running, ServeConfig};
use roomer_ingest::IngestConfig;
use roomer_simulator::{fleet_events, fleet_layout, MqttTarget, ReplayOptions};
use roomer_storage::testing::{fresh_postgres_database, postgres_url};
use sqlx::Connection;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const DPUS: usize = 200;
const ROOMS: usize = 20;
const EVENTS_PER_DPU: usize = 50;
const BATCHES: [usize; 2] = [1, 50];
const RUNS: usize = 3;
/// A run longer than this is not repeated.
const SLOW_RUN: Duration = Duration::from_secs(20);
/// A run that has not stored everything by then is reported as failed.
const DEADLINE: Duration = Duration::from_secs(60);
/// Panics printed in full; later ones (a wedged broker panics once per connection) are only
/// counted.
const PANICS_SHOWN: usize = 2;
static PANICS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
const POLL: Duration = Duration::from_millis(10);
const SEED: u64 = 20_180_226;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

fn main() {
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let mut backends = vec![Backend::Sqlite];
    if postgres_url().is_some() {
        backends.push(Backend::Postgres);
    }
    backends.retain(|b| filters.is_empty() || filters.iter().any(|f| b.name().contains(f)));
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if PANICS.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < PANICS_SHOWN {
            default_hook(info);
        }
    }));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(async {
        let n = DPUS * EVENTS_PER_DPU;
        println!(
            "roomer pipeline benchmark: {DPUS} DPUs x {EVENTS_PER_DPU} = {n} crossings over MQTT \
             into {ROOMS} rooms + Outside; ingest batches <= 500 messages / 2 ms{}",
            if postgres_url().is_none() {
                " (set TEST_DATABASE_URL for PostgreSQL)"
            } else {
                ""
            }
        );
        println!(
            "{:<10} {:>6} {:>9} {:>12} {:>12} {:>10}  runs (stored)",
            "backend", "batch", "messages", "published", "stored", "events/s"
        );
        let started = Instant::now();
        for &backend in &backends {
            for batch in BATCHES {
                let mut runs: Vec<Run> = Vec::new();
                let mut failure = None;
                while runs.len() < RUNS {
                    let panics_before = PANICS.load(std::sync::atomic::Ordering::Relaxed);
                    let outcome = run_once(backend, batch).await;
                    let panics = PANICS.load(std::sync::atomic::Ordering::Relaxed) - panics_before;
                    match outcome {
                        Ok(run) => {
                            let slow = run.stored > SLOW_RUN;
                            runs.push(run);
                            if slow {
                                break;
                            }
                        }
                        Err(why) => {
                            failure = Some(format!("{why} ({panics} panics in the app meanwhile)"));
                            break;
                        }
                    }
                }
                if let Some(why) = failure {
                    println!(
                        "{:<10} {:>6} {:>9}  FAILED after {} good run(s): {why}",
                        backend.name(),
                        batch,
                        n.div_ceil(batch),
                        runs.len()
                    );
                    if runs.is_empty() {
                        continue;
                    }
                }
                let stored = median(runs.iter().map(|r| r.stored.as_secs_f64()).collect());
                let published = median(runs.iter().map(|r| r.published.as_secs_f64()).collect());
                println!(
                    "{:<10} {:>6} {:>9} {:>12} {:>12} {:>10.0}  {}",
                    backend.name(),
                    batch,
                    n.div_ceil(batch),
                    format!("{published:.2} s"),
                    format!("{stored:.2} s"),
                    n as f64 / stored,
                    runs.iter()
                        .map(|r| format!("{:.2} s", r.stored.as_secs_f64()))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
        }
        println!(
            "\ntotal bench time {:.1} s",
            started.elapsed().as_secs_f64()
        );
        let panics = PANICS.load(std::sync::atomic::Ordering::Relaxed);
        if panics > 0 {
            println!("{panics} panics in total (the first {PANICS_SHOWN} printed to stderr)");
        }
    });
}

struct Run {
    /// From the start of the replay until the broker had acknowledged every message.
    published: Duration,
    /// From the start of the replay until the API reported every crossing stored.
    stored: Duration,
}

/// One run on a fresh app; `Err` when it did not store everything within `DEADLINE`.
async fn run_once(backend: Backend, batch: usize) -> Result<Run, String> {
    let app = App::spawn(backend).await;
    // In the past, so that no event is refused as too far in the future.
    let start = chrono::Utc::now() - chrono::TimeDelta::days(1);
    {
        let store = roomer_storage::connect(&app.database_url)
            .await
            .expect("open the app's database");
        store
            .apply_layout(&fleet_layout(DPUS, ROOMS, start))
            .await
            .expect("apply the fleet layout");
    }
    let events = fleet_events(DPUS, EVENTS_PER_DPU, start, SEED);
    let expected = events.len() as u64;
    let mut options = ReplayOptions::new(MqttTarget::from(app.mqtt));
    options.batch = batch;

    let began = Instant::now();
    let replayed = tokio::time::timeout(DEADLINE, roomer_simulator::replay(events, &options)).await;
    let published = began.elapsed();
    let outcome = match replayed {
        Err(_) => Err(format!(
            "the broker had not acknowledged every message after {DEADLINE:?}; ingest {:?}",
            app.running.stats.snapshot()
        )),
        Ok(Err(e)) => Err(format!("the replay failed: {e}")),
        Ok(Ok(report)) => {
            assert_eq!(report.events as u64, expected);
            loop {
                if app.stored_crossings().await == expected {
                    break Ok(began.elapsed());
                }
                if began.elapsed() > DEADLINE {
                    break Err(format!(
                        "not every crossing stored after {DEADLINE:?}; ingest {:?}",
                        app.running.stats.snapshot()
                    ));
                }
                tokio::time::sleep(POLL).await;
            }
        }
    };
    let stats = app.running.stats.snapshot();
    assert_eq!(stats.rejected, 0, "nothing is rejected: {stats:?}");
    app.stop().await;
    outcome.map(|stored| Run { published, stored })
}

/// A whole Roomer on free ports with a fresh database (as in `roomer/tests/common`).
struct App {
    http: String,
    mqtt: SocketAddr,
    database_url: String,
    /// For PostgreSQL: the server's URL and the database to drop afterwards.
    postgres: Option<(String, String)>,
    client: reqwest::Client,
    shutdown: CancellationToken,
    running: Running,
    _dir: tempfile::TempDir,
}

impl App {
    async fn spawn(backend: Backend) -> App {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let (database_url, postgres) = match backend {
            Backend::Sqlite => (
                format!("sqlite://{}", dir.path().join("roomer.db").display()),
                None,
            ),
            Backend::Postgres => {
                let admin = postgres_url().expect("TEST_DATABASE_URL is set");
                let url = fresh_postgres_database(&admin)
                    .await
                    .expect("TEST_DATABASE_URL is set but PostgreSQL cannot be reached");
                let name = url
                    .split('?')
                    .next()
                    .and_then(|base| base.rsplit('/').next())
                    .unwrap_or_default()
                    .to_owned();
                (url, Some((admin, name)))
            }
        };
        let http = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free HTTP port");
        let config = ServeConfig {
            store: Default::default(),
            database_url: database_url.clone(),
            broker: roomer_broker::BrokerConfig::on(SocketAddr::from(([127, 0, 0, 1], 0))),
            ingest: IngestConfig {
                client_id: "bench-ingest".into(),
                ..IngestConfig::default()
            },
            public_read: true,
            cors: Default::default(),
            ack_after_store: true,
            mqtt_auth: roomer_broker::AuthMode::Off,
            service_secret: None,
            http_tls: None,
        };
        let shutdown = CancellationToken::new();
        let running = roomer::serve(config, http, shutdown.clone())
            .await
            .expect("the app starts");
        roomer::wait_until_ready(&running.stats, Duration::from_secs(10))
            .await
            .expect("the ingest worker subscribes");
        App {
            http: format!("http://{}", running.http_addr),
            mqtt: running.mqtt_addr,
            database_url,
            postgres,
            client: reqwest::Client::new(),
            shutdown,
            running,
            _dir: dir,
        }
    }

    /// `crossings` from `GET /api/v1/totals`.
    async fn stored_crossings(&self) -> u64 {
        let response = self
            .client
            .get(format!("{}/api/v1/totals", self.http))
            .send()
            .await
            .expect("GET /api/v1/totals");
        assert!(response.status().is_success(), "{}", response.status());
        let totals: serde_json::Value = response.json().await.expect("JSON totals");
        totals["crossings"].as_u64().expect("a crossings count")
    }

    async fn stop(self) {
        self.shutdown.cancel();
        match tokio::time::timeout(Duration::from_secs(15), self.running.finished()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => println!("(the app stopped with an error: {e:#})"),
            Err(_) => println!("(the app did not stop within 15 s)"),
        }
        if let Some((admin_url, database)) = self.postgres {
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

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    }
}
