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

mod gate;
mod ledger;
mod link;

pub(crate) use ledger::Ledger;

use crate::access::{Denial, Gatekeeper, Identity};
use crate::meters;
use bytes::BytesMut;
use rumqttd::local::{LinkBuilder, LinkError, LinkRx, LinkTx};
use rumqttd::protocol::{ConnAck, ConnectReturnCode, LastWill, Packet, Protocol};
use rumqttd::Notification;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tracing::{debug, info, warn};

/// The first read buffer of a connection; it grows to the packet being read and shrinks back
/// after a large one (see [`link`]).
const INITIAL_READ_BYTES: usize = 256;
/// How long writing one burst of packets to a client may take before it counts as gone.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
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

/// Accepts connections on `listener` for ever, each served by a task of its own.
pub(crate) async fn serve<P>(
    listener: TcpListener,
    protocol: P,
    settings: Arc<LinkSettings>,
    router: Router,
) where
    P: Protocol + Clone + Send + Sync + 'static,
{
    loop {
        match listener.accept().await {
            Ok((socket, peer)) => {
                meters::accepted();
                let _ = socket.set_nodelay(true);
                let (protocol, settings, router) =
                    (protocol.clone(), settings.clone(), router.clone());
                tokio::spawn(async move {
                    let conn = Connection::new(socket, protocol, settings.max_packet_bytes);
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
            Self::Access(Denial::BadLogin) => ConnectReturnCode::BadUserNamePassword,
            Self::Access(Denial::NotAuthorized) => ConnectReturnCode::NotAuthorized,
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

/// A client's socket with MQTT framing: rumqttd's codec over buffers that start small.
pub(crate) struct Connection<P> {
    socket: TcpStream,
    read: BytesMut,
    write: BytesMut,
    protocol: P,
    max_packet_bytes: usize,
}

/// Why a connection's socket stopped serving.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LinkEnd {
    #[error("closed by the client")]
    Closed,
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("malformed packet: {0}")]
    Protocol(rumqttd::protocol::Error),
    #[error("no packet within 1.5 × the keep-alive")]
    KeepAlive,
    #[error("writing to the client timed out")]
    WriteTimeout,
    #[error("a message waited too long to be stored; the client will send it again")]
    NotStored,
    /// MQTT: a topic name in PUBLISH has no wildcards (and here no NUL), and is not empty
    /// unless a topic alias stands for it; the server closes the connection.
    #[error("published to an invalid topic name {0:?}")]
    BadTopic(String),
    #[error("published to {0:?}, which this client may not")]
    Denied(String),
    #[error("its secret was replaced or withdrawn")]
    Revoked,
}

impl<P: Protocol> Connection<P> {
    fn new(socket: TcpStream, protocol: P, max_packet_bytes: usize) -> Self {
        Self {
            socket,
            read: BytesMut::with_capacity(INITIAL_READ_BYTES),
            write: BytesMut::new(),
            protocol,
            max_packet_bytes,
        }
    }

    /// Reads until one whole packet is buffered and returns it.
    async fn read_packet(&mut self) -> Result<Packet, LinkEnd> {
        loop {
            if let Some((packet, _)) = self.next_buffered()? {
                return Ok(packet);
            }
            self.fill().await?;
        }
    }

    /// The next packet already in the read buffer, if a whole one is there, with its packet
    /// id when it is a QoS 1 or 2 PUBLISH (rumqttd keeps that private).
    fn next_buffered(&mut self) -> Result<Option<(Packet, Option<u16>)>, LinkEnd> {
        let pkid = publish_pkid(&self.read);
        match self
            .protocol
            .read_mut(&mut self.read, self.max_packet_bytes)
        {
            Ok(packet) => Ok(Some((packet, pkid))),
            Err(rumqttd::protocol::Error::InsufficientBytes(more)) => {
                self.read.reserve(more);
                Ok(None)
            }
            Err(e) => Err(LinkEnd::Protocol(e)),
        }
    }

    /// Reads what the socket has (at least one byte). Cancel-safe.
    async fn fill(&mut self) -> Result<(), LinkEnd> {
        if self.read.is_empty() && self.read.capacity() > 64 * 1024 {
            // A bulk upload went through: give its memory back.
            self.read = BytesMut::with_capacity(INITIAL_READ_BYTES);
        }
        match self.socket.read_buf(&mut self.read).await? {
            0 => Err(LinkEnd::Closed),
            _ => Ok(()),
        }
    }

    /// Encodes and writes `packets` in one go.
    async fn write(&mut self, packets: impl IntoIterator<Item = Packet>) -> Result<(), LinkEnd> {
        for packet in packets {
            self.encode(packet)?;
        }
        self.flush().await
    }

    /// Appends `packet` to what [`flush`](Self::flush) writes next; returns the packet id it
    /// was encoded with when it is a QoS 1 or 2 PUBLISH.
    fn encode(&mut self, packet: Packet) -> Result<Option<u16>, LinkEnd> {
        let start = self.write.len();
        self.protocol
            .write(packet, &mut self.write)
            .map_err(LinkEnd::Protocol)?;
        Ok(publish_pkid(&self.write[start..]))
    }

    /// Writes what was encoded.
    async fn flush(&mut self) -> Result<(), LinkEnd> {
        let written = tokio::time::timeout(WRITE_TIMEOUT, self.socket.write_all(&self.write)).await;
        if self.write.capacity() > 64 * 1024 {
            self.write = BytesMut::new();
        } else {
            self.write.clear();
        }
        match written {
            Ok(result) => Ok(result?),
            Err(_) => Err(LinkEnd::WriteTimeout),
        }
    }
}

/// The packet id of the QoS 1 or 2 PUBLISH that `frame` starts with, if it does and enough of
/// it is there: fixed header, remaining length (1 to 4 bytes), topic (length-prefixed), then
/// the packet id, in MQTT 3.1.1 and 5 alike.
fn publish_pkid(frame: &[u8]) -> Option<u16> {
    let first = *frame.first()?;
    if first >> 4 != 3 || (first >> 1) & 0b11 == 0 {
        return None;
    }
    let mut at = 1;
    loop {
        let byte = *frame.get(at)?;
        at += 1;
        if byte & 0x80 == 0 {
            break;
        }
        if at > 4 {
            return None;
        }
    }
    let topic_len = u16::from_be_bytes([*frame.get(at)?, *frame.get(at + 1)?]) as usize;
    at += 2 + topic_len;
    Some(u16::from_be_bytes([*frame.get(at)?, *frame.get(at + 1)?]))
}

/// The will of a connection, as the publish that announces it.
fn will_publish(will: LastWill) -> Packet {
    let publish = rumqttd::protocol::Publish::new(will.topic, will.message, will.retain);
    Packet::Publish(publish, None)
}

#[cfg(test)]
mod tests {
    use super::publish_pkid;

    #[test]
    fn packet_ids_are_read_from_qos1_publishes_only() {
        // QoS 1 PUBLISH, topic "a/b", packet id 0x0102, payload "x".
        let qos1 = [0x32, 8, 0, 3, b'a', b'/', b'b', 1, 2, b'x'];
        assert_eq!(publish_pkid(&qos1), Some(0x0102));
        // QoS 0 has no packet id; a PUBACK is not a PUBLISH; a cut frame is not enough.
        assert_eq!(publish_pkid(&[0x30, 6, 0, 3, b'a', b'/', b'b', b'x']), None);
        assert_eq!(publish_pkid(&[0x40, 2, 0, 1]), None);
        assert_eq!(publish_pkid(&qos1[..7]), None);
        assert_eq!(publish_pkid(&[]), None);
        // A two-byte remaining length.
        let mut long = vec![0x32, 0x80, 0x01, 0, 1, b't', 0, 9];
        long.extend(std::iter::repeat_n(b'p', 123));
        assert_eq!(publish_pkid(&long), Some(9));
    }
}
