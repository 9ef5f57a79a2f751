//! Fleet benchmark: the broker a campus needs, measured with thousands of real MQTT
//! connections from `roomer simulate fleet` (a process of its own), against `roomer serve`
//! (embedded broker, acknowledging after store, SQLite) and, side by side in the same run,
//! Mosquitto with `roomer ingest` (when `TEST_MOSQUITTO` names the binary).
//!
//! Two parts, each printing a table; it asserts nothing about speed:
//! - `hold`: 1,000, 5,000 and 15,000 DPUs connecting at once and held connected, the fleet
//!   making 2,000 crossings/s for 30 s (one crossing per QoS 1 message). Per run: time until
//!   all were connected; resident memory of the server before and at its peak, and per 1,000
//!   connections; PUBACK latency seen by the DPUs; and publish→stored latency (the crossing's
//!   own time to its commit, from `roomer_crossing_delay_seconds`), over the whole run and
//!   over its steady part (from [`WARMUP`] on, when every fleet has long been connected: the
//!   difference of two scrapes of the histogram). Medians of the repeats.
//! - `storm`: the embedded broker alone, 1,000 and 10,000 DPUs with two crossings each, one
//!   per message and in one bulk upload: connecting at once to a fresh server, and
//!   reconnecting at once after every DPU of a connected fleet dropped off the network
//!   (the simulator killed with SIGKILL); without logins, and with every DPU logging in with
//!   its own secret (checked against its stored hash at each CONNECT). Per run: time until
//!   all were connected, until all were acknowledged, and whether every acknowledged
//!   crossing was stored exactly once.
//!
//! Rerun (builds `roomer` in release mode; these machines allow 20,000 open files a process,
//! enough for 15,000 DPUs):
//!
//! ```text
//! TEST_MOSQUITTO=/usr/sbin/mosquitto cargo bench -p roomer --bench fleet
//! cargo bench -p roomer --bench fleet -- storm          # one part
//! ROOMER_BENCH_REPEATS=1 ROOMER_BENCH_SIZES=1000 cargo bench -p roomer --bench fleet -- hold
//! ```

mod servers;

use servers::{stored, stored_before, Broker, Server, ROOMER, ROOMS};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const RATE: &str = "2000";
/// The DPUs connect to these addresses in turn (the brokers listen on all addresses): each
/// destination has its own range of ephemeral ports, so repeated runs of 15,000 DPUs (whose
/// closed sockets linger in TIME_WAIT for a minute) never run out of them.
const SPREAD: &str = "127.0.0.1,127.0.0.2,127.0.0.3,127.0.0.4";
const HOLD_FOR: &str = "30s";
/// When the steady part of a hold begins: every fleet measured connects within a few seconds.
const WARMUP: Duration = Duration::from_secs(10);

fn main() {
    let parts: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let wants = |part: &str| parts.is_empty() || parts.iter().any(|p| p == part);
    let repeats = std::env::var("ROOMER_BENCH_REPEATS")
        .ok()
        .and_then(|r| r.parse().ok());
    let sizes: Option<Vec<usize>> = std::env::var("ROOMER_BENCH_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|n| n.trim().parse().ok()).collect());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        if wants("hold") {
            let sizes = sizes.clone().unwrap_or(vec![1_000, 5_000, 15_000]);
            hold(&sizes, repeats.unwrap_or(3)).await;
        }
        if wants("storm") {
            let sizes = sizes.unwrap_or(vec![1_000, 10_000]);
            storm(&sizes, repeats.unwrap_or(5)).await;
        }
    });
}

