//! Roomer's MQTT front end: the listeners clients connect to, in front of rumqttd's router.
//!
//! rumqttd 0.20's own `Server` is what wedges under connect storms (bytebeamio/rumqtt#1062):
//! it registers a last-will handler per client id in a map shared by the whole listener, a
//! connection whose router registration fails leaves its handler behind, and the next CONNECT
//! with that client id panics while holding the map's mutex, poisoning it for every later
//! connection. Its registration also blocks a runtime thread until the router answers, so a
//! storm of CONNECTs starves the listener of threads and clients give up waiting for CONNACK.
//!
//! This module replaces that `Server` with Roomer's own, built only on rumqttd's public API
//! (its packet codec and `LinkBuilder`), and keeps the router, where sessions, subscriptions,
//! retained messages and the logs live:
//! - each CONNECT is read and checked here, before the router sees it: a client id the router
//!   would refuse, or one connection too many, gets a CONNACK that says so (and is counted in
//!   [`meters`](crate::meters)) instead of a silent drop;
//! - the registration that waits for the router runs on tokio's blocking pool, so a storm
//!   never blocks the threads that accept and read sockets;
//! - connections share nothing but counters, so no client can poison another;
//! - last wills are published here when a connection ends without DISCONNECT.
//!
//! The per-connection packet pump is in [`link`].

mod connection;
mod gate;
mod ledger;
mod link;

pub(crate) use connection::{Connection, LinkEnd};

pub(crate) use ledger::Ledger;

use crate::access::{Denial, Gatekeeper, Identity};
use crate::meters;
use rumqttd::local::{LinkBuilder, LinkError, LinkRx, LinkTx};
use rumqttd::protocol::{ConnAck, ConnectReturnCode, LastWill, Packet, Protocol};
use rumqttd::Notification;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tracing::{debug, info, warn};

/// Characters rumqttd's router refuses in a client id (it drops such a connection without a
/// CONNACK): they would make session and topic bookkeeping ambiguous.
const FORBIDDEN_IN_CLIENT_ID: [char; 4] = ['/', '+', '#', '$'];

/// What every connection of a listener is held to.
#[derive(Clone)]
pub(crate) struct LinkSettings {
    /// Who may connect, publish and subscribe.
    pub gatekeeper: Arc<Gatekeeper>,
    /// Time allowed between opening TCP and a complete CONNECT.
    pub connect_timeout: Duration,
    /// The largest packet accepted (a bigger one closes the connection).
    pub max_packet_bytes: usize,
    /// Connections beyond this get CONNACK "server unavailable".
    pub max_connections: usize,
    /// Packets handed to the router in one go.
    pub max_batch: usize,
    /// Acknowledge DPU messages only once a client whose id starts with this (an ingest
    /// worker) has acknowledged them: see [`gate`].
    pub store_readers: Option<String>,
    /// How long a DPU's message may wait to be stored before its connection is closed so
    /// that it sends the message again.
    pub store_timeout: Duration,
}

/// Registers a connection with the router. rumqttd's router channel type is not nameable
/// outside rumqttd, so the handle is kept as a closure over it.
#[derive(Clone)]
pub(crate) struct Router {
    register: Arc<Register>,
    /// Whether the router thread still runs (it never stops unless it panicked).
    alive: Arc<dyn Fn() -> bool + Send + Sync>,
    /// Set by tests to play a router that died.
    #[cfg_attr(not(feature = "testing"), allow(dead_code))]
    killed: Arc<std::sync::atomic::AtomicBool>,
    /// What the router holds unconfirmed, should it die.
    pub(crate) ledger: Arc<Ledger>,
    /// DPU messages whose PUBACK waits for the store (when acknowledging after store).
    pub(crate) gate: Arc<gate::Gate>,
    /// Serial numbers of connections, for the gate.
    serials: Arc<AtomicU64>,
    /// Connections registered and not yet ended, on every listener of this router.
    open: Arc<AtomicUsize>,
    /// For client ids the front end assigns to clients that sent none.
    assigned: Arc<AtomicU64>,
}

/// A registered connection's two halves and the router's CONNACK.
type Registration = (LinkTx, LinkRx, Notification);
type Register = dyn Fn(&str, bool) -> Option<Registration> + Send + Sync;

impl Router {
    /// Spawns rumqttd's router thread with `config` and returns the handle to it.
    pub(crate) fn spawn(config: rumqttd::RouterConfig) -> Self {
        let router_tx = rumqttd::Router::new(0, config).spawn();
        let watched = router_tx.clone();
        let killed = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let dead = killed.clone();
        Self {
            alive: Arc::new(move || !watched.is_disconnected() && !dead.load(Ordering::Acquire)),
            killed,
            ledger: Arc::default(),
            gate: Arc::default(),
            serials: Arc::default(),
            register: Arc::new(move |client_id, clean_session| {
                let built = LinkBuilder::new(client_id, router_tx.clone())
                    .clean_session(clean_session)
                    .dynamic_filters(true)
                    .build();
                built
                    .map_err(|e: LinkError| warn!(client_id, error = %e, "the router refused"))
                    .ok()
            }),
            open: Arc::new(AtomicUsize::new(0)),
            assigned: Arc::new(AtomicU64::new(0)),
        }
    }

