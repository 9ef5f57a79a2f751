//! When a pooled connection is checked before use.
//!
//! Pinging every connection before every statement (sqlx's default) costs a round trip per
//! statement, and a count at T takes five. A connection used within the last second is
//! alive unless the server has just ended it, so it is checked only after a second idle
//! (sqlx's documented recipe; HikariCP's rule is the same). A statement that meets a
//! connection the server ended anyway fails with a lost connection: from then on, for a
//! while, every connection is checked before use, and the read is tried once more
//! (`Backend::read_again`), so a restart or `pg_terminate_backend` costs no failed read.

use sqlx::postgres::{PgConnection, PgPoolOptions};
use sqlx::Connection;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a pooled connection may sit idle before it is checked before use.
const CHECK_IF_IDLE_FOR: Duration = Duration::from_secs(1);
/// How long every connection is checked after one was found ended.
const CHECK_ALL_FOR: Duration = Duration::from_secs(5);

/// Shared by the pool's check and the store that reports lost connections.
#[derive(Clone, Debug, Default)]
pub(super) struct Liveness {
    check_all_until: Arc<Mutex<Option<Instant>>>,
}

impl Liveness {
    /// `options` with connections checked as above.
    pub(super) fn apply(&self, options: PgPoolOptions) -> PgPoolOptions {
        let liveness = self.clone();
        options
            .test_before_acquire(false)
            .before_acquire(move |conn: &mut PgConnection, meta| {
                let check = meta.idle_for >= CHECK_IF_IDLE_FOR || liveness.checking_all();
                Box::pin(async move {
                    if check {
                        conn.ping().await?;
                    }
                    Ok(true)
                })
            })
    }

    /// A connection was found ended: the server may have ended the others too.
    pub(super) fn connection_lost(&self) {
        *self.check_all_until.lock().expect("liveness") = Some(Instant::now() + CHECK_ALL_FOR);
    }

    fn checking_all(&self) -> bool {
        self.check_all_until
            .lock()
            .expect("liveness")
            .is_some_and(|until| Instant::now() < until)
    }
}
