//! The wire format DPUs send, and what makes a message unacceptable.
//!
//! MQTT topic `dpus/{dpu_id}/crossings`, payload a JSON object
//! `{"ts": "<RFC 3339>", "direction": 1}` (direction `1` or `-1`, optional unsigned `"id"`) or
//! a JSON array of such objects. Unknown fields are ignored so that firmware can add some.
//! Direction may be a number or a numeric string (`"1"`), because real devices quote numbers.

use crate::model::{Crossing, Direction, DpuId, Timestamp};
use chrono::{DateTime, TimeDelta};
use serde_json::Value;

/// Why a message (or one element of a bulk upload) was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("topic {0:?} is not dpus/{{dpu_id}}/crossings or dpus/{{dpu_id}}/status with a valid DPU id")]
    BadTopic(String),
    /// The DPU id of an HTTP route's path (over MQTT a bad id makes a [`Rejection::BadTopic`]).
    #[error(transparent)]
    BadDpuId(#[from] crate::model::InvalidDpuId),
    #[error("a status must be \"online\" or \"offline\", got {0:?}")]
    BadStatus(String),
    #[error("payload is not JSON: {0}")]
    NotJson(String),
    #[error("payload must be a JSON object or an array of objects")]
    NotAnObject,
    #[error("field {0:?} is missing")]
    MissingField(&'static str),
    #[error("direction must be 1 or -1, got {0}")]
    BadDirection(String),
    #[error("ts {0:?} is not an RFC 3339 timestamp")]
    BadTimestamp(String),
    #[error("ts {ts} is more than {tolerance_s} s ahead of the server clock ({now})")]
    FutureTimestamp {
        ts: Timestamp,
        now: Timestamp,
        tolerance_s: i64,
    },
    #[error(
        "ts {ts} is older than the raw-event retention (events before {oldest} are dropped, so \
         a repeat could no longer be recognized)"
    )]
    BeyondRetention { ts: Timestamp, oldest: Timestamp },
    #[error("id must be an integer from 0 to 2^63-1, got {0}")]
    BadId(String),
    #[error("body is not an HTML form (application/x-www-form-urlencoded): {0}")]
    NotAForm(String),
}

impl Rejection {
    /// A stable machine-readable reason, for filtering and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadTopic(_) => "bad_topic",
            Self::BadDpuId(_) => "bad_dpu_id",
            Self::BadStatus(_) => "bad_status",
            Self::NotJson(_) => "not_json",
            Self::NotAnObject => "not_an_object",
            Self::MissingField(_) => "missing_field",
            Self::BadDirection(_) => "bad_direction",
            Self::BadTimestamp(_) => "bad_timestamp",
            Self::FutureTimestamp { .. } => "future_timestamp",
            Self::BeyondRetention { .. } => "beyond_retention",
            Self::BadId(_) => "bad_id",
            Self::NotAForm(_) => "not_a_form",
        }
    }
}

/// How far ahead of the server clock a DPU's timestamp may be before it is refused.
#[derive(Clone, Copy, Debug)]
pub struct Validation {
    pub now: Timestamp,
    pub max_future: TimeDelta,
    /// With raw-event retention (TimescaleDB): the oldest instant still kept. Older crossings
    /// are refused, since their repeats could no longer be told apart from new ones.
    pub oldest: Option<Timestamp>,
}

impl Validation {
    fn check_time(&self, ts: Timestamp) -> Result<(), Rejection> {
        let limit = self.now.checked_add_signed(self.max_future);
        if limit.is_some_and(|limit| ts > limit) {
            Err(Rejection::FutureTimestamp {
                ts,
                now: self.now,
                tolerance_s: self.max_future.num_seconds(),
            })
        } else if let Some(oldest) = self.oldest.filter(|oldest| ts < *oldest) {
            Err(Rejection::BeyondRetention { ts, oldest })
        } else {
            Ok(())
        }
    }
}

/// A parsed message: the valid crossings and, per refused element, its index and the reason.
#[derive(Debug, Default, PartialEq)]
pub struct Parsed {
    pub crossings: Vec<Crossing>,
    pub rejected: Vec<(Option<usize>, Rejection)>,
}

/// What a DPU's message is about, from its topic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Topic {
    /// `dpus/{dpu_id}/crossings`
    Crossings(DpuId),
    /// `dpus/{dpu_id}/status`
    Status(DpuId),
}

