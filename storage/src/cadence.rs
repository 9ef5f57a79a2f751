//! How often the summarizer runs.
//!
//! Every batch that holds the summarizer's turn could bring the summaries of its minutes up
//! to date at once, but under a backlog consecutive batches touch the same busy minutes, and
//! each turn rereads them. So a store summarizes at most once per `summarize_every`: a batch
//! that comes sooner only notes its minutes (reads stay exact, folding the entries of noted
//! minutes), and a background task of the store takes the turn when the interval has passed
//! and notes wait. With a zero interval every batch summarizes, as the conformance suite's
//! cost test needs to compare each batch's work with the in-memory model.
//!
//! Under a backlog a turn takes longer, and rereads the busy seconds it touches however few
//! crossings each batch added to them; so after a turn the next one also waits
//! [`WAIT_PER_TURN`] times as long as that turn took (a batch that summarized counts its
//! whole transaction as the turn: its own summarizing happens inside it). The summarizer then takes at most a
//! fifth of the time, and each turn gathers more batches' notes, which it summarizes with
//! one reread of each second they share.

use crate::StoreError;
use async_trait::async_trait;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The default of [`crate::StoreOptions::summarize_every`].
pub const DEFAULT_SUMMARIZE_EVERY: Duration = Duration::from_millis(250);

/// How many times as long as its last turn the summarizer waits before the next.
const WAIT_PER_TURN: u32 = 4;

/// When the summarizer last ran, how long that took, and how often it may run.
#[derive(Debug)]
pub(crate) struct Cadence {
    every: Duration,
    /// When the last turn ended, and how long it took.
    last: Mutex<Option<(Instant, Duration)>>,
}

impl Cadence {
    pub(crate) fn new(every: Duration) -> Arc<Self> {
        Arc::new(Self {
            every,
            last: Mutex::new(None),
        })
    }

    /// Whether a writer should summarize now.
    pub(crate) fn due(&self) -> bool {
        self.due_at(Instant::now())
    }

    /// Records that the summarizer just ran a turn that began at `began`.
    pub(crate) fn ran(&self, began: Instant) {
        self.ran_between(began, Instant::now());
    }

    fn due_at(&self, now: Instant) -> bool {
        let last = *self.last.lock().unwrap_or_else(|p| p.into_inner());
        self.every.is_zero()
            || last.is_none_or(|(ended, took)| {
                now.saturating_duration_since(ended) >= self.every.max(took * WAIT_PER_TURN)
            })
    }

    fn ran_between(&self, began: Instant, ended: Instant) {
        let took = ended.saturating_duration_since(began);
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Some((ended, took));
    }
}

/// A store's own summarizer turn, for the background task.
#[async_trait]
pub(crate) trait SummarizeNoted: Send + Sync + 'static {
    /// Summarizes what batches noted, if anything; answers whether it did.
    async fn summarize_noted(&self) -> Result<bool, StoreError>;

    /// Summarizes until nothing noted is left, waiting for another writer's turn to end
    /// rather than leaving its notes to it ([`crate::IngestStore::catch_up`]).
    async fn catch_up(&self) -> Result<(), StoreError> {
        self.summarize_noted().await.map(|_| ())
    }
}

/// The background task of a store; stopped when the last handle to it is dropped.
#[derive(Debug)]
pub(crate) struct Background(tokio::task::JoinHandle<()>);

impl Drop for Background {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Starts the background task that summarizes notes once the interval has passed (none
/// with a zero interval: every batch summarizes then). `store` must not hold the returned
/// handle, or the task would never stop.
pub(crate) fn spawn(store: impl SummarizeNoted, cadence: Arc<Cadence>) -> Option<Arc<Background>> {
    if cadence.every.is_zero() {
        return None;
    }
    let every = cadence.every;
    let task = tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if !cadence.due() {
                continue;
            }
            let began = Instant::now();
            match store.summarize_noted().await {
                Ok(true) => cadence.ran(began),
                Ok(false) => {}
                // Notes stay for the next turn; counts stay exact meanwhile.
                Err(error) => tracing::warn!(%error, "summarizing noted minutes failed"),
            }
        }
    });
    Some(Arc::new(Background(task)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_short_turn_waits_the_interval_and_a_long_one_four_times_its_length() {
        let cadence = Cadence::new(250 * MS);
        let t0 = Instant::now();
        assert!(cadence.due_at(t0), "never ran: due");
        cadence.ran_between(t0, t0 + 10 * MS);
        assert!(!cadence.due_at(t0 + 259 * MS));
        assert!(
            cadence.due_at(t0 + 260 * MS),
            "the interval after a short turn"
        );
        cadence.ran_between(t0 + 300 * MS, t0 + 800 * MS);
        assert!(!cadence.due_at(t0 + 2_799 * MS), "four times a 500 ms turn");
        assert!(cadence.due_at(t0 + 2_800 * MS));
    }

    #[test]
    fn with_a_zero_interval_every_batch_summarizes() {
        let cadence = Cadence::new(Duration::ZERO);
        let t0 = Instant::now();
        cadence.ran_between(t0, t0 + 1_000 * MS);
        assert!(cadence.due_at(t0 + 1_000 * MS));
    }
}
