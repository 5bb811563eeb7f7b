//! Logging: `tracing` with an env filter (RUST_LOG), request spans from
//! tracing-actix-web carrying a request id.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber once; later calls are ignored (tests).
pub fn init(default_filter: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
