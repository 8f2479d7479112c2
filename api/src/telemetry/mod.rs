//! Structured JSON logs (one object per line) on stdout, which CloudWatch and `jq` both read.
//! Requests are logged by the middleware; bodies never are, so no password, hash or token
//! reaches a log.

pub mod emf;

use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Installs the JSON log subscriber. `BAZAAR_LOG` (or `RUST_LOG`) sets the filter: a level,
/// and levels per module (`info,bazaar_shared::orders=debug`); default `info`. (Per-target
/// levels rather than `EnvFilter`'s span and field filters: those bring a regex engine into
/// every function package.)
pub fn init() {
    let filter = ["BAZAAR_LOG", "RUST_LOG"]
        .iter()
        .filter_map(|name| std::env::var(name).ok())
        .find_map(|value| value.parse::<Targets>().ok())
        .unwrap_or_else(|| Targets::new().with_default(LevelFilter::INFO));
    init_with(filter, std::io::stdout);
}

/// Installs the JSON log subscriber with this filter, writing to `writer` (tests read what
/// the shop logs). Does nothing if a subscriber is already installed.
pub fn init_with<W>(filter: Targets, writer: W)
where
    W: for<'writer> MakeWriter<'writer> + Send + Sync + 'static,
{
    let json = tracing_subscriber::fmt::layer()
        .json()
        .with_current_span(true)
        .with_span_list(false)
        .flatten_event(true)
        .with_target(false)
        .with_writer(writer);
    let _ = tracing_subscriber::registry()
        .with(json)
        .with(filter)
        .try_init();
}
