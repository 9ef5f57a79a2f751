//! Late-crossing benchmark, in memory: what one late entrance into a space that never
//! empties costs when 1,000 or 1,000,000 crossings came after it, in the per-entry series
//! the storage backends keep today (`SpaceSeries`: every entry stores the count after it, so
//! a late one rewrites every later entry up to the first moment the space was empty) and in
//! the tiered summaries (`TieredSeries`: the late crossing's minute, then one bucket per
//! tier). It prints medians and the 1,000,000 / 1,000 ratio; it asserts nothing about speed
//! (the work bound is a unit test in `roomer_occupancy::tiers`).
//!
//! - Data: Outside (never empties: it is not clamped), one entrance per second from an hour
//!   after the late crossing on, in one batch; then 21 late entrances, each into its own
//!   second of the first minute, timed one by one. Median of the 21.
//!
//! Rerun: `cargo bench -p roomer-occupancy --bench late_crossing`

use chrono::TimeDelta;
use roomer_occupancy::series::{EntryKey, SpaceChange, SpaceSeries};
use roomer_occupancy::tiers::TieredSeries;
use roomer_occupancy::{DpuId, Timestamp, OUTSIDE};
use std::time::{Duration, Instant};

const LATE: i64 = 21;

fn base() -> Timestamp {
    "2026-01-05T00:00:00Z".parse().unwrap()
}

fn entrance(seconds: i64, dpu: &str) -> EntryKey {
    EntryKey::new(
        base() + TimeDelta::seconds(seconds),
        1,
        DpuId::new(dpu).unwrap(),
    )
}

fn later(n: i64) -> SpaceChange {
    SpaceChange {
        inserts: (0..n).map(|i| entrance(3_600 + i, "later")).collect(),
        removes: Vec::new(),
    }
}

fn late(i: i64) -> SpaceChange {
    SpaceChange {
        inserts: vec![entrance(i, "late")],
        removes: Vec::new(),
    }
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// Median time of one late entrance, per-entry series.
fn per_entry(n: i64) -> Duration {
    let mut series = SpaceSeries::default();
    series.apply(OUTSIDE, &later(n), None);
    median(
        (0..LATE)
            .map(|i| {
                let started = Instant::now();
                series.apply(OUTSIDE, &late(i), None);
                started.elapsed()
            })
            .collect(),
    )
}

/// Median time of one late entrance, tiered summaries.
fn tiered(n: i64) -> Duration {
    let mut series = TieredSeries::new(OUTSIDE, None);
    series.apply(&later(n));
    median(
        (0..LATE)
            .map(|i| {
                let started = Instant::now();
                series.apply(&late(i));
                started.elapsed()
            })
            .collect(),
    )
}

fn main() {
    println!("one late entrance into Outside, median of {LATE} (in memory)");
    println!(
        "{:<20} {:>12} {:>16} {:>8}",
        "representation", "1,000 after", "1,000,000 after", "ratio"
    );
    for (name, run) in [
        ("per-entry series", per_entry as fn(i64) -> Duration),
        ("tiered summaries", tiered),
    ] {
        let few = run(1_000);
        let many = run(1_000_000);
        println!(
            "{name:<20} {:>12.1?} {:>16.1?} {:>8.1}",
            few,
            many,
            many.as_secs_f64() / few.as_secs_f64()
        );
    }
}
