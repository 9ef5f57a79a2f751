//! The `roomer` binary: parses flags, then calls into the crates.
#![forbid(unsafe_code)]

mod cli;

/// jemalloc rather than the system allocator: every connection to the embedded broker makes
/// rumqttd allocate about 200 KiB of queues it mostly never touches. jemalloc keeps untouched
/// pages out of memory and gives freed ones back to the system, so a fleet reconnecting over
/// and over costs what its connections use, not a high-water mark that grows with each storm
/// (glibc's allocator: +200 MB of resident memory per 10,000-DPU reconnect, see Benchmarks).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use anyhow::Context;
use chrono::DurationRound;
use clap::Parser;
use cli::{Cli, Command, IngestArgs, LayoutCommand, LogFormat, SimulateCommand, TokenCommand};
use occupancy::Layout;
use roomer::{shutdown, ServeConfig};
use roomer_ingest::{IngestConfig, IngestStats};
use roomer_simulator::ReplayOptions;
use std::sync::Arc;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer as _};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = parse_cli();
    // rumqttd reports ordinary disconnects as errors; RUST_LOG=rumqttd=info shows them. The
    // broker's meters read rumqttd's events through a filter of their own.
    let output_filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,rumqttd=off"));
    let output = match cli.log_format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_writer(std::io::stderr)
            .boxed(),
    };
    tracing_subscriber::registry()
        .with(output.with_filter(output_filter))
        .with(roomer_broker::meters::layer())
        .init();
    log_panics_on_one_line();
    let database_url = cli.database_url;
    let store_options = roomer_storage::StoreOptions {
        summarize_every: cli.summarize_every,
    };
    match cli.command.expect("set above") {
        Command::Serve(args) => {
            let token = shutdown::on_signal();
            let http = tokio::net::TcpListener::bind(args.http.http_addr)
                .await
                .with_context(|| format!("binding the HTTP API to {}", args.http.http_addr))?;
            let config = ServeConfig {
                database_url,
                store: store_options,
                public_read: args.http.public_read(),
                cors: args.http.cors()?,
                broker: args.mqtt.broker_config(),
                ingest: IngestConfig {
                    batch_size: args.batching.batch_size,
                    batch_wait: args.batching.batch_wait,
                    batch_quiet: args.batching.batch_quiet,
                    max_future: args.batching.max_future,
                    publish_counts: args.batching.publish_counts,
                    ..IngestConfig::default()
                },
                ack_after_store: args.ack == cli::AckWhen::Store,
                mqtt_auth: args.mqtt.auth_mode(),
                service_secret: args.mqtt.mqtt_service_password.clone(),
                http_tls: args.http.tls_files(),
            };
            let running = roomer::serve(config, http, token).await?;
            tracing::info!(http = %running.http_addr, mqtt = %running.mqtt_addr, "roomer is running; Ctrl-C stops it");
            running.finished().await
        }
        Command::Broker(args) => {
            let config = roomer_broker::BrokerConfig {
                ack_after_store_by: args.ack_after_store_by,
                ..args.mqtt.broker_config()
            };
            roomer::limits::raise_open_files_for(config.max_connections);
            let token = shutdown::on_signal();
            tokio::spawn(roomer::log_meters(
                roomer::meters_of(None, true),
                roomer::METERS_LOG_INTERVAL,
                token.clone(),
            ));
            let mode = args.mqtt.auth_mode();
            let service_secret = args.mqtt.mqtt_service_password.map(|hidden| hidden.0);
            roomer::dpu_access::run_broker(
                config,
                mode,
                service_secret,
                &database_url,
                store_options,
                token,
            )
            .await
        }
        Command::Ingest(args) => run_ingest(database_url, store_options, args).await,
        Command::Api(args) => {
            let store = roomer_storage::connect_with(&database_url, store_options).await?;
            let http = tokio::net::TcpListener::bind(args.http.http_addr)
                .await
                .with_context(|| format!("binding the HTTP API to {}", args.http.http_addr))?;
            let token = shutdown::on_signal();
            let live = match &args.mqtt_url {
                Some(url) => {
                    let target = args.client.target(url)?;
                    Some(roomer_api::LiveFeed::connect(
                        target.options(&args.live_client_id),
                        token.clone(),
                    ))
                }
                None => None,
            };
            let broker_ready = live.as_ref().map(|feed| {
                let feed = feed.clone();
                Arc::new(move || feed.connected()) as roomer_api::Check
            });
            let state = roomer_api::AppState {
                live,
                broker_ready,
                access: roomer_api::auth::Access {
                    public_read: args.http.public_read(),
                },
                cors: args.http.cors()?,
                ..roomer_api::AppState::new(store, args.max_future)
            };
            let https = args
                .http
                .tls_files()
                .map(|files| files.acceptor())
                .transpose()?;
            Ok(roomer_api::serve_with(http, state, https, token.cancelled_owned()).await?)
        }
        Command::Simulate(command) => simulate(command).await,
        Command::Layout(LayoutCommand::Apply { file }) => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let layout =
                Layout::from_toml(&text).with_context(|| format!("in {}", file.display()))?;
            let store = roomer_storage::connect_with(&database_url, store_options).await?;
            let report = store.apply_layout(&layout).await?;
            println!(
                "applied {}: {} spaces, {} doorways, {} DPUs; {} changes, {} crossings re-attributed",
                file.display(),
                layout.spaces.len(),
                layout.doorways.len(),
                layout.dpus.len(),
                report.changed,
                report.reattributed
            );
            Ok(())
        }
        Command::Token(TokenCommand::Create { role, name }) => {
            let store = roomer_storage::connect_with(&database_url, store_options).await?;
            let role = roomer_storage::Role::parse(&role).context("role")?;
            let (token, hash) = roomer_api::auth::new_token();
            store.create_token(&hash, role, &name).await?;
            println!("{token}");
            eprintln!(
                "a {} token; it is not stored and will not be shown again",
                role.as_str()
            );
            Ok(())
        }
        Command::Token(TokenCommand::List) => {
            let store = roomer_storage::connect_with(&database_url, store_options).await?;
            for token in store.tokens().await? {
                println!(
                    "{}  {:<5}  {}  {}",
                    token.id,
                    token.role.as_str(),
                    token.created_at.to_rfc3339(),
                    token.name
                );
            }
            Ok(())
        }
        Command::Token(TokenCommand::Revoke { id, name }) => {
            let store = roomer_storage::connect_with(&database_url, store_options).await?;
            let selector = match (id, name) {
                (Some(id), _) => roomer_storage::TokenSelector::Id(id),
                (None, Some(name)) => roomer_storage::TokenSelector::Name(name),
                (None, None) => anyhow::bail!("say --id or --name"),
            };
            let revoked = store.revoke_tokens(&selector).await?;
            println!("{revoked} token(s) revoked");
            anyhow::ensure!(revoked > 0, "no token matched");
            Ok(())
        }
        Command::Dpu(cli::DpuCommand::Credentials(command)) => {
            let store = roomer_storage::connect_with(&database_url, store_options).await?;
            let action = match command {
                cli::CredentialsCommand::Create { dpu } => roomer::dpu_access::Action::Create(dpu),
                cli::CredentialsCommand::Revoke { dpu } => roomer::dpu_access::Action::Revoke(dpu),
                cli::CredentialsCommand::List => roomer::dpu_access::Action::List,
                cli::CredentialsCommand::Mosquitto {
                    passwd,
                    acl,
                    mqtt_service_password,
                } => {
                    let password = mqtt_service_password.0;
                    let dpus =
                        roomer::mosquitto::write_files(store, &password, &passwd, &acl).await?;
                    println!(
                        "wrote {} (roomer and {dpus} DPUs) and {}",
                        passwd.display(),
                        acl.display()
                    );
                    return Ok(());
                }
            };
            roomer::dpu_access::credentials(store, action).await
        }
        Command::Migrate(args) => {
            let store = roomer_storage::connect_with(&database_url, store_options).await?;
            println!("{database_url} is up to date");
            let settings = args.settings();
            let status = if settings.is_empty() {
                store.timescale().await?
            } else {
                let status = store.configure_timescale(&settings).await?;
                anyhow::ensure!(
                    status.is_some(),
                    "TimescaleDB settings given, but {database_url} does not use TimescaleDB"
                );
                status
            };
            match status {
                Some(status) => println!("{status}"),
                None => println!("no TimescaleDB: plain tables, no compression or retention"),
            }
            Ok(())
        }
    }
}

