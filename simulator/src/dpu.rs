//! One simulated DPU: an MQTT connection that delivers every message at least once.
//!
//! rumqttc drops unacknowledged publishes when it reconnects without a resumed session, and
//! rumqttd never resumes a clean session, so rumqttc alone would lose messages whenever the
//! broker restarts. Each DPU therefore keeps its own outbox, and resends whatever the broker
//! had not acknowledged after every (re)connection, oldest first.
//!
//! Two tasks per DPU: the *pump* owns rumqttc's event loop (whose `poll` must not be
//! cancelled, so it cannot sit in a `select!`) and reports what happened; the *controller*
//! owns the outbox, decides what to publish when, and matches broker acknowledgements to
//! messages. A publish is matched to its packet id by order: rumqttc reports
//! `Outgoing::Publish(pkid)` in the order requests were handed to it. When the connection
//! drops, the pump waits until the controller has taken back every unacknowledged message,
//! then discards rumqttc's own copies, so that nothing stale goes out after the reconnect.
//!
//! The controller pulls messages from a [`Source`] only when it can send them, and keeps only
//! the unacknowledged ones, so a DPU's memory does not grow with the length of a run. It
//! reports to a shared [`FleetProgress`]: connections, sends, acknowledgements, and each
//! message's PUBACK latency (timed by the pump, right after rumqttc wrote the publish to the
//! socket and right after it read the PUBACK).

use crate::error::SimError;
use crate::progress::FleetProgress;
use crate::source::Source;
use crate::target::MqttTarget;
use controller::Controller;
use roomer_occupancy::DpuId;
use rumqttc::{AsyncClient, ConnectReturnCode, ConnectionError, Event, EventLoop, LastWill};
use rumqttc::{Outgoing, Packet, QoS};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tracing::debug;

mod controller;

pub use crate::source::Message;

/// Messages a DPU has handed to the broker and not yet seen acknowledged.
pub const IN_FLIGHT: usize = 10;
/// The largest payload a simulated DPU sends: the embedded broker's default limit.
pub const MAX_PAYLOAD_BYTES: usize = 1024 * 1024;
/// Room for the fixed header, topic and packet id around a payload.
const PACKET_SLACK_BYTES: usize = 1024;
const KEEP_ALIVE: Duration = Duration::from_secs(10);
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// How long a finished DPU waits for its DISCONNECT to be written.
const GOODBYE_TIMEOUT: Duration = Duration::from_secs(2);

/// What one DPU did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DpuReport {
    pub messages: usize,
    pub events: usize,
    /// Messages published again because a connection dropped before their PUBACK.
    pub resent: usize,
}

/// Fails before connecting if a message could never be sent.
pub fn check_sizes(dpu: &DpuId, messages: &[Message]) -> Result<(), SimError> {
    messages
        .iter()
        .try_for_each(|m| check_size(dpu, m.payload.len()))
}

fn check_size(dpu: &DpuId, bytes: usize) -> Result<(), SimError> {
    if bytes > MAX_PAYLOAD_BYTES {
        return Err(SimError::MessageTooLarge {
            dpu: dpu.clone(),
            bytes,
            max: MAX_PAYLOAD_BYTES,
        });
    }
    Ok(())
}

/// Connects as `client_id`, publishes the messages of `source` in order at QoS 1 on
/// `dpus/{dpu}/crossings`, and returns once the source is done and the broker has
/// acknowledged every message (and the final `offline` status). Network failures are
/// retried for ever.
///
/// Status: the last will is `offline` (retained) on `dpus/{dpu}/status`; every connection
/// starts by publishing `online` (retained); a DPU that finishes publishes `offline` itself
/// and disconnects cleanly, so the status never claims a finished simulation is still online.
pub async fn run(
    dpu: DpuId,
    client_id: String,
    target: &MqttTarget,
    source: impl Source,
    progress: Arc<FleetProgress>,
) -> Result<DpuReport, SimError> {
    let status = roomer_occupancy::topics::status(&dpu);
    let mut options = target.options(client_id);
    let max_packet = MAX_PAYLOAD_BYTES + PACKET_SLACK_BYTES;
    options
        .set_keep_alive(KEEP_ALIVE)
        .set_clean_session(true)
        .set_max_packet_size(max_packet, max_packet)
        // rumqttc's window also bounds its packet ids; keeping it far above ours means a
        // reused packet id always belongs to a message acknowledged long ago.
        .set_inflight(100)
        .set_last_will(LastWill::new(&status, "offline", QoS::AtLeastOnce, true));
    let (client, eventloop) = AsyncClient::new(options, IN_FLIGHT + 4);
    let (events_tx, events_rx) = mpsc::unbounded_channel();
    let pump = tokio::spawn(pump(eventloop, events_tx, dpu.clone()));
    let mut controller = Controller::new(dpu, client, status, source, progress);
    let result = controller.run(events_rx).await;
    pump.abort();
    result
}

/// What the pump tells the controller.
enum Report {
    Connected,
    /// Written to the socket then.
    Sent(u16, Instant),
    /// Read from the socket then.
    Acked(u16, Instant),
    /// The connection is gone; reply once every unacknowledged message is taken back.
    Lost {
        reason: String,
        resume: oneshot::Sender<()>,
    },
    Disconnected,
    /// The broker refused the DPU's login: trying again cannot help.
    Refused(String),
}

async fn pump(mut eventloop: EventLoop, reports: mpsc::UnboundedSender<Report>, dpu: DpuId) {
    let mut backoff = FIRST_BACKOFF;
    loop {
        let report = match eventloop.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                backoff = FIRST_BACKOFF;
                Report::Connected
            }
            Ok(Event::Outgoing(Outgoing::Publish(pkid))) => Report::Sent(pkid, Instant::now()),
            Ok(Event::Incoming(Packet::PubAck(ack))) => Report::Acked(ack.pkid, Instant::now()),
            Ok(Event::Outgoing(Outgoing::Disconnect)) => Report::Disconnected,
            Ok(_) => continue,
            Err(ConnectionError::RequestsDone) => return,
            Err(ConnectionError::ConnectionRefused(
                code @ (ConnectReturnCode::NotAuthorized | ConnectReturnCode::BadUserNamePassword),
            )) => Report::Refused(format!(
                "the broker refused the login ({code:?}): give the DPU its secret (--dpu-secrets) or a login in --mqtt-url"
            )),
            Err(e) => {
                let (resume, resumed) = oneshot::channel();
                let lost = Report::Lost {
                    reason: e.to_string(),
                    resume,
                };
                if reports.send(lost).is_err() || resumed.await.is_err() {
                    return;
                }
                debug!(%dpu, ?backoff, "reconnecting");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                // The controller now owns every unacknowledged message; rumqttc's copies (and
                // anything read but not yet reported) would only confuse the pkid matching.
                eventloop.clean();
                eventloop.pending.clear();
                eventloop.state.events.clear();
                eventloop.state.collision = None;
                continue;
            }
        };
        if reports.send(report).is_err() {
            return;
        }
    }
}
