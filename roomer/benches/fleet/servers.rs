//! The servers a fleet run measures, as separate processes (the fleet needs the file
//! descriptors of a process of its own): `roomer serve` with its embedded broker, or
//! Mosquitto with a `roomer ingest` beside it. Each on free ports, with a fresh SQLite database
//! holding the fleet's layout.

use roomer_simulator::{fleet_dpu_id, fleet_layout};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub use processes::ROOMER;
use processes::{free_port, wait_for_port};

/// The end-to-end tests' helpers for processes and ports.
#[allow(dead_code)]
#[path = "../../tests/common/processes.rs"]
mod processes;
pub const ROOMS: usize = 100;

/// Which broker the DPUs connect to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Broker {
    /// `roomer serve`: the embedded broker, acknowledging after store; DPUs connect without
    /// a login (`--mqtt-auth off`, as on a trusted network).
    Embedded,
    /// The same, every DPU logging in with a secret of its own (`--mqtt-auth required`).
    EmbeddedLogins,
    /// Mosquitto, and `roomer ingest` reading from it.
    Mosquitto,
}

impl Broker {
    pub fn name(self) -> &'static str {
        match self {
            Broker::Embedded => "embedded",
            Broker::EmbeddedLogins => "embedded, logins",
            Broker::Mosquitto => "mosquitto",
        }
    }
}

/// A running server: its processes (killed on drop), where DPUs connect, where its metrics are.
pub struct Server {
    pub mqtt_port: u16,
    pub metrics_url: String,
    pub database_url: String,
    /// The process that holds the DPUs' connections.
    pub broker_pid: u32,
    /// The DPUs' secrets (`DPU_ID SECRET` lines), when they log in.
    pub secrets_file: Option<PathBuf>,
    children: Vec<Child>,
    _dir: tempfile::TempDir,
}

impl Server {
    pub async fn start(broker: Broker, dpus: usize) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let database_url = format!("sqlite://{}", dir.path().join("roomer.db").display());
        let store = roomer_storage::connect(&database_url).await.unwrap();
        let since = "2000-01-01T00:00:00Z".parse().unwrap();
        store
            .apply_layout(&fleet_layout(dpus, ROOMS, since))
            .await
            .unwrap();
        let (mqtt_port, http_port) = (free_port(), free_port());
        // On every address, so that the fleet can spread over several loopback addresses
        // ([`SPREAD`]) and never runs short of ephemeral ports.
        let mqtt = format!("0.0.0.0:{mqtt_port}");
        let http = format!("127.0.0.1:{http_port}");
        let log = dir.path().join("server.log");
        let mut children = Vec::new();
        let mut secrets_file = None;
        let broker_pid = match broker {
            Broker::Embedded | Broker::EmbeddedLogins => {
                let most = (dpus + 1_000).to_string();
                let logins = broker == Broker::EmbeddedLogins;
                if logins {
                    let mut lines = String::new();
                    for i in 1..=dpus {
                        let dpu = fleet_dpu_id(i);
                        let secret = store.issue_dpu_secret(&dpu).await.unwrap();
                        lines.push_str(&format!("{} {secret}\n", dpu.as_str()));
                    }
                    let path = dir.path().join("secrets");
                    std::fs::write(&path, lines).unwrap();
                    secrets_file = Some(path);
                }
                let args = [
                    "serve",
                    "--mqtt-addr",
                    &mqtt,
                    "--http-addr",
                    &http,
                    "--broker-max-connections",
                    &most,
                    "--mqtt-auth",
                    if logins { "required" } else { "off" },
                ];
                children.push(roomer(&args, &database_url, &log));
                children[0].id()
            }
            Broker::Mosquitto => {
                children.push(mosquitto(dir.path(), mqtt_port));
                wait_for_port("Mosquitto", mqtt_port).await;
                let url = format!("mqtt://{mqtt}");
                let args = [
                    "ingest",
                    "--mqtt-url",
                    &url,
                    "--metrics-addr",
                    &http,
                    "--client-id",
                    "bench-ingest",
                ];
                children.push(roomer(&args, &database_url, &log));
                children[0].id()
            }
        };
        wait_for_port("the broker", mqtt_port).await;
        wait_for_port("the HTTP server", http_port).await;
        Self {
            mqtt_port,
            metrics_url: format!("http://{http}/metrics"),
            database_url,
            broker_pid,
            secrets_file,
            children,
            _dir: dir,
        }
    }

    pub fn mqtt_url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.mqtt_port)
    }

    /// Resident memory of every process of this server, in bytes.
    pub fn rss(&self) -> u64 {
        self.children.iter().map(|c| rss(c.id())).sum()
    }

    /// Resident memory of the process holding the connections.
    pub fn broker_rss(&self) -> u64 {
        rss(self.broker_pid)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn roomer(args: &[&str], database_url: &str, log: &Path) -> Child {
    Command::new(ROOMER)
        .args(args)
        .env("DATABASE_URL", database_url)
        .env(
            "RUST_LOG",
            std::env::var("RUST_LOG").unwrap_or("warn,rumqttd=off".into()),
        )
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap()
}

/// Mosquitto as a site would set it up for a fleet: no connection limit, a large in-flight
/// window for the worker (it bounds a batch), unlimited queues while the worker is away.
fn mosquitto(dir: &Path, port: u16) -> Child {
    let binary = std::env::var("TEST_MOSQUITTO").expect("TEST_MOSQUITTO names mosquitto");
    let config: PathBuf = dir.join("mosquitto.conf");
    std::fs::write(
        &config,
        format!(
            "listener {port}\nallow_anonymous true\nuser root\nmax_connections -1\n\
             max_inflight_messages 1000\nmax_queued_messages 0\nset_tcp_nodelay true\n"
        ),
    )
    .unwrap();
    Command::new(binary)
        .arg("-c")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// VmRSS of a process, in bytes (0 once it is gone).
pub fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|kb| kb.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Crossings stored so far.
pub async fn stored(database_url: &str) -> i64 {
    let store = roomer_storage::connect(database_url).await.unwrap();
    store.totals().await.unwrap().crossings
}

/// Crossings stored with a timestamp before `cutoff`, counted in the SQLite file itself.
pub async fn stored_before(database_url: &str, cutoff: chrono::DateTime<chrono::Utc>) -> i64 {
    use sqlx::Connection as _;
    let mut db = sqlx::SqliteConnection::connect(database_url).await.unwrap();
    sqlx::query_scalar("SELECT count(*) FROM crossings WHERE ts < ?")
        .bind(cutoff.timestamp_micros())
        .fetch_one(&mut db)
        .await
        .unwrap()
}
