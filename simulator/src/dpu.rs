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

use crate::error::SimError;
use crate::target::MqttTarget;
use occupancy::DpuId;
use rumqttc::{AsyncClient, ConnectionError, Event, EventLoop, LastWill, MqttOptions};
use rumqttc::{Outgoing, Packet, QoS};
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tracing::{debug, info, warn};

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

/// One message a DPU will publish, and when (`None`: as soon as possible).
#[derive(Clone, Debug)]
pub struct Message {
    pub due: Option<Instant>,
    pub payload: Vec<u8>,
    pub events: usize,
}

/// What one DPU did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DpuReport {
    pub messages: usize,
    pub events: usize,
    /// Messages published again because a connection dropped before their PUBACK.
    pub resent: usize,
}

pub fn crossings_topic(dpu: &DpuId) -> String {
    format!("dpus/{dpu}/crossings")
}

pub fn status_topic(dpu: &DpuId) -> String {
    format!("dpus/{dpu}/status")
}

/// Fails before connecting if a message could never be sent.
pub fn check_sizes(dpu: &DpuId, messages: &[Message]) -> Result<(), SimError> {
    match messages
        .iter()
        .find(|m| m.payload.len() > MAX_PAYLOAD_BYTES)
    {
        Some(m) => Err(SimError::MessageTooLarge {
            dpu: dpu.clone(),
            bytes: m.payload.len(),
            max: MAX_PAYLOAD_BYTES,
        }),
        None => Ok(()),
    }
}

/// Connects as `client_id`, publishes `messages` in order at QoS 1 on
/// `dpus/{dpu}/crossings`, and returns once the broker has acknowledged every one of them
/// (and the final `offline` status). Network failures are retried for ever.
///
/// Status: the last will is `offline` (retained) on `dpus/{dpu}/status`; every connection
/// starts by publishing `online` (retained); a DPU that finishes publishes `offline` itself
/// and disconnects cleanly, so the status never claims a finished simulation is still online.
pub async fn run(
    dpu: DpuId,
    client_id: String,
    target: &MqttTarget,
    messages: Vec<Message>,
) -> Result<DpuReport, SimError> {
    let status = status_topic(&dpu);
    let mut options = MqttOptions::new(client_id, target.connect_host(), target.port);
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
    let mut controller = Controller::new(dpu, client, status, messages);
    let result = controller.run(events_rx).await;
    pump.abort();
    result
}

/// What the pump tells the controller.
enum Report {
    Connected,
    Sent(u16),
    Acked(u16),
    /// The connection is gone; reply once every unacknowledged message is taken back.
    Lost {
        reason: String,
        resume: oneshot::Sender<()>,
    },
    Disconnected,
}

async fn pump(mut eventloop: EventLoop, reports: mpsc::UnboundedSender<Report>, dpu: DpuId) {
    let mut backoff = FIRST_BACKOFF;
    loop {
        let report = match eventloop.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                backoff = FIRST_BACKOFF;
                Report::Connected
            }
            Ok(Event::Outgoing(Outgoing::Publish(pkid))) => Report::Sent(pkid),
            Ok(Event::Incoming(Packet::PubAck(ack))) => Report::Acked(ack.pkid),
            Ok(Event::Outgoing(Outgoing::Disconnect)) => Report::Disconnected,
            Ok(_) => continue,
            Err(ConnectionError::RequestsDone) => return,
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

/// Something handed to rumqttc, waiting for its packet id and then its PUBACK.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tag {
    Online,
    Offline,
    Data(usize),
}

struct Controller {
    dpu: DpuId,
    client: AsyncClient,
    crossings: String,
    status: String,
    messages: Vec<Message>,
    acked: Vec<bool>,
    acked_count: usize,
    /// The next message never published yet.
    next_fresh: usize,
    /// Published on an earlier connection, never acknowledged: goes out first, oldest first.
    resend: BTreeSet<usize>,
    /// Handed to rumqttc, packet id not yet known (in hand-over order).
    handed: VecDeque<Tag>,
    in_flight: HashMap<u16, Tag>,
    connected: bool,
    offline_pending: bool,
    offline_acked: bool,
    resent: usize,
}

impl Controller {
    fn new(dpu: DpuId, client: AsyncClient, status: String, messages: Vec<Message>) -> Self {
        Self {
            crossings: crossings_topic(&dpu),
            acked: vec![false; messages.len()],
            dpu,
            client,
            status,
            messages,
            acked_count: 0,
            next_fresh: 0,
            resend: BTreeSet::new(),
            handed: VecDeque::new(),
            in_flight: HashMap::new(),
            connected: false,
            offline_pending: false,
            offline_acked: false,
            resent: 0,
        }
    }

