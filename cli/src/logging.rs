//! Structured logging for the long-running verbs (`serve`, `worker`).

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber: level from `SLUICE_LOG` (or `RUST_LOG`), default `info`;
/// JSON lines when `SLUICE_LOG_FORMAT=json`, human-readable text otherwise.
pub fn init() {
    let filter = std::env::var("SLUICE_LOG")
        .ok()
        .or_else(|| std::env::var("RUST_LOG").ok())
        .and_then(|f| EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = if std::env::var("SLUICE_LOG_FORMAT").as_deref() == Ok("json") {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
    // A second init (e.g. in tests) keeps the first subscriber; nothing to report.
    drop(result);
}
