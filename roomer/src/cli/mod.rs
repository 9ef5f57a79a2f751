//! Flags and subcommands. Every flag can also be set through the environment variable named
//! in its help.

use clap::{Args, Parser, Subcommand};

mod network;

use network::hidden;
pub use network::{HttpArgs, MqttClientArgs, MqttListenArgs};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(
    name = "roomer",
    version,
    about = "Knows how many people are in every room, now and at any past moment."
)]
pub struct Cli {
    /// sqlite://PATH (created if missing) or postgres://USER:PASS@HOST/DB
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sqlite://roomer.db",
        global = true
    )]
    pub database_url: String,

    /// The summarizer brings the count summaries up to date at most this often (0: in every
    /// batch); batches in between note their minutes, and counts stay exact meanwhile.
    #[arg(
        long,
        env = "ROOMER_SUMMARIZE_EVERY",
        default_value = "250ms",
        value_parser = humantime::parse_duration,
        global = true
    )]
    pub summarize_every: Duration,

    /// Log lines as text for people, or as JSON objects (one a line) for log collectors.
    #[arg(
        long,
        env = "ROOMER_LOG_FORMAT",
        value_enum,
        default_value_t = LogFormat::Text,
        global = true
    )]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Broker, ingest worker and API in one process (what a bare `roomer` runs).
    Serve(ServeArgs),
    /// Only the embedded MQTT broker.
    Broker(BrokerArgs),
    /// Only an ingest worker, reading from any MQTT 3.1.1 broker.
    Ingest(IngestArgs),
    /// Only the HTTP API.
    Api(ApiArgs),
    /// Fake DPUs.
    #[command(subcommand)]
    Simulate(SimulateCommand),
    /// The building: spaces, doorways, DPUs and where they hung when.
    #[command(subcommand)]
    Layout(LayoutCommand),
    /// Bring the database schema up to date (also done on every start) and, with TimescaleDB,
    /// change its settings (stored in the database; other processes keep them).
    Migrate(TimescaleArgs),
    /// Bearer tokens for the HTTP API.
    #[command(subcommand)]
    Token(TokenCommand),
    /// DPUs' logins for the embedded broker.
    #[command(subcommand)]
    Dpu(DpuCommand),
}

#[derive(Debug, Subcommand)]
pub enum DpuCommand {
    /// A DPU's secret: its MQTT password on the embedded broker (its id is the user name).
    #[command(subcommand)]
    Credentials(CredentialsCommand),
}