/// Parses the command line; a bare `roomer [flags]` means `roomer serve [flags]`.
fn parse_cli() -> Cli {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let as_serve = || {
        let mut with_serve = args.clone();
        with_serve.insert(1.min(with_serve.len()), "serve".into());
        Cli::try_parse_from(with_serve)
    };
    match Cli::try_parse_from(&args) {
        Ok(cli) if cli.command.is_some() => cli,
        Ok(_) => as_serve().unwrap_or_else(|e| e.exit()),
        Err(original) => match original.kind() {
            clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                original.exit()
            }
            _ => as_serve().unwrap_or_else(|_| original.exit()),
        },
    }
}

async fn run_ingest(
    database_url: String,
    store_options: roomer_storage::StoreOptions,
    args: IngestArgs,
) -> anyhow::Result<()> {
    let target = args.client.target(&args.mqtt_url)?;
    let store = roomer_storage::connect_with(&database_url, store_options).await?;
    let config = IngestConfig {
        mqtt_host: target.host,
        mqtt_port: target.port,
        mqtt_login: target.login,
        mqtt_tls: target.tls,
        client_id: args.client_id,
        shared_group: args.shared_group,
        batch_size: args.batching.batch_size,
        batch_wait: args.batching.batch_wait,
        batch_quiet: args.batching.batch_quiet,
        max_future: args.batching.max_future,
        publish_counts: args.batching.publish_counts,
        ..IngestConfig::default()
    };
    let token = shutdown::on_signal();
    let stats = Arc::new(IngestStats::default());
    if let Some(addr) = args.metrics_addr {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding the metrics listener to {addr}"))?;
        // Before the worker starts, so that its first batch is recorded.
        roomer_api::install_metrics();
        let (connected, faulty) = (stats.clone(), stats.clone());
        let state = roomer_api::AppState {
            meters: Some(roomer::meters_of(Some(stats.clone()), false)),
            broker_ready: Some(Arc::new(move || connected.snapshot().connected)),
            store_fault: Some(Arc::new(move || faulty.store_fault())),
            ..roomer_api::AppState::new(store.clone(), args.batching.max_future)
        };
        tokio::spawn(roomer_api::serve_health(
            listener,
            state,
            token.clone().cancelled_owned(),
        ));
    }
    tokio::spawn(roomer::log_meters(
        roomer::meters_of(Some(stats.clone()), false),
        roomer::METERS_LOG_INTERVAL,
        token.clone(),
    ));
    roomer_ingest::run(store, config, stats, token.cancelled_owned()).await?;
    Ok(())
}

