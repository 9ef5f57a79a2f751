//! History: a space's count series cut into time buckets — the minute, hour, day or week
//! views dashboards draw — in the local time of a chosen time zone.
//!
//! Sub-day intervals (1m, 5m, 15m, 1h) are real durations aligned to local wall-clock
//! multiples: on a daylight-saving day an hourly view has 23 or 25 buckets. Day and week
//! buckets run from local midnight to local midnight (weeks from Monday), so a day bucket
//! lasts 23, 24 or 25 hours. A bucket is `[start, end)`.

use crate::model::Timestamp;
use crate::rollup::Summary;
use chrono::{
    Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, Offset as _, TimeZone, Timelike,
};
use chrono_tz::Tz;
use serde::Serialize;
use std::str::FromStr;

/// The bucket sizes the API offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interval {
    Minutes(u32),
    Day,
    Week,
}

/// Why a string is not an interval.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("interval must be one of 1m, 5m, 15m, 1h, 1d, 1w; got {0:?}")]
pub struct InvalidInterval(pub String);

impl FromStr for Interval {
    type Err = InvalidInterval;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "1m" => Ok(Self::Minutes(1)),
            "5m" => Ok(Self::Minutes(5)),
            "15m" => Ok(Self::Minutes(15)),
            "1h" => Ok(Self::Minutes(60)),
            "1d" => Ok(Self::Day),
            "1w" => Ok(Self::Week),
            other => Err(InvalidInterval(other.to_owned())),
        }
    }
}

/// The first instant at or after local `naive` in `tz`: the earlier of two when the clock
/// went back, the end of the gap when it jumped forward over `naive`.
pub fn local_instant(tz: Tz, naive: NaiveDateTime) -> Timestamp {
    let mut probe = naive;
    // A gap is at most a few hours long; step through it a minute at a time.
    for _ in 0..(24 * 60) {
        if let Some(t) = tz.from_local_datetime(&probe).earliest() {
            return t.to_utc();
        }
        probe += Duration::minutes(1);
    }
    naive.and_utc()
}

impl Interval {
    /// The start of the bucket that holds `t`.
    pub fn floor(self, t: Timestamp, tz: Tz) -> Timestamp {
        let local = t.with_timezone(&tz).naive_local();
        match self {
            Self::Minutes(m) => {
                let minutes = local.time().hour() * 60 + local.time().minute();
                let floored = minutes - minutes % m;
                let wall = local
                    .date()
                    .and_time(NaiveTime::from_hms_opt(floored / 60, floored % 60, 0).unwrap());
                // The floored wall-clock time as it was on this side of any clock change.
                let offset = t.with_timezone(&tz).offset().fix();
                let candidate = (wall - offset).and_utc();
                if candidate <= t {
                    candidate
                } else {
                    candidate - Duration::minutes(i64::from(m))
                }
            }
            Self::Day => local_instant(tz, local.date().and_time(NaiveTime::MIN)),
            Self::Week => {
                let monday = local.date()
                    - Duration::days(i64::from(local.date().weekday().num_days_from_monday()));
                local_instant(tz, monday.and_time(NaiveTime::MIN))
            }
        }
    }

    /// The end of the bucket that starts at `start` (a value `floor` returned).
    pub fn next(self, start: Timestamp, tz: Tz) -> Timestamp {
        match self {
            Self::Minutes(m) => start + Duration::minutes(i64::from(m)),
            Self::Day | Self::Week => {
                let days = if self == Self::Day { 1 } else { 7 };
                let date: NaiveDate = start.with_timezone(&tz).date_naive();
                local_instant(tz, (date + Duration::days(days)).and_time(NaiveTime::MIN))
            }
        }
    }
}

/// The buckets covering `[start, end)`: from the one holding `start` to the one holding the
/// last instant before `end`, at most `limit` of them.
pub fn boundaries(
    start: Timestamp,
    end: Timestamp,
    interval: Interval,
    tz: Tz,
    limit: usize,
) -> Vec<(Timestamp, Timestamp)> {
    let mut buckets = Vec::new();
    let mut at = interval.floor(start, tz);
    while at < end && buckets.len() < limit {
        let next = interval.next(at, tz);
        buckets.push((at, next));
        at = next;
    }
    buckets
}

/// One entry of a space's series: a crossing into (`arrival`) or out of the space, and the
/// count right after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeriesPoint {
    pub ts: Timestamp,
    pub arrival: bool,
    pub count: i64,
}

/// What a space did during one bucket.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Bucket {
    pub start: Timestamp,
    pub end: Timestamp,
    /// The count at the end of the bucket.
    pub count: i64,
    /// The lowest and highest count during the bucket (the count it started with included).
    pub min: i64,
    pub max: i64,
    /// Crossings into and out of the space during the bucket (a departure from an empty
    /// space is counted here although the count stays at 0).
    pub entrances: u64,
    pub exits: u64,
    /// `count / capacity`, when the space has a capacity.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub utilization: Option<f64>,
}

/// Cuts a series into buckets. `carried_in` is the count just before the first bucket
/// starts; `points` are the series entries from the first bucket's start on, in series
/// order; `resets` are the daily resets in the buckets' span, in order (a reset comes before
/// a crossing at the same instant).
pub fn buckets(
    bounds: &[(Timestamp, Timestamp)],
    carried_in: i64,
    points: &[SeriesPoint],
    capacity: Option<u32>,
    resets: &[Timestamp],
) -> Vec<Bucket> {
    // A point is a summary of itself; the rollup path then does the rest, so the two paths
    // share one walk over buckets and resets.
    let summaries: Vec<Summary> = points.iter().map(|&p| Summary::of(p)).collect();
    crate::rollup::buckets(bounds, carried_in, &summaries, capacity, resets)
}

#[cfg(test)]
mod tests;
