//! Roomer's embedded MQTT broker: rumqttd's router, behind Roomer's own MQTT listener, on an
//! address of our choosing, that can be stopped.
//!
//! rumqttd's own `Broker::start` blocks for ever and has no shutdown (upstream issue
//! bytebeamio/rumqtt#771), and its `Server` wedges for good under connect storms
//! (bytebeamio/rumqtt#1062). This crate spawns rumqttd's `Router` on a tokio runtime it owns and
//! serves MQTT itself in front of it (the `front` module): dropping the runtime closes the listeners
//! and every connection, so the port can be reused at once.
//!
//! The broker keeps retained messages and sessions in memory only: a restart forgets them. With
//! [`BrokerConfig::ack_after_store_by`] it acknowledges a DPU's message only once the ingest
//! worker has stored it, so a crash loses nothing a DPU was told is safe.
//!
//! # Layout
//! - [`access`]: who may connect ([`Access`]: DPU secrets, the service account) and what
//!   each client may publish and read, enforced by `front`.
//! - [`config`]: [`BrokerConfig`], the few knobs Roomer needs, and its translation into
//!   rumqttd's configuration (whose defaults are unusable: see the module).
//! - [`embedded`]: [`EmbeddedBroker`], start / local address / restart count / shutdown, the
//!   supervisor's checks and heals, and [`run`] for a binary that serves until a signal.
//! - `instance`: one incarnation: router, listeners and runtime; replacing the listeners only.
//! - `front`: the MQTT listener in front of the router: CONNECT checked before the router sees
//!   it, each connection's packet pump (`front/link.rs`), acknowledgement after store
//!   (`front/gate.rs`) and what a dead router would lose (`front/ledger.rs`).
//! - `test_certs` (feature `testing`): a CA and certificates made at test time.
//! - [`tls`]: the MQTT-over-TLS listener's certificates ([`TlsSettings`]; rustls).
//! - [`supervisor`]: the watchdog thread that heals a broker that stops answering.
//! - [`ready`]: the readiness probe, a real MQTT CONNECT/CONNACK round trip, used by `start`
//!   and by the supervisor's health checks.
//! - [`meters`]: connections, refusals, publishes, failures, heals and lost messages, counted
//!   by the listener and from rumqttd's own tracing events (its meters API is unreachable
//!   without `Broker::start`).
//! - [`error`]: why a start fails, [`BrokerError`].
#![forbid(unsafe_code)]

pub mod access;
pub mod config;
pub mod embedded;
pub mod error;
mod front;
mod instance;
pub mod meters;
pub mod ready;
pub mod supervisor;
#[cfg(feature = "testing")]
pub mod test_certs;
pub mod tls;

pub use access::{Access, AuthMode, DpuSecrets, DpuSessions};
pub use config::BrokerConfig;
pub use embedded::{run, EmbeddedBroker};
pub use error::BrokerError;
pub use tls::TlsSettings;
