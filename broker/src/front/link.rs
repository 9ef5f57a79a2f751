//! One connection's packet pump: packets from the socket go to the router in batches, the
//! router's notifications (forwarded publishes, acknowledgements) go to the socket.
//!
//! Every way a connection ends tells the router once, so that it never keeps a connection
//! whose socket is gone: a client's DISCONNECT is forwarded as it came; any other end (the
//! socket closed or failed, a malformed packet, the keep-alive ran out) publishes the client's
//! last will, if it left one, and then disconnects it; when the router itself ended the
//! connection (the same client id connected again), there is nothing to tell.

use super::gate::{Content, Gate, Release};
use super::ledger::{Ledger, Reader, DATA_PREFIX};
use super::{will_publish, Connection, LinkEnd};
use crate::access::{Gatekeeper, Identity};
use crate::meters;
use rumqttd::local::{LinkRx, LinkTx};
use rumqttd::protocol::{Disconnect, DisconnectReasonCode, LastWill, Packet, Protocol};
use rumqttd::protocol::{PubAck, PubAckReason, SubAck, SubscribeReasonCode};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::{debug, warn};

/// What a registered connection carries from its CONNECT.
pub(crate) struct Session {
    pub client_id: String,
    /// Zero: the client asked for no keep-alive.
    pub keep_alive: Duration,
    pub will: Option<LastWill>,
    pub max_batch: usize,
    pub ledger: Arc<Ledger>,
    /// When acknowledging after store: the gate, and this connection's part in it.
    pub gate: Option<(Arc<Gate>, GateRole)>,
    /// How long a message may wait to be stored before the connection is closed.
    pub store_timeout: Duration,
    /// Who the client logged in as, and the rules that says what it may do.
    pub identity: Identity,
    pub gatekeeper: Arc<Gatekeeper>,
    /// For a DPU: the DPUs whose secrets were replaced or withdrawn from now on.
    pub revocations: Option<tokio::sync::broadcast::Receiver<String>>,
}

/// A connection's part in acknowledging after store (see [`super::gate`]).
pub(crate) enum GateRole {
    /// Its data messages are acknowledged once stored.
    Publisher(Release),
    /// An ingest worker: its PUBACKs say a message is stored. The content of each data
    /// message delivered to it, by the packet id it was delivered with.
    StoreReader(HashMap<u16, Content>),
}

/// How a registered connection ended.
enum Ended {
    /// The client sent DISCONNECT (already forwarded to the router).
    ByClient,
    /// The router dropped the connection.
    ByRouter,
    /// The socket or the protocol failed.
    Link(LinkEnd),
}

/// Serves a registered connection until it ends, then tells the router.
pub(super) async fn run<P: Protocol>(
    mut conn: Connection<P>,
    connack: Option<Packet>,
    mut tx: LinkTx,
    mut rx: LinkRx,
    mut session: Session,
) {
    let ended = match conn.write(connack).await {
        Ok(()) => pump(&mut conn, &mut tx, &mut rx, &mut session).await,
        Err(e) => Ended::Link(e),
    };
    if let Some((gate, GateRole::Publisher(release))) = session.gate.take() {
        release.close(&gate);
    }
    let Ended::Link(reason) = ended else {
        return;
    };
    debug!(client_id = session.client_id, %reason, "MQTT connection ended without DISCONNECT");
    let mut goodbye = VecDeque::new();
    if let Some(will) = session.will {
        goodbye.push_back(will_publish(will));
    }
    goodbye.push_back(Packet::Disconnect(
        Disconnect {
            reason_code: DisconnectReasonCode::NormalDisconnection,
        },
        None,
    ));
    // An error here means the router already let the connection go.
    let _ = forward(&mut tx, &mut goodbye).await;
}

