//! Intake: the one step from what arrived to a batch for storage, for every way crossings
//! come in. An MQTT message on a DPU topic and a form posted to `POST /dpu/{id}/` go
//! through the same parsing and validation (`roomer_occupancy::payload`), leave the same rejection
//! records (logged, metered, kept with their raw payload), mark their DPU as heard from, and
//! are metered the same once stored. The ingest worker's applier and the API's HTTP route
//! both take crossings in through [`Intake`].

use chrono::TimeDelta;
use roomer_occupancy::payload::{
    parse_form, parse_message, parse_status, parse_topic, Rejection, Topic, Validation,
};
use roomer_occupancy::plan::IngestReport;
use roomer_occupancy::{Crossing, DpuId, Timestamp};
use roomer_storage::{Batch, Rejected, Store, StoreError};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// What arrived, as it arrived.
pub enum Arrival<'a> {
    /// A message on an MQTT topic (`dpus/{id}/crossings` or `dpus/{id}/status`).
    Mqtt { topic: &'a str, payload: &'a [u8] },
    /// A form posted to `POST /dpu/{id}/`: the id in the path, the body's content type (if
    /// any) and the body.
    HttpForm {
        dpu: &'a str,
        content_type: Option<&'a str>,
        body: &'a [u8],
    },
}

/// The validation of a batch starting now: how far ahead a timestamp may be, and (with
/// raw-event retention) the oldest one still kept.
pub async fn validation(store: &dyn Store, max_future: Duration) -> Result<Validation, StoreError> {
    let now = chrono::Utc::now();
    Ok(Validation {
        now,
        max_future: TimeDelta::from_std(max_future).unwrap_or(TimeDelta::MAX),
        oldest: store.oldest_kept(now).await?,
    })
}

/// A batch being filled from arrivals.
pub struct Intake {
    validation: Validation,
    pub crossings: Vec<Crossing>,
    pub rejected: Vec<Rejected>,
    pub statuses: Vec<(DpuId, bool, Timestamp)>,
    pub seen: Vec<(DpuId, Timestamp)>,
    /// When each arrival was received, for the ingest-lag meter.
    received: Vec<Timestamp>,
}

impl Intake {
    pub fn new(validation: Validation) -> Self {
        Self {
            validation,
            crossings: Vec::new(),
            rejected: Vec::new(),
            statuses: Vec::new(),
            seen: Vec::new(),
            received: Vec::new(),
        }
    }

    /// Takes one arrival, received at `at`, into the batch: its crossings, its status, its
    /// refusals. Returns how many refusals it added.
    pub fn take(&mut self, arrival: &Arrival<'_>, at: Timestamp) -> usize {
        let before = self.rejected.len();
        self.received.push(at);
        match *arrival {
            Arrival::Mqtt { topic, payload } => self.take_mqtt(topic, payload, at),
            Arrival::HttpForm {
                dpu,
                content_type,
                body,
            } => self.take_form(dpu, content_type, body, at),
        }
        self.rejected.len() - before
    }

    fn take_mqtt(&mut self, topic: &str, payload: &[u8], at: Timestamp) {
        let refuse = |dpu: Option<&DpuId>, element, reason: &Rejection| {
            refusal(topic, payload, at, dpu, element, reason)
        };
        match parse_topic(topic) {
            Ok(Topic::Crossings(dpu)) => {
                let parsed = parse_message(&dpu, payload, &self.validation);
                self.crossings.extend(parsed.crossings);
                for (element, reason) in &parsed.rejected {
                    self.rejected.push(refuse(Some(&dpu), *element, reason));
                }
                self.seen.push((dpu, at));
            }
            Ok(Topic::Status(dpu)) => match parse_status(payload) {
                Ok(online) => self.statuses.push((dpu, online, at)),
                Err(reason) => self.rejected.push(refuse(Some(&dpu), None, &reason)),
            },
            Err(reason) => self.rejected.push(refuse(None, None, &reason)),
        }
    }

    fn take_form(&mut self, raw_id: &str, content_type: Option<&str>, body: &[u8], at: Timestamp) {
        let source = format!("http POST /dpu/{raw_id}/");
        let id = DpuId::new(raw_id);
        let dpu = id.as_ref().ok().cloned();
        let parsed = form_fields(content_type, body).and_then(|fields| {
            let dpu = &id.clone()?;
            let field = |name: &'static str| {
                fields
                    .get(name)
                    .map(String::as_str)
                    .ok_or(Rejection::MissingField(name))
            };
            parse_form(
                dpu,
                field("timestamp")?,
                field("direction")?,
                &self.validation,
            )
        });
        match parsed {
            Ok(crossing) => self.crossings.push(crossing),
            Err(reason) => {
                let kept = refusal(&source, body, at, dpu.as_ref(), None, &reason);
                self.rejected.push(kept);
            }
        }
        if let Some(dpu) = dpu {
            self.seen.push((dpu, at));
        }
    }

    /// The batch to store: everything taken so far, in one transaction.
    pub fn batch(&self) -> Batch<'_> {
        Batch {
            crossings: &self.crossings,
            rejected: &self.rejected,
            statuses: &self.statuses,
            seen: &self.seen,
        }
    }

    /// Meters a stored batch: how long storing took (from `started`), how long each arrival
    /// waited, how late each crossing came, and what was new.
    pub fn stored(&self, report: &IngestReport, started: Instant) {
        metrics::histogram!("roomer_batch_seconds").record(started.elapsed().as_secs_f64());
        let committed = chrono::Utc::now();
        let lags = metrics::histogram!("roomer_ingest_lag_seconds");
        for at in &self.received {
            lags.record((committed - *at).as_seconds_f64().max(0.0));
        }
        // From the crossing itself (the DPU's clock) to stored: for live traffic, what a
        // dashboard waits; for a backlog, how late it came.
        let delays = metrics::histogram!("roomer_crossing_delay_seconds");
        for crossing in &self.crossings {
            delays.record((committed - crossing.ts).as_seconds_f64().max(0.0));
        }
        metrics::counter!("roomer_crossings_applied_total").increment(report.inserted as u64);
        metrics::counter!("roomer_duplicates_total").increment(report.duplicates as u64);
        metrics::counter!("roomer_messages_total").increment(self.received.len() as u64);
    }
}

