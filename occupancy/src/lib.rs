//! Roomer's domain: who is where, and the rules that turn doorway crossings into counts.
//!
//! # Layout
//! - [`model`]: spaces, doorways, DPUs and crossings — the nouns.
//! - [`layout`]: a building description, its validation and "which doorway did this DPU hang
//!   over at time T".
//! - [`series`]: a space's count series, its total order (rule 1), the counting step (rule
//!   2), and a per-entry form of the series that the property tests compare the tiers with.
//! - [`effect`]: what a stretch of a series does to a count, as `c ↦ max(a, c + b)` maps
//!   that compose, so any stretch is summarized by a few numbers.
//! - [`tiers`]: a series summarized in nested minute to 360-day buckets: a late crossing
//!   costs one bucket per tier, the count at `T` is a fold of summaries.
//! - [`plan`]: turns a batch of crossings (or a layout change) into per-space changes:
//!   deduplication, attribution and pending events (rules 3, 4 and 6).
//! - [`history`]: a series cut into minute to week buckets in local time, daylight-saving
//!   days included.
//! - [`rollup`]: the walk that cuts a series' points into history buckets, daily resets
//!   included (the raw path the tiers are checked against).
//! - [`broker_url`]: how Roomer's MQTT clients name a broker (URL, login, TLS or not).
//! - [`payload`]: the MQTT/HTTP wire format and its validation (rule 7).
//! - [`ledger`]: an in-memory store built from the pieces above, its series in [`tiers`] (as
//!   the storage backends keep them) or per entry; storage backends do the same with SQL.
//! - [`reset`]: the daily reset, a space's count returning to 0 at a local time of day.
//! - [`reference`]: a deliberately naive model the property tests compare everything against.
//!
//! Nothing in this crate does I/O.
#![forbid(unsafe_code)]

pub mod broker_url;
pub mod effect;
pub mod history;
pub mod layout;
pub mod ledger;
pub mod model;
pub mod payload;
pub mod plan;
pub mod reference;
pub mod reset;
pub mod rollup;
pub mod series;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod tiers;
pub mod topics;

pub use layout::{Layout, LayoutError};
pub use model::*;
