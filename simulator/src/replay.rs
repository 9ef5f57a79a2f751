//! Replaying crossings over MQTT: one client per DPU, all DPUs at once.

use crate::dpu::{self, DpuReport, Message};
use crate::error::SimError;
use crate::target::MqttTarget;
use crate::wire::{batch_payload, payload};
use occupancy::{Crossing, DpuId, Timestamp};
use std::collections::HashMap;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::info;

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
}

impl ReplayOptions {
    /// As fast as possible, one event per message, client ids `roomer-sim-{dpu_id}`.
    pub fn new(target: MqttTarget) -> Self {
        Self {
            target,
            speed: None,
            client_prefix: "roomer-sim-".to_owned(),
            batch: 1,
        }
    }

    fn check(&self) -> Result<(), SimError> {
        if self.batch == 0 {
            return Err(SimError::BadOptions("batch must be at least 1".into()));
        }
        if let Some(speed) = self.speed {
            if !(speed.is_finite() && speed > 0.0) {
                return Err(SimError::BadOptions(format!(
                    "speed must be a positive number, got {speed}"
                )));
            }
        }
        Ok(())
    }
}

/// What a replay sent, once the broker had acknowledged all of it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
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

    let mut tasks = JoinSet::new();
    for (dpu, messages) in plans {
        let client_id = format!("{}{dpu}", options.client_prefix);
        let target = options.target.clone();
        tasks.spawn(async move { dpu::run(dpu, client_id, &target, messages).await });
    }
    let mut report = ReplayReport::default();
    while let Some(joined) = tasks.join_next().await {
        // An error ends the replay; dropping `tasks` aborts the other DPUs.
        report += joined.map_err(|e| SimError::Task(e.to_string()))??;
    }
    info!(?report, elapsed = ?started.elapsed(), "replay done");
    Ok(report)
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
    use occupancy::Direction;

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
    }
}
