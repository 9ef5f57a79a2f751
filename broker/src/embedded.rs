//! The broker's lifecycle: start on a runtime of its own, report its address, restart when
//! wedged, stop for good.

use crate::config::BrokerConfig;
use crate::error::BrokerError;
use crate::ready::{self, Protocol};
use crate::supervisor::Supervisor;
use rumqttd::protocol::{v4::V4, v5::V5};
use rumqttd::{LinkType, Router, Server};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;
use tracing::{debug, error, info, warn};

/// How long `start` waits for the listeners to complete an MQTT handshake.
const READY_TIMEOUT: Duration = Duration::from_secs(5);
/// How often `start` retries the handshake meanwhile.
const READY_POLL: Duration = Duration::from_millis(10);
/// How long `shutdown` waits for the broker's worker threads to drop every connection.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);
/// How long each step of a health check's handshake may take. Generous, so that a broker busy
/// under load is not mistaken for a wedged one (a wedged rumqttd closes the socket at once).
const HEALTH_PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// The shortest health interval honoured: a shorter one would only spin.
const MIN_HEALTH_INTERVAL: Duration = Duration::from_millis(10);

/// A running rumqttd broker. Stopping it (with [`shutdown`](Self::shutdown) or by dropping it)
/// closes its listeners and every client connection: clients see a reset and reconnect, their
/// last wills are *not* published, and retained messages and sessions are lost.
///
/// Unless [`BrokerConfig::health_interval`] is `None`, a supervisor thread checks the broker
/// with an MQTT handshake and restarts it in place (same addresses) when it stops answering;
/// see [`supervisor`](crate::supervisor). A restart loses what a stop loses.
pub struct EmbeddedBroker {
    local_addr: SocketAddr,
    local_addr_v5: Option<SocketAddr>,
    /// The broker serving now, swapped by the supervisor on a restart; `None` only after a
    /// failed restart (until the next one succeeds) and once stopped.
    instance: Arc<Mutex<Option<Instance>>>,
    supervisor: Option<Supervisor>,
    restarts: Arc<AtomicU64>,
}

impl EmbeddedBroker {
    /// Starts the router and the listeners, and returns once the MQTT 3.1.1 listener (and the
    /// MQTT 5 one, if configured) completes a CONNECT/CONNACK handshake. Fails fast when an
    /// address is taken, and after a few seconds if the broker never answers. Then starts the
    /// supervisor, if configured.
    ///
    /// Blocks the calling thread while it waits; from async code prefer [`run`], or call this
    /// through `tokio::task::spawn_blocking`.
    pub fn start(config: BrokerConfig) -> Result<Self, BrokerError> {
        warn!(
            "the embedded MQTT broker keeps retained messages and sessions in memory only: \
             a restart forgets them, and clients must republish what was not acknowledged"
        );
        let v4_addr = reserve(config.listen)?;
        let v5_addr = config.listen_v5.map(reserve).transpose()?;
        // From here on, dropping `instance` on an error path stops what was started.
        let instance = Instance::start(&config, v4_addr, v5_addr, &|| false)?;
        info!(mqtt = %v4_addr, mqtt_v5 = ?v5_addr, "embedded MQTT broker ready");
        let instance = Arc::new(Mutex::new(Some(instance)));
        let restarts = Arc::new(AtomicU64::new(0));
        let supervisor = match config.health_interval {
            Some(interval) => Some(
                supervise(
                    interval,
                    config,
                    v4_addr,
                    v5_addr,
                    instance.clone(),
                    restarts.clone(),
                )
                .map_err(BrokerError::Supervisor)?,
            ),
            None => None,
        };
        Ok(Self {
            local_addr: v4_addr,
            local_addr_v5: v5_addr,
            instance,
            supervisor,
            restarts,
        })
    }

    /// The MQTT 3.1.1 listener's address (with the real port when port 0 was asked for).
    /// A restart keeps it.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The MQTT 5 listener's address, when one was configured. A restart keeps it.
    pub fn local_addr_v5(&self) -> Option<SocketAddr> {
        self.local_addr_v5
    }

    /// How many times the supervisor has restarted the broker because it stopped answering
    /// (successful restarts only).
    pub fn restarts(&self) -> u64 {
        self.restarts.load(Ordering::Relaxed)
    }

