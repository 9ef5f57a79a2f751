//! Fake DPUs: replays crossings (from the reference CSV or a synthetic fleet) over MQTT, the
//! way real doorway sensors publish them, so the backend can be exercised end to end.
//!
//! # Layout
//! - [`csv_file`]: [`read_csv`] and [`write_csv`], the reference data's format
//!   (`timestamp,direction,dpu_id`).
//! - [`wire`]: [`payload`] and [`batch_payload`], what a DPU publishes (the format
//!   `roomer_occupancy::payload` parses).
//! - [`target`]: [`MqttTarget`], where to publish (`mqtt://host:port`).
//! - [`replay`](mod@replay): [`replay()`] and [`replay_watched`], their options (batching,
//!   speed, connection rate) and report: one MQTT client per DPU, in parallel.
//! - [`live`](mod@live): [`live()`], a fleet making crossings in real time at a steady rate
//!   for a duration, generated lazily so that tens of thousands of DPUs fit in one process.
//! - [`dpu`]: one simulated DPU's connection: at-least-once delivery across reconnects with
//!   its own outbox, online/offline status, backoff.
//! - [`source`]: where a DPU's messages come from: planned up front, or made when due.
//! - [`progress`]: [`FleetProgress`], counters every DPU updates while a fleet runs (for a
//!   progress line), and [`FleetReport`], what a run did (JSON for benchmarks).
//! - [`latency`]: a lock-free histogram of PUBACK latencies, and its percentiles.
//! - [`fleet`]: [`fleet_layout`] and [`fleet_events`], a deterministic synthetic building for
//!   load tests.
//! - [`week`]: [`office_week`], a week in a small office as its DPUs uploaded it (late and
//!   repeated rows included): the tour's data.
//! - [`error`]: what can fail, [`SimError`].
#![forbid(unsafe_code)]

pub mod csv_file;
pub mod dpu;
pub mod error;
pub mod fleet;
pub mod latency;
pub mod live;
pub mod progress;
pub mod replay;
pub mod source;
pub mod target;
pub mod week;
pub mod wire;

pub use csv_file::{read_csv, write_csv};
pub use error::SimError;
pub use fleet::{fleet_dpu_id, fleet_events, fleet_layout};
pub use latency::LatencySummary;
pub use live::{live, LiveOptions, LiveSchedule};
pub use progress::{FleetProgress, FleetReport, ProgressSnapshot};
pub use replay::{connect_delay, replay, replay_watched, ReplayOptions, ReplayReport};
pub use target::{client_tls, MqttTarget};
pub use week::{office_week, Week};
pub use wire::{batch_payload, payload};
