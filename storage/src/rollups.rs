//! Rollups and their settings, in domain words: what the TimescaleDB backend keeps beside the
//! raw series, and what an operator may tune. The other backends keep no rollups; the API
//! then builds every bucket from the raw series, with the same answers.

use occupancy::rollup::Summary;
use occupancy::Timestamp;
use std::time::Duration;

/// A space's summaries over a range, as far as they are up to date.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rollups {
    /// The summaries that start before `clean_until`, in order (hours or days with
    /// crossings; others are absent).
    pub summaries: Vec<Summary>,
    /// The summaries are exact before this instant (a summary boundary). After it, a late
    /// crossing or a layout change may not have reached the rollups yet: read the raw series.
    pub clean_until: Timestamp,
}

/// TimescaleDB settings to change (`None`: leave as it is). They are stored in the database
/// (chunk interval and policies), so every process sees the same.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TimescaleSettings {
    /// Time range of each new chunk of crossings and of the count series.
    pub chunk_interval: Option<Duration>,
    /// How far back the refresh policy re-materializes the rollups each run. Roomer also
    /// refreshes exactly the stretches that late data changed, however old.
    pub refresh_window: Option<Duration>,
    /// Chunks older than this are compressed.
    pub compress_after: Option<Duration>,
    /// Raw crossings older than this are dropped (`Some(None)`: keep them forever).
    pub raw_retention: Option<Option<Duration>>,
    /// Hourly and daily rollups older than this are dropped (`Some(None)`: keep forever).
    pub rollup_retention: Option<Option<Duration>>,
}

impl TimescaleSettings {
    /// What a new database starts with.
    pub fn defaults() -> Self {
        const DAY: u64 = 86_400;
        Self {
            chunk_interval: Some(Duration::from_secs(DAY)),
            refresh_window: Some(Duration::from_secs(7 * DAY)),
            compress_after: Some(Duration::from_secs(7 * DAY)),
            raw_retention: Some(None),
            rollup_retention: Some(None),
        }
    }

    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// What a TimescaleDB database runs with, as read back from TimescaleDB's catalog.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimescaleStatus {
    pub version: String,
    pub chunk_interval: Duration,
    pub refresh_window: Option<Duration>,
    pub compress_after: Option<Duration>,
    pub raw_retention: Option<Duration>,
    pub rollup_retention: Option<Duration>,
    /// Chunks of crossings and of the count series, and how many are compressed.
    pub chunks: i64,
    pub compressed_chunks: i64,
}

impl std::fmt::Display for TimescaleStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let show = |d: Option<Duration>| d.map_or_else(|| "off".to_owned(), short);
        write!(
            f,
            "TimescaleDB {}: chunk interval {}, refresh window {}, compress after {}, \
             raw retention {}, rollup retention {}; {} chunks, {} compressed",
            self.version,
            short(self.chunk_interval),
            show(self.refresh_window),
            show(self.compress_after),
            show(self.raw_retention),
            show(self.rollup_retention),
            self.chunks,
            self.compressed_chunks
        )
    }
}

/// `7d`, `36h`, `90m` or `45s`: the largest unit that divides the duration. (humantime would
/// print 90 days as "2months 29days 2h 52m 48s".)
fn short(d: Duration) -> String {
    match d.as_secs() {
        s if s > 0 && s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s > 0 && s % 3_600 == 0 => format!("{}h", s / 3_600),
        s if s > 0 && s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}