async fn hold(sizes: &[usize], repeats: usize) {
    let mut brokers = vec![Broker::Embedded];
    if std::env::var_os("TEST_MOSQUITTO").is_some() {
        brokers.push(Broker::Mosquitto);
    } else {
        println!("(set TEST_MOSQUITTO to the mosquitto binary for the side-by-side rows)");
    }
    println!(
        "\nhold: N DPUs connect at once, then {RATE} crossings/s for {HOLD_FOR}, one per QoS 1 \
         message; {ROOMS} rooms; SQLite; medians of {repeats}"
    );
    println!(
        "{:<10} {:>6} {:>10} {:>9} {:>9} {:>11} {:>13} {:>13} {:>13} {:>15}",
        "broker",
        "DPUs",
        "connected",
        "RSS base",
        "RSS peak",
        "per 1,000",
        "PUBACK p50/99",
        "stored p50/99",
        "steady p50/99",
        "stored/acked"
    );
    // The peak at the smallest fleet, per broker: the slope from there is what one more
    // connection costs, without what any load costs (database cache, batches, logs).
    let mut smallest: Vec<Option<(f64, f64)>> = vec![None; brokers.len()];
    for &dpus in sizes {
        for (b, &broker) in brokers.iter().enumerate() {
            let mut runs = Vec::new();
            for _ in 0..repeats {
                runs.push(hold_once(broker, dpus).await);
            }
            let m = |f: fn(&HoldRun) -> f64| median(runs.iter().map(f).collect());
            let peak = (dpus as f64, m(|r| r.rss_peak));
            let marginal = match smallest[b] {
                Some((n0, rss0)) if dpus as f64 > n0 => {
                    format!("{:.1} MB", (peak.1 - rss0) / (peak.0 - n0) * 1e3 / 1e6)
                }
                _ => {
                    smallest[b] = Some(peak);
                    "-".to_owned()
                }
            };
            let lost: i64 = runs.iter().map(|r| r.acked - r.stored).sum();
            println!(
                "{:<10} {:>6} {:>9.2}s {:>7.0}MB {:>7.0}MB {:>9.1}MB {:>6.1}/{:<6.1} {:>6.0}/{:<6.0} {:>6.0}/{:<6.0} {:>8}",
                broker.name(),
                dpus,
                m(|r| r.connected_after),
                m(|r| r.rss_base / 1e6),
                m(|r| r.rss_peak / 1e6),
                m(|r| (r.rss_peak - r.rss_base) / r.dpus * 1e3 / 1e6),
                m(|r| r.puback_p50),
                m(|r| r.puback_p99),
                m(|r| r.stored_p50 * 1e3),
                m(|r| r.stored_p99 * 1e3),
                m(|r| r.steady_p50 * 1e3),
                m(|r| r.steady_p99 * 1e3),
                if lost == 0 { "all".to_owned() } else { format!("{lost} lost") },
            );
            println!(
                "{:<10} {:>6}   each 1,000 more connections: {marginal}",
                "", dpus
            );
            if broker == Broker::Mosquitto {
                let m_broker = m(|r| (r.broker_rss_peak - r.broker_rss_base) / r.dpus * 1e3 / 1e6);
                println!(
                    "{:<10} {:>6}   Mosquitto alone: {m_broker:.2} MB per 1,000 connections",
                    "", dpus
                );
            }
        }
    }
    println!(
        "(latencies in ms; PUBACK from the DPU's side; stored = crossing time to commit, over \
         the whole run and from {}s on)",
        WARMUP.as_secs()
    );
}

struct HoldRun {
    dpus: f64,
    connected_after: f64,
    rss_base: f64,
    rss_peak: f64,
    broker_rss_base: f64,
    broker_rss_peak: f64,
    puback_p50: f64,
    puback_p99: f64,
    stored_p50: f64,
    stored_p99: f64,
    steady_p50: f64,
    steady_p99: f64,
    acked: i64,
    stored: i64,
}

