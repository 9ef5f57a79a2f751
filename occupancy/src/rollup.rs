//! The walk that turns series points, each a [`Summary`] of its own, into history buckets:
//! the raw history path ([`history::buckets`](crate::history::buckets)), which the tiered
//! summaries ([`crate::tiers`]) are checked against.
//!
//! A summary keeps what a bucket needs and nothing that depends on the bucket: crossings in
//! and out, the lowest and highest count after a crossing, and the count after the last
//! crossing with its instant. The count carried into a bucket and the daily resets are not in
//! the summary (they depend on the range asked for and on the space's current reset rule), so
//! they are applied here, exactly as the raw path applies them.

use crate::history::{Bucket, SeriesPoint};
use crate::model::Timestamp;

/// What a space's series did during a stretch, in absolute counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Summary {
    pub start: Timestamp,
    pub entrances: u64,
    pub exits: u64,
    /// The lowest and highest count right after a crossing.
    pub min: i64,
    pub max: i64,
    /// The count after the last crossing (in series order) and that crossing's instant.
    pub last: i64,
    pub last_ts: Timestamp,
}

impl Summary {
    /// One series point as a summary of its own.
    pub fn of(p: SeriesPoint) -> Self {
        Self {
            start: p.ts,
            entrances: u64::from(p.arrival),
            exits: u64::from(!p.arrival),
            min: p.count,
            max: p.count,
            last: p.count,
            last_ts: p.ts,
        }
    }
}

/// Buckets from summaries: equal to [`history::buckets`](crate::history::buckets) over the
/// points the summaries were made from, when every bound lies on a summary boundary (the
/// raw path is this walk over one summary per point).
/// `carried_in` and `resets` mean what they mean there; `summaries` are in order and start at
/// or after the first bucket's start.
pub fn buckets(
    bounds: &[(Timestamp, Timestamp)],
    carried_in: i64,
    summaries: &[Summary],
    capacity: Option<u32>,
    resets: &[Timestamp],
) -> Vec<Bucket> {
    let mut count = carried_in;
    let mut rest = summaries;
    let mut pending_resets = resets.iter().peekable();
    bounds
        .iter()
        .map(|&(start, end)| {
            let inside = rest.partition_point(|s| s.start < end);
            let (now, later) = rest.split_at(inside);
            rest = later;
            while pending_resets.next_if(|r| **r <= start).is_some() {
                count = 0;
            }
            let (mut min, mut max) = (count, count);
            let (mut entrances, mut exits) = (0, 0);
            for s in now.iter().filter(|s| s.start >= start) {
                // A reset up to the summary's last crossing came before that crossing (the
                // raw path brings the count to 0 at it and then goes on from the crossings).
                while pending_resets.next_if(|r| **r <= s.last_ts).is_some() {
                    min = 0;
                }
                count = s.last;
                min = min.min(s.min);
                max = max.max(s.max);
                entrances += s.entrances;
                exits += s.exits;
            }
            while pending_resets.next_if(|r| **r < end).is_some() {
                count = 0;
                min = 0;
            }
            Bucket {
                start,
                end,
                count,
                min,
                max,
                entrances,
                exits,
                utilization: capacity.map(|c| count as f64 / f64::from(c)),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests;
