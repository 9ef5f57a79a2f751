//! A bound on failed token attempts per client: after [`MAX_FAILURES`] requests with a
//! missing-but-needed or unknown token from one address within [`WINDOW`], that address is
//! answered 429 (with `Retry-After`) on every route that needs a token until the window
//! ends, without the token being looked at. A 256-bit token cannot be guessed; the bound
//! keeps a guessing client from costing a database lookup per try.
//!
//! The address is the TCP peer's: behind a reverse proxy every client shares the proxy's, so
//! the proxy should bound attempts itself (its own rate limit) or the bound applies to all.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failed attempts allowed per client within [`WINDOW`].
pub const MAX_FAILURES: u32 = 20;
/// How long failed attempts are remembered.
pub const WINDOW: Duration = Duration::from_secs(60);
/// Clients remembered before the expired ones are dropped.
const PRUNE_ABOVE: usize = 10_000;

/// Failed attempts per client address.
#[derive(Debug, Default)]
pub struct FailedAttempts {
    by_client: Mutex<HashMap<IpAddr, (u32, Instant)>>,
}

impl FailedAttempts {
    /// How long `client` must wait before trying a token again, if it is over the bound.
    pub fn blocked_for(&self, client: IpAddr, now: Instant) -> Option<Duration> {
        let by_client = self.by_client.lock().expect("not poisoned");
        let &(failures, since) = by_client.get(&client)?;
        let ends = since + WINDOW;
        (failures >= MAX_FAILURES && now < ends).then(|| ends - now)
    }

    /// Counts one failed attempt of `client`.
    pub fn failed(&self, client: IpAddr, now: Instant) {
        let mut by_client = self.by_client.lock().expect("not poisoned");
        if by_client.len() > PRUNE_ABOVE {
            by_client.retain(|_, &mut (_, since)| now < since + WINDOW);
        }
        let entry = by_client.entry(client).or_insert((0, now));
        if now >= entry.1 + WINDOW {
            *entry = (0, now);
        }
        entry.0 += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_is_held_off_after_its_failures_until_the_window_ends() {
        let attempts = FailedAttempts::default();
        let (client, other) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let t0 = Instant::now();
        for _ in 0..MAX_FAILURES - 1 {
            attempts.failed(client, t0);
        }
        assert_eq!(attempts.blocked_for(client, t0), None);
        attempts.failed(client, t0);
        let later = t0 + Duration::from_secs(15);
        assert_eq!(
            attempts.blocked_for(client, later),
            Some(WINDOW - Duration::from_secs(15))
        );
        assert_eq!(attempts.blocked_for(other, later), None, "per client");
        assert_eq!(attempts.blocked_for(client, t0 + WINDOW), None);
        attempts.failed(client, t0 + WINDOW);
        assert_eq!(
            attempts.blocked_for(client, t0 + WINDOW),
            None,
            "a new window"
        );
    }
}
