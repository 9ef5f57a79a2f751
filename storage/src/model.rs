//! The values storage takes and answers, in domain words.

use roomer_occupancy::plan::IngestReport;
use roomer_occupancy::{Space, SpaceId, Timestamp};
use serde::Serialize;

use crate::StoreError;

/// What a bearer token allows: `admin` reads and writes, `read` only reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Read,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Read => "read",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "admin" => Some(Self::Admin),
            "read" => Some(Self::Read),
            _ => None,
        }
    }
}

/// A token as `roomer token list` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenInfo {
    /// The first 8 hex digits of the token's hash: enough to name it, useless to use it.
    pub id: String,
    pub name: String,
    pub role: Role,
    pub created_at: Timestamp,
}

/// Which tokens to revoke.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenSelector {
    /// Hash prefix, as `TokenInfo::id` shows it.
    Id(String),
    Name(String),
}

/// A space, its settings and its current count.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SpaceCount {
    #[serde(flatten)]
    pub space: Space,
    pub count: i64,
    /// `count / capacity`, when the space has a capacity.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub utilization: Option<f64>,
}

impl SpaceCount {
    pub fn new(space: Space, count: i64) -> Self {
        let utilization = space.capacity.map(|c| count as f64 / f64::from(c));
        Self {
            space,
            count,
            utilization,
        }
    }
}

/// A stretch of a space's count series (see [`Store::series`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Series {
    pub carried_in: i64,
    /// When the entry `carried_in` comes from happened (`None`: no entry before).
    pub carried_at: Option<Timestamp>,
    pub points: Vec<roomer_occupancy::history::SeriesPoint>,
}

/// One page of a list ordered by id: the items after `after` (all from the start when
/// `None`), at most `limit`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page<K> {
    pub after: Option<K>,
    pub limit: usize,
}

impl<K> Page<K> {
    /// Everything (for callers that need the whole list, such as the ingest worker).
    pub fn all() -> Self {
        Self {
            after: None,
            limit: i64::MAX as usize,
        }
    }
}

/// What a batch did.
#[derive(Clone, Debug, Default)]
pub struct IngestOutcome {
    pub report: IngestReport,
    /// Spaces whose counts the batch changed (at some instant, not necessarily now), by id.
    pub touched: Vec<SpaceId>,
}

impl IngestOutcome {
    /// Adds what another part of the same batch did.
    pub(crate) fn merge(&mut self, other: IngestOutcome) {
        self.report.inserted += other.report.inserted;
        self.report.duplicates += other.report.duplicates;
        self.report.pending += other.report.pending;
        self.report.recounted += other.report.recounted;
        self.touched.extend(other.touched);
        self.touched.sort_unstable();
        self.touched.dedup();
    }
}

/// What applying a layout changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LayoutReport {
    /// Spaces, doorways, DPUs and installation histories created or changed.
    pub changed: usize,
    /// Stored crossings moved to another doorway (or from pending to counted, or back).
    pub reattributed: usize,
}

/// A message (or one element of a bulk upload) that could not be applied, kept with its
/// raw payload so nothing is lost.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Rejected {
    pub received_at: Timestamp,
    /// Where it came from: the MQTT topic, or `http`.
    pub source: String,
    pub dpu_id: Option<String>,
    /// A stable code (`not_json`, `bad_direction`, …), see `roomer_occupancy::payload::Rejection`.
    pub reason: String,
    /// The human-readable reason.
    pub detail: String,
    pub payload: Vec<u8>,
}

/// Which refused messages to list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RejectedFilter {
    /// Only this DPU's.
    pub dpu_id: Option<String>,
    /// Only this reason code's.
    pub reason: Option<String>,
    pub limit: u32,
}

impl RejectedFilter {
    /// The newest `limit`, of any DPU and reason.
    pub fn newest(limit: u32) -> Self {
        Self {
            dpu_id: None,
            reason: None,
            limit,
        }
    }
}

/// A DPU as operators see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DpuInfo {
    pub id: String,
    /// Declared in the layout.
    pub declared: bool,
    /// What it last published on `dpus/{id}/status` (`None`: never).
    pub online: Option<bool>,
    pub status_at: Option<Timestamp>,
    /// When it was last heard from (a status or a crossings message).
    pub last_seen: Option<Timestamp>,
    /// The doorway it hangs over now, if any installation covers now.
    pub doorway: Option<roomer_occupancy::DoorwayId>,
    /// Crossings received since the start of the day asked about.
    pub events_today: i64,
}

/// Totals, for operators and for tests that wait for ingestion to finish.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    /// Distinct crossings stored (counted or pending).
    pub crossings: i64,
    /// Crossings no installation covers yet.
    pub pending: i64,
    pub rejected: i64,
}

/// A space from its stored columns: settings are kept as text (an IANA zone name, a local
/// time `HH:MM:SS`) the same way in every backend.
pub(crate) fn space_from_columns(
    id: SpaceId,
    name: String,
    parent: Option<SpaceId>,
    time_zone: Option<String>,
    capacity: Option<i64>,
    daily_reset: Option<String>,
) -> Result<Space, StoreError> {
    let corrupt = |what: String| StoreError::Corrupt(format!("space {id}: {what}"));
    Ok(Space {
        id,
        name,
        parent,
        time_zone: time_zone
            .map(|z| z.parse().map_err(|_| corrupt(format!("time zone {z:?}"))))
            .transpose()?,
        capacity: capacity
            .map(|c| u32::try_from(c).map_err(|_| corrupt(format!("capacity {c}"))))
            .transpose()?,
        daily_reset: daily_reset
            .map(|r| r.parse().map_err(|_| corrupt(format!("daily reset {r:?}"))))
            .transpose()?,
    })
}

/// The stored text of a space's settings, as [`space_from_columns`] reads them back.
pub(crate) fn space_columns(space: &Space) -> (Option<String>, Option<i64>, Option<String>) {
    (
        space.time_zone.map(|z| z.name().to_owned()),
        space.capacity.map(i64::from),
        space.daily_reset.map(|t| t.format("%H:%M:%S").to_string()),
    )
}
