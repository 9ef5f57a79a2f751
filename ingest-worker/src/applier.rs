//! Batches in, counts out: parse, store everything the batch said (crossings, refusals,
//! statuses, sightings) in one transaction, then ack.

use crate::acks::AckQueue;
use crate::counts::CountAnnouncer;
use crate::intake::{self, Arrival, Intake};
use crate::poison::TRIES;
use crate::subscriber::Message;
use crate::{IngestConfig, IngestStats};
use roomer_occupancy::SpaceId;
use roomer_storage::Store;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

/// Backoff between tries of a storage call.
pub(crate) const RETRY_START: Duration = Duration::from_millis(200);
pub(crate) const RETRY_MAX: Duration = Duration::from_secs(10);
/// While stopping: stop once nothing has arrived for this long…
const DRAIN_QUIET: Duration = Duration::from_millis(250);
/// …or this long after the stop was asked for.
const DRAIN_MAX: Duration = Duration::from_secs(5);
/// How often acks that rumqttc could not take yet are offered again while idle.
const ACK_RETRY: Duration = Duration::from_millis(10);
/// How long a stopping worker waits for its last acks to be taken.
const ACK_FLUSH_MAX: Duration = Duration::from_secs(2);

pub(crate) struct Applier {
    pub store: Arc<dyn Store>,
    pub acks: AckQueue,
    pub config: IngestConfig,
    pub stats: Arc<IngestStats>,
    pub counts: Option<CountAnnouncer>,
}

impl Applier {
    /// Applies batches until `stop` is raised, then drains: keeps applying what has already
    /// arrived until nothing new comes for [`DRAIN_QUIET`] (at most [`DRAIN_MAX`]), so a
    /// clean stop loses as little as the broker allows.
    pub(crate) async fn run(
        mut self,
        messages: mpsc::Receiver<Message>,
        stop: watch::Receiver<bool>,
    ) {
        self.run_batches(messages, stop).await;
        let deadline = Instant::now() + ACK_FLUSH_MAX;
        while self.acks.flush() > 0 && Instant::now() < deadline {
            tokio::time::sleep(ACK_RETRY).await;
        }
        if let Some(counts) = self.counts.take() {
            counts.close().await;
        }
    }

    async fn run_batches(
        &self,
        mut messages: mpsc::Receiver<Message>,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut drain_until: Option<Instant> = None;
        loop {
            let first = match drain_until {
                Some(deadline) => {
                    if Instant::now() >= deadline {
                        tracing::info!("drain deadline reached");
                        return;
                    }
                    match tokio::time::timeout(DRAIN_QUIET, messages.recv()).await {
                        Ok(Some(m)) => m,
                        Ok(None) | Err(_) => return,
                    }
                }
                None => tokio::select! {
                    biased;
                    _ = stop.wait_for(|s| *s) => {
                        drain_until = Some(Instant::now() + DRAIN_MAX);
                        continue;
                    }
                    m = messages.recv() => match m { Some(m) => m, None => return },
                    _ = tokio::time::sleep(ACK_RETRY), if self.acks.waiting() => {
                        self.acks.flush();
                        continue;
                    }
                },
            };
            let mut batch = vec![first];
            let deadline = Instant::now() + self.config.batch_wait;
            while batch.len() < self.config.batch_size {
                let quiet = Instant::now() + self.config.batch_quiet;
                match tokio::time::timeout_at(deadline.min(quiet), messages.recv()).await {
                    Ok(Some(m)) => batch.push(m),
                    Ok(None) | Err(_) => break,
                }
            }
            if let Some(touched) = self.apply(&batch, &mut stop).await {
                self.acks.push(&batch);
                if let Some(counts) = &self.counts {
                    counts.touched(&touched);
                }
            } else {
                tracing::info!(
                    messages = batch.len(),
                    "stopping with a batch unapplied; it stays unacknowledged"
                );
                return;
            }
        }
    }

    /// Stores a batch; returns the spaces it touched, or `None` if asked to stop before the
    /// batch could be stored.
    pub(crate) async fn apply(
        &self,
        batch: &[Message],
        stop: &mut watch::Receiver<bool>,
    ) -> Option<Vec<SpaceId>> {
        let max_future = self.config.max_future;
        let validation = self
            .retry(stop, || intake::validation(self.store.as_ref(), max_future))
            .await?;
        let mut intake = Intake::new(validation);
        for message in batch {
            let arrival = Arrival::Mqtt {
                topic: &message.publish.topic,
                payload: &message.publish.payload,
            };
            intake.take(&arrival, message.received_at);
        }
        let started = std::time::Instant::now();
        let stored = intake.batch();
        let outcome = match self
            .tries(stop, Some(TRIES), || self.store.apply_batch(&stored))
            .await?
        {
            Ok(outcome) => outcome,
            Err(error) => return self.apply_apart(batch, &error, stop).await,
        };
        let report = outcome.report;
        intake.stored(&report, started);
        let rejected = &intake.rejected;
        IngestStats::add(&self.stats.batches, 1);
        IngestStats::add(&self.stats.crossings_new, report.inserted);
        IngestStats::add(&self.stats.duplicates, report.duplicates);
        IngestStats::add(&self.stats.pending, report.pending);
        IngestStats::add(&self.stats.rejected, rejected.len());
        tracing::debug!(
            messages = batch.len(),
            new = report.inserted,
            duplicates = report.duplicates,
            pending = report.pending,
            rejected = rejected.len(),
            "batch applied"
        );
        Some(outcome.touched)
    }

    /// Retries a storage call with exponential backoff until it succeeds or `stop` is raised,
    /// whatever the error.
    pub(crate) async fn retry<'a, T, F, Fut>(
        &'a self,
        stop: &mut watch::Receiver<bool>,
        call: F,
    ) -> Option<T>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, roomer_storage::StoreError>> + 'a,
    {
        match self.tries(stop, None, call).await? {
            Ok(value) => Some(value),
            Err(_) => unreachable!("without a limit, tries retries every error"),
        }
    }
}
