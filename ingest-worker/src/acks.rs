//! Acknowledgements that never block the applier.
//!
//! rumqttc sends an ack only when its event loop is polled, and the event loop hands out
//! every publish it has already read before it looks at queued requests. If the applier
//! waited for room in rumqttc's request queue while the subscriber waited for room in the
//! applier's queue, neither would move again: that deadlock stalled a worker behind a busy
//! Mosquitto. So acks go into this backlog, in the order the publishes arrived (MQTT
//! requires it), and are handed to rumqttc as far as it takes them without waiting; the rest
//! is retried at the next batch or tick.

use crate::subscriber::Message;
use rumqttc::{AsyncClient, Publish};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

pub(crate) struct AckQueue {
    client: AsyncClient,
    connection: Arc<AtomicU64>,
    backlog: Mutex<VecDeque<(u64, Publish)>>,
}

impl AckQueue {
    pub fn new(client: AsyncClient, connection: Arc<AtomicU64>) -> Self {
        Self {
            client,
            connection,
            backlog: Mutex::new(VecDeque::new()),
        }
    }

    /// Queues the acks of a committed batch and sends what rumqttc takes now.
    pub fn push(&self, batch: &[Message]) {
        let mut backlog = self.backlog.lock().expect("ack backlog lock");
        backlog.extend(batch.iter().map(|m| (m.connection, m.publish.clone())));
        self.flush_locked(&mut backlog);
    }

    /// Whether acks wait for rumqttc to take them.
    pub fn waiting(&self) -> bool {
        !self.backlog.lock().expect("ack backlog lock").is_empty()
    }

    /// Sends what rumqttc takes now; returns how many acks still wait.
    pub fn flush(&self) -> usize {
        let mut backlog = self.backlog.lock().expect("ack backlog lock");
        self.flush_locked(&mut backlog);
        backlog.len()
    }

    fn flush_locked(&self, backlog: &mut VecDeque<(u64, Publish)>) {
        let current = self.connection.load(Ordering::SeqCst);
        while let Some((connection, publish)) = backlog.front() {
            // A publish from an earlier connection is not acked: the broker does not expect
            // it on this one (and redelivers it anyway, which dedup absorbs).
            if *connection != current || self.client.try_ack(publish).is_ok() {
                backlog.pop_front();
            } else {
                return;
            }
        }
    }
}
