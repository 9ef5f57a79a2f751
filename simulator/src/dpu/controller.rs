//! The controller half of a simulated DPU: see [the module above](super).

use super::{check_size, DpuReport, Report, GOODBYE_TIMEOUT, IN_FLIGHT};
use crate::error::SimError;
use crate::progress::FleetProgress;
use crate::source::{Next, Source};
use roomer_occupancy::DpuId;
use rumqttc::{AsyncClient, QoS};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{debug, warn};

/// Something handed to rumqttc, waiting for its packet id and then its PUBACK.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tag {
    Online,
    Offline,
    /// A message by its sequence number.
    Data(u64),
}

/// A message taken from the source and not yet acknowledged.
struct Unacked {
    payload: Vec<u8>,
    events: usize,
    /// When it was first written to a socket.
    first_sent: Option<Instant>,
    /// Sent again after a lost connection: its PUBACK says nothing about latency.
    resent: bool,
}

pub(super) struct Controller<S> {
    dpu: DpuId,
    client: AsyncClient,
    crossings: String,
    status: String,
    source: S,
    source_done: bool,
    /// By sequence number, which is also publishing order.
    unacked: BTreeMap<u64, Unacked>,
    next_seq: u64,
    /// Published on an earlier connection, never acknowledged: goes out first, oldest first.
    resend: BTreeSet<u64>,
    /// Handed to rumqttc, packet id not yet known (in hand-over order).
    handed: VecDeque<Tag>,
    in_flight: HashMap<u16, Tag>,
    connected: bool,
    ever_connected: bool,
    offline_pending: bool,
    offline_acked: bool,
    report: DpuReport,
    progress: Arc<FleetProgress>,
}

impl<S: Source> Controller<S> {
    pub(super) fn new(
        dpu: DpuId,
        client: AsyncClient,
        status: String,
        source: S,
        progress: Arc<FleetProgress>,
    ) -> Self {
        Self {
            crossings: roomer_occupancy::topics::crossings(&dpu),
            dpu,
            client,
            status,
            source,
            source_done: false,
            unacked: BTreeMap::new(),
            next_seq: 0,
            resend: BTreeSet::new(),
            handed: VecDeque::new(),
            in_flight: HashMap::new(),
            connected: false,
            ever_connected: false,
            offline_pending: false,
            offline_acked: false,
            report: DpuReport::default(),
            progress,
        }
    }

    pub(super) async fn run(
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
            if let Report::Refused(reason) = &report {
                return Err(self.failed(reason));
            }
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
        self.set_connected(false);
        Ok(self.report)
    }

    fn set_connected(&mut self, connected: bool) {
        match (self.connected, connected) {
            (false, true) => self.progress.connected(!self.ever_connected),
            (true, false) => self.progress.disconnected(),
            _ => {}
        }
        self.connected = connected;
        self.ever_connected |= connected;
    }

    fn handle(&mut self, report: Report) {
        match report {
            Report::Connected => {
                debug!(dpu = %self.dpu, "connected");
                self.set_connected(true);
                // First thing on every connection, so the status is right after a broker restart.
                self.hand_over(Tag::Online);
            }
            Report::Sent(pkid, at) => match self.handed.pop_front() {
                Some(tag) => {
                    if let Tag::Data(seq) = tag {
                        self.sent(seq, at);
                    }
                    self.in_flight.insert(pkid, tag);
                }
                None => warn!(dpu = %self.dpu, pkid, "a publish went out that was not ours"),
            },
            Report::Acked(pkid, at) => match self.in_flight.remove(&pkid) {
                Some(Tag::Data(seq)) => self.acked(seq, at),
                Some(Tag::Offline) => self.offline_acked = true,
                Some(Tag::Online) => {}
                None => debug!(dpu = %self.dpu, pkid, "acknowledgement of an unknown packet"),
            },
            Report::Lost { reason, resume } => {
                if self.connected {
                    warn!(dpu = %self.dpu, %reason, "connection lost; will resend what was not acknowledged");
                } else {
                    debug!(dpu = %self.dpu, %reason, "cannot connect");
                }
                self.set_connected(false);
                let dropped: Vec<Tag> = self
                    .handed
                    .drain(..)
                    .chain(self.in_flight.drain().map(|(_, tag)| tag))
                    .collect();
                for tag in dropped {
                    match tag {
                        Tag::Data(seq) if self.unacked.contains_key(&seq) => {
                            self.resend.insert(seq);
                        }
                        Tag::Offline => self.offline_pending = false,
                        _ => {}
                    }
                }
                let _ = resume.send(());
            }
            Report::Disconnected | Report::Refused(_) => {}
        }
    }

    fn sent(&mut self, seq: u64, at: Instant) {
        if let Some(message) = self.unacked.get_mut(&seq) {
            if message.first_sent.is_none() {
                message.first_sent = Some(at);
                self.progress.sent();
            }
        }
    }

    fn acked(&mut self, seq: u64, at: Instant) {
        // Each message once: a late duplicate acknowledgement finds nothing.
        if let Some(message) = self.unacked.remove(&seq) {
            self.report.messages += 1;
            self.report.events += message.events;
            let latency = match (message.resent, message.first_sent) {
                (false, Some(sent)) => Some(at.saturating_duration_since(sent)),
                _ => None,
            };
            self.progress.acked(message.events, latency);
        }
    }

    /// Hands messages to rumqttc while connected and the window has room. Returns when to look
    /// again if the next message is not due yet.
    fn fill(&mut self) -> Result<Option<Instant>, SimError> {
        while self.connected && self.handed.len() + self.in_flight.len() < IN_FLIGHT {
            if let Some(seq) = self.resend.pop_first() {
                self.report.resent += 1;
                self.progress.resent();
                if let Some(message) = self.unacked.get_mut(&seq) {
                    message.resent = true;
                }
                self.publish(seq)?;
            } else if !self.source_done {
                match self.source.next(Instant::now()) {
                    Next::Ready(message) => {
                        check_size(&self.dpu, message.payload.len())?;
                        let seq = self.next_seq;
                        self.next_seq += 1;
                        self.unacked.insert(
                            seq,
                            Unacked {
                                payload: message.payload,
                                events: message.events,
                                first_sent: None,
                                resent: false,
                            },
                        );
                        self.publish(seq)?;
                    }
                    Next::At(at) => return Ok(Some(at)),
                    Next::Done => self.source_done = true,
                }
            } else if self.unacked.is_empty() && !self.offline_pending {
                self.offline_pending = true;
                self.hand_over(Tag::Offline);
                debug!(dpu = %self.dpu, messages = self.report.messages, "every message acknowledged");
            } else {
                break;
            }
        }
        Ok(None)
    }

    fn publish(&mut self, seq: u64) -> Result<(), SimError> {
        let payload = self.unacked[&seq].payload.clone();
        self.client
            .try_publish(&self.crossings, QoS::AtLeastOnce, false, payload)
            .map_err(|e| self.failed(&e.to_string()))?;
        self.handed.push_back(Tag::Data(seq));
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
