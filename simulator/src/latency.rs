//! PUBACK latencies: a fixed-size, lock-free histogram every DPU task records into.
//!
//! A fleet run can acknowledge tens of millions of messages, so keeping one sample per message
//! would cost hundreds of megabytes; a per-DPU histogram would cost as much for 15,000 DPUs.
//! Instead all DPUs share one log-linear histogram (the HDR idea): values below 128 µs are
//! counted exactly, larger ones in 128 buckets per power of two, so any reported figure is at
//! most 1/128 (< 0.8 %) above the true sample. The maximum is tracked exactly. Recording is
//! two relaxed atomic additions and a `fetch_max`: no lock between the DPU tasks.

use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// log2 of the buckets per power of two, and of the largest value counted exactly.
const SUB_BITS: u32 = 7;
const SUB: usize = 1 << SUB_BITS;
/// Powers of two covered above `SUB`: up to 2^36 µs (19 hours); longer waits land in the last
/// bucket, and `max` still reports them exactly.
const OCTAVES: usize = 36 - SUB_BITS as usize;
const BUCKETS: usize = SUB * (OCTAVES + 1);

/// Latencies in microseconds.
pub struct Latencies {
    buckets: Box<[AtomicU64]>,
    count: AtomicU64,
    max: AtomicU64,
}

impl Default for Latencies {
    fn default() -> Self {
        Self {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            max: AtomicU64::new(0),
        }
    }
}

impl std::fmt::Debug for Latencies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Latencies")
            .field("summary", &self.summary())
            .finish()
    }
}

/// The index of the bucket counting `micros`.
fn bucket(micros: u64) -> usize {
    if micros < SUB as u64 {
        return micros as usize;
    }
    let octave = (63 - micros.leading_zeros()) - SUB_BITS; // 0 for 128..=255
    let top = (micros >> octave) as usize; // SUB..2*SUB
    ((octave as usize + 1) * SUB + top - SUB).min(BUCKETS - 1)
}

/// The largest value that lands in bucket `index`.
fn highest_in(index: usize) -> u64 {
    if index < SUB {
        return index as u64;
    }
    let octave = (index / SUB - 1) as u32;
    let top = (SUB + index % SUB) as u64;
    ((top + 1) << octave) - 1
}

impl Latencies {
    pub fn record(&self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.buckets[bucket(micros)].fetch_add(1, Relaxed);
        self.count.fetch_add(1, Relaxed);
        self.max.fetch_max(micros, Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.count.load(Relaxed)
    }

    /// The nearest-rank `quantile` (0 < q ≤ 1) in microseconds: the smallest recorded value
    /// such that at least `q` of all samples are at or below it, rounded up to its bucket's
    /// largest value (never above the true maximum). `None` without samples.
    pub fn quantile(&self, quantile: f64) -> Option<u64> {
        let counts: Vec<u64> = self.buckets.iter().map(|b| b.load(Relaxed)).collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return None;
        }
        let rank = ((quantile.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (index, count) in counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return Some(highest_in(index).min(self.max.load(Relaxed)));
            }
        }
        Some(self.max.load(Relaxed))
    }

    /// p50, p99 and max in milliseconds; `None` without samples.
    pub fn summary(&self) -> Option<LatencySummary> {
        let ms = |micros: u64| micros as f64 / 1000.0;
        Some(LatencySummary {
            samples: self.count(),
            p50_ms: ms(self.quantile(0.50)?),
            p99_ms: ms(self.quantile(0.99)?),
            max_ms: ms(self.max.load(Relaxed)),
        })
    }
}

/// PUBACK latency figures of a run.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    /// Messages measured: those acknowledged on their first send.
    pub samples: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl std::fmt::Display for LatencySummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "PUBACK latency p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms ({} messages)",
            self.p50_ms, self.p99_ms, self.max_ms, self.samples
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn micros(values: impl IntoIterator<Item = u64>) -> Latencies {
        let latencies = Latencies::default();
        for v in values {
            latencies.record(Duration::from_micros(v));
        }
        latencies
    }

    #[test]
    fn buckets_are_contiguous_and_ordered() {
        for index in 1..BUCKETS {
            assert_eq!(bucket(highest_in(index - 1) + 1), index, "after {index}");
            assert_eq!(bucket(highest_in(index)), index);
        }
        assert_eq!(bucket(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn small_values_are_exact_and_large_ones_within_one_percent() {
        for v in (0..128).chain([128, 129, 1_000, 12_345, 999_999, 3_600_000_000]) {
            let bucketed = highest_in(bucket(v));
            assert!(bucketed >= v, "{v} reported as {bucketed}");
            assert!(
                (bucketed - v) as f64 <= v as f64 / 128.0,
                "{v} as {bucketed}"
            );
        }
    }

    #[test]
    fn quantiles_are_nearest_rank() {
        let latencies = micros(1..=100);
        assert_eq!(latencies.quantile(0.5), Some(50));
        assert_eq!(latencies.quantile(0.99), Some(99));
        assert_eq!(latencies.quantile(1.0), Some(100));
        assert_eq!(latencies.quantile(0.001), Some(1));
        // One slow message in a hundred shows at p100, not at p99.
        let latencies = micros((0..99).map(|_| 500).chain([80_000]));
        let summary = latencies.summary().unwrap();
        assert_eq!(summary.samples, 100);
        assert!((0.5..0.51).contains(&summary.p50_ms), "{summary:?}");
        assert!((0.5..0.51).contains(&summary.p99_ms), "{summary:?}");
        assert_eq!(summary.max_ms, 80.0);
    }

    #[test]
    fn large_quantiles_never_exceed_the_maximum() {
        // 1000 and 1001 share the bucket 1000..=1003.
        let latencies = micros([1_000, 1_001]);
        assert_eq!(latencies.quantile(1.0), Some(1_001));
        assert_eq!(latencies.quantile(0.5), Some(1_001));
    }

    #[test]
    fn no_samples_no_figures() {
        let latencies = Latencies::default();
        assert_eq!(latencies.quantile(0.5), None);
        assert!(latencies.summary().is_none());
    }
}
