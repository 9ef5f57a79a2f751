//! Replaying crossings over MQTT: one client per DPU, all DPUs at once or at a connection rate.

use crate::dpu::{self, DpuReport, Message};
use crate::error::SimError;
use crate::progress::{FleetProgress, FleetReport};
use crate::source::{Planned, Source};
use crate::target::MqttTarget;
use crate::wire::{batch_payload, payload};
use roomer_occupancy::broker_url::MqttLogin;
use roomer_occupancy::{Crossing, DpuId, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::{info, warn};

/// How to replay.
#[derive(Clone, Debug)]
pub struct ReplayOptions {
    pub target: MqttTarget,
    /// `None`: as fast as the broker acknowledges. `Some(n)`: `n` times real time along the
    /// events' own timeline (the earliest event of all DPUs is sent at once), so `Some(60.0)`
    /// plays an hour of crossings in a minute. A batch goes out when its last event is due.
    pub speed: Option<f64>,
    /// The MQTT client id of a DPU is `{client_prefix}{dpu_id}`.
    pub client_prefix: String,
    /// 1: one JSON object per message. More: bulk uploads, JSON arrays of up to `batch`
    /// consecutive events of one DPU.
    pub batch: usize,
    /// `None`: every DPU connects at once. `Some(n)`: `n` new connections a second across the
    /// fleet, DPU `i` (from 0) starting to connect `i / n` seconds after the start (see
    /// [`connect_delay`]). Thousands of simultaneous CONNECTs measure the broker's accept
    /// backlog more than anything else, and real fleets come online gradually.
    pub connect_rate: Option<f64>,
    /// Addresses of the broker to spread the fleet's connections over, on the target's port:
    /// DPU `i` (from 0) connects to address `i mod n`; empty, every DPU connects to the
    /// target's host. Linux allots ephemeral ports per destination address, so each address
    /// gives the fleet another range of them (about 28,000 by default) on one machine. This is
    /// how a load test goes beyond one range: rumqttc 0.25 cannot choose a source address
    /// (bytebeamio/rumqtt#835), so the addresses vary on the broker's side instead, which
    /// must listen on all of them (`0.0.0.0`).
    pub spread_hosts: Vec<String>,
    /// DPUs' own secrets, by DPU id: a DPU with one logs in as itself (user name and client
    /// id its id), as Roomer's embedded broker requires when logins are on; the others use
    /// the target's login, if any.
    pub dpu_secrets: Arc<HashMap<String, String>>,
}

impl ReplayOptions {
    /// As fast as possible, one event per message, client ids `sim-{dpu_id}`.
    pub fn new(target: MqttTarget) -> Self {
        Self {
            target,
            speed: None,
            client_prefix: "sim-".to_owned(),
            batch: 1,
            connect_rate: None,
            spread_hosts: Vec::new(),
            dpu_secrets: Arc::default(),
        }
    }

    /// Where DPU `index` (from 0) connects.
    pub(crate) fn target_of(&self, index: usize) -> MqttTarget {
        match self.spread_hosts.len() {
            0 => self.target.clone(),
            n => MqttTarget {
                host: self.spread_hosts[index % n].clone(),
                ..self.target.clone()
            },
        }
    }

    pub(crate) fn check(&self) -> Result<(), SimError> {
        if self.spread_hosts.iter().any(|h| h.is_empty()) {
            return Err(SimError::BadOptions(
                "an empty address to spread over".into(),
            ));
        }
        if self.batch == 0 {
            return Err(SimError::BadOptions("batch must be at least 1".into()));
        }
        positive("speed", self.speed)?;
        positive("connect rate", self.connect_rate)
    }
}

/// Refuses zero, negative, infinite and NaN values of an optional option.
pub(crate) fn positive(what: &str, value: Option<f64>) -> Result<(), SimError> {
    match value {
        Some(v) if !(v.is_finite() && v > 0.0) => Err(SimError::BadOptions(format!(
            "{what} must be a positive number, got {v}"
        ))),
        _ => Ok(()),
    }
}

/// How long after the start DPU `index` (from 0) starts connecting: `index / rate` seconds,
/// so the fleet opens `rate` connections a second, evenly spaced; at once without a rate.
pub fn connect_delay(index: usize, rate: Option<f64>) -> Duration {
    match rate {
        Some(rate) => Duration::from_secs_f64(index as f64 / rate),
        None => Duration::ZERO,
    }
}

/// What a replay sent, once the broker had acknowledged all of it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplayReport {
    /// MQTT messages acknowledged (each counted once, however often it was sent).
    pub messages: usize,
    /// Crossings in those messages.
    pub events: usize,
    /// Messages sent again after a connection dropped before their PUBACK.
    pub resent: usize,
}

