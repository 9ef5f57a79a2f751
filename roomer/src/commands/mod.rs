//! Every `roomer` command but `serve` (in the crate root), assembled here from plain
//! configuration so that `main.rs` only maps flags to it.
//!
//! # Layout
//! - [`api`]: `roomer api`, the HTTP API and dashboard alone.
//! - [`ingest`]: `roomer ingest`, one worker against an external broker.
//! - [`simulate`]: `roomer simulate replay|fleet`, fake DPUs.
//! - [`admin`]: `roomer layout apply`, `roomer token …`, `roomer migrate`.
//! - [`logging`]: the log output every command writes, and panics as one log line.
//!
//! `roomer broker` is [`crate::dpu_access::run_broker`]; `roomer dpu credentials` is
//! [`crate::dpu_access::credentials`] and [`crate::mosquitto::write_files`].

pub mod admin;
pub mod api;
pub mod ingest;
pub mod logging;
pub mod simulate;
