//! How often the summarizer runs.
//!
//! Every batch that holds the summarizer's turn could bring the summaries of its minutes up
//! to date at once, but under a backlog consecutive batches touch the same busy minutes, and
//! each turn rereads them. So a store summarizes at most once per `summarize_every`: a batch
//! that comes sooner only notes its minutes (reads stay exact, folding the entries of noted
//! minutes), and a background task of the store takes the turn when the interval has passed
//! and notes wait. With a zero interval every batch summarizes, as the conformance suite's
//! cost test needs to compare each batch's work with the in-memory model.

use crate::StoreError;
use async_trait::async_trait;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The default of [`crate::StoreOptions::summarize_every`].
pub const DEFAULT_SUMMARIZE_EVERY: Duration = Duration::from_millis(250);

/// When the summarizer last ran, and how often it may.
#[derive(Debug)]
pub(crate) struct Cadence {
    every: Duration,
    last: Mutex<Option<Instant>>,
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
        let last = *self.last.lock().unwrap_or_else(|p| p.into_inner());
        self.every.is_zero() || last.is_none_or(|at| at.elapsed() >= self.every)
    }

    /// Records that the summarizer just ran.
    pub(crate) fn ran(&self) {
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
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
            match store.summarize_noted().await {
                Ok(true) => cadence.ran(),
                Ok(false) => {}
                // Notes stay for the next turn; counts stay exact meanwhile.
                Err(error) => tracing::warn!(%error, "summarizing noted minutes failed"),
            }
        }
    });
    Some(Arc::new(Background(task)))
}
