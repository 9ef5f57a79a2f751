//! Counters the worker keeps, read by operators (the API) and by tests waiting for work.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

/// The counters copied out at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct StatsSnapshot {
    /// Connected to the broker and subscribed right now.
    pub connected: bool,
    /// MQTT messages received (repeats included).
    pub messages: u64,
    /// Batches committed.
    pub batches: u64,
    /// Distinct crossings stored.
    pub crossings_new: u64,
    /// Repeats of crossings already stored.
    pub duplicates: u64,
    /// Crossings stored that no installation covers yet.
    pub pending: u64,
    /// Messages or elements refused (and kept).
    pub rejected: u64,
    /// Failed attempts to write to storage (each retried).
    pub store_errors: u64,
}

#[derive(Debug, Default)]
pub struct IngestStats {
    pub(crate) connected: AtomicBool,
    pub(crate) messages: AtomicU64,
    pub(crate) batches: AtomicU64,
    pub(crate) crossings_new: AtomicU64,
    pub(crate) duplicates: AtomicU64,
    pub(crate) pending: AtomicU64,
    pub(crate) rejected: AtomicU64,
    pub(crate) store_errors: AtomicU64,
    /// The storage fault the worker is waiting out, until a write succeeds again.
    pub(crate) store_fault: Mutex<Option<String>>,
}

impl IngestStats {
    pub fn snapshot(&self) -> StatsSnapshot {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        StatsSnapshot {
            connected: self.connected.load(Ordering::Relaxed),
            messages: get(&self.messages),
            batches: get(&self.batches),
            crossings_new: get(&self.crossings_new),
            duplicates: get(&self.duplicates),
            pending: get(&self.pending),
            rejected: get(&self.rejected),
            store_errors: get(&self.store_errors),
        }
    }

    /// The storage fault the worker is waiting out right now (the database away, its disk
    /// full, …): nothing is acknowledged meanwhile. `None` once a write succeeds again.
    pub fn store_fault(&self) -> Option<String> {
        self.store_fault.lock().map_or(None, |fault| fault.clone())
    }

    pub(crate) fn set_store_fault(&self, fault: Option<String>) {
        if let Ok(mut current) = self.store_fault.lock() {
            *current = fault;
        }
    }

    pub(crate) fn add(counter: &AtomicU64, n: usize) {
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }
}
