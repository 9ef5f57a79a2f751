//! The MQTT topics and the count payload, defined once for every part that speaks them: DPUs
//! publish under `dpus/{id}/` (what they send is parsed by [`crate::payload`]), Roomer
//! publishes each space's count on `spaces/{id}/count`.

use crate::model::{DpuId, SpaceId, Timestamp};
use serde::{Deserialize, Serialize};

/// Where a DPU's topics start: `dpus/{id}/…`.
pub const DPU_PREFIX: &str = "dpus/";
/// Where Roomer's own topics start: only its components publish here.
pub const SPACE_PREFIX: &str = "spaces/";
/// Every DPU's crossings.
pub const CROSSINGS_FILTER: &str = "dpus/+/crossings";
/// Every DPU's status (`online` / `offline`, retained, usually also its last will).
pub const STATUS_FILTER: &str = "dpus/+/status";
/// Every space's count.
pub const COUNT_FILTER: &str = "spaces/+/count";

/// The topic `dpu` publishes its crossings on.
pub fn crossings(dpu: &DpuId) -> String {
    format!("{DPU_PREFIX}{dpu}/crossings")
}

/// The topic `dpu` publishes its status on.
pub fn status(dpu: &DpuId) -> String {
    format!("{DPU_PREFIX}{dpu}/status")
}

/// The topic a space's count is published on (retained).
pub fn count(space: SpaceId) -> String {
    format!("{SPACE_PREFIX}{space}/count")
}

/// What `spaces/{id}/count` carries: `{"space_id": 1, "count": 3, "ts": "…"}`, `ts` being
/// when the count was read, right after a commit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CountUpdate {
    pub space_id: SpaceId,
    pub count: i64,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub ts: Timestamp,
}

impl CountUpdate {
    pub fn to_payload(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a count update is plain JSON")
    }

    pub fn from_payload(payload: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(payload)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_match_their_filters_and_the_parser() {
        let dpu = DpuId::new("283").unwrap();
        assert_eq!(crossings(&dpu), "dpus/283/crossings");
        assert_eq!(status(&dpu), "dpus/283/status");
        assert_eq!(count(7), "spaces/7/count");
        assert_eq!(
            crate::payload::parse_topic(&crossings(&dpu)),
            Ok(crate::payload::Topic::Crossings(dpu.clone()))
        );
        assert_eq!(
            crate::payload::parse_topic(&status(&dpu)),
            Ok(crate::payload::Topic::Status(dpu))
        );
    }

    #[test]
    fn a_count_update_reads_back_as_written() {
        let update = CountUpdate {
            space_id: 1,
            count: 3,
            ts: "2026-01-05T08:00:00Z".parse().unwrap(),
        };
        let payload = update.to_payload();
        assert_eq!(
            String::from_utf8_lossy(&payload),
            r#"{"space_id":1,"count":3,"ts":"2026-01-05T08:00:00Z"}"#
        );
        assert_eq!(CountUpdate::from_payload(&payload).unwrap(), update);
    }
}
