//! What a router holds that nobody has confirmed yet: DPU messages it acknowledged to their
//! publishers that the ingest side has not acknowledged in turn. If the router dies, that is
//! what is lost, and the number an operator is told.
//!
//! Counted from the packets that pass the front end, without looking inside the router:
//! - *accepted*: QoS 1 and 2 PUBLISHes on `dpus/…` topics that clients hand the router
//!   (the router acknowledges every one it takes);
//! - *consumed*: PUBACKs from *readers*, connections whose every subscription is to `dpus/…`
//!   topics (directly or through a shared group), as an ingest worker's are.
//!
//! With one reader per message (one worker, or workers in one shared group) the difference is
//! exactly what the router holds. A second QoS 1 reader of the same messages (an operator's
//! `mosquitto_sub -q 1 -t 'dpus/#'`) makes it count too little; that is stated where the
//! figure is reported.

use rumqttd::protocol::Packet;
use std::sync::atomic::{AtomicU64, Ordering};

/// The topics whose messages are data: what DPUs publish.
pub(crate) const DATA_PREFIX: &str = "dpus/";

#[derive(Debug, Default)]
pub(crate) struct Ledger {
    accepted: AtomicU64,
    consumed: AtomicU64,
}

impl Ledger {
    /// Acknowledged to publishers and not yet acknowledged by a reader.
    pub(crate) fn held(&self) -> u64 {
        let consumed = self.consumed.load(Ordering::Acquire);
        self.accepted
            .load(Ordering::Acquire)
            .saturating_sub(consumed)
    }
}

/// One connection's part: is it a reader of data topics?
#[derive(Debug, Default)]
pub(crate) struct Reader {
    /// `None` until it subscribes; then whether every filter was a data filter.
    data_only: Option<bool>,
}

impl Reader {
    /// Counts what `packet`, on its way from this connection to the router, means.
    pub(crate) fn observe(&mut self, packet: &Packet, ledger: &Ledger) {
        match packet {
            Packet::Publish(publish, _) => {
                // rumqttd keeps the QoS private; its length counts the packet id only for
                // QoS 1 and 2.
                let qos0_len = 2 + publish.topic.len() + publish.payload.len();
                if publish.len() > qos0_len && publish.topic.starts_with(DATA_PREFIX.as_bytes()) {
                    ledger.accepted.fetch_add(1, Ordering::AcqRel);
                }
            }
            Packet::Subscribe(subscribe, _) => {
                let all_data = subscribe.filters.iter().all(|f| is_data_filter(&f.path));
                self.data_only = Some(self.data_only.unwrap_or(true) && all_data);
            }
            Packet::PubAck(..) if self.data_only == Some(true) => {
                ledger.consumed.fetch_add(1, Ordering::AcqRel);
            }
            _ => {}
        }
    }
}

/// `dpus/…`, or `$share/{group}/dpus/…`.
fn is_data_filter(filter: &str) -> bool {
    let filter = match filter.strip_prefix("$share/") {
        Some(shared) => shared.split_once('/').map_or("", |(_, rest)| rest),
        None => filter,
    };
    filter.starts_with(DATA_PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rumqttd::protocol::Subscribe;
    use rumqttd::protocol::{Filter, PubAck, PubAckReason, Publish, QoS, RetainForwardRule};

    fn subscribe(paths: &[&str]) -> Packet {
        let filters = paths
            .iter()
            .map(|path| Filter {
                path: (*path).to_owned(),
                qos: QoS::AtLeastOnce,
                nolocal: false,
                preserve_retain: false,
                retain_forward_rule: RetainForwardRule::OnEverySubscribe,
            })
            .collect();
        Packet::Subscribe(Subscribe { pkid: 1, filters }, None)
    }

    fn puback() -> Packet {
        Packet::PubAck(
            PubAck {
                pkid: 1,
                reason: PubAckReason::Success,
            },
            None,
        )
    }

    /// A QoS 1 PUBLISH, through rumqttd's own (public) deserializer.
    fn qos1(topic: &str) -> Publish {
        let mut raw = vec![0x32, 0, 7, 0, topic.len() as u8];
        raw.extend_from_slice(topic.as_bytes());
        raw.extend_from_slice(b"{}");
        Publish::deserialize(raw.into())
    }

    #[test]
    fn data_filters_are_recognized_directly_and_in_shared_groups() {
        assert!(is_data_filter("dpus/+/crossings"));
        assert!(is_data_filter("$share/roomer/dpus/+/status"));
        assert!(!is_data_filter("spaces/+/count"));
        assert!(!is_data_filter("$share/dpus/spaces/1"));
        assert!(!is_data_filter("#"));
    }

    #[test]
    fn only_readers_of_data_topics_consume_and_qos0_is_not_held() {
        let ledger = Ledger::default();
        let mut worker = Reader::default();
        let mut dashboard = Reader::default();
        let mut dpu = Reader::default();
        worker.observe(&subscribe(&["dpus/+/crossings", "dpus/+/status"]), &ledger);
        dashboard.observe(&subscribe(&["spaces/+/count"]), &ledger);
        // QoS 0: Publish::new makes one; it is never acknowledged, so never held.
        dpu.observe(
            &Packet::Publish(Publish::new("dpus/1/crossings", "{}", false), None),
            &ledger,
        );
        assert_eq!(ledger.held(), 0);
        for _ in 0..3 {
            dpu.observe(&Packet::Publish(qos1("dpus/1/crossings"), None), &ledger);
        }
        dpu.observe(&Packet::Publish(qos1("spaces/1/count"), None), &ledger);
        assert_eq!(ledger.held(), 3);
        worker.observe(&puback(), &ledger);
        dashboard.observe(&puback(), &ledger);
        assert_eq!(ledger.held(), 2);
    }
}