    /// Stops the supervisor, then the broker, and waits (a few seconds at most) until its
    /// ports are free again. Dropping the broker does the same.
    pub fn shutdown(self) {
        drop(self);
    }
}

impl Drop for EmbeddedBroker {
    fn drop(&mut self) {
        // The supervisor first, so that it cannot restart what is being stopped.
        if let Some(mut supervisor) = self.supervisor.take() {
            supervisor.stop();
        }
        let instance = self
            .instance
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(instance) = instance {
            drop(instance);
            info!(mqtt = %self.local_addr, "embedded MQTT broker stopped");
        }
    }
}

/// One incarnation of the broker: a router and its servers on a tokio runtime of their own.
/// Dropping it stops them (see [`stop`]).
struct Instance {
    runtime: Option<Runtime>,
}

impl Instance {
    /// Starts a router and servers on these concrete addresses and waits until they answer an
    /// MQTT handshake, or until `stopping()` says to give up.
    fn start(
        config: &BrokerConfig,
        v4_addr: SocketAddr,
        v5_addr: Option<SocketAddr>,
        stopping: &dyn Fn() -> bool,
    ) -> Result<Self, BrokerError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(worker_threads())
            .thread_name("roomer-mqtt")
            .enable_all()
            .build()
            .map_err(BrokerError::Runtime)?;
        // A fresh router on every start: one kept from an earlier broker would still hold that
        // broker's killed connections (and, after a wedge, its poisoned state). rumqttd's
        // router thread never exits, so each start leaves one idle thread behind, still holding
        // what that router had in memory; acceptable for the few restarts a process does.
        let router_tx = Router::new(0, config.router()).spawn();
        let (failed_tx, failed_rx) = mpsc::channel();
        let server = Server::new(config.server("v4", v4_addr), router_tx.clone(), V4);
        spawn_server(&runtime, server, v4_addr, failed_tx.clone());
        if let Some(addr) = v5_addr {
            let server = Server::new(config.server("v5", addr), router_tx, V5);
            spawn_server(&runtime, server, addr, failed_tx);
        }
        let instance = Self {
            runtime: Some(runtime),
        };
        wait_ready(v4_addr, Protocol::V4, &failed_rx, stopping)?;
        if let Some(addr) = v5_addr {
            wait_ready(addr, Protocol::V5, &failed_rx, stopping)?;
        }
        Ok(instance)
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            stop(runtime);
        }
    }
}

/// Starts the supervisor: it probes every listener, and restarts the broker in `instance` on
/// the same addresses when the probes keep failing.
fn supervise(
    interval: Duration,
    config: BrokerConfig,
    v4_addr: SocketAddr,
    v5_addr: Option<SocketAddr>,
    instance: Arc<Mutex<Option<Instance>>>,
    restarts: Arc<AtomicU64>,
) -> std::io::Result<Supervisor> {
    let check = move || {
        ready::probe_within(v4_addr, Protocol::V4, HEALTH_PROBE_TIMEOUT)
            .map_err(|e| format!("MQTT 3.1.1 listener {v4_addr}: {e}"))?;
        if let Some(addr) = v5_addr {
            ready::probe_within(addr, Protocol::V5, HEALTH_PROBE_TIMEOUT)
                .map_err(|e| format!("MQTT 5 listener {addr}: {e}"))?;
        }
        Ok(())
    };
    let restart = move |reason: &str, stopping: &dyn Fn() -> bool| {
        error!(
            mqtt = %v4_addr,
            mqtt_v5 = ?v5_addr,
            %reason,
            "the embedded MQTT broker stopped answering MQTT handshakes (rumqttd 0.20 wedge, \
             bytebeamio/rumqtt#1062?): restarting it on the same address(es); its in-memory \
             sessions, subscriptions, retained messages and queued messages are lost, and \
             clients must reconnect"
        );
        let mut slot = instance.lock().unwrap_or_else(PoisonError::into_inner);
        // Stop the old broker first: the new one needs its ports.
        drop(slot.take());
        match Instance::start(&config, v4_addr, v5_addr, stopping) {
            Ok(fresh) => {
                *slot = Some(fresh);
                let restarts = restarts.fetch_add(1, Ordering::Relaxed) + 1;
                warn!(mqtt = %v4_addr, restarts, "embedded MQTT broker restarted");
                true
            }
            Err(e) => {
                error!(
                    mqtt = %v4_addr,
                    error = %e,
                    "restarting the embedded MQTT broker failed; retrying at the next failed \
                     health check"
                );
                false
            }
        }
    };
    Supervisor::spawn(interval.max(MIN_HEALTH_INTERVAL), check, restart)
}

