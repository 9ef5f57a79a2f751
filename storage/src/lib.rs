//! Where crossings and counts live: [`Store`] in domain words, split by capability, written
//! once over a narrow port that each of two backends implements.
//!
//! # Layout
//! - `capabilities`: what the ingest worker, the API and the CLI may ask of storage
//!   ([`IngestStore`], [`CountStore`], [`LayoutStore`], [`TokenStore`], [`DpuSecretStore`],
//!   [`OperationsStore`]; [`Store`] is all six). [`secrets`]: how a DPU secret is made and
//!   kept. `model` and `error` hold the values they take and answer.
//! - `backend`: the port a backend implements (write transactions, series reads, a few plain
//!   statements) and every capability implemented once over it.
//! - `engine`: the write paths (ingest a batch, apply a layout) written once, over the
//!   `engine::WriteTx` port; the counting rules themselves come from the domain crate
//!   (`occupancy`). [`batch`]: what one ingest batch stores, in one transaction.
//! - `tiers`: each space's series as summaries per minute, hour, day, 30 and 360 days
//!   (`roomer_occupancy::tiers`): kept by the engine, read over the `tiers::TierRead` port.
//!   [`history`]: a space's buckets, folded from them (or from the raw series, to compare).
//! - `cadence`: how often the summarizer runs, and the store's background task that runs it.
//! - `sql`: statements both databases run as written.
//! - `memory`: the tables as ordered maps, for property tests of the real engine.
//! - `sqlite`: the zero-setup default (`sqlite://roomer.db`, WAL, one writer connection).
//! - `postgres`: PostgreSQL; several ingest workers share it without locking each other's
//!   spaces (one advisory lock takes turns at summarizing). With TimescaleDB
//!   (`postgres/timescale.rs`) crossings and series are compressed hypertables (settings in
//!   `timescale_settings.rs`).
//! - Migrations live in the workspace's `migrations/{sqlite,postgres}` and are embedded here;
//!   they run on every [`connect`], followed by `upgrade` where stored data needs more than
//!   SQL to reach the current rules (rule 3's event ids, the summaries of older series).
//! - `testing` (feature `testing`, for tests only): fresh test databases and `eventually`.
//!
//! SQL appears only in `sql.rs` and inside the two backend modules.
#![forbid(unsafe_code)]

mod backend;
pub mod batch;
mod cadence;
mod capabilities;
mod engine;
mod error;
pub mod history;
mod latest;
mod memory;
mod model;
mod postgres;
pub mod secrets;
mod sql;
mod sqlite;
#[cfg(feature = "testing")]
pub mod testing;
mod tiers;
mod timescale_settings;
mod upgrade;

use std::sync::Arc;

pub use batch::Batch;
pub use capabilities::{
    CountStore, DpuSecretStore, IngestStore, LayoutStore, OperationsStore, Store, TokenStore,
};
pub use error::{InUse, Missing, StoreError};
pub use memory::MemoryStore;
pub(crate) use model::{space_columns, space_from_columns};
pub use model::{
    DpuInfo, IngestOutcome, LayoutReport, Page, Rejected, RejectedFilter, Role, Series, SpaceCount,
    TokenInfo, TokenSelector, Totals,
};
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;
pub use timescale_settings::{TimescaleSettings, TimescaleStatus};

pub use cadence::DEFAULT_SUMMARIZE_EVERY;

/// The capabilities, to call them on a concrete store: `use roomer_storage::prelude::*;`.
pub mod prelude {
    pub use crate::{
        CountStore, DpuSecretStore, IngestStore, LayoutStore, OperationsStore, Store, TokenStore,
    };
}

/// How a store runs, beyond the database it opens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreOptions {
    /// The summarizer runs at most this often (zero: in every batch); batches in between
    /// note their minutes, and counts stay exact meanwhile (see `cadence`).
    pub summarize_every: std::time::Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            summarize_every: DEFAULT_SUMMARIZE_EVERY,
        }
    }
}

/// Opens the database a URL names (`sqlite://…` or `postgres://…`), creating an SQLite file
/// if missing, and brings its schema up to date.
pub async fn connect(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    connect_with(url, StoreOptions::default()).await
}

/// [`connect`] with options.
pub async fn connect_with(url: &str, options: StoreOptions) -> Result<Arc<dyn Store>, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::connect_with(url, options).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(PostgresStore::connect_with(url, options).await?))
    } else {
        Err(StoreError::UnsupportedUrl(url.to_owned()))
    }
}