async fn simulate(command: SimulateCommand) -> anyhow::Result<()> {
    use roomer_simulator::{FleetProgress, LiveOptions};
    use std::io::IsTerminal as _;
    /// What to publish: a backlog of crossings, or a live fleet.
    enum Work {
        Backlog(Vec<occupancy::Crossing>),
        Live(LiveOptions),
    }
    let (work, publish, speed) = match command {
        SimulateCommand::Week { out, start, seed } => {
            let written = roomer_simulator::week::write_week(&out, start, seed)?;
            println!("{written}");
            return Ok(());
        }
        SimulateCommand::Replay {
            file,
            publish,
            speed,
        } => {
            let events = roomer_simulator::read_csv(&file)?;
            (Work::Backlog(events), publish, speed)
        }
        SimulateCommand::Fleet {
            dpus,
            rooms,
            events_per_dpu,
            seed,
            rate,
            duration,
            print_layout,
            publish,
        } => {
            if print_layout {
                // Installed since 2000, so events of any later run are covered.
                let since = "2000-01-01T00:00:00Z".parse()?;
                let layout = roomer_simulator::fleet_layout(dpus, rooms, since);
                print!("{}", toml::to_string(&layout)?);
                return Ok(());
            }
            let work = match (rate, duration) {
                (Some(rate), Some(duration)) => Work::Live(LiveOptions {
                    dpus,
                    rate,
                    duration,
                    seed,
                }),
                (None, None) => {
                    // Yesterday, on the hour: recent enough to be interesting, never in the future.
                    let start = (chrono::Utc::now() - chrono::TimeDelta::days(1))
                        .duration_trunc(chrono::TimeDelta::hours(1))?;
                    Work::Backlog(roomer_simulator::fleet_events(
                        dpus,
                        events_per_dpu,
                        start,
                        seed,
                    ))
                }
                // clap refuses one without the other; this is for callers that bypass it.
                _ => anyhow::bail!("--rate and --duration go together: a live fleet needs both"),
            };
            (work, publish, None)
        }
    };
    let mut options = ReplayOptions::new(publish.client.target(&publish.mqtt_url)?);
    if let Some(file) = &publish.dpu_secrets {
        options.dpu_secrets = Arc::new(roomer::dpu_access::read_secrets_file(file)?);
    }
    options.batch = publish.batch;
    options.speed = speed;
    options.connect_rate = publish.connect_rate;
    options.spread_hosts = publish.spread_hosts;

    let progress = Arc::new(FleetProgress::default());
    let ticker = (publish.progress || std::io::stderr().is_terminal()).then(|| {
        let progress = progress.clone();
        tokio::spawn(async move {
            let second = std::time::Duration::from_secs(1);
            let mut every = tokio::time::interval_at(tokio::time::Instant::now() + second, second);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                eprintln!("{}", progress.snapshot());
            }
        })
    });
    let run = async {
        match work {
            Work::Backlog(events) => {
                roomer_simulator::replay_watched(events, &options, progress.clone()).await
            }
            Work::Live(live) => roomer_simulator::live(&live, &options, progress.clone()).await,
        }
    };
    // Ctrl-C or SIGTERM: stop, and still say what was done.
    let stop = shutdown::on_signal();
    let finished = tokio::select! {
        report = run => Some(report?),
        () = stop.cancelled() => None,
    };
    if let Some(ticker) = ticker {
        ticker.abort();
    }
    let report = match &finished {
        Some(report) => report.clone(),
        None => progress.report(None),
    };
    if publish.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        for line in report.summary_lines() {
            println!("{line}");
        }
    }
    anyhow::ensure!(
        finished.is_some(),
        "interrupted before every message was acknowledged"
    );
    Ok(())
}

/// A panic is one ERROR line in the log (with where it happened), not a backtrace of a few
/// hundred lines per request; `RUST_BACKTRACE=1` adds the backtrace for a developer.
fn log_panics_on_one_line() {
    std::panic::set_hook(Box::new(|info| {
        let backtrace = std::backtrace::Backtrace::capture();
        match backtrace.status() {
            std::backtrace::BacktraceStatus::Captured => {
                tracing::error!(panic = %info, %backtrace, "panic")
            }
            _ => tracing::error!(panic = %info, "panic"),
        }
    }));
}
