//! One incarnation of the broker: rumqttd's router and Roomer's listeners in front of it, on a
//! tokio runtime of their own.
//!
//! Two ways to heal, from the cheaper:
//! - [`Instance::replace_listeners`]: new listeners on the same addresses, the same router.
//!   Connections already open, sessions, subscriptions, retained messages and the logs stay.
//! - a whole new instance, when the router thread has died: everything it held is gone, and
//!   [`Instance::held`] says how many acknowledged DPU messages that was.

use crate::access::Gatekeeper;
use crate::config::BrokerConfig;
use crate::error::BrokerError;
use crate::front::{self, LinkSettings};
use crate::ready::{self, Protocol};
use crate::tls;
use rumqttd::protocol::{v4::V4, v5::V5};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpSocket;
use tokio::runtime::Runtime;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tracing::{debug, warn};

/// How long `start` waits for the listeners to complete an MQTT handshake.
const READY_TIMEOUT: Duration = Duration::from_secs(5);
/// How often `start` retries the handshake meanwhile.
const READY_POLL: Duration = Duration::from_millis(10);
/// How long `shutdown` waits for the broker's worker threads to drop every connection.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);
/// The listen backlog asked for; the kernel caps it (`net.core.somaxconn`, 4096 by default).
/// A storm of DPUs connecting at once overflows a short backlog, and each overflowed SYN
/// costs its client a second or more before it retries.
const LISTEN_BACKLOG: u32 = 4096;

/// The addresses an instance listens on: MQTT 3.1.1, and optionally MQTT 5 and MQTT 3.1.1
/// over TLS.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Addrs {
    pub v4: SocketAddr,
    pub v5: Option<SocketAddr>,
    pub tls: Option<SocketAddr>,
}

pub(crate) struct Instance {
    runtime: Option<Runtime>,
    router: front::Router,
    settings: Arc<LinkSettings>,
    listeners: Vec<Listening>,
    /// The TLS listener's handshakes, when there is one.
    tls: Option<TlsAcceptor>,
}

struct Listening {
    addr: SocketAddr,
    protocol: Protocol,
    /// MQTT 3.1.1 over TLS (`protocol` is then V4).
    tls: bool,
    task: JoinHandle<()>,
}

impl Instance {
    /// Starts a router and listeners on these concrete addresses and waits until they answer
    /// an MQTT handshake, or until `stopping()` says to give up.
    pub(crate) fn start(
        config: &BrokerConfig,
        gatekeeper: &Arc<Gatekeeper>,
        addrs: Addrs,
        stopping: &dyn Fn() -> bool,
    ) -> Result<Self, BrokerError> {
        let tls = config.tls.as_ref().map(tls::acceptor).transpose()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(worker_threads())
            .thread_name("roomer-mqtt")
            .enable_all()
            .build()
            .map_err(BrokerError::Runtime)?;
        // A fresh router on every start: rumqttd's router thread never exits, so only a dead
        // one (it panicked) is replaced, and that one holds nothing any more.
        let mut instance = Self {
            runtime: Some(runtime),
            router: front::Router::spawn(config.router()),
            settings: Arc::new(config.link_settings(gatekeeper.clone())),
            listeners: Vec::new(),
            tls,
        };
        let listeners = [(addrs.v4, Protocol::V4, false)]
            .into_iter()
            .chain(addrs.v5.map(|addr| (addr, Protocol::V5, false)))
            .chain(addrs.tls.map(|addr| (addr, Protocol::V4, true)));
        for (addr, protocol, tls) in listeners {
            let task = instance.listen(addr, protocol, tls)?;
            instance.listeners.push(Listening {
                addr,
                protocol,
                tls,
                task,
            });
        }
        instance.wait_ready(stopping)?;
        Ok(instance)
    }

    /// False once rumqttd's router thread has died.
    pub(crate) fn router_alive(&self) -> bool {
        self.router.is_alive()
    }

    /// DPU messages acknowledged to their publishers and not yet to any reader: what would be
    /// lost if this instance went away now.
    pub(crate) fn held(&self) -> u64 {
        self.router.ledger.held()
    }

