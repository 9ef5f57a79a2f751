//! A client's connection: its byte stream (TCP, or TLS over TCP) with MQTT framing.

use bytes::BytesMut;
use rumqttd::protocol::{Packet, Protocol};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The first read buffer of a connection; it grows to the packet being read and shrinks back
/// after a large one (see `link`).
const INITIAL_READ_BYTES: usize = 256;
/// How long writing one burst of packets to a client may take before it counts as gone.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// A client's byte stream: a TCP socket, or a TLS session over one.
pub(crate) trait ByteStream: AsyncRead + AsyncWrite + Unpin + Send {}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> ByteStream for S {}

/// A client's socket with MQTT framing: rumqttd's codec over buffers that start small.
pub(crate) struct Connection<P> {
    socket: Box<dyn ByteStream>,
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
    pub(crate) fn new(socket: Box<dyn ByteStream>, protocol: P, max_packet_bytes: usize) -> Self {
        Self {
            socket,
            read: BytesMut::with_capacity(INITIAL_READ_BYTES),
            write: BytesMut::new(),
            protocol,
            max_packet_bytes,
        }
    }

    /// Reads until one whole packet is buffered and returns it.
    pub(crate) async fn read_packet(&mut self) -> Result<Packet, LinkEnd> {
        loop {
            if let Some((packet, _)) = self.next_buffered()? {
                return Ok(packet);
            }
            self.fill().await?;
        }
    }

    /// The next packet already in the read buffer, if a whole one is there, with its packet
    /// id when it is a QoS 1 or 2 PUBLISH (rumqttd keeps that private).
    pub(crate) fn next_buffered(&mut self) -> Result<Option<(Packet, Option<u16>)>, LinkEnd> {
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
    pub(crate) async fn fill(&mut self) -> Result<(), LinkEnd> {
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
    pub(crate) async fn write(
        &mut self,
        packets: impl IntoIterator<Item = Packet>,
    ) -> Result<(), LinkEnd> {
        for packet in packets {
            self.encode(packet)?;
        }
        self.flush().await
    }

    /// Appends `packet` to what [`flush`](Self::flush) writes next; returns the packet id it
    /// was encoded with when it is a QoS 1 or 2 PUBLISH.
    pub(crate) fn encode(&mut self, packet: Packet) -> Result<Option<u16>, LinkEnd> {
        let start = self.write.len();
        self.protocol
            .write(packet, &mut self.write)
            .map_err(LinkEnd::Protocol)?;
        Ok(publish_pkid(&self.write[start..]))
    }

    /// Writes what was encoded.
    pub(crate) async fn flush(&mut self) -> Result<(), LinkEnd> {
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
pub(crate) fn publish_pkid(frame: &[u8]) -> Option<u16> {
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
