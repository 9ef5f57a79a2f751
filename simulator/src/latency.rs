//! PUBACK latencies: one HDR histogram (the `hdrhistogram` crate) every DPU task records
//! into. A fleet run can acknowledge tens of millions of messages; the histogram keeps them
//! in a fixed few kilobytes, within 0.1 % of each value, and the maximum exactly. A mutex
//! guards it: recording is a few nanoseconds, a few thousand times a second.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// Latencies in microseconds.
#[derive(Debug)]
pub struct Latencies(Mutex<Histogram<u64>>);

impl Default for Latencies {
    fn default() -> Self {
        // 1 µs to a day, three significant figures; a longer wait counts as a day.
        let day = 86_400_000_000;
        let histogram = Histogram::new_with_bounds(1, day, 3).expect("valid bounds");
        Self(Mutex::new(histogram))
    }
}

impl Latencies {
    fn histogram(&self) -> std::sync::MutexGuard<'_, Histogram<u64>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn record(&self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.histogram().saturating_record(micros);
    }

    pub fn count(&self) -> u64 {
        self.histogram().len()
    }

    /// The `quantile` (0 < q ≤ 1) in microseconds; `None` without samples.
    pub fn quantile(&self, quantile: f64) -> Option<u64> {
        let histogram = self.histogram();
        (!histogram.is_empty()).then(|| histogram.value_at_quantile(quantile.clamp(0.0, 1.0)))
    }

    /// p50, p99 and max in milliseconds; `None` without samples.
    pub fn summary(&self) -> Option<LatencySummary> {
        let histogram = self.histogram();
        if histogram.is_empty() {
            return None;
        }
        let ms = |micros: u64| micros as f64 / 1000.0;
        Some(LatencySummary {
            samples: histogram.len(),
            p50_ms: ms(histogram.value_at_quantile(0.50)),
            p99_ms: ms(histogram.value_at_quantile(0.99)),
            max_ms: ms(histogram.max()),
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
    fn quantiles_come_from_the_samples() {
        let latencies = micros(1..=100);
        assert_eq!(latencies.quantile(0.5), Some(50));
        assert_eq!(latencies.quantile(0.99), Some(99));
        assert_eq!(latencies.quantile(1.0), Some(100));
        // One slow message in a hundred shows at p100, not at p99.
        let latencies = micros((0..99).map(|_| 500).chain([80_000]));
        let summary = latencies.summary().unwrap();
        assert_eq!(summary.samples, 100);
        assert!((0.5..0.501).contains(&summary.p50_ms), "{summary:?}");
        assert!((0.5..0.501).contains(&summary.p99_ms), "{summary:?}");
        assert!((80.0..80.1).contains(&summary.max_ms), "{summary:?}");
    }

    #[test]
    fn no_samples_no_figures() {
        let latencies = Latencies::default();
        assert_eq!(latencies.quantile(0.5), None);
        assert!(latencies.summary().is_none());
    }
}