async fn pump<P: Protocol>(
    conn: &mut Connection<P>,
    tx: &mut LinkTx,
    rx: &mut LinkRx,
    session: &mut Session,
) -> Ended {
    // MQTT: a server closes a connection that stays silent for 1.5 × its keep-alive.
    let allowance = (!session.keep_alive.is_zero()).then(|| session.keep_alive.mul_f32(1.5));
    let mut last_heard = Instant::now();
    let mut incoming = VecDeque::new();
    let mut refusals = Vec::new();
    let mut reader = Reader::default();
    loop {
        // Hand the router every whole packet already read, a batch at a time.
        loop {
            match conn.next_buffered() {
                Ok(Some((mut packet, pkid))) => {
                    if let Some(topic) = invalid_topic(&packet) {
                        warn!(client_id = session.client_id, topic, "publish to an invalid topic name: closing the connection, nothing acknowledged");
                        meters::refused_publish();
                        return Ended::Link(LinkEnd::BadTopic(topic));
                    }
                    match authorize(session, packet) {
                        Authorized::Yes(allowed) => packet = allowed,
                        Authorized::Refuse(suback) => {
                            refusals.push(suback);
                            continue;
                        }
                        Authorized::Close(topic) => return Ended::Link(LinkEnd::Denied(topic)),
                    }
                    reader.observe(&packet, &session.ledger);
                    gate_incoming(&mut session.gate, &packet, pkid);
                    incoming.push_back(packet);
                }
                Ok(None) => break,
                Err(LinkEnd::Protocol(rumqttd::protocol::Error::PayloadSizeLimitExceeded(
                    size,
                ))) => {
                    warn!(client_id = session.client_id, size, "publish over the payload limit: closing the connection, nothing acknowledged (a DPU should split its upload)");
                    meters::refused_publish();
                    return Ended::Link(LinkEnd::Protocol(
                        rumqttd::protocol::Error::PayloadSizeLimitExceeded(size),
                    ));
                }
                Err(e) => return Ended::Link(e),
            }
            if incoming.len() >= session.max_batch {
                break;
            }
        }
        if !refusals.is_empty() {
            if let Err(e) = conn.write(refusals.drain(..)).await {
                return Ended::Link(e);
            }
        }
        if !incoming.is_empty() {
            let goodbye = incoming
                .iter()
                .any(|packet| matches!(packet, Packet::Disconnect(..)));
            if forward(tx, &mut incoming).await.is_err() {
                return Ended::ByRouter;
            }
            if goodbye {
                return Ended::ByClient;
            }
            continue;
        }
        let silence_ends = allowance.map(|a| tokio::time::Instant::from_std(last_heard + a));
        tokio::select! {
            filled = conn.fill() => match filled {
                Ok(()) => last_heard = Instant::now(),
                Err(e) => return Ended::Link(e),
            },
            () = sleep_until(silence_ends) => return Ended::Link(LinkEnd::KeepAlive),
            () = sleep_until(ack_deadline(session)) => {
                return Ended::Link(LinkEnd::NotStored);
            }
            () = revoked(&session.identity, &mut session.revocations) => {
                tracing::info!(client_id = session.client_id, "DPU secret replaced or withdrawn: closing its connection");
                meters::revoked();
                return Ended::Link(LinkEnd::Revoked);
            }
            due = released(&mut session.gate) => {
                let acks = due.into_iter().map(|pkid| {
                    let ack = PubAck { pkid, reason: PubAckReason::Success };
                    Packet::PubAck(ack, None)
                });
                if let Err(e) = conn.write(acks).await {
                    return Ended::Link(e);
                }
            }
            notified = rx.next() => {
                let Ok(first) = notified else {
                    return Ended::ByRouter;
                };
                match deliver(conn, rx, first, &mut session.gate).await {
                    Ok(true) => {}
                    Ok(false) => return Ended::ByRouter,
                    Err(e) => return Ended::Link(e),
                }
            }
        }
    }
}

