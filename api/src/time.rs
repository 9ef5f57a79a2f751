//! Timestamps in query strings: RFC 3339 (`2018-02-26T16:06:02Z`, any offset) or a bare
//! date (`1984-01-01`, meaning midnight UTC), as the proof of concept accepted.

use crate::ApiError;
use chrono::{NaiveDate, NaiveDateTime};
use roomer_occupancy::Timestamp;

pub fn parse_instant(text: &str) -> Result<Timestamp, ApiError> {
    if let Ok(ts) = roomer_occupancy::payload::parse_timestamp(text) {
        return Ok(ts);
    }
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
        .ok_or_else(|| {
            ApiError::BadRequest(format!(
                "timestamp {text:?} is neither RFC 3339 (2018-02-26T16:06:02Z) nor a date (2018-02-26)"
            ))
        })
}

/// Like [`parse_instant`], but a bare date means local midnight in `tz` (so that
/// `start_time=2026-03-29` starts the day a dashboard in that zone shows), and a date and time
/// without an offset (`2026-03-29T08:30`, what a browser's date-time picker sends) is local
/// time in `tz`.
pub fn parse_local_instant(text: &str, tz: chrono_tz::Tz) -> Result<Timestamp, ApiError> {
    if let Ok(ts) = roomer_occupancy::payload::parse_timestamp(text) {
        return Ok(ts);
    }
    let local = ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M"]
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(text.trim(), format).ok());
    if let Some(local) = local {
        return Ok(roomer_occupancy::history::local_instant(tz, local));
    }
    let date = NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d").map_err(|_| {
        ApiError::BadRequest(format!(
            "time {text:?} is neither RFC 3339 (2018-02-26T16:06:02Z), a local date and time \
             (2018-02-26T16:06) nor a date (2018-02-26)"
        ))
    })?;
    let midnight = date.and_time(chrono::NaiveTime::MIN);
    Ok(roomer_occupancy::history::Interval::Day.floor(
        chrono::TimeZone::from_local_datetime(&tz, &midnight)
            .earliest()
            .map_or_else(|| midnight.and_utc(), |t| t.to_utc()),
        tz,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_mean_midnight_utc_and_offsets_are_honoured() {
        let midnight: Timestamp = "1984-01-01T00:00:00Z".parse().unwrap();
        assert_eq!(parse_instant("1984-01-01").unwrap(), midnight);
        assert_eq!(
            parse_instant("1984-01-01T01:00:00+01:00").unwrap(),
            midnight
        );
        assert!(parse_instant("yesterday").is_err());
        assert!(parse_instant("1984-13-01").is_err());
    }

    #[test]
    fn times_without_an_offset_are_local_to_the_zone() {
        let paris: chrono_tz::Tz = "Europe/Paris".parse().unwrap();
        let expected: Timestamp = "2026-03-29T06:30:00Z".parse().unwrap();
        assert_eq!(
            parse_local_instant("2026-03-29T08:30", paris).unwrap(),
            expected
        );
        assert_eq!(
            parse_local_instant("2026-03-29T08:30:00", paris).unwrap(),
            expected
        );
        // In the hour the clocks skip, the first instant after it.
        let after_gap: Timestamp = "2026-03-29T01:00:00Z".parse().unwrap();
        assert_eq!(
            parse_local_instant("2026-03-29T02:30", paris).unwrap(),
            after_gap
        );
        assert!(parse_local_instant("2026-03-29T25:00", paris).is_err());
    }
}
