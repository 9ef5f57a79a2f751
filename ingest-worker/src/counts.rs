//! Count updates on MQTT: a space's current count goes to `spaces/{id}/count` (retained,
//! QoS 1) whenever it may have changed, so an operator can watch a space with any MQTT client
//! and the API's live routes can follow it.
//!
//! What may change a count, and when it is published:
//! - A commit of this worker: the spaces it touched, at once (commits less than
//!   [`PUBLISH_GAP`] after the last publish wait out the rest of it and go together), and
//!   again [`SETTLE`] later.
//!   With several workers, two publishes of one space can reach the broker in the other
//!   order than their reads; the second round reads after both commits, so the retained
//!   value settles on the stored count within about a second of the last commit.
//! - A daily reset: at the reset instant, without any crossing.
//! - Anything else (a layout edit over the API, a re-attribution, another worker's commit
//!   this worker has not seen): every `reconcile_every`, each space whose count differs from
//!   what this worker last published.
//!
//! It has a connection of its own: publishing through the subscriber's client could wait on
//! a request channel that only drains while the subscriber is free, and the subscriber waits
//! on the applier.

use roomer_occupancy::reset::DailyReset;
use roomer_occupancy::topics::{self, CountUpdate};
use roomer_occupancy::{Space, SpaceId, Timestamp};
use roomer_storage::{Page, Store};
use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, QoS};
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{watch, Notify};
use tokio::time::Instant;

/// How long after a commit its spaces are published a second time.
pub const SETTLE: Duration = Duration::from_secs(1);

/// The shortest time between two publishes of commits' spaces. Each publish reads the
/// counts it sends, and under a backlog batches commit every few milliseconds: reading
/// after each of them took a sixth of TimescaleDB's time in the fleet pace bench, for
/// updates no dashboard can tell apart.
pub const PUBLISH_GAP: Duration = Duration::from_millis(100);

/// The announcer task and the way to tell it which spaces a commit touched.
pub(crate) struct CountAnnouncer {
    touched: Arc<Mutex<BTreeSet<SpaceId>>>,
    wake: Arc<Notify>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl CountAnnouncer {
    pub(crate) fn start(
        store: Arc<dyn Store>,
        mut options: MqttOptions,
        reconcile_every: Duration,
    ) -> Self {
        options.set_keep_alive(Duration::from_secs(30));
        let (client, eventloop) = AsyncClient::new(options, 1024);
        let touched = Arc::new(Mutex::new(BTreeSet::new()));
        let wake = Arc::new(Notify::new());
        let (stop, stopped) = watch::channel(false);
        let announcer = Announcer {
            store,
            client,
            published: HashMap::new(),
            reconcile_every,
        };
        let task = tokio::spawn(announcer.run(
            tokio::spawn(drive(eventloop)),
            touched.clone(),
            wake.clone(),
            stopped,
        ));
        Self {
            touched,
            wake,
            stop,
            task,
        }
    }

    /// Asks for the counts of `spaces` to be published (without waiting for it).
    pub(crate) fn touched(&self, spaces: &[SpaceId]) {
        if spaces.is_empty() {
            return;
        }
        self.touched
            .lock()
            .expect("not poisoned")
            .extend(spaces.iter().copied());
        self.wake.notify_one();
    }

    /// Publishes what is still asked for, then disconnects.
    pub(crate) async fn close(self) {
        let _ = self.stop.send(true);
        if tokio::time::timeout(Duration::from_secs(3), self.task)
            .await
            .is_err()
        {
            tracing::warn!("count publisher did not close in time");
        }
    }
}

struct Announcer {
    store: Arc<dyn Store>,
    client: AsyncClient,
    /// What this worker last published per space.
    published: HashMap<SpaceId, i64>,
    reconcile_every: Duration,
}

impl Announcer {
    async fn run(
        mut self,
        driver: tokio::task::JoinHandle<()>,
        touched: Arc<Mutex<BTreeSet<SpaceId>>>,
        wake: Arc<Notify>,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut settling = BTreeSet::new();
        let mut settle_at: Option<Instant> = None;
        let mut reconcile_at = Instant::now();
        let mut published_at: Option<Instant> = None;
        loop {
            tokio::select! {
                // The guard `wait_for` answers is not Send: drop it inside.
                _ = async { drop(stop.wait_for(|s| *s).await) } => break,
                _ = wake.notified() => {
                    if let Some(at) = published_at {
                        tokio::time::sleep_until(at + PUBLISH_GAP).await;
                    }
                    let spaces = take_all(&touched);
                    self.publish(&spaces).await;
                    published_at = Some(Instant::now());
                    settling.extend(spaces);
                    settle_at.get_or_insert(Instant::now() + SETTLE);
                }
                _ = tokio::time::sleep_until(settle_at.unwrap_or(reconcile_at)), if settle_at.is_some() => {
                    settle_at = None;
                    let spaces = std::mem::take(&mut settling);
                    self.publish(&spaces).await;
                }
                _ = tokio::time::sleep_until(reconcile_at) => {
                    reconcile_at = Instant::now() + self.reconcile().await;
                }
            }
        }
        let spaces = take_all(&touched);
        self.publish(&spaces).await;
        let _ = self.client.try_disconnect();
        if tokio::time::timeout(Duration::from_secs(2), driver)
            .await
            .is_err()
        {
            tracing::warn!("count publisher did not disconnect in time");
        }
    }