async fn hold_once(broker: Broker, dpus: usize) -> HoldRun {
    let server = Server::start(broker, dpus).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (rss_base, broker_rss_base) = (server.rss(), server.broker_rss());
    let n = dpus.to_string();
    let mut sim = simulate(
        &server,
        &["--dpus", &n, "--rate", RATE, "--duration", HOLD_FOR],
    );
    let started = Instant::now();
    let mut at_warmup: Option<String> = None;
    let (mut rss_peak, mut broker_rss_peak) = (rss_base, broker_rss_base);
    while sim.try_wait().unwrap().is_none() {
        if at_warmup.is_none() && started.elapsed() >= WARMUP {
            at_warmup = Some(scrape(&server.metrics_url).await);
        }
        rss_peak = rss_peak.max(server.rss());
        broker_rss_peak = broker_rss_peak.max(server.broker_rss());
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let report = report_of(sim);
    let acked = report["events"].as_i64().unwrap();
    let stored = settled(&server.database_url, acked).await;
    let metrics = scrape(&server.metrics_url).await;
    let whole = buckets(&metrics, DELAY);
    let steady = match at_warmup {
        Some(before) => minus(&whole, &buckets(&before, DELAY)),
        None => Vec::new(),
    };
    HoldRun {
        dpus: dpus as f64,
        connected_after: report["all_connected_after_s"].as_f64().unwrap_or(f64::NAN),
        rss_base: rss_base as f64,
        rss_peak: rss_peak as f64,
        broker_rss_base: broker_rss_base as f64,
        broker_rss_peak: broker_rss_peak as f64,
        puback_p50: report["puback_latency"]["p50_ms"]
            .as_f64()
            .unwrap_or(f64::NAN),
        puback_p99: report["puback_latency"]["p99_ms"]
            .as_f64()
            .unwrap_or(f64::NAN),
        stored_p50: quantile(&whole, 0.5),
        stored_p99: quantile(&whole, 0.99),
        steady_p50: quantile(&steady, 0.5),
        steady_p99: quantile(&steady, 0.99),
        acked,
        stored,
    }
}

async fn storm(sizes: &[usize], repeats: usize) {
    println!(
        "\nstorm: the embedded broker (roomer serve, SQLite), two crossings per DPU; medians of \
         {repeats} (connected: until every DPU had its CONNACK; done: until every message was \
         acknowledged, that is stored)"
    );
    println!(
        "{:<28} {:<16} {:>6} {:>6} {:>11} {:>9} {:>16}",
        "storm", "broker", "DPUs", "batch", "connected", "done", "stored/acked"
    );
    for &dpus in sizes {
        for (broker, batch) in [
            (Broker::Embedded, 1),
            (Broker::Embedded, 2),
            (Broker::EmbeddedLogins, 1),
        ] {
            for reconnect in [false, true] {
                let mut runs = Vec::new();
                for _ in 0..repeats {
                    runs.push(storm_once(broker, dpus, batch, reconnect).await);
                }
                let lost: i64 = runs.iter().map(|r| r.1 - r.2).sum();
                let all: Vec<String> = runs.iter().map(|r| format!("{:.1}", r.0)).collect();
                println!(
                    "{:<28} {:<16} {:>6} {:>6} {:>10.2}s {:>8.2}s {:>16}  done in each: {}",
                    if reconnect {
                        "reconnect after a drop"
                    } else {
                        "connect to a fresh server"
                    },
                    broker.name(),
                    dpus,
                    batch,
                    median(runs.iter().map(|r| r.3).collect()),
                    median(runs.iter().map(|r| r.0).collect()),
                    if lost == 0 {
                        "all, once".to_owned()
                    } else {
                        format!("{lost} LOST")
                    },
                    all.join(" "),
                );
            }
        }
    }
}

/// One storm: (seconds until all acknowledged, acked, stored by it, seconds until all
/// connected).
async fn storm_once(
    broker: Broker,
    dpus: usize,
    batch: usize,
    reconnect: bool,
) -> (f64, i64, i64, f64) {
    let server = Server::start(broker, dpus).await;
    let n = dpus.to_string();
    if reconnect {
        // A connected fleet, one crossing per DPU every ten seconds, then the network goes.
        let rate = (dpus / 10).max(1).to_string();
        let mut fleet = simulate(
            &server,
            &["--dpus", &n, "--rate", &rate, "--duration", "300s"],
        );
        wait_for_connections(&server, dpus).await;
        fleet.kill().unwrap();
        fleet.wait().unwrap();
    }
    let batch = batch.to_string();
    let args = [
        "--dpus",
        &n,
        "--events-per-dpu",
        "2",
        "--batch",
        &batch,
        "--seed",
        "7",
    ];
    let report = report_of(simulate(&server, &args));
    let acked = report["events"].as_i64().unwrap();
    // This fleet's crossings are a day old, the dropped fleet's are of now: count them apart
    // (the dropped fleet's last crossings may still be arriving from the broker's log).
    let stored = stored_before(
        &server.database_url,
        chrono::Utc::now() - chrono::TimeDelta::hours(12),
    )
    .await;
    (
        report["elapsed_s"].as_f64().unwrap(),
        acked,
        stored,
        report["all_connected_after_s"].as_f64().unwrap_or(f64::NAN),
    )
}

fn simulate(server: &Server, args: &[&str]) -> std::process::Child {
    let url = server.mqtt_url();
    let rooms = ROOMS.to_string();
    Command::new(ROOMER)
        .args([
            "simulate",
            "fleet",
            "--json",
            "--rooms",
            &rooms,
            "--mqtt-url",
            &url,
            "--spread-hosts",
            SPREAD,
        ])
        .args(
            server
                .secrets_file
                .iter()
                .flat_map(|path| [std::ffi::OsStr::new("--dpu-secrets"), path.as_os_str()]),
        )
        .args(args)
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn report_of(sim: std::process::Child) -> serde_json::Value {
    let output = sim.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(text.lines().last().unwrap_or("null"))
        .unwrap_or_else(|e| panic!("the simulator's report ({e}): {text}"))
}

/// Waits until `target` crossings are stored, or until the count stops moving for a second
/// (at most a minute); returns the count.
async fn settled(database_url: &str, target: i64) -> i64 {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = (stored(database_url).await, Instant::now());
    loop {
        let now = stored(database_url).await;
        if now >= target || Instant::now() > deadline {
            return now;
        }
        if now != last.0 {
            last = (now, Instant::now());
        } else if last.1.elapsed() > Duration::from_secs(1) {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Polls the embedded broker's meters until `dpus` connections are open (two minutes at most).
async fn wait_for_connections(server: &Server, dpus: usize) {
    let meters = server.metrics_url.replace("/metrics", "/api/v1/meters");
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        let open = match reqwest::get(&meters).await {
            Ok(response) => response.json::<serde_json::Value>().await.ok(),
            Err(_) => None,
        };
        let open = open
            .and_then(|m| m["broker"]["connections"].as_u64())
            .unwrap_or(0);
        if open as usize >= dpus {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

const DELAY: &str = "roomer_crossing_delay_seconds";

async fn scrape(metrics_url: &str) -> String {
    reqwest::get(metrics_url)
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// A Prometheus histogram's cumulative buckets: (upper bound, count).
fn buckets(metrics: &str, name: &str) -> Vec<(f64, f64)> {
    let prefix = format!("{name}_bucket{{le=\"");
    metrics
        .lines()
        .filter_map(|line| line.strip_prefix(&prefix))
        .filter_map(|rest| {
            let (le, count) = rest.split_once("\"} ")?;
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            Some((le, count.trim().parse().ok()?))
        })
        .collect()
}

/// What a histogram recorded between two scrapes.
fn minus(after: &[(f64, f64)], before: &[(f64, f64)]) -> Vec<(f64, f64)> {
    after
        .iter()
        .map(|&(le, count)| {
            let earlier = before.iter().find(|b| b.0 == le).map_or(0.0, |b| b.1);
            (le, count - earlier)
        })
        .collect()
}

/// A quantile of cumulative buckets, interpolated linearly inside its bucket.
fn quantile(buckets: &[(f64, f64)], q: f64) -> f64 {
    let total = buckets.last().map_or(0.0, |b| b.1);
    let rank = q * total;
    let mut below = (0.0, 0.0);
    for &(le, count) in buckets {
        if count >= rank && total > 0.0 {
            if le.is_infinite() {
                return below.0;
            }
            let share = if count > below.1 {
                (rank - below.1) / (count - below.1)
            } else {
                1.0
            };
            return below.0 + (le - below.0) * share;
        }
        below = (le, count);
    }
    f64::NAN
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}
