//! The nouns of the domain.

use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A space (room, floor, "Outside"). Ids are chosen by the layout file.
pub type SpaceId = i64;
/// A doorway between two spaces. Ids are chosen by the layout file.
pub type DoorwayId = i64;

/// The space every building has: the world outside it. It always exists and, unlike every
/// other space, its count is not clamped at zero (it is the mirror image of the building).
pub const OUTSIDE: SpaceId = 0;

/// Timestamps are kept at microsecond precision, the finest PostgreSQL stores.
pub type Timestamp = DateTime<Utc>;

/// Truncates a timestamp to the precision every backend stores (microseconds since the
/// epoch), so that two copies of one event compare equal wherever they were stored.
///
/// A leap second (`23:59:60`, which chrono keeps as 23:59:59 plus a second's worth of
/// nanoseconds) has no instant of its own in that count: it is the first second of the next
/// minute, so `23:59:60.5Z` and the next day's `00:00:00.5Z` are one crossing, in memory as in
/// every backend.
pub fn normalize(ts: Timestamp) -> Timestamp {
    Timestamp::from_timestamp_micros(ts.timestamp_micros()).unwrap_or(ts.trunc_subsecs(6))
}

/// Is this space's count clamped at zero? Every space but Outside.
pub fn is_clamped(space: SpaceId) -> bool {
    space != OUTSIDE
}

/// A DPU's hardware id, as it appears in its MQTT topic (`dpus/{id}/crossings`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(value_type = String, example = "283"))]
#[serde(try_from = "String", into = "String")]
pub struct DpuId(pub(crate) String);

/// Why a string is not a DPU id.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "a DPU id is 1 to 64 characters of A-Z, a-z, 0-9, '-', '_' or '.', not only dots, got {0:?}"
)]
pub struct InvalidDpuId(pub String);

impl DpuId {
    pub fn new(id: impl Into<String>) -> Result<Self, InvalidDpuId> {
        let id = id.into();
        let valid = !id.is_empty()
            && id.len() <= 64
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            // "." and ".." would read as path steps in URLs and file names.
            && !id.bytes().all(|b| b == b'.');
        if valid {
            Ok(Self(id))
        } else {
            Err(InvalidDpuId(id))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for DpuId {
    type Error = InvalidDpuId;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl From<DpuId> for String {
    fn from(value: DpuId) -> Self {
        value.0
    }
}

impl fmt::Display for DpuId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Which way a person walked under a DPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Direction {
    /// `+1`: from the doorway's `exiting_to` side into its `entering_to` side.
    In,
    /// `-1`: from `entering_to` back into `exiting_to`.
    Out,
}

impl Direction {
    pub fn from_i64(value: i64) -> Option<Self> {
        match value {
            1 => Some(Self::In),
            -1 => Some(Self::Out),
            _ => None,
        }
    }

    pub fn as_i64(self) -> i64 {
        match self {
            Self::In => 1,
            Self::Out => -1,
        }
    }
}

/// One person passing under one DPU.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Crossing {
    pub dpu: DpuId,
    /// When it happened, by the DPU's clock (event time, not arrival time).
    pub ts: Timestamp,
    pub direction: Direction,
    /// The DPU's own event number, when it has one.
    pub event_id: Option<u64>,
}

impl Crossing {
    /// Builds a crossing with its timestamp normalized to stored precision.
    pub fn new(dpu: DpuId, ts: Timestamp, direction: Direction, event_id: Option<u64>) -> Self {
        Self {
            dpu,
            ts: normalize(ts),
            direction,
            event_id,
        }
    }

    /// The identity used for deduplication: the same DPU, timestamp and direction is one event.
    pub fn key(&self) -> CrossingKey {
        CrossingKey {
            dpu: self.dpu.clone(),
            ts: self.ts,
            direction: self.direction,
        }
    }
}

/// The identity of a crossing. Two messages with equal keys describe one event.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CrossingKey {
    pub dpu: DpuId,
    pub ts: Timestamp,
    pub direction: Direction,
}

/// A space as the layout describes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Space {
    pub id: SpaceId,
    pub name: String,
    /// The space this one is part of (a floor's building, a building's campus): for grouping
    /// and for inheriting a time zone. Counts are never summed up the tree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<SpaceId>,
    /// IANA time zone for local-time history (day and week buckets) and the daily reset.
    /// Unset: the parent's, up the tree, else UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, example = "Europe/Paris"))]
    pub time_zone: Option<chrono_tz::Tz>,
    /// How many people the space is meant for; counts then carry a utilization.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<u32>,
    /// Local time of day at which the count returns to 0, absorbing sensor drift.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, example = "04:00"))]
    pub daily_reset: Option<chrono::NaiveTime>,
}

impl Space {
    /// A space with a name and nothing else set.
    pub fn new(id: SpaceId, name: impl Into<String>) -> Self {
        Self {
            id,
            name: name.into(),
            parent: None,
            time_zone: None,
            capacity: None,
            daily_reset: None,
        }
    }
}

/// A doorway: `exiting_to` is behind the DPU, `entering_to` is the space it looks into.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Doorway {
    pub id: DoorwayId,
    pub name: String,
    pub exiting_to: SpaceId,
    pub entering_to: SpaceId,
}

impl Doorway {
    /// What a crossing through this doorway does to each side: `(space, delta)` pairs.
    pub fn effects(&self, direction: Direction) -> [(SpaceId, i64); 2] {
        let d = direction.as_i64();
        [(self.entering_to, d), (self.exiting_to, -d)]
    }
}

/// A DPU hung over `doorway` from `from` (inclusive) until `until` (exclusive; open if `None`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Installation {
    pub doorway: DoorwayId,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub from: Timestamp,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub until: Option<Timestamp>,
}

impl Installation {
    pub fn covers(&self, ts: Timestamp) -> bool {
        self.from <= ts && self.until.is_none_or(|until| ts < until)
    }
}