/// Parses `dpus/{dpu_id}/crossings` and `dpus/{dpu_id}/status`.
pub fn parse_topic(topic: &str) -> Result<Topic, Rejection> {
    let bad = || Rejection::BadTopic(topic.to_owned());
    let mut parts = topic.split('/');
    let prefix = crate::topics::DPU_PREFIX.trim_end_matches('/');
    let (Some(first), Some(id), Some(kind), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    if first != prefix {
        return Err(bad());
    }
    let dpu = DpuId::new(id).map_err(|_| bad())?;
    match kind {
        "crossings" => Ok(Topic::Crossings(dpu)),
        "status" => Ok(Topic::Status(dpu)),
        _ => Err(bad()),
    }
}

/// A status payload: `online` or `offline` (surrounding white space and case ignored).
/// Returns whether the DPU says it is online.
pub fn parse_status(payload: &[u8]) -> Result<bool, Rejection> {
    let text = String::from_utf8_lossy(payload);
    match text.trim().to_ascii_lowercase().as_str() {
        "online" => Ok(true),
        "offline" => Ok(false),
        _ => Err(Rejection::BadStatus(text.chars().take(64).collect())),
    }
}

/// Parses an MQTT payload. A bulk upload with some bad elements keeps the good ones.
pub fn parse_message(dpu: &DpuId, payload: &[u8], validation: &Validation) -> Parsed {
    let value: Value = match serde_json::from_slice(payload) {
        Ok(value) => value,
        Err(e) => {
            return Parsed {
                rejected: vec![(None, Rejection::NotJson(e.to_string()))],
                ..Parsed::default()
            }
        }
    };
    let mut parsed = Parsed::default();
    match value {
        Value::Object(_) => match parse_element(dpu, &value, validation) {
            Ok(c) => parsed.crossings.push(c),
            Err(r) => parsed.rejected.push((None, r)),
        },
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                match parse_element(dpu, item, validation) {
                    Ok(c) => parsed.crossings.push(c),
                    Err(r) => parsed.rejected.push((Some(index), r)),
                }
            }
        }
        _ => parsed.rejected.push((None, Rejection::NotAnObject)),
    }
    parsed
}

fn parse_element(
    dpu: &DpuId,
    value: &Value,
    validation: &Validation,
) -> Result<Crossing, Rejection> {
    let object = value.as_object().ok_or(Rejection::NotAnObject)?;
    let ts = object.get("ts").ok_or(Rejection::MissingField("ts"))?;
    let ts = ts
        .as_str()
        .ok_or_else(|| Rejection::BadTimestamp(ts.to_string()))?;
    let direction = object
        .get("direction")
        .ok_or(Rejection::MissingField("direction"))?;
    let direction = match direction {
        Value::Number(n) => n.as_i64().and_then(Direction::from_i64),
        Value::String(s) => s.trim().parse().ok().and_then(Direction::from_i64),
        _ => None,
    }
    .ok_or_else(|| Rejection::BadDirection(direction.to_string()))?;
    let event_id = match object.get("id") {
        None | Some(Value::Null) => None,
        Some(id) => Some(
            id.as_u64()
                .filter(|&id| i64::try_from(id).is_ok())
                .ok_or_else(|| Rejection::BadId(id.to_string()))?,
        ),
    };
    let crossing = Crossing::new(dpu.clone(), parse_timestamp(ts)?, direction, event_id);
    validation.check_time(crossing.ts)?;
    Ok(crossing)
}

/// Parses the fields of the proof of concept's HTTP form (`timestamp`, `direction`).
pub fn parse_form(
    dpu: &DpuId,
    timestamp: &str,
    direction: &str,
    validation: &Validation,
) -> Result<Crossing, Rejection> {
    let direction = direction
        .trim()
        .parse()
        .ok()
        .and_then(Direction::from_i64)
        .ok_or_else(|| Rejection::BadDirection(format!("{direction:?}")))?;
    let crossing = Crossing::new(dpu.clone(), parse_timestamp(timestamp)?, direction, None);
    validation.check_time(crossing.ts)?;
    Ok(crossing)
}

/// RFC 3339, any offset, converted to UTC.
pub fn parse_timestamp(text: &str) -> Result<Timestamp, Rejection> {
    DateTime::parse_from_rfc3339(text.trim())
        .map(|t| t.to_utc())
        .map_err(|_| Rejection::BadTimestamp(text.to_owned()))
}

#[cfg(test)]
mod tests;
