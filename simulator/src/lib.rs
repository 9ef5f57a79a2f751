//! Fake DPUs: replays crossings (from the reference CSV or a synthetic fleet) over MQTT, the
//! way real doorway sensors publish them, so the backend can be exercised end to end.
//!
//! # Layout
//! - [`csv_file`]: [`read_csv`], the reference data's format (`timestamp,direction,dpu_id`).
//! - [`wire`]: [`payload`] and [`batch_payload`], what a DPU publishes (the format
//!   `occupancy::payload` parses).
//! - [`target`]: [`MqttTarget`], where to publish (`mqtt://host:port`).
//! - [`replay`](mod@replay): [`replay()`], its options and report: one MQTT client per DPU, in parallel.
//! - [`dpu`]: one simulated DPU's connection: at-least-once delivery across reconnects with
//!   its own outbox, online/offline status, backoff.
//! - [`fleet`]: [`fleet_layout`] and [`fleet_events`], a deterministic synthetic building for
//!   load tests.
//! - [`error`]: what can fail, [`SimError`].
#![forbid(unsafe_code)]

pub mod csv_file;
pub mod dpu;
pub mod error;
pub mod fleet;
pub mod replay;
pub mod target;
pub mod wire;

pub use csv_file::read_csv;
pub use error::SimError;
pub use fleet::{fleet_dpu_id, fleet_events, fleet_layout};
pub use replay::{replay, ReplayOptions, ReplayReport};
pub use target::MqttTarget;
pub use wire::{batch_payload, payload};
