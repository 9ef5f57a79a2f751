//! A live fleet: crossings made in real time at a steady fleet-wide rate for a while, rather
//! than a backlog replayed as fast as the broker takes it. This is what a benchmark of a
//! running building needs: thousands of mostly idle connections, a known steady load.
//!
//! Every DPU generates its crossings lazily ([`Source`]), one message when it is due; no DPU
//! holds more than its unacknowledged window, so 15,000 DPUs fit in one process, each with one
//! timer.

use crate::dpu::MAX_PAYLOAD_BYTES;
use crate::error::SimError;
use crate::fleet::{fleet_dpu_id, Footfall};
use crate::progress::{FleetProgress, FleetReport};
use crate::replay::{positive, run_fleet, ReplayOptions};
use crate::source::{Message, Next, Source};
use crate::wire::{batch_payload, payload};
use chrono::SubsecRound;
use rand::rngs::StdRng;
use rand::SeedableRng;
use roomer_occupancy::{Crossing, Direction, DpuId, Timestamp};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tracing::info;

/// The most crossings one DPU makes a second. More would be no doorway; and crossings of one
/// DPU must differ in time (the backend deduplicates on DPU, time and direction).
pub const MAX_RATE_PER_DPU: f64 = 1000.0;

/// What a live fleet does.
#[derive(Clone, Debug, PartialEq)]
pub struct LiveOptions {
    /// DPUs `sim-00001` … as in [`fleet_layout`](crate::fleet_layout).
    pub dpus: usize,
    /// Crossings a second, fleet-wide.
    pub rate: f64,
    /// How long crossings keep coming; the run then ends once everything is acknowledged.
    pub duration: Duration,
    /// Directions are the same for the same seed; timestamps are those of the run.
    pub seed: u64,
}

impl LiveOptions {
    pub fn check(&self) -> Result<(), SimError> {
        let bad = |why: String| Err(SimError::BadOptions(why));
        if self.dpus == 0 {
            return bad("a live fleet needs at least one DPU".into());
        }
        positive("rate", Some(self.rate))?;
        if self.duration.is_zero() {
            return bad("duration must be longer than zero".into());
        }
        let per_dpu = self.rate / self.dpus as f64;
        if per_dpu > MAX_RATE_PER_DPU {
            return bad(format!(
                "{} crossings/s over {} DPUs is {per_dpu:.0}/s per DPU, more than the {MAX_RATE_PER_DPU} \
                 a doorway can make; use more DPUs",
                self.rate, self.dpus
            ));
        }
        if self.rate * self.duration.as_secs_f64() >= 2f64.powi(53) {
            return bad("rate × duration is too many crossings".into());
        }
        Ok(())
    }
}

/// When each DPU crosses. The fleet's `j`-th crossing (from 0) is `j / rate` seconds after
/// the start, for every `j` with `j / rate < duration`; DPU `i` (from 0) makes crossings
/// `i`, `i + dpus`, `i + 2·dpus`, … So each DPU crosses every `dpus / rate` seconds, DPU `i`
/// with a phase of `i / rate`, and the fleet as a whole crosses exactly every `1 / rate`
/// seconds instead of in bursts of `dpus` at the top of every DPU period.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LiveSchedule {
    dpus: u64,
    rate: f64,
    total: u64,
}

impl LiveSchedule {
    pub fn new(options: &LiveOptions) -> Self {
        let exact = options.rate * options.duration.as_secs_f64();
        // 0.3/s for 10 s is 3 crossings, although 0.3 × 10.0 is a hair above 3.
        let total = if (exact - exact.round()).abs() <= 1e-9 * exact.max(1.0) {
            exact.round()
        } else {
            exact.ceil()
        };
        Self {
            dpus: options.dpus as u64,
            rate: options.rate,
            total: total as u64,
        }
    }

    /// Crossings of the whole fleet.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Crossings of DPU `index`.
    pub fn crossings_of(&self, index: usize) -> u64 {
        self.total
            .saturating_sub(index as u64)
            .div_ceil(self.dpus.max(1))
    }

    /// When crossing `k` (from 0) of DPU `index` happens, after the start.
    pub fn offset(&self, index: usize, k: u64) -> Duration {
        let j = index as u64 + k * self.dpus;
        Duration::from_nanos((j as f64 * 1e9 / self.rate).round() as u64)
    }
}

