//! What can go wrong while reading events or replaying them.

use roomer_occupancy::DpuId;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The file could not be opened, read or written at all.
    #[error("cannot read or write {path}: {source}")]
    Csv {
        path: PathBuf,
        #[source]
        source: csv::Error,
    },
    /// A file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The header does not name one of the columns the reader needs.
    #[error(
        "{path}: the header has no {column:?} column (it needs timestamp, direction and dpu_id)"
    )]
    MissingColumn { path: PathBuf, column: &'static str },
    /// One row is malformed; `line` is the 1-based line it starts on (the header is line 1).
    #[error("{path}, line {line}: {reason}")]
    BadRow {
        path: PathBuf,
        line: u64,
        reason: String,
    },
    /// The broker URL (the message says why, without its password).
    #[error("{0}")]
    BadTarget(String),
    /// The TLS client configuration for an `mqtts://` broker.
    #[error("TLS: {0}")]
    Tls(String),
    #[error("invalid replay options: {0}")]
    BadOptions(String),
    /// Checked before connecting: rumqttc would otherwise fail the write, reconnect and resend
    /// the same oversized message for ever.
    #[error("a message of DPU {dpu} is {bytes} bytes, more than the {max} allowed")]
    MessageTooLarge {
        dpu: DpuId,
        bytes: usize,
        max: usize,
    },
    /// A DPU's MQTT machinery stopped unexpectedly (a bug, not a network problem: network
    /// problems are retried).
    #[error("DPU {dpu}: {reason}")]
    Client { dpu: DpuId, reason: String },
    /// A DPU's task panicked.
    #[error("a DPU task failed: {0}")]
    Task(String),
}