    /// False once the router thread has died (rumqttd panicked): everything it held is gone.
    pub(crate) fn is_alive(&self) -> bool {
        (self.alive)()
    }

    /// Plays a router that died, for the tests of what a restart loses.
    #[cfg(feature = "testing")]
    pub(crate) fn kill(&self) {
        self.killed.store(true, Ordering::Release);
    }

    /// Registers on the blocking pool: `LinkBuilder::build` waits on the router thread.
    async fn register(&self, client_id: String, clean_session: bool) -> Option<Registration> {
        let register = self.register.clone();
        tokio::task::spawn_blocking(move || register(&client_id, clean_session))
            .await
            .ok()
            .flatten()
    }
}

/// Accepts connections on `listener` for ever, each served by a task of its own; with `tls`,
/// each completes a TLS handshake first (within the connect timeout).
pub(crate) async fn serve<P>(
    listener: TcpListener,
    protocol: P,
    settings: Arc<LinkSettings>,
    router: Router,
    tls: Option<TlsAcceptor>,
) where
    P: Protocol + Clone + Send + Sync + 'static,
{
    loop {
        match listener.accept().await {
            Ok((socket, peer)) => {
                meters::accepted();
                let _ = socket.set_nodelay(true);
                let (protocol, settings, router, tls) = (
                    protocol.clone(),
                    settings.clone(),
                    router.clone(),
                    tls.clone(),
                );
                tokio::spawn(async move {
                    let Some(stream) = secure(socket, peer, tls, settings.connect_timeout).await
                    else {
                        return;
                    };
                    let conn = Connection::new(stream, protocol, settings.max_packet_bytes);
                    serve_connection(conn, peer, &settings, &router).await;
                });
            }
            Err(e) => {
                // Out of file descriptors, typically: wait for connections to end.
                warn!(error = %e, "cannot accept an MQTT connection");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// The socket as the client's byte stream: as it is, or once a TLS handshake within
/// `timeout` succeeded (`None` otherwise: logged at DEBUG, as port scanners fail it too, and
/// counted).
async fn secure(
    socket: TcpStream,
    peer: SocketAddr,
    tls: Option<TlsAcceptor>,
    timeout: Duration,
) -> Option<Box<dyn connection::ByteStream>> {
    let Some(acceptor) = tls else {
        return Some(Box::new(socket));
    };
    match tokio::time::timeout(timeout, acceptor.accept(socket)).await {
        Ok(Ok(stream)) => Some(Box::new(stream)),
        Ok(Err(e)) => {
            debug!(%peer, error = %e, "TLS handshake failed");
            meters::tls_failed();
            None
        }
        Err(_) => {
            debug!(%peer, "no TLS handshake within the connect timeout");
            meters::tls_failed();
            None
        }
    }
}

/// Why a CONNECT was refused, for the log and the meters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The client id holds a character the router cannot take.
    ClientId,
    /// No client id, but a persistent session asked for.
    EmptyClientIdWithSession,
    /// `max_connections` are open.
    Full,
    /// The router did not register the connection.
    Router,
    /// The access rules refused it.
    Access(Denial),
}

impl Refusal {
    fn code(self) -> ConnectReturnCode {
        match self {
            Self::ClientId | Self::EmptyClientIdWithSession => {
                ConnectReturnCode::ClientIdentifierNotValid
            }
            Self::Full | Self::Router | Self::Access(Denial::Unavailable) => {
                ConnectReturnCode::ServiceUnavailable
            }
            // As Mosquitto answers: "not authorized" whatever was wrong with the login (the
            // log says which).
            Self::Access(Denial::BadLogin | Denial::NotAuthorized) => {
                ConnectReturnCode::NotAuthorized
            }
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::ClientId => "client_id",
            Self::EmptyClientIdWithSession => "empty_client_id",
            Self::Full => "full",
            Self::Router => "router",
            Self::Access(Denial::BadLogin) => "bad_login",
            Self::Access(Denial::NotAuthorized) => "not_authorized",
            Self::Access(Denial::Unavailable) => "secrets_unavailable",
        }
    }
}

/// The checks a CONNECT must pass before the router sees it.
pub(crate) fn check_client_id(client_id: &str, clean_session: bool) -> Result<(), Refusal> {
    if client_id.is_empty() && !clean_session {
        return Err(Refusal::EmptyClientIdWithSession);
    }
    if client_id.contains(FORBIDDEN_IN_CLIENT_ID) {
        return Err(Refusal::ClientId);
    }
    Ok(())
}

async fn serve_connection<P: Protocol>(
    mut conn: Connection<P>,
    peer: SocketAddr,
    settings: &LinkSettings,
    router: &Router,
) {
    let first = tokio::time::timeout(settings.connect_timeout, conn.read_packet()).await;
    let (connect, will, login) = match first {
        Ok(Ok(Packet::Connect(connect, _, will, _, login))) => (connect, will, login),
        Ok(Ok(other)) => {
            debug!(%peer, packet = ?other, "MQTT connection did not start with CONNECT");
            meters::connect_failed();
            return;
        }
        Ok(Err(e)) => {
            debug!(%peer, error = %e, "MQTT connection ended before its CONNECT");
            meters::connect_failed();
            return;
        }
        Err(_) => {
            debug!(%peer, "no CONNECT within the connect timeout");
            meters::connect_failed();
            return;
        }
    };
    let mut client_id = connect.client_id;
    if let Err(refusal) = check_client_id(&client_id, connect.clean_session) {
        return refuse(conn, peer, &client_id, refusal).await;
    }
    let gatekeeper = &settings.gatekeeper;
    let login_pair = login
        .as_ref()
        .map(|l| (l.username.as_str(), l.password.as_str()));
    let will_topic = will.as_ref().map(|w| &w.topic[..]);
    let identity = match gatekeeper.admit(&client_id, login_pair, will_topic).await {
        Ok(identity) => identity,
        Err(denial) => {
            meters::unauthorized();
            return refuse(conn, peer, &client_id, Refusal::Access(denial)).await;
        }
    };
    let assigned = client_id.is_empty();
    if assigned {
        let n = router.assigned.fetch_add(1, Ordering::Relaxed);
        client_id = format!("roomer-assigned-{n}");
    }
    // Counted as open from here, so that a storm cannot overshoot the limit.
    let open = OpenSlot::take(&router.open, settings.max_connections);
    let Some(open) = open else {
        return refuse(conn, peer, &client_id, Refusal::Full).await;
    };
    let registered = router
        .register(client_id.clone(), connect.clean_session)
        .await;
    let Some((link_tx, link_rx, ack)) = registered else {
        drop(open);
        return refuse(conn, peer, &client_id, Refusal::Router).await;
    };
    let mut connack = Option::<Packet>::from(ack);
    if let (true, Some(Packet::ConnAck(_, props))) = (assigned, connack.as_mut()) {
        props
            .get_or_insert_with(Default::default)
            .assigned_client_identifier = Some(client_id.clone());
    }
    let gate = settings.store_readers.as_deref().map(|prefix| {
        let role = if client_id.starts_with(prefix) && gatekeeper.trusted(&identity) {
            link::GateRole::StoreReader(Default::default())
        } else {
            let serial = router.serials.fetch_add(1, Ordering::Relaxed);
            link::GateRole::Publisher(gate::Release::new(serial))
        };
        (router.gate.clone(), role)
    });
    let session = link::Session {
        client_id,
        keep_alive: Duration::from_secs(connect.keep_alive.into()),
        will,
        max_batch: settings.max_batch,
        ledger: router.ledger.clone(),
        gate,
        store_timeout: settings.store_timeout,
        revocations: match &identity {
            Identity::Dpu(_) => Some(gatekeeper.revocations()),
            _ => None,
        },
        identity,
        gatekeeper: gatekeeper.clone(),
    };
    link::run(conn, connack, link_tx, link_rx, session).await;
    drop(open);
}

async fn refuse<P: Protocol>(
    mut conn: Connection<P>,
    peer: SocketAddr,
    client_id: &str,
    refusal: Refusal,
) {
    info!(%peer, client_id, reason = refusal.as_str(), "MQTT connection refused");
    meters::refused();
    let ack = ConnAck {
        session_present: false,
        code: refusal.code(),
    };
    let _ = conn.write([Packet::ConnAck(ack, None)]).await;
}

/// A place among `max` open connections, given back when dropped.
struct OpenSlot(Arc<AtomicUsize>);

impl OpenSlot {
    fn take(open: &Arc<AtomicUsize>, max: usize) -> Option<Self> {
        open.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            (n < max).then_some(n + 1)
        })
        .ok()
        .map(|_| Self(open.clone()))
    }
}

impl Drop for OpenSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The will of a connection, as the publish that announces it.
fn will_publish(will: LastWill) -> Packet {
    let publish = rumqttd::protocol::Publish::new(will.topic, will.message, will.retain);
    Packet::Publish(publish, None)
}