/// One DPU of a live fleet, as a [`Source`]. Its crossings' timestamps are the wall-clock
/// times they are due, to the microsecond: when a DPU keeps up, that is when it publishes them;
/// a DPU that is behind (not connected yet, reconnecting, window full) publishes them late
/// with the time they happened, as a real DPU empties its buffer.
pub(crate) struct LiveDpu {
    dpu: DpuId,
    index: usize,
    schedule: LiveSchedule,
    batch: u64,
    /// The next crossing (from 0), and how many this DPU makes.
    next: u64,
    count: u64,
    start: Instant,
    /// The end of the duration: a DPU stays connected until then, even after its last
    /// crossing, so the whole fleet is online for the whole run.
    end: Instant,
    start_utc: Timestamp,
    rng: StdRng,
    footfall: Footfall,
}

impl LiveDpu {
    fn new(
        index: usize,
        schedule: LiveSchedule,
        batch: usize,
        seed: u64,
        (start, end, start_utc): (Instant, Instant, Timestamp),
    ) -> Self {
        Self {
            dpu: fleet_dpu_id(index + 1),
            index,
            schedule,
            batch: batch.max(1) as u64,
            next: 0,
            count: schedule.crossings_of(index),
            start,
            end,
            start_utc,
            // Each DPU its own stream, so that it needs nothing from the others.
            rng: StdRng::seed_from_u64(
                seed ^ (index as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15),
            ),
            footfall: Footfall::default(),
        }
    }

    fn crossing(&mut self, k: u64) -> Crossing {
        let offset = self.schedule.offset(self.index, k);
        let micros = i64::try_from(offset.as_micros()).unwrap_or(i64::MAX);
        let ts = self.start_utc + chrono::TimeDelta::microseconds(micros);
        let direction: Direction = self.footfall.next(&mut self.rng);
        Crossing::new(self.dpu.clone(), ts, direction, Some(k + 1))
    }
}

impl Source for LiveDpu {
    /// With a batch of `b`, a message of the `b` latest crossings every `b` crossings (the
    /// rest at the end), due with its last crossing. Done once the duration is over.
    fn next(&mut self, now: Instant) -> Next {
        if self.next >= self.count {
            return match now < self.end {
                true => Next::At(self.end),
                false => Next::Done,
            };
        }
        let last = (self.next + self.batch).min(self.count) - 1;
        let due = self.start + self.schedule.offset(self.index, last);
        if due > now {
            return Next::At(due);
        }
        let crossings: Vec<Crossing> = (self.next..=last).map(|k| self.crossing(k)).collect();
        self.next = last + 1;
        Next::Ready(Message {
            due: Some(due),
            payload: match self.batch {
                1 => payload(&crossings[0]),
                _ => batch_payload(&crossings),
            },
            events: crossings.len(),
        })
    }
}

/// The largest batch whose message fits in [`MAX_PAYLOAD_BYTES`] whatever its crossings.
fn max_batch() -> usize {
    let ts = "2000-01-01T00:00:00Z".parse().expect("a valid time");
    let dpu = fleet_dpu_id(1);
    let widest = Crossing::new(dpu, ts, Direction::Out, Some(u64::MAX));
    (MAX_PAYLOAD_BYTES - 2) / (payload(&widest).len() + 1)
}

/// Runs the live fleet `live` describes against `options.target` (with its batch, connection
/// rate and client prefix; `speed` does not apply), counting into `progress`. Every DPU stays
/// connected for the whole duration; then each says goodbye once all its crossings are
/// acknowledged, and this returns when all have. Network failures are retried for ever, as in [`replay`](crate::replay()).
pub async fn live(
    live: &LiveOptions,
    options: &ReplayOptions,
    progress: Arc<FleetProgress>,
) -> Result<FleetReport, SimError> {
    live.check()?;
    options.check()?;
    if options.batch > max_batch() {
        return Err(SimError::BadOptions(format!(
            "a batch of {} crossings could exceed {MAX_PAYLOAD_BYTES} bytes; at most {}",
            options.batch,
            max_batch()
        )));
    }
    let schedule = LiveSchedule::new(live);
    let start = progress.begin(live.dpus);
    let start_utc = chrono::Utc::now().trunc_subsecs(6);
    let end = start + live.duration;
    info!(
        target = %options.target,
        dpus = live.dpus,
        rate = live.rate,
        duration = ?live.duration,
        crossings = schedule.total(),
        "live fleet starting"
    );
    let (batch, seed) = (options.batch, live.seed);
    let sources = (0..live.dpus).map(move |index| {
        let source = LiveDpu::new(index, schedule, batch, seed, (start, end, start_utc));
        (source.dpu.clone(), source)
    });
    run_fleet(sources, options, progress).await
}

#[cfg(test)]
mod tests;
