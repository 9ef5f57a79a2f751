//! Roomer's embedded MQTT broker: rumqttd, on an address of our choosing, that can be stopped.
//!
//! rumqttd's own `Broker::start` blocks for ever and has no shutdown (upstream issue
//! bytebeamio/rumqtt#771). This crate instead spawns rumqttd's `Router` and `Server`s on a
//! tokio runtime it owns, so that dropping that runtime closes the listeners and every
//! connection, and the port can be reused at once.
//!
//! The broker keeps retained messages and sessions in memory only: a restart forgets them.
//!
//! rumqttd 0.20 can wedge for good (bytebeamio/rumqtt#1062: its listener keeps accepting TCP
//! but never answers CONNECT again), so by default a supervisor thread checks the broker every
//! two seconds with a real MQTT handshake and restarts it in place when it stops answering.
//!
//! # Layout
//! - [`config`]: [`BrokerConfig`], the few knobs Roomer needs, and its translation into
//!   rumqttd's configuration (whose defaults are unusable: see the module).
//! - [`embedded`]: [`EmbeddedBroker`], start / local address / restart count / shutdown, and
//!   [`run`] for a binary that serves until a signal.
//! - [`supervisor`]: the watchdog thread that restarts a wedged broker: the rumqttd bug it
//!   works around, and when it restarts.
//! - [`ready`]: the readiness probe, a real MQTT CONNECT/CONNACK round trip, used by `start`
//!   and by the supervisor's health checks.
//! - [`meters`]: connections, publishes, failures and lost messages, counted from rumqttd's
//!   own tracing events (its meters API is unreachable without `Broker::start`).
//! - [`error`]: why a start fails, [`BrokerError`].
#![forbid(unsafe_code)]

pub mod config;
pub mod embedded;
pub mod error;
mod front;
mod instance;
pub mod meters;
pub mod ready;
pub mod supervisor;

pub use config::BrokerConfig;
pub use embedded::{run, EmbeddedBroker};
pub use error::BrokerError;
