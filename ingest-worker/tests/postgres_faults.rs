//! PostgreSQL faults that heal by themselves, under a stream of crossings: the worker's
//! connections killed mid-stream, and its role's password changed and changed back. The
//! worker acknowledges nothing it could not store, says which fault it waits out, resumes
//! on its own, and every crossing is stored exactly once; nothing is set aside.
//!
//! Runs when `TEST_DATABASE_URL` names a server where it may create a role; otherwise it is
//! reported as ignored.

mod common;

use common::{publish, spawn_worker_on, wait_for_totals};
use roomer_storage::testing::{eventually, fresh_postgres_database, postgres_url};
use sqlx::PgPool;
use std::time::Duration;

/// `n` entrances of DPU 283, one per message, from second `from` on.
fn entrances(from: usize, n: usize) -> Vec<(String, String)> {
    (from..from + n)
        .map(|s| {
            let ts = format!("2018-02-26T16:{:02}:{:02}Z", s / 60, s % 60);
            (
                "dpus/283/crossings".to_owned(),
                format!(r#"{{"ts": "{ts}", "direction": 1}}"#),
            )
        })
        .collect()
}

async fn send(worker: &common::Worker, messages: &[(String, String)]) {
    let borrowed: Vec<(&str, &str)> = messages
        .iter()
        .map(|(t, p)| (t.as_str(), p.as_str()))
        .collect();
    publish(worker.broker.local_addr(), &borrowed).await;
}

/// Terminates every connection of `role` and waits until none is left. A connection whose
/// login was checked just before a password change shows in `pg_stat_activity` only once
/// its startup ends, so the check is repeated after a pause longer than a startup; without
/// that such a connection could store a batch the test expects to be refused.
async fn kill_connections_of(admin: &PgPool, role: &str) {
    for round in 0..2 {
        if round > 0 {
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        eventually(
            "every connection of the role to end",
            Duration::from_secs(10),
            || async {
                // Waits (up to 10 s each) for the backends to exit, so that none serves one
                // more batch after this returns.
                sqlx::query(
                    "SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity WHERE usename = $1",
                )
                .bind(role)
                .execute(admin)
                .await
                .unwrap();
                let left: i64 =
                    sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity WHERE usename = $1")
                        .bind(role)
                        .fetch_one(admin)
                        .await
                        .unwrap();
                (left == 0).then_some(())
            },
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(roomer_postgres_tests),
    ignore = "set TEST_DATABASE_URL to run against PostgreSQL"
)]
async fn killed_connections_and_a_changed_password_heal_without_a_restart() {
    let admin_url = postgres_url().expect("TEST_DATABASE_URL must be set for PostgreSQL tests");
    let admin = PgPool::connect(&admin_url).await.unwrap();
    // A role of its own, so that changing its password disturbs no other test.
    let role = format!("roomer_fault_{}", std::process::id());
    sqlx::query(&format!("DROP ROLE IF EXISTS {role}"))
        .execute(&admin)
        .await
        .ok();
    sqlx::query(&format!("CREATE ROLE {role} LOGIN PASSWORD 'first'"))
        .execute(&admin)
        .await
        .unwrap();
    // The migrations read `shared_preload_libraries` to see whether TimescaleDB is there
    // (see Known limitations).
    sqlx::query(&format!("GRANT pg_read_all_settings TO {role}"))
        .execute(&admin)
        .await
        .unwrap();
    let database = fresh_postgres_database(&admin_url).await.unwrap();
    let name = database
        .rsplit('/')
        .next()
        .unwrap()
        .split('?')
        .next()
        .unwrap();
    sqlx::query(&format!("ALTER DATABASE {name} OWNER TO {role}"))
        .execute(&admin)
        .await
        .unwrap();
    let host = admin_url
        .split('@')
        .nth(1)
        .unwrap()
        .split('/')
        .next()
        .unwrap();
    let url = format!("postgres://{role}:first@{host}/{name}");
    let worker = spawn_worker_on(Some(url), |_| {}).await;

    send(&worker, &entrances(0, 50)).await;
    wait_for_totals(&worker.store, 50, 0).await;

    // Every connection killed between batches and while the next ones arrive.
    kill_connections_of(&admin, &role).await;
    send(&worker, &entrances(50, 50)).await;
    kill_connections_of(&admin, &role).await;
    send(&worker, &entrances(100, 50)).await;
    wait_for_totals(&worker.store, 150, 0).await;

    // The password changes under it: the worker waits, saying why, and resumes once the
    // password is back.
    sqlx::query(&format!("ALTER ROLE {role} PASSWORD 'second'"))
        .execute(&admin)
        .await
        .unwrap();
    kill_connections_of(&admin, &role).await;
    send(&worker, &entrances(150, 50)).await;
    // The first fault seen may be the killed connection; the refused login follows.
    let refused = eventually(
        "the worker to report the refused password",
        Duration::from_secs(31),
        || {
            let stats = worker.stats.clone();
            async move { stats.store_fault().filter(|f| f.contains("password")) }
        },
    );
    if tokio::time::timeout(Duration::from_secs(30), refused)
        .await
        .is_err()
    {
        panic!(
            "no refused password reported within 30 s; fault {:?}, stats {:?}",
            worker.stats.store_fault(),
            worker.stats.snapshot()
        );
    }
    assert_eq!(
        worker.stats.snapshot().crossings_new,
        150,
        "nothing stored while the password is refused"
    );
    sqlx::query(&format!("ALTER ROLE {role} PASSWORD 'first'"))
        .execute(&admin)
        .await
        .unwrap();
    eventually("the worker to store again", Duration::from_secs(60), || {
        let stats = worker.stats.clone();
        async move { (stats.snapshot().crossings_new == 200).then_some(()) }
    })
    .await;
    assert_eq!(worker.stats.store_fault(), None);
    assert_eq!(worker.stats.snapshot().rejected, 0, "nothing set aside");

    let _dir = worker.stop().await;
    kill_connections_of(&admin, &role).await;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&admin)
        .await
        .ok();
    sqlx::query(&format!("DROP ROLE IF EXISTS {role}"))
        .execute(&admin)
        .await
        .ok();
}
