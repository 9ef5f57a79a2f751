//! TimescaleDB's settings, in domain words: what an operator may tune (chunks, compression,
//! retention) and what a database runs with.

use std::time::Duration;

/// TimescaleDB settings to change (`None`: leave as it is). They are stored in the database
/// (chunk interval and policies), so every process sees the same.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TimescaleSettings {
    /// Time range of each new chunk of crossings and of the count series.
    pub chunk_interval: Option<Duration>,
    /// Chunks older than this are compressed.
    pub compress_after: Option<Duration>,
    /// Raw crossings older than this are dropped (`Some(None)`: keep them forever).
    pub raw_retention: Option<Option<Duration>>,
}

impl TimescaleSettings {
    /// What a new database starts with.
    pub fn defaults() -> Self {
        const DAY: u64 = 86_400;
        Self {
            chunk_interval: Some(Duration::from_secs(DAY)),
            compress_after: Some(Duration::from_secs(7 * DAY)),
            raw_retention: Some(None),
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
    pub compress_after: Option<Duration>,
    pub raw_retention: Option<Duration>,
    /// Chunks of crossings and of the count series, and how many are compressed.
    pub chunks: i64,
    pub compressed_chunks: i64,
}

impl std::fmt::Display for TimescaleStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let show = |d: Option<Duration>| d.map_or_else(|| "off".to_owned(), short);
        write!(
            f,
            "TimescaleDB {}: chunk interval {}, compress after {}, raw retention {}; \
             {} chunks, {} compressed",
            self.version,
            short(self.chunk_interval),
            show(self.compress_after),
            show(self.raw_retention),
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
