//! Structured JSON logs (one object per line) on stdout, which CloudWatch and `jq` both read.
//! Requests are logged by the middleware; bodies never are, so no password, hash or token
//! reaches a log.

use tracing_subscriber::EnvFilter;

/// Installs the JSON log subscriber; `RUST_LOG` (or `BAZAAR_LOG`) sets the filter, default `info`.
pub fn init() {
    let filter = std::env::var("BAZAAR_LOG")
        .ok()
        .and_then(|value| EnvFilter::try_new(value).ok())
        .or_else(|| EnvFilter::try_from_default_env().ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(true)
        .with_span_list(false)
        .flatten_event(true)
        .with_target(false)
        .try_init();
}
