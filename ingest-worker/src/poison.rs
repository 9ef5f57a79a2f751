//! Messages storage cannot apply: tried a bounded number of times, then set aside, so that
//! no message can halt the stream.
//!
//! A storage fault (the database away, full, read-only, refusing the login) is retried until
//! it heals, however long: the batch stays unacknowledged and nothing is lost. Any other
//! error means the storage answers but will not take what it was given; after [`TRIES`]
//! tries the batch is applied message by message, and a message that fails on its own is
//! kept in the rejected list (`unappliable`, with its raw payload and the error), counted,
//! logged, and acknowledged.

use crate::applier::{Applier, RETRY_MAX, RETRY_START};
use crate::subscriber::Message;
use crate::IngestStats;
use roomer_occupancy::payload::{parse_topic, Topic};
use roomer_occupancy::SpaceId;
use roomer_storage::{Rejected, StoreError};
use tokio::sync::watch;

/// Tries of a batch, and then of each of its messages alone, before it is set aside.
pub(crate) const TRIES: u32 = 3;

/// The reason a message set aside is kept under.
const UNAPPLIABLE: &str = "unappliable";

impl Applier {
    /// Runs a storage call until it succeeds (`Ok`), fails `refusals` times (with
    /// `Some`) with errors that are not storage faults (`Err`, the last of them), or `stop`
    /// is raised (`None`). Storage faults are retried without limit, with backoff, and
    /// reported in the stats while they last.
    pub(crate) async fn tries<'a, T, F, Fut>(
        &'a self,
        stop: &mut watch::Receiver<bool>,
        refusals: Option<u32>,
        call: F,
    ) -> Option<Result<T, StoreError>>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, StoreError>> + 'a,
    {
        let mut delay = RETRY_START;
        let mut refused = 0;
        loop {
            match call().await {
                Ok(value) => {
                    self.stats.set_store_fault(None);
                    return Some(Ok(value));
                }
                Err(e) if e.is_storage_fault() => {
                    IngestStats::add(&self.stats.store_errors, 1);
                    self.stats.set_store_fault(Some(e.to_string()));
                    tracing::error!(error = %e, retry_in = ?delay, "storage failed; the batch stays unacknowledged and will be retried");
                }
                Err(e) => {
                    IngestStats::add(&self.stats.store_errors, 1);
                    self.stats.set_store_fault(None);
                    refused += 1;
                    if refusals.is_some_and(|limit| refused >= limit) {
                        return Some(Err(e));
                    }
                    tracing::warn!(error = %e, try_ = refused, "storage refused the batch; trying again");
                }
            }
            tokio::select! {
                _ = stop.wait_for(|s| *s) => return None,
                _ = tokio::time::sleep(delay) => {}
            }
            delay = (delay * 2).min(RETRY_MAX);
        }
    }

    /// A batch that storage refused [`TRIES`] times: each message on its own, and the one
    /// that fails alone is set aside. Answers the spaces touched, or `None` if asked to stop.
    pub(crate) async fn apply_apart(
        &self,
        batch: &[Message],
        error: &StoreError,
        stop: &mut watch::Receiver<bool>,
    ) -> Option<Vec<SpaceId>> {
        if let [message] = batch {
            self.set_aside(message, error, stop).await?;
            return Some(Vec::new());
        }
        tracing::warn!(messages = batch.len(), error = %error, "storage refused a batch; applying its messages one by one");
        let mut touched = Vec::new();
        for message in batch {
            let alone = std::slice::from_ref(message);
            touched.extend(Box::pin(self.apply(alone, stop)).await?);
        }
        Some(touched)
    }

    async fn set_aside(
        &self,
        message: &Message,
        error: &StoreError,
        stop: &mut watch::Receiver<bool>,
    ) -> Option<()> {
        let topic = &message.publish.topic;
        let dpu = match parse_topic(topic) {
            Ok(Topic::Crossings(dpu) | Topic::Status(dpu)) => Some(dpu.as_str().to_owned()),
            Err(_) => None,
        };
        let kept = Rejected {
            received_at: message.received_at,
            source: topic.clone(),
            dpu_id: dpu,
            reason: UNAPPLIABLE.to_owned(),
            detail: format!("storage refused it {TRIES} times: {error}"),
            payload: message.publish.payload.to_vec(),
        };
        tracing::error!(topic = %kept.source, error = %error, "message set aside: storage cannot apply it; kept in the rejected list");
        metrics::counter!("roomer_rejected_total", "reason" => UNAPPLIABLE).increment(1);
        IngestStats::add(&self.stats.rejected, 1);
        self.retry(stop, || self.store.reject(std::slice::from_ref(&kept)))
            .await
    }
}
