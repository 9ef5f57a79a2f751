//! How storage's answers look on the wire: the JSON bodies and their OpenAPI schemas.
//! Storage answers in domain words (`roomer_storage::SpaceCount`, …); what a dashboard sees,
//! and what the OpenAPI document promises, is decided here.

use chrono::{DateTime, Utc};
use roomer_occupancy::{DoorwayId, Space};
use serde::Serialize;

/// A space, its settings and its current count.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct SpaceCount {
    #[serde(flatten)]
    pub space: Space,
    pub count: i64,
    /// `count / capacity`, when the space has a capacity.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub utilization: Option<f64>,
}

impl From<roomer_storage::SpaceCount> for SpaceCount {
    fn from(s: roomer_storage::SpaceCount) -> Self {
        Self {
            space: s.space,
            count: s.count,
            utilization: s.utilization,
        }
    }
}

/// A DPU as operators see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct DpuInfo {
    pub id: String,
    /// Declared in the layout.
    pub declared: bool,
    /// What it last published on `dpus/{id}/status` (`null`: never).
    pub online: Option<bool>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub status_at: Option<DateTime<Utc>>,
    /// When it was last heard from (a status or a crossings message).
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_seen: Option<DateTime<Utc>>,
    /// The doorway it hangs over now, if any installation covers now.
    pub doorway: Option<DoorwayId>,
    /// Crossings received since midnight UTC.
    pub events_today: i64,
}

impl From<roomer_storage::DpuInfo> for DpuInfo {
    fn from(d: roomer_storage::DpuInfo) -> Self {
        Self {
            id: d.id,
            declared: d.declared,
            online: d.online,
            status_at: d.status_at,
            last_seen: d.last_seen,
            doorway: d.doorway,
            events_today: d.events_today,
        }
    }
}

/// Crossings stored, pending and refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Totals {
    /// Distinct crossings stored (counted or pending).
    pub crossings: i64,
    /// Crossings no installation covers yet.
    pub pending: i64,
    /// Messages (or elements of bulk uploads) refused and kept for inspection.
    pub rejected: i64,
}

impl From<roomer_storage::Totals> for Totals {
    fn from(t: roomer_storage::Totals) -> Self {
        Self {
            crossings: t.crossings,
            pending: t.pending,
            rejected: t.rejected,
        }
    }
}
