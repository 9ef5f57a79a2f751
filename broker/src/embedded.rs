//! The broker's lifecycle: start on a runtime of its own, report its address, restart when
//! wedged, stop for good.

use crate::access::{Access, Gatekeeper};
use crate::config::BrokerConfig;
use crate::error::BrokerError;
use crate::instance::{reserve, Addrs, Instance};
use crate::meters;
use crate::ready::{self, Protocol};
use crate::supervisor::Supervisor;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tracing::{error, info, warn};

/// How long each step of a health check's handshake may take. Generous, so that a broker busy
/// under load is not mistaken for a broken one.
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
    local_addr_tls: Option<SocketAddr>,
    /// The broker serving now, swapped by the supervisor on a restart; `None` only after a
    /// failed restart (until the next one succeeds) and once stopped.
    instance: Arc<Mutex<Option<Instance>>>,
    supervisor: Option<Supervisor>,
    restarts: Arc<AtomicU64>,
    gatekeeper: Arc<Gatekeeper>,
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
        Self::start_with(config, Access::open())
    }

    /// [`start`](Self::start), admitting clients as `access` says.
    pub fn start_with(config: BrokerConfig, access: Access) -> Result<Self, BrokerError> {
        let gatekeeper = Arc::new(Gatekeeper::new(access));
        warn!(
            "the embedded MQTT broker keeps retained messages and sessions in memory only: \
             a restart forgets them, and clients must republish what was not acknowledged"
        );
        let addrs = Addrs {
            v4: reserve(config.listen)?,
            v5: config.listen_v5.map(reserve).transpose()?,
            tls: config.tls.as_ref().map(|t| reserve(t.listen)).transpose()?,
        };
        let (v4_addr, v5_addr, tls_addr) = (addrs.v4, addrs.v5, addrs.tls);
        // From here on, dropping `instance` on an error path stops what was started.
        let instance = Instance::start(&config, &gatekeeper, addrs, &|| false)?;
        info!(mqtt = %v4_addr, mqtt_v5 = ?v5_addr, mqtts = ?tls_addr, "embedded MQTT broker ready");
        let instance = Arc::new(Mutex::new(Some(instance)));
        let restarts = Arc::new(AtomicU64::new(0));
        let supervisor = match config.health_interval {
            Some(interval) => Some(
                supervise(
                    interval,
                    config,
                    gatekeeper.clone(),
                    addrs,
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
            local_addr_tls: tls_addr,
            instance,
            supervisor,
            restarts,
            gatekeeper,
        })
    }

    /// Ends every connection that DPU `dpu` has open: its secret was replaced or withdrawn.
    /// It may connect again with a secret that is current.
    pub fn disconnect_dpu(&self, dpu: &str) {
        self.gatekeeper.revoke(dpu);
    }

    /// A handle that ends DPUs' connections, which outlives a borrow of the broker.
    pub fn dpu_sessions(&self) -> crate::access::DpuSessions {
        crate::access::DpuSessions(self.gatekeeper.clone())
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

    /// The MQTT-over-TLS listener's address, if [`BrokerConfig::tls`] is set.
    pub fn local_addr_tls(&self) -> Option<SocketAddr> {
        self.local_addr_tls
    }

    /// How many times the supervisor has restarted the broker because it stopped answering
    /// (successful restarts only).
    pub fn restarts(&self) -> u64 {
        self.restarts.load(Ordering::Relaxed)
    }

    /// Plays the death of rumqttd's router (no client can cause one any more), so that tests
    /// can check what the supervisor does about it and what it reports lost.
    #[cfg(feature = "testing")]
    pub fn kill_router(&self) {
        let slot = self.instance.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(instance) = slot.as_ref() {
            instance.kill_router();
        }
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

/// Starts the supervisor: it checks the router and probes every listener, and heals the
/// broker in `instance` on the same addresses when the checks keep failing.
fn supervise(
    interval: Duration,
    config: BrokerConfig,
    gatekeeper: Arc<Gatekeeper>,
    addrs: Addrs,
    instance: Arc<Mutex<Option<Instance>>>,
    restarts: Arc<AtomicU64>,
) -> std::io::Result<Supervisor> {
    let (v4_addr, v5_addr) = (addrs.v4, addrs.v5);
    let watched = instance.clone();
    let probe_gate = gatekeeper.clone();
    let check = move || {
        let router_alive = watched
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .is_some_and(Instance::router_alive);
        if !router_alive {
            return Err("the router thread is gone".to_owned());
        }
        let login = Some(probe_gate.probe_login());
        ready::probe_within(v4_addr, Protocol::V4, HEALTH_PROBE_TIMEOUT, login)
            .map_err(|e| format!("MQTT 3.1.1 listener {v4_addr}: {e}"))?;
        if let Some(addr) = v5_addr {
            ready::probe_within(addr, Protocol::V5, HEALTH_PROBE_TIMEOUT, login)
                .map_err(|e| format!("MQTT 5 listener {addr}: {e}"))?;
        }
        Ok(())
    };
    let heal = move |reason: &str, stopping: &dyn Fn() -> bool| {
        let mut slot = instance.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(current) = slot.as_mut().filter(|i| i.router_alive()) {
            warn!(
                mqtt = %v4_addr,
                %reason,
                "the embedded MQTT broker's listener stopped answering: replacing the listener; \
                 the router and every open connection, session and queued message are kept"
            );
            return match current.replace_listeners(stopping) {
                Ok(()) => {
                    meters::listener_replaced();
                    true
                }
                Err(e) => {
                    error!(mqtt = %v4_addr, error = %e, "replacing the MQTT listener failed");
                    false
                }
            };
        }
        // Stop the old broker first: the new one needs its ports.
        if let Some(dead) = slot.take() {
            let lost = dead.held();
            meters::lost_in_restart(lost);
            error!(
                mqtt = %v4_addr,
                %reason,
                lost,
                "the embedded MQTT broker's router died: restarting the broker on the same \
                 address(es); its sessions, subscriptions and retained messages are gone, and \
                 `lost` DPU messages it had acknowledged were never stored"
            );
        }
        match Instance::start(&config, &gatekeeper, addrs, stopping) {
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
    Supervisor::spawn(interval.max(MIN_HEALTH_INTERVAL), check, heal)
}

/// Runs a broker until `shutdown` completes, e.g. `run(config, ctrl_c)` in a binary.
///
/// Starting and stopping block (the readiness handshake, joining the broker's threads), so
/// both happen on tokio's blocking pool rather than on the caller's async worker.
pub async fn run(
    config: BrokerConfig,
    access: Access,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), BrokerError> {
    let broker = tokio::task::spawn_blocking(move || EmbeddedBroker::start_with(config, access))
        .await
        .map_err(|e| BrokerError::Task(e.to_string()))??;
    shutdown.await;
    tokio::task::spawn_blocking(move || broker.shutdown())
        .await
        .map_err(|e| BrokerError::Task(e.to_string()))
}