/// The refusal kept for what came from `source` (or one element of it), logged and metered.
fn refusal(
    source: &str,
    payload: &[u8],
    at: Timestamp,
    dpu: Option<&DpuId>,
    element: Option<usize>,
    reason: &Rejection,
) -> Rejected {
    let detail = match element {
        Some(i) => format!("element {i}: {reason}"),
        None => reason.to_string(),
    };
    tracing::warn!(%source, reason = reason.code(), %detail, "message rejected");
    metrics::counter!("roomer_rejected_total", "reason" => reason.code()).increment(1);
    Rejected {
        received_at: at,
        source: source.to_owned(),
        dpu_id: dpu.map(|d| d.as_str().to_owned()),
        reason: reason.code().to_owned(),
        detail,
        payload: payload.to_vec(),
    }
}

/// The form's fields, if the body is a URL-encoded form (as the content type must say, when
/// there is one).
fn form_fields(
    content_type: Option<&str>,
    body: &[u8],
) -> Result<HashMap<String, String>, Rejection> {
    if let Some(kind) = content_type {
        let essence = kind.split(';').next().unwrap_or_default().trim();
        if !essence.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
            return Err(Rejection::NotAForm(format!("content type {kind:?}")));
        }
    }
    serde_urlencoded::from_bytes(body).map_err(|e| Rejection::NotAForm(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn intake() -> Intake {
        Intake::new(Validation {
            now: "2026-01-05T12:00:00Z".parse().unwrap(),
            max_future: TimeDelta::seconds(300),
            oldest: None,
        })
    }

    fn at() -> Timestamp {
        "2026-01-05T12:00:01Z".parse().unwrap()
    }

    #[test]
    fn the_same_crossing_reads_the_same_over_mqtt_and_http() {
        let mut mqtt = intake();
        let payload = br#"{"ts": "2026-01-05T11:00:00Z", "direction": 1}"#;
        let message = Arrival::Mqtt {
            topic: "dpus/283/crossings",
            payload,
        };
        assert_eq!(mqtt.take(&message, at()), 0);
        let mut http = intake();
        let form = Arrival::HttpForm {
            dpu: "283",
            content_type: Some("application/x-www-form-urlencoded"),
            body: b"timestamp=2026-01-05T11%3A00%3A00Z&direction=1",
        };
        assert_eq!(http.take(&form, at()), 0);
        assert_eq!(mqtt.crossings, http.crossings);
        assert_eq!(mqtt.seen, http.seen, "both mark DPU 283 as heard from");
    }

    #[test]
    fn refusals_are_kept_with_their_source_and_raw_payload() {
        let mut intake = intake();
        let future = Arrival::HttpForm {
            dpu: "283",
            content_type: None,
            body: b"timestamp=2030-01-01T00%3A00%3A00Z&direction=1",
        };
        assert_eq!(intake.take(&future, at()), 1);
        let missing = Arrival::HttpForm {
            dpu: "283",
            content_type: None,
            body: b"direction=1",
        };
        assert_eq!(intake.take(&missing, at()), 1);
        let json = Arrival::HttpForm {
            dpu: "283",
            content_type: Some("application/json"),
            body: b"{}",
        };
        assert_eq!(intake.take(&json, at()), 1);
        let bad_id = Arrival::HttpForm {
            dpu: "no such id!",
            content_type: None,
            body: b"timestamp=2026-01-05T11%3A00%3A00Z&direction=1",
        };
        assert_eq!(intake.take(&bad_id, at()), 1);
        let codes: Vec<&str> = intake.rejected.iter().map(|r| r.reason.as_str()).collect();
        assert_eq!(
            codes,
            [
                "future_timestamp",
                "missing_field",
                "not_a_form",
                "bad_dpu_id"
            ]
        );
        assert_eq!(intake.rejected[0].source, "http POST /dpu/283/");
        assert_eq!(intake.rejected[1].payload, b"direction=1");
        assert_eq!(intake.rejected[3].dpu_id, None);
        assert!(intake.crossings.is_empty());
        // A DPU that sent something, even something refused, was heard from.
        assert_eq!(intake.seen.len(), 3);
    }
}