impl std::ops::AddAssign<DpuReport> for ReplayReport {
    fn add_assign(&mut self, dpu: DpuReport) {
        self.messages += dpu.messages;
        self.events += dpu.events;
        self.resent += dpu.resent;
    }
}

/// Publishes `events` as their DPUs would: one MQTT client per DPU, QoS 1, each DPU's events
/// in the order given on `dpus/{dpu_id}/crossings`. Returns once every message has been
/// acknowledged by the broker. Connection failures are retried for ever (a DPU keeps what
/// was not acknowledged and resends it after reconnecting); wrap the call in
/// `tokio::time::timeout` to bound it.
pub async fn replay(
    events: Vec<Crossing>,
    options: &ReplayOptions,
) -> Result<ReplayReport, SimError> {
    let report = replay_watched(events, options, Arc::default()).await?;
    Ok(report.published)
}

/// [`replay()`], counting into `progress` as it goes (for a progress line), and reporting
/// connection times and PUBACK latencies too.
pub async fn replay_watched(
    events: Vec<Crossing>,
    options: &ReplayOptions,
    progress: Arc<FleetProgress>,
) -> Result<FleetReport, SimError> {
    options.check()?;
    let started = Instant::now();
    let plans = plan(events, options, started);
    for (dpu, messages) in &plans {
        dpu::check_sizes(dpu, messages)?;
    }
    info!(
        target = %options.target,
        dpus = plans.len(),
        messages = plans.iter().map(|(_, m)| m.len()).sum::<usize>(),
        "replay starting"
    );
    let sources = plans
        .into_iter()
        .map(|(dpu, messages)| (dpu, Planned::from(messages)));
    run_fleet(sources, options, progress).await
}

/// Runs one DPU per source, each starting to connect at its [`connect_delay`], until all
/// are done and acknowledged.
pub(crate) async fn run_fleet<S: Source>(
    sources: impl ExactSizeIterator<Item = (DpuId, S)>,
    options: &ReplayOptions,
    progress: Arc<FleetProgress>,
) -> Result<FleetReport, SimError> {
    let started = progress.begin(sources.len());
    warn_if_short_of_sockets(sources.len());
    warn_if_short_of_ports(sources.len(), options.spread_hosts.len().max(1));
    let mut tasks = JoinSet::new();
    for (index, (dpu, source)) in sources.enumerate() {
        let mut target = options.target_of(index);
        let client_id = match options.dpu_secrets.get(dpu.as_str()) {
            Some(secret) => {
                target.login = Some(MqttLogin::new(dpu.as_str(), secret));
                dpu.as_str().to_owned()
            }
            None => format!("{}{dpu}", options.client_prefix),
        };
        let progress = progress.clone();
        let delay = connect_delay(index, options.connect_rate);
        tasks.spawn(async move {
            if !delay.is_zero() {
                tokio::time::sleep_until(started + delay).await;
            }
            dpu::run(dpu, client_id, &target, source, progress).await
        });
    }
    let mut report = ReplayReport::default();
    while let Some(joined) = tasks.join_next().await {
        // An error ends the run; dropping `tasks` aborts the other DPUs.
        report += joined.map_err(|e| SimError::Task(e.to_string()))??;
    }
    let report = progress.report(Some(report));
    info!(?report, "fleet done");
    Ok(report)
}

/// Each DPU holds a socket. A DPU that cannot open one only retries (and says so at debug
/// level), so a fleet beyond the open-files limit would sit half-connected without a word.
fn warn_if_short_of_sockets(dpus: usize) {
    // Linux only; elsewhere, nothing to read cheaply without unsafe code.
    let Ok(limits) = std::fs::read_to_string("/proc/self/limits") else {
        return;
    };
    let soft = limits
        .lines()
        .find_map(|line| line.strip_prefix("Max open files"))
        .and_then(|rest| rest.split_whitespace().next()?.parse::<usize>().ok());
    if let Some(soft) = soft.filter(|&soft| soft < dpus + 64) {
        warn!(
            dpus,
            open_files_limit = soft,
            "each DPU needs a socket: raise the limit (ulimit -n) or some DPUs will never connect"
        );
    }
}

/// Each connection to one broker address takes an ephemeral port; beyond the range, connects
/// fail with "address not available" and those DPUs only retry. Says so before it happens.
fn warn_if_short_of_ports(dpus: usize, addresses: usize) {
    let Ok(range) = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range") else {
        return;
    };
    let mut bounds = range
        .split_whitespace()
        .filter_map(|b| b.parse::<usize>().ok());
    let (Some(low), Some(high)) = (bounds.next(), bounds.next()) else {
        return;
    };
    let ports = high.saturating_sub(low) + 1;
    if dpus.div_ceil(addresses) > ports {
        warn!(
            dpus,
            addresses,
            ephemeral_ports = ports,
            "more DPUs per broker address than ephemeral ports: spread them over more addresses \
             (--spread-hosts) or widen net.ipv4.ip_local_port_range"
        );
    }
}