    async fn run(
        &mut self,
        mut reports: mpsc::UnboundedReceiver<Report>,
    ) -> Result<DpuReport, SimError> {
        while !self.offline_acked {
            let wake = self.fill()?;
            let report = match wake {
                Some(at) => tokio::select! {
                    report = reports.recv() => report,
                    () = tokio::time::sleep_until(at) => continue,
                },
                None => reports.recv().await,
            };
            let report = report.ok_or_else(|| self.failed("the MQTT event loop stopped"))?;
            self.handle(report);
        }
        // Say goodbye cleanly (no last will) and give the DISCONNECT a moment to go out.
        if self.client.try_disconnect().is_ok() {
            let _ = tokio::time::timeout(GOODBYE_TIMEOUT, async {
                while let Some(report) = reports.recv().await {
                    if matches!(report, Report::Disconnected | Report::Lost { .. }) {
                        return;
                    }
                }
            })
            .await;
        }
        let events = self.messages.iter().map(|m| m.events).sum();
        Ok(DpuReport {
            messages: self.messages.len(),
            events,
            resent: self.resent,
        })
    }

    fn handle(&mut self, report: Report) {
        match report {
            Report::Connected => {
                debug!(dpu = %self.dpu, "connected");
                self.connected = true;
                // First thing on every connection, so the status is right after a broker restart.
                self.hand_over(Tag::Online);
            }
            Report::Sent(pkid) => match self.handed.pop_front() {
                Some(tag) => {
                    self.in_flight.insert(pkid, tag);
                }
                None => warn!(dpu = %self.dpu, pkid, "a publish went out that was not ours"),
            },
            Report::Acked(pkid) => match self.in_flight.remove(&pkid) {
                Some(Tag::Data(index)) if !self.acked[index] => {
                    self.acked[index] = true;
                    self.acked_count += 1;
                }
                Some(Tag::Offline) => self.offline_acked = true,
                Some(_) => {}
                None => debug!(dpu = %self.dpu, pkid, "acknowledgement of an unknown packet"),
            },
            Report::Lost { reason, resume } => {
                if self.connected {
                    warn!(dpu = %self.dpu, %reason, "connection lost; will resend what was not acknowledged");
                } else {
                    debug!(dpu = %self.dpu, %reason, "cannot connect");
                }
                self.connected = false;
                let dropped: Vec<Tag> = self
                    .handed
                    .drain(..)
                    .chain(self.in_flight.drain().map(|(_, tag)| tag))
                    .collect();
                for tag in dropped {
                    match tag {
                        Tag::Data(index) if !self.acked[index] => {
                            self.resend.insert(index);
                        }
                        Tag::Offline => self.offline_pending = false,
                        _ => {}
                    }
                }
                let _ = resume.send(());
            }
            Report::Disconnected => {}
        }
    }

    /// Hands messages to rumqttc while connected and the window has room. Returns when to look
    /// again if the next message is not due yet.
    fn fill(&mut self) -> Result<Option<Instant>, SimError> {
        while self.connected && self.handed.len() + self.in_flight.len() < IN_FLIGHT {
            if let Some(index) = self.resend.pop_first() {
                self.resent += 1;
                self.publish(index)?;
            } else if let Some(message) = self.messages.get(self.next_fresh) {
                if let Some(due) = message.due.filter(|due| *due > Instant::now()) {
                    return Ok(Some(due));
                }
                self.next_fresh += 1;
                self.publish(self.next_fresh - 1)?;
            } else if self.acked_count == self.messages.len() && !self.offline_pending {
                self.offline_pending = true;
                self.hand_over(Tag::Offline);
                if self.connected {
                    info!(dpu = %self.dpu, messages = self.messages.len(), "every message acknowledged");
                }
            } else {
                break;
            }
        }
        Ok(None)
    }

    fn publish(&mut self, index: usize) -> Result<(), SimError> {
        let payload = self.messages[index].payload.clone();
        self.client
            .try_publish(&self.crossings, QoS::AtLeastOnce, false, payload)
            .map_err(|e| self.failed(&e.to_string()))?;
        self.handed.push_back(Tag::Data(index));
        Ok(())
    }

    fn hand_over(&mut self, tag: Tag) {
        let payload = match tag {
            Tag::Offline => "offline",
            _ => "online",
        };
        // The channel holds IN_FLIGHT + 4 requests and at most IN_FLIGHT + 1 are queued, so a
        // failure here means the event loop is gone; the next report will say so.
        if self
            .client
            .try_publish(&self.status, QoS::AtLeastOnce, true, payload)
            .is_ok()
        {
            self.handed.push_back(tag);
        }
    }

    fn failed(&self, reason: &str) -> SimError {
        SimError::Client {
            dpu: self.dpu.clone(),
            reason: reason.to_owned(),
        }
    }
}
