//! Acknowledge after store: a DPU's QoS 1 message gets its PUBACK only once the ingest worker
//! has acknowledged it, and the worker acknowledges only after its batch committed.
//!
//! rumqttd acknowledges a QoS 1 PUBLISH as soon as it is in its in-memory log, so a crash of
//! the process (kill -9, power) loses every message acknowledged and not yet stored: a DPU
//! that got its PUBACK has deleted the crossings. With the gate, what a DPU has been told is
//! safe is in the database; what is not yet is still in the DPU, which resends it after
//! reconnecting (repeats count once, rule 3).
//!
//! How: the front end holds back the router's PUBACK for every QoS 1 PUBLISH on a data topic
//! (`dpus/…`), and parks the message under its content (topic and payload). When a *store
//! reader* (a connection whose client id starts with the configured prefix: the ingest
//! workers) acknowledges a message with that content, every DPU waiting on it gets its
//! PUBACK, in the order its PUBLISHes came (MQTT asks for that order). Content, not identity,
//! because the router does not say which publish a forwarded copy came from; two messages
//! with the same topic and payload are the same crossings, so either being stored makes both
//! safe.
//!
//! A DPU connection that ends forgets what it parked: its messages were not acknowledged,
//! and the DPU sends them again.

use bytes::Bytes;
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// A message's content: topic and payload.
pub(crate) type Content = (Bytes, Bytes);

/// The parked messages of every connection, by content.
#[derive(Default)]
pub(crate) struct Gate {
    waiting: Mutex<HashMap<Content, Vec<Waiter>>>,
}

/// Who waits on a content: a connection (by its serial number) and its packet id.
struct Waiter {
    connection: u64,
    pkid: u16,
    release: mpsc::UnboundedSender<u16>,
}

impl Gate {
    /// Parks `pkid` of `connection` until `content` is stored.
    fn park(&self, content: Content, connection: u64, pkid: u16, release: &Release) {
        let waiter = Waiter {
            connection,
            pkid,
            release: release.tx.clone(),
        };
        self.lock().entry(content).or_default().push(waiter);
    }

    /// `content` is stored: every waiter on it is released.
    pub(crate) fn stored(&self, content: &Content) {
        let waiters = self.lock().remove(content);
        for waiter in waiters.into_iter().flatten() {
            // A closed channel: the connection is gone, its DPU resends.
            let _ = waiter.release.send(waiter.pkid);
        }
    }

    /// `connection` ended: its parked messages are no longer anyone's to release.
    fn forget(&self, connection: u64, contents: impl Iterator<Item = Content>) {
        let mut waiting = self.lock();
        for content in contents {
            if let Some(waiters) = waiting.get_mut(&content) {
                waiters.retain(|w| w.connection != connection);
                if waiters.is_empty() {
                    waiting.remove(&content);
                }
            }
        }
    }

