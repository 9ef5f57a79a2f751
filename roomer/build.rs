//! Compiles the tests that need outside servers in (rather than marking them ignored) when
//! the environment variable naming the server is set, so that a machine without the server
//! reports them as ignored instead of passing them, and a machine with it can never skip
//! them:
//! - `TEST_DATABASE_URL` (a PostgreSQL to create test databases in) → `roomer_postgres_tests`
//! - `TEST_MOSQUITTO` (the `mosquitto` binary) → `roomer_mosquitto_tests`
//! - `TEST_OUTAGE_CLUSTER` (a PostgreSQL cluster the tests may stop and start, as
//!   `VERSION NAME` for `pg_ctlcluster`) → `roomer_outage_tests`
//! - `TEST_TIMESCALE_URL` (a PostgreSQL with `timescaledb` preloaded) → `roomer_timescale_tests`
//! - `TEST_FAULTS` (root on Linux: tests mount a small tmpfs and fill it) → `roomer_fault_tests`
//! - `TEST_CHROMEDRIVER` (chromedriver, with `TEST_CHROMIUM` naming the browser) →
//!   `roomer_browser_tests`
fn main() {
    for (variable, cfg) in [
        ("TEST_DATABASE_URL", "roomer_postgres_tests"),
        ("TEST_MOSQUITTO", "roomer_mosquitto_tests"),
        ("TEST_OUTAGE_CLUSTER", "roomer_outage_tests"),
        ("TEST_TIMESCALE_URL", "roomer_timescale_tests"),
        ("TEST_FAULTS", "roomer_fault_tests"),
        ("TEST_CHROMEDRIVER", "roomer_browser_tests"),
    ] {
        println!("cargo:rustc-check-cfg=cfg({cfg})");
        println!("cargo:rerun-if-env-changed={variable}");
        if std::env::var_os(variable).is_some_and(|v| !v.is_empty()) {
            println!("cargo:rustc-cfg={cfg}");
        }
    }
}
