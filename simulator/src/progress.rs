//! What a running fleet is doing, and what it did: counters shared by all DPU tasks.
//!
//! Every DPU task updates one [`FleetProgress`] through relaxed atomics (no lock, nothing per
//! DPU), so a caller can print a progress line while 15,000 DPUs run, and turn the same
//! counters into a [`FleetReport`] at the end.

use crate::latency::{Latencies, LatencySummary};
use crate::replay::ReplayReport;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::OnceLock;
use std::time::Duration;
use tokio::time::Instant;

/// Live counters of a fleet run. Create one, hand an `Arc` of it to
/// [`replay_watched`](crate::replay_watched) or [`live`](crate::live()), and read
/// [`snapshot`](Self::snapshot) whenever you like.
#[derive(Debug, Default)]
pub struct FleetProgress {
    dpus: AtomicUsize,
    started: OnceLock<Instant>,
    connected: AtomicUsize,
    ever_connected: AtomicUsize,
    /// Since the start, when the latest DPU to connect for the first time did so.
    last_first_connect_micros: AtomicU64,
    sent: AtomicU64,
    acked: AtomicU64,
    acked_events: AtomicU64,
    resent: AtomicU64,
    latencies: Latencies,
}

/// The counters at one moment.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ProgressSnapshot {
    pub dpus: usize,
    /// DPUs whose connection is up now (CONNACK seen, not lost since).
    pub connected: usize,
    /// Data messages written to a socket at least once.
    pub sent: u64,
    /// Data messages the broker acknowledged (each once, however often it was sent).
    pub acked: u64,
    pub resent: u64,
    pub elapsed: Duration,
}

impl ProgressSnapshot {
    /// Sent and not yet acknowledged: waiting for a PUBACK, or to be sent again.
    pub fn in_flight(&self) -> u64 {
        self.sent.saturating_sub(self.acked)
    }
}

/// `connected 14812/15000  sent 29600  acked 29580  resent 0  in flight 20  elapsed 14.0s`
impl fmt::Display for ProgressSnapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "connected {}/{}  sent {}  acked {}  resent {}  in flight {}  elapsed {:.1}s",
            self.connected,
            self.dpus,
            self.sent,
            self.acked,
            self.resent,
            self.in_flight(),
            self.elapsed.as_secs_f64()
        )
    }
}

impl FleetProgress {
    /// Called by the runner once it knows the fleet's size; the clock starts here.
    pub(crate) fn begin(&self, dpus: usize) -> Instant {
        self.dpus.store(dpus, Relaxed);
        *self.started.get_or_init(Instant::now)
    }

    pub fn elapsed(&self) -> Duration {
        self.started.get().map_or(Duration::ZERO, Instant::elapsed)
    }

    pub fn snapshot(&self) -> ProgressSnapshot {
        ProgressSnapshot {
            dpus: self.dpus.load(Relaxed),
            connected: self.connected.load(Relaxed),
            sent: self.sent.load(Relaxed),
            acked: self.acked.load(Relaxed),
            resent: self.resent.load(Relaxed),
            elapsed: self.elapsed(),
        }
    }

    pub(crate) fn connected(&self, first_time: bool) {
        self.connected.fetch_add(1, Relaxed);
        if first_time {
            self.ever_connected.fetch_add(1, Relaxed);
            let micros = u64::try_from(self.elapsed().as_micros()).unwrap_or(u64::MAX);
            self.last_first_connect_micros.fetch_max(micros, Relaxed);
        }
    }

    /// Only for a DPU that was connected.
    pub(crate) fn disconnected(&self) {
        self.connected.fetch_sub(1, Relaxed);
    }

    pub(crate) fn sent(&self) {
        self.sent.fetch_add(1, Relaxed);
    }

    pub(crate) fn resent(&self) {
        self.resent.fetch_add(1, Relaxed);
    }

    /// `latency`: from the first write to the PUBACK, for a message never sent twice.
    pub(crate) fn acked(&self, events: usize, latency: Option<Duration>) {
        self.acked.fetch_add(1, Relaxed);
        self.acked_events.fetch_add(events as u64, Relaxed);
        if let Some(latency) = latency {
            self.latencies.record(latency);
        }
    }

