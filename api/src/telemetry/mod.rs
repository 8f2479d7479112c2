//! Structured JSON logs (one object per line) on stdout, which CloudWatch and `jq` both read,
//! and, when an OTLP endpoint is configured, traces ([`traces`]). Requests are logged by the
//! middleware; bodies never are, so no password, hash or token reaches a log.

pub mod emf;
mod export_on_flush;
mod otlp_client;
pub mod traces;

use tracing::{Level, Metadata};
use tracing_subscriber::Layer;
use tracing_subscriber::filter::{LevelFilter, Targets, filter_fn};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

pub use traces::Export;

/// Installs the JSON log subscriber, and the trace exporter when `OTEL_EXPORTER_OTLP_ENDPOINT`
/// is set (`service` names the spans' service unless `OTEL_SERVICE_NAME` does). `BAZAAR_LOG`
/// (or `RUST_LOG`) sets the log filter: a level, and levels per module
/// (`info,bazaar_shared::orders=debug`); default `info`. (Per-target levels rather than
/// `EnvFilter`'s span and field filters: those bring a regex engine into every function
/// package.)
pub fn init(service: &str) {
    let filter = ["BAZAAR_LOG", "RUST_LOG"]
        .iter()
        .filter_map(|name| std::env::var(name).ok())
        .find_map(|value| value.parse::<Targets>().ok())
        .unwrap_or_else(|| Targets::new().with_default(LevelFilter::INFO));
    init_with(filter, std::io::stdout, Export::from_env(service).as_ref());
}

/// Installs the JSON log subscriber with this filter, writing to `writer` (tests read what
/// the shop logs), and the trace exporter for `traces`. Does nothing if a subscriber is
/// already installed.
///
/// Spans that exist for traces only (target [`bazaar_shared::trace::SPAN_TARGET`]) never
/// reach the logs, so a log line keeps the fields of its request's or message's span; the
/// trace layer takes spans (not log events) at `info` and above.
pub fn init_with<W>(filter: Targets, writer: W, traces: Option<&Export>)
where
    W: for<'writer> MakeWriter<'writer> + Send + Sync + 'static,
{
    let filter = filter.with_target(bazaar_shared::trace::SPAN_TARGET, LevelFilter::OFF);
    let json = tracing_subscriber::fmt::layer()
        .json()
        .with_current_span(true)
        .with_span_list(false)
        .flatten_event(true)
        .with_target(false)
        .with_writer(writer)
        .with_filter(filter);
    let otel = traces.and_then(|export| match traces::layer(export) {
        Ok(layer) => Some(layer.with_filter(filter_fn(is_traced))),
        Err(error) => {
            eprintln!("traces are not exported: {error}");
            None
        }
    });
    let _ = tracing_subscriber::registry()
        .with(json)
        .with(otel)
        .try_init();
}

/// Writes the invocation's metrics (EMF) and exports its spans: at the end of every Lambda
/// invocation, before the environment may be frozen.
pub fn flush() {
    emf::flush();
    traces::flush();
}

/// What the trace layer takes: spans at `info` and above (the SDK's own debug spans stay out).
fn is_traced(metadata: &Metadata<'_>) -> bool {
    metadata.is_span() && metadata.level() <= &Level::INFO
}
