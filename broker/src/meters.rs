//! The embedded broker's meters, read off rumqttd's own tracing events.
//!
//! rumqttd 0.20 only sends its meters and alerts to a `Broker::start`ed broker (the timer that
//! asks for them is private), so they are unreachable with the stoppable Router + Server setup
//! this crate uses. Every fact an operator needs is also a tracing event inside rumqttd,
//! though, so [`layer`] — installed beside the log output — counts them:
//! - a connection registered (`connection_id` field) or disconnecting;
//! - a publish appended to a filter's commit log (DEBUG, `pkid` field);
//! - an error, other than a client that simply went away;
//! - **lost messages**: a subscriber read from a position the log had already dropped (it
//!   lagged more than `segment_bytes × segment_count` behind), and rumqttd jumped it ahead.
//!   The WARN carries both cursors; their offsets' difference is the number of messages the
//!   subscriber will never get. The layer counts them and logs an error of its own.
//!
//! The counters are process-wide, like the tracing dispatcher they hang off.

use serde::Serialize;
use std::fmt::Debug;
use std::sync::atomic::{AtomicU64, Ordering};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::{Filtered, Targets};
use tracing_subscriber::layer::{Context, Layer};

static CONNECTIONS_OPENED: AtomicU64 = AtomicU64::new(0);
static CONNECTIONS_CLOSED: AtomicU64 = AtomicU64::new(0);
static PUBLISHES: AtomicU64 = AtomicU64::new(0);
static FAILURES: AtomicU64 = AtomicU64::new(0);
static CURSOR_JUMPS: AtomicU64 = AtomicU64::new(0);
static LOST_MESSAGES: AtomicU64 = AtomicU64::new(0);
static ACCEPTED: AtomicU64 = AtomicU64::new(0);
static REFUSED: AtomicU64 = AtomicU64::new(0);
static NO_CONNECT: AtomicU64 = AtomicU64::new(0);
static REFUSED_PUBLISHES: AtomicU64 = AtomicU64::new(0);
static UNAUTHORIZED: AtomicU64 = AtomicU64::new(0);
static DENIED: AtomicU64 = AtomicU64::new(0);
static REVOKED: AtomicU64 = AtomicU64::new(0);
static TLS_FAILED: AtomicU64 = AtomicU64::new(0);

static LISTENERS_REPLACED: AtomicU64 = AtomicU64::new(0);
static RESTARTS: AtomicU64 = AtomicU64::new(0);

/// The supervisor replaced a listener that stopped answering (nothing is lost).
pub(crate) fn listener_replaced() {
    LISTENERS_REPLACED.fetch_add(1, Ordering::Relaxed);
}

/// The supervisor replaced a dead router: `lost` acknowledged DPU messages went with it.
pub(crate) fn lost_in_restart(lost: u64) {
    RESTARTS.fetch_add(1, Ordering::Relaxed);
    LOST_MESSAGES.fetch_add(lost, Ordering::Relaxed);
}

/// A TCP connection was accepted (it may still fail to send a CONNECT).
pub(crate) fn accepted() {
    ACCEPTED.fetch_add(1, Ordering::Relaxed);
}

/// A CONNECT was refused with a CONNACK that says why.
pub(crate) fn refused() {
    REFUSED.fetch_add(1, Ordering::Relaxed);
}

/// A client published to a topic no message can have (empty, a wildcard, a NUL), or a
/// payload over the limit, and was disconnected, as MQTT requires.
pub(crate) fn refused_publish() {
    REFUSED_PUBLISHES.fetch_add(1, Ordering::Relaxed);
}

/// A CONNECT was refused by the access rules (also counted as refused).
pub(crate) fn unauthorized() {
    UNAUTHORIZED.fetch_add(1, Ordering::Relaxed);
}

/// A publish or subscription outside what its client may was stopped.
pub(crate) fn denied() {
    DENIED.fetch_add(1, Ordering::Relaxed);
}

/// A DPU's connection was ended because its secret was replaced or withdrawn.
pub(crate) fn revoked() {
    REVOKED.fetch_add(1, Ordering::Relaxed);
}

/// A TLS handshake failed or timed out.
pub(crate) fn tls_failed() {
    TLS_FAILED.fetch_add(1, Ordering::Relaxed);
}

/// A socket closed, timed out or sent something else before a whole CONNECT.
pub(crate) fn connect_failed() {
    NO_CONNECT.fetch_add(1, Ordering::Relaxed);
}

/// What the embedded broker did since this process started (all brokers in it, restarts
/// included).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct BrokerMeters {
    pub connections_opened: u64,
    pub connections_closed: u64,
    /// Open now: opened − closed.
    pub connections: u64,
    /// Publishes appended to a subscribed filter's log (once per matching filter).
    pub publishes: u64,
    /// TCP connections accepted by the listeners.
    pub accepted: u64,
    /// CONNECTs refused with a CONNACK saying why (a client id the broker cannot take, no
    /// room for another connection).
    pub refused: u64,
    /// Sockets that closed, timed out or sent garbage before a whole CONNECT.
    pub no_connect: u64,
    /// Connections closed for a publish the broker cannot take: a payload over
    /// the broker's limit (1 MiB), or an invalid topic name (empty, `+`, `#`, NUL). The message
    /// was neither acknowledged nor delivered; each is logged as a WARN.
    pub refused_publishes: u64,
    /// CONNECTs refused by the access rules: no login or a wrong one, a client id or last
    /// will the login may not use, or DPU secrets that could not be checked (also in
    /// `refused`).
    pub unauthorized: u64,
    /// Publishes (their connection closed, nothing acknowledged) and subscriptions (SUBACK
    /// failure) outside what their client may.
    pub denied: u64,
    /// DPU connections ended because the DPU's secret was replaced or withdrawn.
    pub revoked: u64,
    /// TLS handshakes that failed (no or an untrusted client certificate, not TLS at all)
    /// or timed out.
    pub tls_failed: u64,
    /// Errors rumqttd reported, other than clients disconnecting.
    pub failures: u64,
    /// Listeners replaced because they stopped answering; connections and queues were kept.
    pub listeners_replaced: u64,
    /// Whole broker restarts because rumqttd's router died; what it held was lost (counted
    /// in `lost_messages`).
    pub restarts: u64,
    /// Times a lagging subscriber was moved past messages the log had dropped…
    pub cursor_jumps: u64,
    /// DPU messages the broker acknowledged and then lost: those a lagging subscriber was
    /// moved past, and those a dead router held (see `restarts`).
    pub lost_messages: u64,
}

