//! The broker's lifecycle: start on a runtime of its own, report its address, stop for good.

use crate::config::BrokerConfig;
use crate::error::BrokerError;
use crate::ready::{self, Protocol};
use rumqttd::protocol::{v4::V4, v5::V5};
use rumqttd::{LinkType, Router, Server};
use std::net::{SocketAddr, TcpListener};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;
use tracing::{debug, info, warn};

/// How long `start` waits for the listeners to complete an MQTT handshake.
const READY_TIMEOUT: Duration = Duration::from_secs(5);
/// How often `start` retries the handshake meanwhile.
const READY_POLL: Duration = Duration::from_millis(10);
/// How long `shutdown` waits for the broker's worker threads to drop every connection.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// A running rumqttd broker. Stopping it (with [`shutdown`](Self::shutdown) or by dropping it)
/// closes its listeners and every client connection: clients see a reset and reconnect, their
/// last wills are *not* published, and retained messages and sessions are lost.
pub struct EmbeddedBroker {
    runtime: Option<Runtime>,
    local_addr: SocketAddr,
    local_addr_v5: Option<SocketAddr>,
}

impl EmbeddedBroker {
    /// Starts the router and the listeners, and returns once the MQTT 3.1.1 listener (and the
    /// MQTT 5 one, if configured) completes a CONNECT/CONNACK handshake. Fails fast when an
    /// address is taken, and after a few seconds if the broker never answers.
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
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(worker_threads())
            .thread_name("roomer-mqtt")
            .enable_all()
            .build()
            .map_err(BrokerError::Runtime)?;
        // A fresh router on every start: one kept from an earlier broker would still hold that
        // broker's killed connections. rumqttd's router thread never exits, so each start
        // leaves one idle thread behind; acceptable for the few restarts a process does.
        let router_tx = Router::new(0, config.router()).spawn();
        let (failed_tx, failed_rx) = mpsc::channel();
        let server = Server::new(config.server("v4", v4_addr), router_tx.clone(), V4);
        spawn_server(&runtime, server, v4_addr, failed_tx.clone());
        if let Some(addr) = v5_addr {
            let server = Server::new(config.server("v5", addr), router_tx, V5);
            spawn_server(&runtime, server, addr, failed_tx);
        }
        // From here on, dropping `broker` on an error path stops what was started.
        let broker = Self {
            runtime: Some(runtime),
            local_addr: v4_addr,
            local_addr_v5: v5_addr,
        };
        wait_ready(v4_addr, Protocol::V4, &failed_rx)?;
        if let Some(addr) = v5_addr {
            wait_ready(addr, Protocol::V5, &failed_rx)?;
        }
        info!(mqtt = %v4_addr, mqtt_v5 = ?v5_addr, "embedded MQTT broker ready");
        Ok(broker)
    }

    /// The MQTT 3.1.1 listener's address (with the real port when port 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The MQTT 5 listener's address, when one was configured.
    pub fn local_addr_v5(&self) -> Option<SocketAddr> {
        self.local_addr_v5
    }

    /// Stops the broker and waits (a few seconds at most) until its ports are free again.
    /// Dropping the broker does the same.
    pub fn shutdown(self) {
        drop(self);
    }
}

impl Drop for EmbeddedBroker {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            stop(runtime);
            info!(mqtt = %self.local_addr, "embedded MQTT broker stopped");
        }
    }
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

fn wait_ready(
    addr: SocketAddr,
    protocol: Protocol,
    failed: &mpsc::Receiver<(SocketAddr, String)>,
) -> Result<(), BrokerError> {
    let started = Instant::now();
    loop {
        if let Ok((addr, message)) = failed.try_recv() {
            return Err(BrokerError::Server { addr, message });
        }
        match ready::probe(addr, protocol) {
            Ok(()) => return Ok(()),
            Err(e) if started.elapsed() >= READY_TIMEOUT => {
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