/// Writes `first` and every notification already waiting to the client, then, if the router
/// paused this connection's outgoing data meanwhile, asks it to go on. `Ok(false)`: the router
/// disconnected the client.
async fn deliver<P: Protocol>(
    conn: &mut Connection<P>,
    rx: &mut LinkRx,
    first: Option<rumqttd::Notification>,
    gate: &mut Option<(Arc<Gate>, GateRole)>,
) -> Result<bool, LinkEnd> {
    let mut packets = Vec::new();
    let mut paused = false;
    let mut next = first;
    loop {
        if let Some(notification) = next {
            match Option::<Packet>::from(notification) {
                Some(packet) => packets.push(packet),
                None => paused = true,
            }
        }
        // A deadline already past: takes what is there without waiting.
        next = match rx.recv_deadline(Instant::now()) {
            Ok(Some(notification)) => Some(notification),
            Ok(None) => None,
            Err(_) => break,
        };
        if next.is_none() {
            break;
        }
    }
    let router_ended = packets
        .iter()
        .any(|packet| matches!(packet, Packet::Disconnect(..)));
    for packet in packets {
        match (&packet, gate.as_mut()) {
            // Held back: the DPU hears once the message is stored.
            (Packet::PubAck(ack, _), Some((_, GateRole::Publisher(release)))) => {
                if !release.swallows(ack.pkid) {
                    conn.encode(packet)?;
                }
            }
            (Packet::Publish(publish, _), Some((_, GateRole::StoreReader(delivered))))
                if is_stored_topic(&publish.topic) =>
            {
                let content = (publish.topic.clone(), publish.payload.clone());
                if let Some(pkid) = conn.encode(packet)? {
                    delivered.insert(pkid, content);
                }
            }
            _ => {
                conn.encode(packet)?;
            }
        }
    }
    conn.flush().await?;
    if router_ended {
        return Ok(false);
    }
    if paused && rx.wake().await.is_err() {
        return Ok(false);
    }
    Ok(true)
}

/// What an incoming packet means for acknowledging after store: a DPU's QoS 1 data message
/// is held; a store reader's PUBACK releases whoever waits on what it acknowledged.
fn gate_incoming(gate: &mut Option<(Arc<Gate>, GateRole)>, packet: &Packet, pkid: Option<u16>) {
    match (packet, gate.as_mut()) {
        (Packet::Publish(publish, _), Some((gate, GateRole::Publisher(release)))) => {
            if let (Some(pkid), true) = (pkid, is_stored_topic(&publish.topic)) {
                let content = (publish.topic.clone(), publish.payload.clone());
                release.hold(gate, content, pkid);
            }
        }
        (Packet::PubAck(ack, _), Some((gate, GateRole::StoreReader(delivered)))) => {
            if let Some(content) = delivered.remove(&ack.pkid) {
                gate.stored(&content);
            }
        }
        _ => {}
    }
}

/// What the access rules make of an incoming packet.
enum Authorized {
    /// Hand it to the router.
    Yes(Packet),
    /// A subscription the client may not have: answer with this SUBACK instead.
    Refuse(Packet),
    /// A publish the client may not make: close the connection, acknowledging nothing.
    Close(String),
}

fn authorize(session: &Session, packet: Packet) -> Authorized {
    let (gatekeeper, identity) = (&session.gatekeeper, &session.identity);
    match &packet {
        Packet::Publish(publish, _) if !gatekeeper.may_publish(identity, &publish.topic) => {
            let topic = String::from_utf8_lossy(&publish.topic).into_owned();
            warn!(client_id = session.client_id, topic, "publish outside what this client may: closing the connection, nothing acknowledged");
            meters::denied();
            Authorized::Close(topic)
        }
        Packet::Subscribe(subscribe, _)
            if subscribe
                .filters
                .iter()
                .any(|f| !gatekeeper.may_subscribe(identity, &f.path)) =>
        {
            let filters: Vec<&str> = subscribe.filters.iter().map(|f| f.path.as_str()).collect();
            warn!(
                client_id = session.client_id,
                ?filters,
                "subscription outside what this client may: refused"
            );
            meters::denied();
            let suback = SubAck {
                pkid: subscribe.pkid,
                return_codes: vec![SubscribeReasonCode::Failure; subscribe.filters.len()],
            };
            Authorized::Refuse(Packet::SubAck(suback, None))
        }
        _ => Authorized::Yes(packet),
    }
}

