//! Where a simulated DPU's messages come from: a plan made up front (replays) or a generator
//! that makes each message when it is due (live fleets).
//!
//! A DPU asks its source for the next message only when it is connected and has room in its
//! window, and keeps only what the broker has not acknowledged yet; so a generated source
//! costs no memory for the messages still to come, whatever the run's length.

use std::collections::VecDeque;
use tokio::time::Instant;

/// One message a DPU will publish, and when (`None`: as soon as possible).
#[derive(Clone, Debug)]
pub struct Message {
    pub due: Option<Instant>,
    pub payload: Vec<u8>,
    /// Crossings in the payload.
    pub events: usize,
}

/// What a [`Source`] has for a DPU at a given moment.
#[derive(Debug)]
pub enum Next {
    /// Publish this now.
    Ready(Message),
    /// Nothing before this moment.
    At(Instant),
    /// Nothing any more.
    Done,
}

/// A DPU's messages, in publishing order.
pub trait Source: Send + 'static {
    /// The next message if it is due at `now`. Called again after `At(t)` once `t` has come,
    /// or earlier; never again after `Done`.
    fn next(&mut self, now: Instant) -> Next;
}

/// Messages planned up front, each sent once due.
#[derive(Debug, Default)]
pub struct Planned(pub VecDeque<Message>);

impl From<Vec<Message>> for Planned {
    fn from(messages: Vec<Message>) -> Self {
        Self(messages.into())
    }
}

impl Source for Planned {
    fn next(&mut self, now: Instant) -> Next {
        match self.0.front().map(|m| m.due) {
            None => Next::Done,
            Some(Some(due)) if due > now => Next::At(due),
            Some(_) => Next::Ready(self.0.pop_front().expect("front exists")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_plan_hands_out_messages_in_order_once_due() {
        let now = Instant::now();
        let message = |due: Option<Instant>, events| Message {
            due,
            payload: vec![],
            events,
        };
        let later = now + Duration::from_secs(1);
        let mut plan = Planned::from(vec![message(None, 1), message(Some(later), 2)]);
        assert!(matches!(
            plan.next(now),
            Next::Ready(Message { events: 1, .. })
        ));
        assert!(matches!(plan.next(now), Next::At(at) if at == later));
        assert!(matches!(
            plan.next(later),
            Next::Ready(Message { events: 2, .. })
        ));
        assert!(matches!(plan.next(later), Next::Done));
    }
}
