//! What a simulated DPU publishes: the JSON `roomer_occupancy::payload` parses.

use chrono::SecondsFormat;
use roomer_occupancy::Crossing;
use serde::Serialize;

/// One crossing as a DPU sends it: `{"ts":"…Z","direction":1}` plus `"id"` when the crossing
/// has an event id. The timestamp keeps microseconds, the precision the backend stores, so a
/// replayed crossing and its original are the same event.
pub fn payload(crossing: &Crossing) -> Vec<u8> {
    serde_json::to_vec(&Wire::from(crossing)).expect("a crossing always serializes")
}

/// A bulk upload: a JSON array of [`payload`] objects.
pub fn batch_payload(crossings: &[Crossing]) -> Vec<u8> {
    let wire: Vec<Wire> = crossings.iter().map(Wire::from).collect();
    serde_json::to_vec(&wire).expect("crossings always serialize")
}

/// Field order is the one the format's documentation shows.
#[derive(Serialize)]
struct Wire {
    ts: String,
    direction: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<u64>,
}

impl From<&Crossing> for Wire {
    fn from(crossing: &Crossing) -> Self {
        Self {
            ts: crossing.ts.to_rfc3339_opts(SecondsFormat::Micros, true),
            direction: crossing.direction.as_i64(),
            id: crossing.event_id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use roomer_occupancy::payload::{parse_message, Validation};
    use roomer_occupancy::{Direction, DpuId};

    fn crossing(id: Option<u64>) -> Crossing {
        let ts = "2018-02-24T08:45:21.893Z".parse().unwrap();
        Crossing::new(DpuId::new("283").unwrap(), ts, Direction::Out, id)
    }

    fn parse(bytes: &[u8]) -> Vec<Crossing> {
        let validation = Validation {
            now: chrono::Utc::now(),
            max_future: chrono::TimeDelta::seconds(60),
            oldest: None,
        };
        let parsed = parse_message(&DpuId::new("283").unwrap(), bytes, &validation);
        assert!(parsed.rejected.is_empty(), "{:?}", parsed.rejected);
        parsed.crossings
    }

    #[test]
    fn a_crossing_without_id_is_sent_as_ts_and_direction() {
        let bytes = payload(&crossing(None));
        assert_eq!(
            std::str::from_utf8(&bytes).unwrap(),
            r#"{"ts":"2018-02-24T08:45:21.893000Z","direction":-1}"#
        );
        assert_eq!(parse(&bytes), [crossing(None)]);
    }

    #[test]
    fn an_event_id_travels_as_id() {
        let bytes = payload(&crossing(Some(7)));
        assert!(std::str::from_utf8(&bytes)
            .unwrap()
            .ends_with(r#","id":7}"#));
        assert_eq!(parse(&bytes), [crossing(Some(7))]);
    }

    #[test]
    fn a_batch_is_an_array_the_backend_parses_back() {
        let batch = [crossing(None), crossing(Some(2))];
        assert_eq!(parse(&batch_payload(&batch)), batch);
    }
}