/// Completes when `identity`, a DPU, has its secret replaced or withdrawn; never for others.
async fn revoked(
    identity: &Identity,
    revocations: &mut Option<tokio::sync::broadcast::Receiver<String>>,
) {
    let (Identity::Dpu(dpu), Some(receiver)) = (identity, revocations.as_mut()) else {
        return std::future::pending().await;
    };
    loop {
        match receiver.recv().await {
            Ok(revoked) if revoked == *dpu => return,
            Ok(_) => {}
            // Missed some: end the connection rather than keep one that may be revoked; a
            // DPU whose secret is current connects again at once.
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => return,
            Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                return std::future::pending().await
            }
        }
    }
}

/// When a DPU has waited too long for a message to be stored (it may have been dropped from a
/// log the worker lagged past): the connection is closed, so that the DPU, which still holds
/// the message, sends it again after reconnecting.
fn ack_deadline(session: &Session) -> Option<tokio::time::Instant> {
    match &session.gate {
        Some((_, GateRole::Publisher(release))) => release
            .waiting_since()
            .map(|since| since + session.store_timeout),
        _ => None,
    }
}

/// The topic name of a PUBLISH that no message may have: empty without a topic alias, with
/// a wildcard, or with a NUL character.
fn invalid_topic(packet: &Packet) -> Option<String> {
    let Packet::Publish(publish, properties) = packet else {
        return None;
    };
    let topic = &publish.topic;
    let aliased = properties.as_ref().is_some_and(|p| p.topic_alias.is_some());
    let invalid =
        (topic.is_empty() && !aliased) || topic.iter().any(|b| matches!(b, b'+' | b'#' | 0));
    invalid.then(|| String::from_utf8_lossy(topic).into_owned())
}

/// The topics an ingest worker reads and stores: `dpus/{id}/crossings` and `dpus/{id}/status`.
/// A message on any other topic is nobody's to store, so its PUBACK is not held.
fn is_stored_topic(topic: &[u8]) -> bool {
    let Some(rest) = topic.strip_prefix(DATA_PREFIX.as_bytes()) else {
        return false;
    };
    let mut levels = rest.split(|&b| b == b'/');
    let (id, kind, more) = (levels.next(), levels.next(), levels.next());
    matches!(id, Some(id) if !id.is_empty())
        && matches!(kind, Some(b"crossings" | b"status"))
        && more.is_none()
}

/// The next acknowledgements the gate lets through; never, for a connection it holds none of.
async fn released(gate: &mut Option<(Arc<Gate>, GateRole)>) -> Vec<u16> {
    match gate {
        Some((_, GateRole::Publisher(release))) => release.due().await,
        _ => std::future::pending().await,
    }
}

/// Hands `packets` (not empty) to the router and wakes it once for all of them.
async fn forward(tx: &mut LinkTx, packets: &mut VecDeque<Packet>) -> Result<(), ()> {
    let Some(last) = packets.pop_back() else {
        return Ok(());
    };
    tx.buffer().extend(packets.drain(..));
    tx.send(last).await.map(drop).map_err(drop)
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::is_stored_topic;

    #[test]
    fn only_the_topics_a_worker_stores_are_held() {
        assert!(is_stored_topic(b"dpus/283/crossings"));
        assert!(is_stored_topic(b"dpus/283/status"));
        assert!(!is_stored_topic(b"dpus/283/other"));
        assert!(!is_stored_topic(b"dpus//crossings"));
        assert!(!is_stored_topic(b"dpus/283/crossings/x"));
        assert!(!is_stored_topic(b"spaces/1/count"));
    }
}