    /// Reads and publishes the current counts of `spaces`, whatever was published before.
    async fn publish(&mut self, spaces: &BTreeSet<SpaceId>) {
        if spaces.is_empty() {
            return;
        }
        let wanted: Vec<SpaceId> = spaces.iter().copied().collect();
        match self.store.counts_now(&wanted).await {
            Ok(counts) => {
                for (space, count) in counts {
                    self.send(space, count).await;
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not read the counts to publish"),
        }
    }

    /// Publishes every space whose count is not what this worker last published; answers
    /// how long until the next reconciliation (sooner when a daily reset comes first).
    async fn reconcile(&mut self) -> Duration {
        let spaces = match self.store.spaces(&Page::all()).await {
            Ok(spaces) => spaces,
            Err(e) => {
                tracing::warn!(error = %e, "could not read the counts to reconcile");
                return self.reconcile_every;
            }
        };
        for space in &spaces {
            if self.published.get(&space.space.id) != Some(&space.count) {
                self.send(space.space.id, space.count).await;
            }
        }
        let all: Vec<Space> = spaces.into_iter().map(|s| s.space).collect();
        next_reconciliation(&all, chrono::Utc::now(), self.reconcile_every)
    }

    async fn send(&mut self, space: SpaceId, count: i64) {
        let update = CountUpdate {
            space_id: space,
            count,
            ts: chrono::Utc::now(),
        };
        let payload = update.to_payload();
        match self
            .client
            .publish(topics::count(space), QoS::AtLeastOnce, true, payload)
            .await
        {
            Ok(()) => {
                self.published.insert(space, count);
            }
            Err(e) => tracing::warn!(space, error = %e, "could not publish a count update"),
        }
    }
}

/// How long from `now` until the next reconciliation: `every`, or just past the next daily
/// reset of any space if that comes sooner (so the count read then is the reset one).
fn next_reconciliation(spaces: &[Space], now: Timestamp, every: Duration) -> Duration {
    let next_reset = spaces
        .iter()
        .filter_map(|s| DailyReset::of(s.id, spaces))
        .filter_map(|rule| {
            rule.instants(now, now + chrono::TimeDelta::days(2))
                .into_iter()
                .find(|r| *r > now)
        })
        .min();
    next_reset
        .and_then(|r| (r - now).to_std().ok())
        .map_or(every, |d| (d + Duration::from_millis(20)).min(every))
}

fn take_all(set: &Mutex<BTreeSet<SpaceId>>) -> BTreeSet<SpaceId> {
    let mut guard = set.lock().expect("not poisoned");
    std::mem::take(&mut *guard)
}

async fn drive(mut eventloop: EventLoop) {
    let mut backoff = Duration::from_millis(100);
    loop {
        match eventloop.poll().await {
            Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect)) => return,
            Ok(_) => backoff = Duration::from_millis(100),
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?backoff, "count publisher lost its MQTT connection");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn space(id: SpaceId, reset: Option<&str>, zone: Option<chrono_tz::Tz>) -> Space {
        Space {
            id,
            name: format!("space {id}"),
            parent: None,
            time_zone: zone,
            capacity: None,
            daily_reset: reset.map(|t| t.parse().unwrap()),
        }
    }

    #[test]
    fn the_next_reconciliation_comes_just_after_the_next_reset() {
        let every = Duration::from_secs(30);
        let now: Timestamp = "2026-03-29T01:59:50+00:00".parse().unwrap();
        // 04:00 in Paris is 02:00 UTC on this spring-forward day: 10 s from now.
        let paris = space(1, Some("04:00:00"), Some(chrono_tz::Europe::Paris));
        let utc = space(2, Some("03:00:00"), None);
        let wait = next_reconciliation(&[utc.clone(), paris], now, every);
        assert_eq!(wait, Duration::from_millis(10_020));
        // No reset soon: the regular interval.
        assert_eq!(
            next_reconciliation(&[utc, space(3, None, None)], now, every),
            every
        );
        assert_eq!(next_reconciliation(&[], now, every), every);
    }
}
