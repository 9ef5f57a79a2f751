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
use clap::Parser;
use cli::{Cli, Command, IngestArgs, LayoutCommand, LogFormat, SimulateCommand, TokenCommand};
use roomer::commands::{admin, api, ingest, logging, simulate};
use roomer::{shutdown, ServeConfig};
use roomer_ingest::IngestConfig;
use roomer_storage::StoreOptions;
use std::net::SocketAddr;
use tokio::net::TcpListener;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = parse_cli();
    logging::init(cli.log_format == LogFormat::Json);
    let database_url = cli.database_url;
    let store = StoreOptions {
        summarize_every: cli.summarize_every,
    };
    match cli.command.expect("set above") {
        Command::Serve(args) => {
            let http = bind(args.http.http_addr, "the HTTP API").await?;
            let config = ServeConfig {
                database_url,
                store,
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
            let running = roomer::serve(config, http, shutdown::on_signal()).await?;
            tracing::info!(http = %running.http_addr, mqtt = %running.mqtt_addr, "roomer is running; Ctrl-C stops it");
            running.finished().await
        }
        Command::Broker(args) => {
            let config = roomer_broker::BrokerConfig {
                ack_after_store_by: args.ack_after_store_by,
                ..args.mqtt.broker_config()
            };
            let mode = args.mqtt.auth_mode();
            let service_secret = args.mqtt.mqtt_service_password.map(|hidden| hidden.0);
            roomer::dpu_access::run_broker(
                config,
                mode,
                service_secret,
                &database_url,
                store,
                shutdown::on_signal(),
            )
            .await
        }
        Command::Ingest(args) => {
            let metrics = match args.metrics_addr {
                Some(addr) => Some(bind(addr, "the metrics listener").await?),
                None => None,
            };
            let config = ingest_config(args)?;
            ingest::run_ingest(&database_url, store, config, metrics, shutdown::on_signal()).await
        }
        Command::Api(args) => {
            let http = bind(args.http.http_addr, "the HTTP API").await?;
            let live = match &args.mqtt_url {
                Some(url) => Some(args.client.target(url)?.options(&args.live_client_id)),
                None => None,
            };
            let config = api::ApiConfig {
                database_url,
                store,
                live,
                public_read: args.http.public_read(),
                cors: args.http.cors()?,
                max_future: args.max_future,
                tls: args.http.tls_files(),
            };
            api::run_api(config, http, shutdown::on_signal()).await
        }
        Command::Simulate(command) => run_simulate(command).await,
        Command::Layout(LayoutCommand::Apply { file }) => {
            println!(
                "{}",
                admin::apply_layout(&database_url, store, &file).await?
            );
            Ok(())
        }
        Command::Token(TokenCommand::Create { role, name }) => {
            let (token, role) = admin::create_token(&database_url, store, &role, &name).await?;
            println!("{token}");
            eprintln!(
                "a {} token; it is not stored and will not be shown again",
                role.as_str()
            );
            Ok(())
        }
        Command::Token(TokenCommand::List) => {
            for line in admin::list_tokens(&database_url, store).await? {
                println!("{line}");
            }
            Ok(())
        }
        Command::Token(TokenCommand::Revoke { id, name }) => {
            let selector = match (id, name) {
                (Some(id), _) => roomer_storage::TokenSelector::Id(id),
                (None, Some(name)) => roomer_storage::TokenSelector::Name(name),
                (None, None) => anyhow::bail!("say --id or --name"),
            };
            let revoked = admin::revoke_tokens(&database_url, store, selector).await?;
            println!("{revoked} token(s) revoked");
            Ok(())
        }
        Command::Dpu(cli::DpuCommand::Credentials(command)) => {
            use roomer::dpu_access::Action;
            let store = roomer_storage::connect_with(&database_url, store).await?;
            let action = match command {
                cli::CredentialsCommand::Create { dpu } => Action::Create(dpu),
                cli::CredentialsCommand::Revoke { dpu } => Action::Revoke(dpu),
                cli::CredentialsCommand::List => Action::List,
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
            for line in admin::migrate(&database_url, store, &args.settings()).await? {
                println!("{line}");
            }
            Ok(())
        }
    }
}

/// Binds `addr` for `what`, or says which address could not be bound.
async fn bind(addr: SocketAddr, what: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {what} to {addr}"))
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

fn ingest_config(args: IngestArgs) -> anyhow::Result<IngestConfig> {
    let target = args.client.target(&args.mqtt_url)?;
    Ok(IngestConfig {
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
    })
}

async fn run_simulate(command: SimulateCommand) -> anyhow::Result<()> {
    let (simulation, publish, speed) = match command {
        SimulateCommand::Week { out, start, seed } => {
            println!("{}", roomer_simulator::week::write_week(&out, start, seed)?);
            return Ok(());
        }
        SimulateCommand::Fleet {
            dpus,
            rooms,
            print_layout: true,
            ..
        } => {
            // Installed since 2000, so events of any later run are covered.
            let since = "2000-01-01T00:00:00Z".parse()?;
            print!(
                "{}",
                roomer_simulator::fleet_layout(dpus, rooms, since).to_toml()?
            );
            return Ok(());
        }
        SimulateCommand::Replay {
            file,
            publish,
            speed,
        } => (simulate::Simulation::Replay(file), publish, speed),
        SimulateCommand::Fleet {
            dpus,
            events_per_dpu,
            seed,
            rate,
            duration,
            publish,
            ..
        } => {
            let simulation = match (rate, duration) {
                (Some(rate), Some(duration)) => {
                    simulate::Simulation::FleetLive(roomer_simulator::LiveOptions {
                        dpus,
                        rate,
                        duration,
                        seed,
                    })
                }
                (None, None) => simulate::Simulation::FleetBacklog {
                    dpus,
                    events_per_dpu,
                    seed,
                },
                // clap refuses one without the other; this is for callers that bypass it.
                _ => anyhow::bail!("--rate and --duration go together: a live fleet needs both"),
            };
            (simulation, publish, None)
        }
    };
    let mut replay =
        roomer_simulator::ReplayOptions::new(publish.client.target(&publish.mqtt_url)?);
    replay.batch = publish.batch;
    replay.speed = speed;
    replay.connect_rate = publish.connect_rate;
    replay.spread_hosts = publish.spread_hosts;
    let config = simulate::SimulateConfig {
        replay,
        dpu_secrets: publish.dpu_secrets,
        progress: publish.progress,
        json: publish.json,
    };
    simulate::simulate(simulation, config, shutdown::on_signal()).await
}