/// Runs a broker until `shutdown` completes, e.g. `run(config, ctrl_c)` in a binary.
///
/// Starting and stopping block (the readiness handshake, joining the broker's threads), so
/// both happen on tokio's blocking pool rather than on the caller's async worker.
pub async fn run(
    config: BrokerConfig,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), BrokerError> {
    let broker = tokio::task::spawn_blocking(move || EmbeddedBroker::start(config))
        .await
        .map_err(|e| BrokerError::Task(e.to_string()))??;
    shutdown.await;
    tokio::task::spawn_blocking(move || broker.shutdown())
        .await
        .map_err(|e| BrokerError::Task(e.to_string()))
}

/// Checks that `addr` can be bound now, and turns port 0 into a concrete free port.
///
/// rumqttd binds inside its server task and only logs a failure, so a taken port is detected
/// here instead, where it can become an error. The probe listener is closed before rumqttd
/// binds: another process could take the port in between, which `wait_ready` then reports.
fn reserve(addr: SocketAddr) -> Result<SocketAddr, BrokerError> {
    let listener = TcpListener::bind(addr).map_err(|source| BrokerError::Bind { addr, source })?;
    listener
        .local_addr()
        .map_err(|source| BrokerError::Bind { addr, source })
}

fn spawn_server<P>(
    runtime: &Runtime,
    mut server: Server<P>,
    addr: SocketAddr,
    failed: mpsc::Sender<(SocketAddr, String)>,
) where
    P: rumqttd::protocol::Protocol + Clone + Send + Sync + 'static,
{
    runtime.spawn(async move {
        // `start` loops for ever once bound; it only returns on a bind error.
        if let Err(e) = server.start(LinkType::Remote).await {
            warn!(%addr, error = %e, "MQTT server stopped");
            let _ = failed.send((addr, e.to_string()));
        }
    });
}

/// Polls the listener on `addr` with handshakes until one succeeds, its server task fails,
/// `READY_TIMEOUT` passes or `stopping()` says to give up (reported as `NotReady` too).
fn wait_ready(
    addr: SocketAddr,
    protocol: Protocol,
    failed: &mpsc::Receiver<(SocketAddr, String)>,
    stopping: &dyn Fn() -> bool,
) -> Result<(), BrokerError> {
    let started = Instant::now();
    loop {
        if let Ok((addr, message)) = failed.try_recv() {
            return Err(BrokerError::Server { addr, message });
        }
        match ready::probe(addr, protocol) {
            Ok(()) => return Ok(()),
            Err(e) if started.elapsed() >= READY_TIMEOUT || stopping() => {
                debug!(%addr, error = %e, "MQTT readiness probe gave up");
                return Err(BrokerError::NotReady {
                    addr,
                    waited: started.elapsed(),
                });
            }
            Err(_) => std::thread::sleep(READY_POLL),
        }
    }
}

/// Shuts a runtime down and waits for its workers to drop every task (and so every socket).
///
/// Waiting blocks, which tokio forbids on an async worker thread (it panics), so the wait
/// happens on a plain thread of its own and the caller only joins it.
fn stop(runtime: Runtime) {
    let stopper = std::thread::Builder::new()
        .name("roomer-mqtt-stop".into())
        .spawn(move || runtime.shutdown_timeout(SHUTDOWN_TIMEOUT));
    match stopper {
        Ok(handle) => {
            if handle.join().is_err() {
                warn!("stopping the MQTT broker's runtime panicked");
            }
        }
        Err(e) => warn!(error = %e, "cannot spawn a thread to stop the MQTT broker"),
    }
}

/// Two workers at most: the broker mostly waits on sockets, and shares the machine with the
/// ingest workers and the database.
fn worker_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(2))
}