    /// Contents parked now.
    #[cfg(test)]
    fn parked(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Content, Vec<Waiter>>> {
        self.waiting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// One DPU connection's side of the gate: its parked packet ids in arrival order, the
/// router's PUBACKs it must swallow, and the channel its releases come on.
pub(crate) struct Release {
    connection: u64,
    tx: mpsc::UnboundedSender<u16>,
    rx: mpsc::UnboundedReceiver<u16>,
    /// Parked packet ids in the order their PUBLISHes came, with whether they are released.
    order: VecDeque<(u16, Content, bool)>,
    /// When the oldest parked message came (the front of `order`).
    oldest: Option<Instant>,
    /// Router PUBACKs still to come for parked publishes, by packet id: not for the client.
    swallow: HashMap<u16, u32>,
}

impl Release {
    pub(crate) fn new(connection: u64) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        Self {
            connection,
            tx,
            rx,
            order: VecDeque::new(),
            oldest: None,
            swallow: HashMap::new(),
        }
    }

    /// Since when the oldest message still unacknowledged has waited, if one has.
    pub(crate) fn waiting_since(&self) -> Option<Instant> {
        self.oldest
    }

    /// A data PUBLISH at QoS 1 came with `pkid`: hold its acknowledgement.
    pub(crate) fn hold(&mut self, gate: &Gate, content: Content, pkid: u16) {
        gate.park(content.clone(), self.connection, pkid, self);
        if self.order.is_empty() {
            self.oldest = Some(Instant::now());
        }
        self.order.push_back((pkid, content, false));
        *self.swallow.entry(pkid).or_default() += 1;
    }

    /// Whether a PUBACK the router sends for `pkid` is one of those held back.
    pub(crate) fn swallows(&mut self, pkid: u16) -> bool {
        match self.swallow.get_mut(&pkid) {
            Some(n) => {
                *n -= 1;
                if *n == 0 {
                    self.swallow.remove(&pkid);
                }
                true
            }
            None => false,
        }
    }

    /// Waits for the next release, then returns every packet id now due, in order.
    pub(crate) async fn due(&mut self) -> Vec<u16> {
        let Some(first) = self.rx.recv().await else {
            return Vec::new(); // never: `self.tx` keeps the channel open
        };
        self.mark(first);
        while let Ok(pkid) = self.rx.try_recv() {
            self.mark(pkid);
        }
        let mut due = Vec::new();
        while self.order.front().is_some_and(|(_, _, released)| *released) {
            let (pkid, _, _) = self.order.pop_front().expect("checked");
            due.push(pkid);
        }
        if !due.is_empty() {
            // Not exact for what came after, but never older than the truth.
            self.oldest = (!self.order.is_empty()).then(Instant::now);
        }
        due
    }

    fn mark(&mut self, pkid: u16) {
        if let Some(entry) = self
            .order
            .iter_mut()
            .find(|(p, _, released)| *p == pkid && !released)
        {
            entry.2 = true;
        }
    }

    /// The connection ended: nothing it parked waits any more.
    pub(crate) fn close(self, gate: &Gate) {
        gate.forget(
            self.connection,
            self.order.into_iter().map(|(_, content, _)| content),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn content(payload: &'static str) -> Content {
        (
            Bytes::from_static(b"dpus/1/crossings"),
            Bytes::from(payload),
        )
    }

    #[tokio::test]
    async fn acks_come_when_the_content_is_stored_and_in_arrival_order() {
        let gate = Gate::default();
        let mut dpu = Release::new(1);
        dpu.hold(&gate, content("a"), 10);
        dpu.hold(&gate, content("b"), 11);
        dpu.hold(&gate, content("c"), 12);
        // "b" is stored first: its ack waits for "a", which came before it.
        gate.stored(&content("b"));
        gate.stored(&content("a"));
        assert_eq!(dpu.due().await, vec![10, 11]);
        gate.stored(&content("c"));
        assert_eq!(dpu.due().await, vec![12]);
        assert_eq!(gate.parked(), 0);
    }

    #[tokio::test]
    async fn the_same_content_from_two_dpus_is_released_for_both() {
        let gate = Gate::default();
        let (mut one, mut two) = (Release::new(1), Release::new(2));
        one.hold(&gate, content("x"), 1);
        two.hold(&gate, content("x"), 7);
        gate.stored(&content("x"));
        assert_eq!(one.due().await, vec![1]);
        assert_eq!(two.due().await, vec![7]);
    }

    #[test]
    fn the_routers_own_acks_for_held_publishes_are_swallowed_once_each() {
        let gate = Gate::default();
        let mut dpu = Release::new(1);
        dpu.hold(&gate, content("a"), 5);
        dpu.hold(&gate, content("b"), 5); // the id reused after a release
        assert!(dpu.swallows(5));
        assert!(dpu.swallows(5));
        assert!(!dpu.swallows(5), "a third one is not ours to hide");
        assert!(!dpu.swallows(6));
    }

    #[test]
    fn a_closed_connection_leaves_nothing_parked() {
        let gate = Gate::default();
        let (mut one, mut two) = (Release::new(1), Release::new(2));
        one.hold(&gate, content("x"), 1);
        two.hold(&gate, content("x"), 2);
        one.close(&gate);
        assert_eq!(gate.parked(), 1, "the other DPU still waits");
        two.close(&gate);
        assert_eq!(gate.parked(), 0);
    }
}