    /// Replaces every listener with a new one on the same address, keeping the router and
    /// every open connection.
    pub(crate) fn replace_listeners(
        &mut self,
        stopping: &dyn Fn() -> bool,
    ) -> Result<(), BrokerError> {
        for i in 0..self.listeners.len() {
            let (addr, protocol, tls) = (
                self.listeners[i].addr,
                self.listeners[i].protocol,
                self.listeners[i].tls,
            );
            self.listeners[i].task.abort();
            // The old socket closes once the aborted task is dropped, on a runtime thread.
            let started = Instant::now();
            let task = loop {
                match self.listen(addr, protocol, tls) {
                    Ok(task) => break task,
                    Err(e) if started.elapsed() > READY_TIMEOUT || stopping() => return Err(e),
                    Err(_) => std::thread::sleep(READY_POLL),
                }
            };
            self.listeners[i].task = task;
        }
        self.wait_ready(stopping)
    }

    #[cfg(feature = "testing")]
    pub(crate) fn kill_router(&self) {
        self.router.kill();
    }

    /// Binds `addr` (a taken address is an error here rather than a log line) and serves it.
    fn listen(
        &self,
        addr: SocketAddr,
        protocol: Protocol,
        tls: bool,
    ) -> Result<JoinHandle<()>, BrokerError> {
        let runtime = self.runtime.as_ref().expect("running");
        let _context = runtime.enter();
        let bind = || {
            let socket = match addr {
                SocketAddr::V4(_) => TcpSocket::new_v4()?,
                SocketAddr::V6(_) => TcpSocket::new_v6()?,
            };
            socket.set_reuseaddr(true)?;
            socket.bind(addr)?;
            socket.listen(LISTEN_BACKLOG)
        };
        let listener = bind().map_err(|source| BrokerError::Bind { addr, source })?;
        let (settings, router) = (self.settings.clone(), self.router.clone());
        let tls = if tls { self.tls.clone() } else { None };
        Ok(match protocol {
            Protocol::V4 => runtime.spawn(front::serve(listener, V4, settings, router, tls)),
            Protocol::V5 => runtime.spawn(front::serve(listener, V5, settings, router, tls)),
        })
    }

    /// Polls each listener with handshakes until one succeeds, `READY_TIMEOUT` passes or
    /// `stopping()` says to give up (reported as `NotReady` too).
    fn wait_ready(&self, stopping: &dyn Fn() -> bool) -> Result<(), BrokerError> {
        for listening in &self.listeners {
            let (addr, started) = (listening.addr, Instant::now());
            let login = Some(self.settings.gatekeeper.probe_login());
            // The TLS listener is bound once it accepts TCP; its connections are served by
            // the same code the plain probe goes through.
            let probe = || match listening.tls {
                true => std::net::TcpStream::connect_timeout(&addr, READY_POLL * 50).map(drop),
                false => ready::probe(addr, listening.protocol, login),
            };
            while let Err(e) = probe() {
                if started.elapsed() >= READY_TIMEOUT || stopping() {
                    debug!(%addr, error = %e, "MQTT readiness probe gave up");
                    return Err(BrokerError::NotReady {
                        addr,
                        waited: started.elapsed(),
                    });
                }
                std::thread::sleep(READY_POLL);
            }
        }
        Ok(())
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            stop(runtime);
        }
    }
}

/// Binds `addr` once to turn port 0 into a concrete free port, then lets it go: the broker
/// binds it again (and a restart binds the same port).
pub(crate) fn reserve(addr: SocketAddr) -> Result<SocketAddr, BrokerError> {
    let listener =
        std::net::TcpListener::bind(addr).map_err(|source| BrokerError::Bind { addr, source })?;
    listener
        .local_addr()
        .map_err(|source| BrokerError::Bind { addr, source })
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
/// ingest workers and the database. Registering a connection with the router waits on tokio's
/// blocking pool, never on these.
fn worker_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(2))
}
