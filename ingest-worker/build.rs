//! Compiles the PostgreSQL (`TEST_DATABASE_URL`) and TimescaleDB (`TEST_TIMESCALE_URL`) tests
//! in, rather than marking them ignored, when their variable is set: a machine without the
//! server reports them as ignored instead of passing them, and a machine with it can never
//! skip them (an unreachable server fails them).
fn main() {
    for (variable, cfg) in [
        ("TEST_DATABASE_URL", "roomer_postgres_tests"),
        ("TEST_TIMESCALE_URL", "roomer_timescale_tests"),
    ] {
        println!("cargo:rustc-check-cfg=cfg({cfg})");
        println!("cargo:rerun-if-env-changed={variable}");
        if std::env::var_os(variable).is_some_and(|v| !v.is_empty()) {
            println!("cargo:rustc-cfg={cfg}");
        }
    }
}
