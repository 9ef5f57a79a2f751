//! Times, start instants and the figures printed: medians, percentiles, rates.

use super::*;

pub(crate) fn base_time() -> Timestamp {
    "2024-03-04T08:00:00Z".parse().expect("constant")
}

/// 08:00 UTC yesterday: uploads after an outage are hours late, not years (on TimescaleDB,
/// data older than the compression age would be written into compressed chunks).
pub(crate) fn recent_time() -> Timestamp {
    let yesterday = chrono::Utc::now().date_naive() - TimeDelta::days(1);
    yesterday.and_time(chrono::NaiveTime::MIN).and_utc() + TimeDelta::hours(8)
}

pub(crate) fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    }
}

/// The `p` quantile of sorted samples (nearest rank).
pub(crate) fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Seconds as a human-sized duration.
pub(crate) fn time(seconds: f64) -> String {
    if seconds < 1e-3 {
        format!("{:.1} µs", seconds * 1e6)
    } else if seconds < 1.0 {
        format!("{:.2} ms", seconds * 1e3)
    } else {
        format!("{seconds:.2} s")
    }
}

pub(crate) fn secs(d: Duration) -> String {
    time(d.as_secs_f64())
}

/// Events/s, and how many runs it is the median of when fewer than `INGEST_RUNS`.
pub(crate) fn rate((per_second, runs): (f64, usize)) -> String {
    if runs < INGEST_RUNS {
        format!("{per_second:.0} ({runs} run)")
    } else {
        format!("{per_second:.0}")
    }
}
