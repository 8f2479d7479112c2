//! Trace context across queues, and the names of the spans the shop opens.
//!
//! A message carries the W3C `traceparent` of the span that staged it (in its outbox entry,
//! then as an SQS message attribute), so the consumer's work continues the trace of the request
//! that caused it: one trace from `POST /orders` through payment, invoice and delivery.
//!
//! The domain knows no tracing library: the edge installs [`install`] a function that renders
//! the current span's context (it does so only when traces are exported). Without one, messages
//! carry no trace context and nothing is spent on it.

use std::sync::OnceLock;

use crate::ports::Attributes;

/// The message attribute holding the W3C trace context (the header's name, as propagators
/// name it).
pub const TRACEPARENT: &str = "traceparent";

/// The stored attribute holding a `traceparent` kept for later: an outbox entry's, an
/// order's.
pub const STORED_PARENT: &str = "trace_parent";

/// The `tracing` target of spans that exist for traces only (domain operations, port calls):
/// the log subscriber leaves them out, so a log line keeps its request's or message's span.
pub const SPAN_TARGET: &str = "bazaar::span";

/// Renders the current span's context as a `traceparent`, if it belongs to a sampled trace.
pub type CurrentParent = fn() -> Option<String>;

static CURRENT_PARENT: OnceLock<CurrentParent> = OnceLock::new();

/// Installs the renderer (once per process; later calls are ignored).
pub fn install(current: CurrentParent) {
    let _ = CURRENT_PARENT.set(current);
}

/// The current span's `traceparent`, when traces are exported.
pub fn current_parent() -> Option<String> {
    CURRENT_PARENT.get().and_then(|current| current())
}

/// The attributes of a message continuing `parent`'s trace (none without one).
pub fn attributes(parent: Option<&str>) -> Attributes {
    parent
        .map(|parent| Attributes::from([(TRACEPARENT.to_owned(), parent.to_owned())]))
        .unwrap_or_default()
}