    /// The report of a run that ended (or was stopped) now; `published` from the DPUs' own
    /// reports when they all finished, else what the counters saw acknowledged so far.
    pub fn report(&self, published: Option<ReplayReport>) -> FleetReport {
        let dpus = self.dpus.load(Relaxed);
        let connected_dpus = self.ever_connected.load(Relaxed);
        let published = published.unwrap_or_else(|| ReplayReport {
            messages: self.acked.load(Relaxed) as usize,
            events: self.acked_events.load(Relaxed) as usize,
            resent: self.resent.load(Relaxed) as usize,
        });
        FleetReport {
            published,
            dpus,
            elapsed_s: self.elapsed().as_secs_f64(),
            connected_dpus,
            all_connected_after_s: (connected_dpus >= dpus).then(|| {
                Duration::from_micros(self.last_first_connect_micros.load(Relaxed)).as_secs_f64()
            }),
            puback_latency: self.latencies.summary(),
        }
    }
}

/// What a fleet run did, for people ([`FleetReport::summary_lines`]) and for benchmarks
/// (serialized as one JSON object; field names are part of the interface).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FleetReport {
    /// `messages`, `events` and `resent` at the top level of the JSON.
    #[serde(flatten)]
    pub published: ReplayReport,
    pub dpus: usize,
    /// From the start (before the first connection) until the last acknowledgement.
    pub elapsed_s: f64,
    /// DPUs that connected at least once.
    pub connected_dpus: usize,
    /// When the last DPU connected for the first time, since the start; `None` (JSON `null`)
    /// if some DPUs never did.
    pub all_connected_after_s: Option<f64>,
    /// First-send PUBACK latency: from the publish being written to the socket until its
    /// PUBACK arrived, for every message acknowledged without being sent again. `None` (JSON
    /// `null`) when no message was.
    pub puback_latency: Option<LatencySummary>,
}

impl FleetReport {
    /// The human summary: the historical `published …` line first (scripts parse it), then
    /// connection and latency figures.
    pub fn summary_lines(&self) -> Vec<String> {
        let p = &self.published;
        let mut lines = vec![format!(
            "published {} events in {} messages ({} resent) in {:.2?}",
            p.events,
            p.messages,
            p.resent,
            Duration::from_secs_f64(self.elapsed_s)
        )];
        lines.push(match self.all_connected_after_s {
            Some(after) => format!("all connected after {after:.2} s"),
            None => format!(
                "{} of {} DPUs never connected",
                self.dpus - self.connected_dpus.min(self.dpus),
                self.dpus
            ),
        });
        lines.push(match &self.puback_latency {
            Some(latency) => latency.to_string(),
            None => "PUBACK latency: no message acknowledged on its first send".to_owned(),
        });
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_progress_line_has_every_counter() {
        let snapshot = ProgressSnapshot {
            dpus: 15_000,
            connected: 14_812,
            sent: 29_600,
            acked: 29_580,
            resent: 0,
            elapsed: Duration::from_millis(14_040),
        };
        assert_eq!(
            snapshot.to_string(),
            "connected 14812/15000  sent 29600  acked 29580  resent 0  in flight 20  elapsed 14.0s"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_report_says_when_the_last_dpu_first_connected() {
        let progress = FleetProgress::default();
        progress.begin(2);
        progress.connected(true);
        tokio::time::advance(Duration::from_millis(1500)).await;
        progress.connected(true);
        progress.disconnected();
        tokio::time::advance(Duration::from_millis(500)).await;
        progress.connected(false);
        progress.sent();
        progress.acked(3, Some(Duration::from_millis(2)));
        let report = progress.report(None);
        assert_eq!(report.all_connected_after_s, Some(1.5));
        assert_eq!(report.connected_dpus, 2);
        assert_eq!((report.published.messages, report.published.events), (1, 3));
        assert_eq!(report.puback_latency.unwrap().max_ms, 2.0);
        assert_eq!(report.summary_lines()[1], "all connected after 1.50 s");
    }

    #[test]
    fn dpus_that_never_connected_are_counted_and_the_json_has_flat_totals() {
        let progress = FleetProgress::default();
        progress.begin(3);
        progress.connected(true);
        let report = progress.report(None);
        assert_eq!(report.all_connected_after_s, None);
        let lines = report.summary_lines();
        assert!(lines[0].starts_with("published 0 events in 0 messages (0 resent) in "));
        assert_eq!(lines[1], "2 of 3 DPUs never connected");
        let json = serde_json::to_value(&report).unwrap();
        for field in [
            "messages",
            "events",
            "resent",
            "dpus",
            "elapsed_s",
            "connected_dpus",
        ] {
            assert!(json[field].is_number(), "{field} in {json}");
        }
        assert!(json["all_connected_after_s"].is_null());
        assert!(json["puback_latency"].is_null());
        let back: FleetReport = serde_json::from_value(json).unwrap();
        assert_eq!(back, report);
    }
}