/// Each DPU's messages, DPUs in order of first appearance.
fn plan(
    events: Vec<Crossing>,
    options: &ReplayOptions,
    started: Instant,
) -> Vec<(DpuId, Vec<Message>)> {
    let origin = events.iter().map(|c| c.ts).min();
    let mut per_dpu: Vec<(DpuId, Vec<Crossing>)> = Vec::new();
    let mut index: HashMap<DpuId, usize> = HashMap::new();
    for crossing in events {
        match index.get(&crossing.dpu) {
            Some(&i) => per_dpu[i].1.push(crossing),
            None => {
                index.insert(crossing.dpu.clone(), per_dpu.len());
                per_dpu.push((crossing.dpu.clone(), vec![crossing]));
            }
        }
    }
    let due = |ts: Timestamp| {
        let (speed, origin) = (options.speed?, origin?);
        let micros = (ts - origin).num_microseconds().unwrap_or(i64::MAX).max(0);
        Some(started + Duration::from_secs_f64(micros as f64 / 1e6 / speed))
    };
    per_dpu
        .into_iter()
        .map(|(dpu, crossings)| {
            let messages = crossings
                .chunks(options.batch)
                .map(|chunk| Message {
                    due: chunk.iter().map(|c| c.ts).max().and_then(due),
                    payload: if options.batch == 1 {
                        payload(&chunk[0])
                    } else {
                        batch_payload(chunk)
                    },
                    events: chunk.len(),
                })
                .collect();
            (dpu, messages)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use roomer_occupancy::Direction;

    fn crossing(dpu: &str, second: i64) -> Crossing {
        let ts = "2018-02-24T08:00:00Z".parse::<Timestamp>().unwrap()
            + chrono::TimeDelta::seconds(second);
        Crossing::new(DpuId::new(dpu).unwrap(), ts, Direction::In, None)
    }

    fn options(batch: usize, speed: Option<f64>) -> ReplayOptions {
        ReplayOptions {
            batch,
            speed,
            ..ReplayOptions::new(MqttTarget::parse("mqtt://localhost").unwrap())
        }
    }

    #[test]
    fn events_are_grouped_per_dpu_in_order_and_batched() {
        let events = vec![
            crossing("a", 3),
            crossing("b", 1),
            crossing("a", 2),
            crossing("a", 5),
        ];
        let plans = plan(events, &options(2, None), Instant::now());
        let shape: Vec<(String, Vec<usize>)> = plans
            .iter()
            .map(|(dpu, m)| (dpu.to_string(), m.iter().map(|m| m.events).collect()))
            .collect();
        assert_eq!(shape, [("a".into(), vec![2, 1]), ("b".into(), vec![1])]);
        assert!(plans[0].1[0]
            .payload
            .starts_with(b"[{\"ts\":\"2018-02-24T08:00:03"));
        assert!(plans.iter().all(|(_, m)| m.iter().all(|m| m.due.is_none())));
    }

    #[test]
    fn with_a_speed_a_message_is_due_when_its_last_event_happened_scaled() {
        let started = Instant::now();
        let events = vec![crossing("a", 10), crossing("a", 30), crossing("b", 70)];
        let plans = plan(events, &options(2, Some(10.0)), started);
        assert_eq!(plans[0].1[0].due, Some(started + Duration::from_secs(2)));
        assert_eq!(plans[1].1[0].due, Some(started + Duration::from_secs(6)));
    }

    #[test]
    fn nonsense_options_are_refused() {
        assert!(options(0, None).check().is_err());
        assert!(options(1, Some(0.0)).check().is_err());
        assert!(options(1, Some(f64::NAN)).check().is_err());
        assert!(options(1, Some(0.5)).check().is_ok());
        for rate in [0.0, -1.0, f64::INFINITY, f64::NAN] {
            let options = ReplayOptions {
                connect_rate: Some(rate),
                ..options(1, None)
            };
            assert!(options.check().is_err(), "connect rate {rate}");
        }
        let options = ReplayOptions {
            connect_rate: Some(0.5),
            ..options(1, None)
        };
        assert!(options.check().is_ok());
    }

    #[test]
    fn dpus_connect_at_the_rate_one_after_the_other() {
        let delays: Vec<Duration> = (0..5).map(|i| connect_delay(i, Some(1000.0))).collect();
        let ms = Duration::from_millis;
        assert_eq!(delays, [ms(0), ms(1), ms(2), ms(3), ms(4)]);
        assert_eq!(connect_delay(15_000, Some(500.0)), Duration::from_secs(30));
        assert_eq!(connect_delay(14_999, None), Duration::ZERO);
    }
}
