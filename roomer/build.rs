//! Compiles the PostgreSQL conformance tests in (rather than marking them ignored) when
//! `TEST_DATABASE_URL` is set, so that a machine without PostgreSQL reports them as ignored
//! instead of passing them, and a machine with it can never skip them.
fn main() {
    println!("cargo:rustc-check-cfg=cfg(roomer_postgres_tests)");
    println!("cargo:rerun-if-env-changed=TEST_DATABASE_URL");
    if std::env::var_os("TEST_DATABASE_URL").is_some_and(|v| !v.is_empty()) {
        println!("cargo:rustc-cfg=roomer_postgres_tests");
    }
}