#[derive(Debug, Subcommand)]
pub enum CredentialsCommand {
    /// Issue a new secret for a DPU, replacing any earlier one, and print it as the last
    /// line (the only time it is shown; only a hash is stored).
    Create { dpu: String },
    /// Withdraw a DPU's secret; a running broker ends its connections within seconds.
    Revoke { dpu: String },
    /// The DPUs that have a secret.
    List,
    /// Write a Mosquitto password file (Roomer's account and every DPU with a secret, as
    /// hashes) and ACL file (each DPU its own topics, Roomer's account everything), for an
    /// external Mosquitto with `allow_anonymous false`. Rerun after issuing or withdrawing a
    /// secret, then reload Mosquitto (`kill -HUP`).
    Mosquitto {
        /// Where to write the password file (Mosquitto's `password_file`).
        #[arg(long)]
        passwd: PathBuf,
        /// Where to write the ACL file (Mosquitto's `acl_file`).
        #[arg(long)]
        acl: PathBuf,
        /// The password of Roomer's account (`roomer`), which its workers and APIs log in with.
        #[arg(long, env = "ROOMER_MQTT_SERVICE_PASSWORD", hide_env_values = true, value_parser = hidden)]
        mqtt_service_password: roomer::dpu_access::Hidden,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token and print it (the only time it is shown; only its hash is stored).
    Create {
        /// `admin` reads and writes; `read` only reads.
        #[arg(long, value_parser = ["admin", "read"])]
        role: String,
        /// A label, to remember whose it is.
        #[arg(long, default_value = "")]
        name: String,
    },
    /// The tokens that exist: id (a hash prefix), role, name, created.
    List,
    /// Revoke a token by the id `list` shows, or every token with a name.
    Revoke {
        #[arg(long, conflicts_with = "name", required_unless_present = "name")]
        id: Option<String>,
        #[arg(long)]
        name: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub http: HttpArgs,
    #[command(flatten)]
    pub mqtt: MqttListenArgs,
    #[command(flatten)]
    pub batching: BatchArgs,
    /// When the broker acknowledges a DPU's message: `store` (once the worker has stored it,
    /// so that a crash loses nothing a DPU was told is safe) or `receipt` (at once, as a
    /// plain broker does; a crash loses what was acknowledged and not yet stored).
    #[arg(long, env = "ROOMER_ACK", value_enum, default_value_t = AckWhen::Store)]
    pub ack: AckWhen,
}

/// See [`ServeArgs::ack`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum AckWhen {
    Store,
    Receipt,
}

#[derive(Debug, Args)]
pub struct BrokerArgs {
    #[command(flatten)]
    pub mqtt: MqttListenArgs,
    /// Acknowledge a DPU's message only once an ingest worker whose client id starts with
    /// this has acknowledged it (workers acknowledge after storing). Without it the broker
    /// acknowledges on receipt.
    #[arg(long, env = "ROOMER_ACK_AFTER_STORE_BY")]
    pub ack_after_store_by: Option<String>,
}

#[derive(Debug, Args)]
pub struct BatchArgs {
    /// Apply a batch once it holds this many MQTT messages…
    #[arg(long, env = "ROOMER_BATCH_SIZE", default_value_t = 2000)]
    pub batch_size: usize,
    /// …or once its first message has waited this long…
    #[arg(long, env = "ROOMER_BATCH_WAIT", default_value = "2ms", value_parser = humantime::parse_duration)]
    pub batch_wait: Duration,
    /// …or once no further message has come for this long (the broker's in-flight window is
    /// full, or the stream paused).
    #[arg(long, env = "ROOMER_BATCH_QUIET", default_value = "1ms", value_parser = humantime::parse_duration)]
    pub batch_quiet: Duration,
    /// Refuse events timestamped further than this ahead of the server clock.
    #[arg(long, env = "ROOMER_MAX_FUTURE", default_value = "10m", value_parser = humantime::parse_duration)]
    pub max_future: Duration,
    /// After every batch, publish each touched space's count to `spaces/{id}/count` (retained).
    #[arg(long, env = "ROOMER_PUBLISH_COUNTS", default_value_t = true, action = clap::ArgAction::Set)]
    pub publish_counts: bool,
}

/// TimescaleDB settings for `roomer migrate`; each one left out stays as it is.
#[derive(Debug, Args)]
pub struct TimescaleArgs {
    /// Time range of each new chunk of crossings and counts (default on a new database: 1d).
    #[arg(long, env = "ROOMER_CHUNK_INTERVAL", value_parser = humantime::parse_duration)]
    pub chunk_interval: Option<Duration>,
    /// Compress chunks older than this (default 7d).
    #[arg(long, env = "ROOMER_COMPRESS_AFTER", value_parser = humantime::parse_duration)]
    pub compress_after: Option<Duration>,
    /// Drop raw crossings older than this, or `off` (default off). Counts and history stay.
    #[arg(long, env = "ROOMER_RAW_RETENTION", value_parser = duration_or_off)]
    pub raw_retention: Option<Retention>,
}

/// A retention period, or none (`off`).
#[derive(Clone, Copy, Debug)]
pub struct Retention(pub Option<Duration>);

fn duration_or_off(text: &str) -> Result<Retention, humantime::DurationError> {
    match text {
        "off" | "none" => Ok(Retention(None)),
        _ => humantime::parse_duration(text).map(|d| Retention(Some(d))),
    }
}

impl TimescaleArgs {
    pub fn settings(&self) -> roomer_storage::TimescaleSettings {
        roomer_storage::TimescaleSettings {
            chunk_interval: self.chunk_interval,
            compress_after: self.compress_after,
            raw_retention: self.raw_retention.map(|r| r.0),
        }
    }
}

#[derive(Debug, Args)]
pub struct IngestArgs {
    /// The broker to read crossings from.
    #[arg(long, env = "ROOMER_MQTT_URL", default_value = "mqtt://127.0.0.1:1883")]
    pub mqtt_url: String,
    /// This worker's MQTT client id; its session is persistent, so give each worker its own.
    #[arg(long, env = "ROOMER_CLIENT_ID", default_value = "roomer-ingest")]
    pub client_id: String,
    /// Share the stream with other workers through `$share/GROUP/dpus/+/crossings`.
    #[arg(long, env = "ROOMER_SHARED_GROUP")]
    pub shared_group: Option<String>,
    #[command(flatten)]
    pub client: MqttClientArgs,
    /// Serve `/metrics`, `/healthz` and `/readyz` on this address (e.g. `0.0.0.0:9100`), so
    /// that each worker can be scraped and probed; off unless given.
    #[arg(long, env = "ROOMER_METRICS_ADDR")]
    pub metrics_addr: Option<std::net::SocketAddr>,
    #[command(flatten)]
    pub batching: BatchArgs,
}

#[derive(Debug, Args)]
pub struct ApiArgs {
    #[command(flatten)]
    pub http: HttpArgs,
    /// Refuse crossings posted with timestamps further than this ahead of the server clock.
    #[arg(long, env = "ROOMER_MAX_FUTURE", default_value = "10m", value_parser = humantime::parse_duration)]
    pub max_future: Duration,
    /// The broker the ingest workers publish counts to (`spaces/{id}/count`), for the live
    /// routes. Without it they answer 503.
    #[arg(long, env = "ROOMER_MQTT_URL")]
    pub mqtt_url: Option<String>,
    #[command(flatten)]
    pub client: MqttClientArgs,
    /// MQTT client id of the live subscription (one per API process).
    #[arg(long, env = "ROOMER_LIVE_CLIENT_ID", default_value = "roomer-api-live")]
    pub live_client_id: String,
}

#[derive(Debug, Subcommand)]
pub enum SimulateCommand {
    /// Publish every row of a CSV (timestamp,direction,dpu_id) as its DPU would.
    Replay {
        file: PathBuf,
        #[command(flatten)]
        publish: PublishArgs,
        /// Replay at N times real time along the events' timeline (default: as fast as possible).
        #[arg(long, env = "ROOMER_SIM_SPEED")]
        speed: Option<f64>,
    },
    /// A synthetic fleet: DPUs over doorways from Outside into rooms, with random traffic.
    ///
    /// By default each DPU publishes a backlog of --events-per-dpu crossings as fast as the
    /// broker acknowledges them. With --rate and --duration it is live instead: the fleet makes
    /// --rate crossings a second in real time (each DPU one every dpus/rate seconds, their
    /// phases staggered), stamped with the time they happen, for --duration; then every DPU
    /// finishes once the broker has acknowledged everything.
    Fleet {
        #[arg(long, default_value_t = 100)]
        dpus: usize,
        #[arg(long, default_value_t = 10)]
        rooms: usize,
        /// Backlog mode: crossings per DPU, timestamped over the past day.
        #[arg(long, default_value_t = 100, conflicts_with = "rate")]
        events_per_dpu: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Live mode: crossings per second across the whole fleet, steady. Needs --duration.
        #[arg(long, requires = "duration")]
        rate: Option<f64>,
        /// Live mode: how long crossings keep coming (e.g. 30s, 2m). Needs --rate.
        #[arg(long, requires = "rate", value_parser = humantime::parse_duration)]
        duration: Option<Duration>,
        /// Print the fleet's layout (TOML, for `roomer layout apply`) instead of publishing.
        #[arg(long)]
        print_layout: bool,
        #[command(flatten)]
        publish: PublishArgs,
    },
    /// Write a week in a small office as its four DPUs uploaded it (late and repeated rows
    /// included): OUT/building.toml, its layout for `roomer layout apply`, and
    /// OUT/crossings.csv, the rows in the reference data's columns for `simulate replay`.
    Week {
        /// The directory to write into (made if missing).
        #[arg(long, default_value = "tour")]
        out: PathBuf,
        /// A day of the week to make (it starts on that day's Monday).
        #[arg(long, default_value = "2026-01-05")]
        start: chrono::NaiveDate,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

#[derive(Debug, Args)]
pub struct PublishArgs {
    /// The broker to publish to.
    #[arg(long, env = "ROOMER_MQTT_URL", default_value = "mqtt://127.0.0.1:1883")]
    pub mqtt_url: String,
    #[command(flatten)]
    pub client: MqttClientArgs,
    /// A file of DPU secrets, one `DPU_ID SECRET` a line (as `roomer dpu credentials create`
    /// prints them): each such DPU logs in as itself, as the embedded broker requires with
    /// logins on.
    #[arg(long, env = "ROOMER_SIM_DPU_SECRETS")]
    pub dpu_secrets: Option<PathBuf>,
    /// Events per message: 1 sends single objects, more sends JSON arrays (bulk uploads).
    #[arg(long, env = "ROOMER_SIM_BATCH", default_value_t = 1)]
    pub batch: usize,
    /// New connections per second across all DPUs: DPU i starts connecting i/N seconds after
    /// the start (default: all at once).
    #[arg(long, env = "ROOMER_SIM_CONNECT_RATE")]
    pub connect_rate: Option<f64>,
    /// Spread the DPUs' connections over these addresses of the broker (comma-separated, on
    /// the port of --mqtt-url, which must listen on all of them, e.g. on 0.0.0.0): DPU i
    /// connects to address i mod n. Each destination address has its own range of ephemeral
    /// ports, so a load test on one machine can hold more than about 28,000 DPUs.
    #[arg(long, env = "ROOMER_SIM_SPREAD_HOSTS", value_delimiter = ',')]
    pub spread_hosts: Vec<String>,
    /// Print a progress line on stderr every second (the default when stderr is a terminal).
    #[arg(long)]
    pub progress: bool,
    /// Print the report as one JSON object on stdout instead of the summary lines.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum LayoutCommand {
    /// Create or update spaces, doorways and installations from a TOML file (idempotent).
    Apply { file: PathBuf },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn public_read(args: &[&str]) -> bool {
        let cli = Cli::try_parse_from([&["roomer", "api"], args].concat()).unwrap();
        match cli.command {
            Some(Command::Api(api)) => api.http.public_read(),
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn reads_are_public_on_loopback_unless_turned_off() {
        assert!(public_read(&[]));
        assert!(public_read(&["--http-addr", "[::1]:8000"]));
        assert!(!public_read(&["--public-read", "false"]));
        assert!(!public_read(&["--public-read=false"]));
    }

    #[test]
    fn reads_need_a_token_elsewhere_unless_made_public() {
        assert!(!public_read(&["--http-addr", "0.0.0.0:8000"]));
        assert!(public_read(&[
            "--http-addr",
            "0.0.0.0:8000",
            "--public-read"
        ]));
        assert!(public_read(&[
            "--public-read",
            "--http-addr",
            "0.0.0.0:8000"
        ]));
        assert!(public_read(&[
            "--http-addr",
            "0.0.0.0:8000",
            "--public-read",
            "true"
        ]));
    }

    #[test]
    fn cors_origins_are_repeated_or_comma_separated_and_checked() {
        let http = |args: &[&str]| match Cli::try_parse_from([&["roomer", "serve"], args].concat())
            .unwrap()
            .command
        {
            Some(Command::Serve(serve)) => serve.http,
            other => panic!("parsed as {other:?}"),
        };
        assert!(http(&[]).cors().unwrap().is_empty());
        let two = http(&["--cors-origin", "https://a.example,http://localhost:3000"]);
        assert_eq!(two.cors_origins.len(), 2);
        assert!(two.cors().is_ok());
        let repeated = http(&["--cors-origin", "https://a.example", "--cors-origin", "*"]);
        assert_eq!(repeated.cors_origins.len(), 2);
        let bad = http(&["--cors-origin", "a.example/dash"])
            .cors()
            .unwrap_err();
        assert!(bad.to_string().contains("is not an origin"), "{bad}");
    }

    fn fleet(args: &[&str]) -> Result<SimulateCommand, clap::Error> {
        let cli = Cli::try_parse_from([&["roomer", "simulate", "fleet"], args].concat())?;
        match cli.command {
            Some(Command::Simulate(command)) => Ok(command),
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn live_fleet_flags_come_as_a_pair_and_exclude_a_backlog() {
        let live = fleet(&[
            "--rate",
            "400",
            "--duration",
            "5s",
            "--connect-rate",
            "1000",
            "--spread-hosts",
            "127.0.0.2,127.0.0.3",
        ]);
        match live.unwrap() {
            SimulateCommand::Fleet {
                rate,
                duration,
                publish,
                ..
            } => {
                assert_eq!(rate, Some(400.0));
                assert_eq!(duration, Some(Duration::from_secs(5)));
                assert_eq!(publish.connect_rate, Some(1000.0));
                assert_eq!(publish.spread_hosts, ["127.0.0.2", "127.0.0.3"]);
                assert!(!publish.progress && !publish.json);
            }
            other => panic!("parsed as {other:?}"),
        }
        for alone in [&["--rate", "10"][..], &["--duration", "1m"]] {
            let error = fleet(alone).unwrap_err();
            assert_eq!(
                error.kind(),
                clap::error::ErrorKind::MissingRequiredArgument
            );
        }
        let both = fleet(&["--rate", "1", "--duration", "1s", "--events-per-dpu", "5"]);
        assert_eq!(
            both.unwrap_err().kind(),
            clap::error::ErrorKind::ArgumentConflict
        );
    }
}
