//! Logs on stderr, as text or JSON lines, filtered by `RUST_LOG`; the broker's meters read
//! rumqttd's events through a filter of their own.

use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer as _};

/// Installs the process's logger (JSON lines with `json`) and the panic hook.
pub fn init(json: bool) {
    // rumqttd reports ordinary disconnects as errors; RUST_LOG=rumqttd=info shows them.
    let output_filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,rumqttd=off"));
    let output = if json {
        tracing_subscriber::fmt::layer()
            .json()
            .with_writer(std::io::stderr)
            .boxed()
    } else {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .boxed()
    };
    tracing_subscriber::registry()
        .with(output.with_filter(output_filter))
        .with(roomer_broker::meters::layer())
        .init();
    log_panics_on_one_line();
}

/// A panic is one ERROR line in the log (with where it happened), not a backtrace of a few
/// hundred lines per request; `RUST_BACKTRACE=1` adds the backtrace for a developer.
fn log_panics_on_one_line() {
    std::panic::set_hook(Box::new(|info| {
        let backtrace = std::backtrace::Backtrace::capture();
        match backtrace.status() {
            std::backtrace::BacktraceStatus::Captured => {
                tracing::error!(panic = %info, %backtrace, "panic")
            }
            _ => tracing::error!(panic = %info, "panic"),
        }
    }));
}
