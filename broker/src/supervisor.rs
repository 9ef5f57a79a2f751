//! The broker's watchdog: a thread that checks the broker and heals it when it stops answering.
//!
//! rumqttd 0.20's own listener could wedge for good (bytebeamio/rumqtt#1062); Roomer's listener
//! in front of the router (`front`) cannot, so what is left to guard against is the
//! unforeseen: a listener that stops answering, or rumqttd's router thread dying (a panic).
//!
//! The supervisor knows nothing about rumqttd: every `interval` it runs a health `check` (the
//! router lives, and the listener passes a real MQTT handshake, [`crate::ready::probe_within`]);
//! after [`FAILURES_BEFORE_RESTART`] consecutive failures it calls `restart` (which replaces
//! the listener alone when the router lives), and keeps calling it on later failed checks until
//! one succeeds. Stopping it (or dropping it) wakes the thread at once and joins it; a check or
//! restart under way is finished first, and a restart is told through its `stopping` argument
//! to give up early.

use std::sync::mpsc::{self, RecvTimeoutError, TryRecvError};
use std::thread::JoinHandle;
use std::time::Duration;
use tracing::{debug, warn};

/// How many health checks in a row must fail before a restart. One failure can be a stall
/// under load; two in a row, each with a generous timeout, is a broker that no longer serves.
pub const FAILURES_BEFORE_RESTART: u32 = 2;

/// A running watchdog thread. Dropping it stops it (see [`Supervisor::stop`]).
pub(crate) struct Supervisor {
    /// Dropping the sender is the stop signal: the thread's `recv_timeout` wakes at once.
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Supervisor {
    /// Starts the watchdog thread.
    ///
    /// - `check` says whether the broker serves, or why not.
    /// - `restart(reason, stopping)` restarts the broker and says whether it serves again;
    ///   while it waits it should poll `stopping()` and give up when it returns true.
    pub(crate) fn spawn<C, R>(
        interval: Duration,
        mut check: C,
        mut restart: R,
    ) -> std::io::Result<Self>
    where
        C: FnMut() -> Result<(), String> + Send + 'static,
        R: FnMut(&str, &dyn Fn() -> bool) -> bool + Send + 'static,
    {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("roomer-mqtt-supervisor".into())
            .spawn(move || {
                let stopping = || !matches!(stopped.try_recv(), Err(TryRecvError::Empty));
                let mut failures = 0u32;
                // Wakes every `interval`; stops as soon as the sender is dropped.
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(interval) {
                    match check() {
                        Ok(()) => failures = 0,
                        Err(reason) => {
                            failures = failures.saturating_add(1);
                            warn!(failures, %reason, "MQTT broker health check failed");
                            // A failed restart leaves `failures` at the threshold, so the next
                            // failed check tries again.
                            if failures >= FAILURES_BEFORE_RESTART && restart(&reason, &stopping) {
                                failures = 0;
                            }
                        }
                    }
                }
                debug!("MQTT broker supervisor stopped");
            })?;
        Ok(Self {
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Stops the watchdog and waits for its thread: at most the length of one health check or
    /// restart under way, never a whole `interval`. Idempotent.
    pub(crate) fn stop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                warn!("the MQTT broker supervisor panicked");
            }
        }
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;
    use std::time::Instant;

    const TICK: Duration = Duration::from_millis(5);

    /// Polls `done` for up to five seconds.
    fn eventually(done: impl Fn() -> bool) -> bool {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if done() {
                return true;
            }
            std::thread::sleep(TICK);
        }
        done()
    }

    #[test]
    fn a_single_failed_check_does_not_restart() {
        let checks = Arc::new(AtomicU32::new(0));
        let restarts = Arc::new(AtomicU32::new(0));
        let (c, r) = (checks.clone(), restarts.clone());
        // Fails every other check: never twice in a row.
        let mut supervisor = Supervisor::spawn(
            TICK,
            move || match c.fetch_add(1, Ordering::SeqCst) % 2 {
                0 => Err("flaky".into()),
                _ => Ok(()),
            },
            move |_, _| {
                r.fetch_add(1, Ordering::SeqCst);
                true
            },
        )
        .unwrap();
        assert!(eventually(|| checks.load(Ordering::SeqCst) >= 20));
        supervisor.stop();
        assert_eq!(restarts.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn consecutive_failures_restart_once_and_a_failed_restart_is_retried() {
        let restarts = Arc::new(AtomicU32::new(0));
        let healthy = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (r, h) = (restarts.clone(), healthy.clone());
        let h2 = healthy.clone();
        let _supervisor = Supervisor::spawn(
            TICK,
            move || {
                if h2.load(Ordering::SeqCst) {
                    Ok(())
                } else {
                    Err("wedged".into())
                }
            },
            move |reason, _| {
                assert_eq!(reason, "wedged");
                // The first restart fails; the second heals the broker.
                let n = r.fetch_add(1, Ordering::SeqCst) + 1;
                h.store(n >= 2, Ordering::SeqCst);
                n >= 2
            },
        )
        .unwrap();
        assert!(eventually(|| healthy.load(Ordering::SeqCst)));
        // Healthy from now on: no further restarts.
        std::thread::sleep(TICK * 20);
        assert_eq!(restarts.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn stopping_does_not_wait_for_the_interval() {
        let mut supervisor =
            Supervisor::spawn(Duration::from_secs(3600), || Ok(()), |_, _| true).unwrap();
        let started = Instant::now();
        supervisor.stop();
        assert!(started.elapsed() < Duration::from_secs(1));
    }

    #[test]
    fn a_restart_under_way_sees_the_stop_request() {
        let (entered_tx, entered) = mpsc::channel();
        let supervisor = Supervisor::spawn(
            TICK,
            || Err("wedged".into()),
            move |_, stopping| {
                let _ = entered_tx.send(());
                // A restart that would wait for ever unless told to stop.
                while !stopping() {
                    std::thread::sleep(TICK);
                }
                false
            },
        )
        .unwrap();
        entered
            .recv_timeout(Duration::from_secs(5))
            .expect("a restart began");
        let started = Instant::now();
        drop(supervisor);
        assert!(started.elapsed() < Duration::from_secs(1));
    }
}