/// The meters now.
pub fn snapshot() -> BrokerMeters {
    let opened = CONNECTIONS_OPENED.load(Ordering::Relaxed);
    let closed = CONNECTIONS_CLOSED.load(Ordering::Relaxed);
    BrokerMeters {
        connections_opened: opened,
        connections_closed: closed,
        connections: opened.saturating_sub(closed),
        publishes: PUBLISHES.load(Ordering::Relaxed),
        accepted: ACCEPTED.load(Ordering::Relaxed),
        refused: REFUSED.load(Ordering::Relaxed),
        no_connect: NO_CONNECT.load(Ordering::Relaxed),
        refused_publishes: REFUSED_PUBLISHES.load(Ordering::Relaxed),
        unauthorized: UNAUTHORIZED.load(Ordering::Relaxed),
        denied: DENIED.load(Ordering::Relaxed),
        revoked: REVOKED.load(Ordering::Relaxed),
        tls_failed: TLS_FAILED.load(Ordering::Relaxed),
        failures: FAILURES.load(Ordering::Relaxed),
        cursor_jumps: CURSOR_JUMPS.load(Ordering::Relaxed),
        listeners_replaced: LISTENERS_REPLACED.load(Ordering::Relaxed),
        restarts: RESTARTS.load(Ordering::Relaxed),
        lost_messages: LOST_MESSAGES.load(Ordering::Relaxed),
    }
}

/// The layer that keeps the meters, with its own filter (rumqttd's events down to DEBUG), so
/// it works whatever the log output's filter hides.
pub fn layer<S>() -> Filtered<MetersLayer, Targets, S>
where
    S: Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    MetersLayer.with_filter(Targets::new().with_target("rumqttd", Level::DEBUG))
}

pub struct MetersLayer;

impl<S: Subscriber> Layer<S> for MetersLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        let has = |name: &str| meta.fields().field(name).is_some();
        match *meta.level() {
            Level::DEBUG if has("pkid") => {
                PUBLISHES.fetch_add(1, Ordering::Relaxed);
            }
            Level::INFO if has("connection_id") => {
                CONNECTIONS_OPENED.fetch_add(1, Ordering::Relaxed);
            }
            Level::INFO => {
                let fields = Fields::of(event);
                if fields.message == "Disconnecting connection" {
                    CONNECTIONS_CLOSED.fetch_add(1, Ordering::Relaxed);
                }
            }
            Level::WARN if has("start_cursor") => {
                let fields = Fields::of(event);
                let lost = match (offset(&fields.request_cursor), offset(&fields.start_cursor)) {
                    (Some(from), Some(to)) => to.saturating_sub(from),
                    _ => 0,
                };
                CURSOR_JUMPS.fetch_add(1, Ordering::Relaxed);
                LOST_MESSAGES.fetch_add(lost, Ordering::Relaxed);
                tracing::error!(
                    target: "roomer_broker",
                    lost,
                    detail = %fields.error,
                    "the embedded broker dropped messages a lagging subscriber had not read yet; \
                     raise --broker-segment-bytes / --broker-segments or use an external broker"
                );
            }
            Level::ERROR => {
                let fields = Fields::of(event);
                if fields.message != "disconnected" {
                    FAILURES.fetch_add(1, Ordering::Relaxed);
                }
            }
            _ => {}
        }
    }
}

/// The offset of a rumqttd cursor printed as `(segment, offset)`; offsets count messages
/// from the start of the log, across segments.
fn offset(cursor: &str) -> Option<u64> {
    let inner = cursor.trim().strip_prefix('(')?.strip_suffix(')')?;
    inner.split(',').nth(1)?.trim().parse().ok()
}

#[derive(Default)]
struct Fields {
    message: String,
    error: String,
    request_cursor: String,
    start_cursor: String,
}

impl Fields {
    fn of(event: &Event<'_>) -> Self {
        let mut fields = Fields::default();
        event.record(&mut fields);
        fields
    }
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        let text = format!("{value:?}");
        match field.name() {
            "message" => self.message = text,
            "error" => self.error = text,
            "request_cursor" => self.request_cursor = text,
            "start_cursor" => self.start_cursor = text,
            _ => {}
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => self.message = value.to_owned(),
            "error" => self.error = value.to_owned(),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::offset;

    #[test]
    fn cursor_offsets_are_read_from_rumqttds_debug_format() {
        assert_eq!(offset("(8, 80)"), Some(80));
        assert_eq!(offset("(0, 0)"), Some(0));
        assert_eq!(offset("8, 80"), None);
        assert_eq!(offset("(8)"), None);
    }
}
