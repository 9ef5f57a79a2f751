//! Is the broker serving yet? A real MQTT CONNECT / CONNACK / DISCONNECT round trip.
//!
//! rumqttd's `Server::start` binds its listener inside a task and cannot say when it is bound,
//! so readiness is observed from outside. A bare TCP connect would do, but rumqttd logs every
//! socket that closes before sending CONNECT at ERROR level; a full MQTT handshake with a clean
//! DISCONNECT is quiet, and also proves the router answers, not just the listener.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Which protocol the listener speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    V4,
    V5,
}

const IO_TIMEOUT: Duration = Duration::from_millis(500);

/// A username and password to log in with.
pub type Login<'a> = Option<(&'a str, &'a str)>;

/// Tries one handshake, logging in with `login` if given. `Ok(())` means an MQTT broker
/// accepted a session on `addr`. Each step (connect, write, read) may take half a second.
pub fn probe(addr: SocketAddr, protocol: Protocol, login: Login<'_>) -> std::io::Result<()> {
    probe_within(addr, protocol, IO_TIMEOUT, login)
}

/// [`probe`], with `io_timeout` for each step instead of half a second: the supervisor's
/// health checks are more patient with a broker busy under load than `start` is.
pub fn probe_within(
    addr: SocketAddr,
    protocol: Protocol,
    io_timeout: Duration,
    login: Login<'_>,
) -> std::io::Result<()> {
    let mut stream = TcpStream::connect_timeout(&addr, io_timeout)?;
    stream.set_read_timeout(Some(io_timeout))?;
    stream.set_write_timeout(Some(io_timeout))?;
    stream.write_all(&connect_packet(protocol, &probe_client_id(), login))?;
    // CONNACK: fixed header 0x20, remaining length, then (v4) flags + return code or
    // (v5) flags + reason code + properties. Both put the verdict in byte 3.
    let mut head = [0u8; 4];
    stream.read_exact(&mut head).map_err(|e| match e.kind() {
        // What a wedged rumqttd does: its connection task panics and drops the socket.
        std::io::ErrorKind::UnexpectedEof => {
            std::io::Error::new(e.kind(), "the connection was closed without a CONNACK")
        }
        _ => e,
    })?;
    if head[0] != 0x20 || head[3] != 0 {
        return Err(std::io::Error::other(format!(
            "not an accepting MQTT CONNACK: {head:02x?}"
        )));
    }
    // DISCONNECT, so that rumqttd sees a clean goodbye rather than a reset.
    stream.write_all(&[0xE0, 0x00])?;
    Ok(())
}

/// A client id no real client uses, unique per probe (a duplicate id kicks the other client).
fn probe_client_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "roomer-broker-ready-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A CONNECT with a clean session, keep-alive 60 s, no will, no credentials.
fn connect_packet(protocol: Protocol, client_id: &str, login: Login<'_>) -> Vec<u8> {
    let mut body = vec![0x00, 0x04, b'M', b'Q', b'T', b'T'];
    body.push(match protocol {
        Protocol::V4 => 4,
        Protocol::V5 => 5,
    });
    // Clean session, and a user name and password when logging in; keep-alive 60 s.
    let flags = if login.is_some() { 0xC2 } else { 0x02 };
    body.extend_from_slice(&[flags, 0x00, 0x3C]);
    if protocol == Protocol::V5 {
        body.push(0x00); // no properties
    }
    let (user, password) = login.unzip();
    for field in [Some(client_id), user, password].into_iter().flatten() {
        body.extend_from_slice(&(field.len() as u16).to_be_bytes());
        body.extend_from_slice(field.as_bytes());
    }
    let mut packet = vec![0x10];
    encode_remaining_length(body.len(), &mut packet);
    packet.extend_from_slice(&body);
    packet
}

fn encode_remaining_length(mut len: usize, out: &mut Vec<u8>) {
    loop {
        let mut byte = (len % 128) as u8;
        len /= 128;
        if len > 0 {
            byte |= 0x80;
        }
        out.push(byte);
        if len == 0 {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_v4_connect_packet_is_well_formed() {
        let packet = connect_packet(Protocol::V4, "ab", None);
        assert_eq!(
            packet,
            [0x10, 14, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 60, 0, 2, b'a', b'b']
        );
    }

    #[test]
    fn a_login_follows_the_client_id() {
        let packet = connect_packet(Protocol::V4, "ab", Some(("u", "pw")));
        assert_eq!(packet[9], 0xC2, "user name and password flags");
        assert_eq!(
            &packet[12..],
            [0, 2, b'a', b'b', 0, 1, b'u', 0, 2, b'p', b'w']
        );
        assert_eq!(packet[1] as usize, packet.len() - 2);
    }

    #[test]
    fn a_v5_connect_packet_carries_an_empty_property_list() {
        let packet = connect_packet(Protocol::V5, "ab", None);
        assert_eq!(packet[1] as usize, packet.len() - 2);
        assert_eq!(packet[8], 5);
        assert_eq!(packet[12], 0, "property length");
    }

    #[test]
    fn long_remaining_lengths_use_continuation_bytes() {
        let mut out = Vec::new();
        encode_remaining_length(321, &mut out);
        assert_eq!(out, [0xC1, 0x02]);
    }

    #[test]
    fn probing_a_closed_port_fails() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        assert!(probe(addr, Protocol::V4, None).is_err());
    }
}
