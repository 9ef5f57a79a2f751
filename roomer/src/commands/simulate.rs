//! `roomer simulate replay|fleet`: fake DPUs publishing a CSV's rows or a synthetic fleet's
//! crossings, with a progress line while they run and a report when they are done (or
//! interrupted: what was done so far).

use chrono::DurationRound;
use roomer_simulator::{FleetProgress, FleetReport, LiveOptions, ReplayOptions};
use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// What the fake DPUs publish.
pub enum Simulation {
    /// A CSV's rows (`timestamp,direction,dpu_id`), as their DPUs would send them.
    Replay(PathBuf),
    /// A synthetic fleet's backlog: `events_per_dpu` crossings for each of `dpus` DPUs over
    /// the past day, as fast as the broker acknowledges them.
    FleetBacklog {
        dpus: usize,
        events_per_dpu: usize,
        seed: u64,
    },
    /// A synthetic fleet making crossings in real time.
    FleetLive(LiveOptions),
}

/// How the fake DPUs publish, and how the run is reported.
pub struct SimulateConfig {
    pub replay: ReplayOptions,
    /// A file of `DPU_ID SECRET` lines: those DPUs log in as themselves.
    pub dpu_secrets: Option<PathBuf>,
    /// A progress line on stderr every second (always when stderr is a terminal).
    pub progress: bool,
    /// The report as one JSON object instead of summary lines.
    pub json: bool,
}

/// Runs `simulation` until every message is acknowledged or `stop`, prints the report on
/// stdout, and fails if it was interrupted.
pub async fn simulate(
    simulation: Simulation,
    mut config: SimulateConfig,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    if let Some(file) = &config.dpu_secrets {
        config.replay.dpu_secrets = Arc::new(crate::dpu_access::read_secrets_file(file)?);
    }
    let options = config.replay;
    let progress = Arc::new(FleetProgress::default());
    let ticker = (config.progress || std::io::stderr().is_terminal()).then(|| {
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
        match simulation {
            Simulation::Replay(file) => {
                let events = roomer_simulator::read_csv(&file)?;
                roomer_simulator::replay_watched(events, &options, progress.clone()).await
            }
            Simulation::FleetBacklog {
                dpus,
                events_per_dpu,
                seed,
            } => {
                let events =
                    roomer_simulator::fleet_events(dpus, events_per_dpu, yesterday(), seed);
                roomer_simulator::replay_watched(events, &options, progress.clone()).await
            }
            Simulation::FleetLive(live) => {
                roomer_simulator::live(&live, &options, progress.clone()).await
            }
        }
    };
    let finished: Option<FleetReport> = tokio::select! {
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
    if config.json {
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

/// Yesterday, on the hour: recent enough to be interesting, never in the future.
fn yesterday() -> roomer_occupancy::Timestamp {
    let then = chrono::Utc::now() - chrono::TimeDelta::days(1);
    then.duration_trunc(chrono::TimeDelta::hours(1))
        .unwrap_or(then)
}
