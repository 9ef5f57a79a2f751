//! Roomer's embedded MQTT broker: rumqttd, on an address of our choosing, that can be stopped.
//!
//! rumqttd's own `Broker::start` blocks for ever and has no shutdown (upstream issue
//! bytebeamio/rumqtt#771). This crate instead spawns rumqttd's `Router` and `Server`s on a
//! tokio runtime it owns, so that dropping that runtime closes the listeners and every
//! connection, and the port can be reused at once.
//!
//! The broker keeps retained messages and sessions in memory only: a restart forgets them.
//!
//! # Layout
//! - [`config`]: [`BrokerConfig`], the few knobs Roomer needs, and its translation into
//!   rumqttd's configuration (whose defaults are unusable: see the module).
//! - [`embedded`]: [`EmbeddedBroker`], start / local address / shutdown, and [`run`] for a
//!   binary that serves until a signal.
//! - [`ready`]: the readiness probe, a real MQTT CONNECT/CONNACK round trip.
//! - [`error`]: why a start fails, [`BrokerError`].
#![forbid(unsafe_code)]

pub mod config;
pub mod embedded;
pub mod error;
pub mod ready;

pub use config::BrokerConfig;
pub use embedded::{run, EmbeddedBroker};
pub use error::BrokerError;
