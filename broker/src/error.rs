//! What can go wrong when starting the broker.

use std::net::SocketAddr;
use std::time::Duration;

/// Why the broker could not be started.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// The listen address is taken (or not ours to bind).
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// The broker's own tokio runtime could not be built.
    #[error("cannot build the broker runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// Nothing answered an MQTT CONNECT on the port before the deadline.
    #[error("the MQTT server on {addr} did not accept a connection within {waited:?}")]
    NotReady { addr: SocketAddr, waited: Duration },
    /// The supervisor's thread could not be spawned.
    #[error("cannot start the broker's supervisor thread: {0}")]
    Supervisor(#[source] std::io::Error),
    /// The TLS listener's certificate, key or client CAs cannot be used.
    #[error("TLS: {0}")]
    Tls(String),
    /// A background task of `run` panicked or was cancelled.
    #[error("broker task failed: {0}")]
    Task(String),
}
