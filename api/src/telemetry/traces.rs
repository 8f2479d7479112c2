//! Traces: the shop's `tracing` spans (requests, queue messages, domain operations, port
//! calls) become OpenTelemetry spans, exported over OTLP/HTTP when an endpoint is configured:
//! on Lambda to the ADOT collector layer, which forwards them to X-Ray; locally to Jaeger or
//! any OpenTelemetry collector. Without an endpoint no exporter, processor or layer exists,
//! and messages carry no trace context: nothing is spent.
//!
//! A message continues the trace of the span that staged it (`bazaar_shared::trace`), so one
//! trace runs from `POST /orders` through the payment, invoice and delivery consumers.

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Duration;

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Subscriber;
use tracing_opentelemetry::{OpenTelemetryLayer, OpenTelemetrySpanExt};
use tracing_subscriber::registry::LookupSpan;

use super::export_on_flush::ExportOnFlush;
use super::otlp_client::OtlpClient;

/// The provider, once traces are exported; flushed after every Lambda invocation.
static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// Where spans go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Export {
    /// The full URL spans are posted to (`.../v1/traces`).
    pub endpoint: String,
    /// `service.name` of every span: the function's name on Lambda, `bazaar` locally.
    pub service: String,
}

impl Export {
    /// From the standard variables: `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (used as is) or
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` (a base URL, `/v1/traces` appended), and
    /// `OTEL_SERVICE_NAME` over `service`. None, so no traces, when neither endpoint is set
    /// (or set empty), when `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none`.
    pub fn from_env(service: &str) -> Option<Self> {
        Self::from_vars(|name| std::env::var(name).ok(), service)
    }

    fn from_vars(var: impl Fn(&str) -> Option<String>, service: &str) -> Option<Self> {
        let set = |name: &str| var(name).map(|value| value.trim().to_owned());
        let disabled = set("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true"))
            || set("OTEL_TRACES_EXPORTER").is_some_and(|v| v.eq_ignore_ascii_case("none"));
        if disabled {
            return None;
        }
        let endpoint = match set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").filter(|v| !v.is_empty()) {
            Some(endpoint) => endpoint,
            None => {
                let base = set("OTEL_EXPORTER_OTLP_ENDPOINT").filter(|v| !v.is_empty())?;
                format!("{}/v1/traces", base.trim_end_matches('/'))
            }
        };
        let service = set("OTEL_SERVICE_NAME")
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| service.to_owned());
        Some(Self { endpoint, service })
    }
}

/// The layer that turns spans into OpenTelemetry spans exported to `export`, with its
/// provider installed for [`flush`] and messages' trace context switched on. Only `http://`
/// endpoints: the collector runs beside the process.
pub fn layer<S>(
    export: &Export,
) -> Result<OpenTelemetryLayer<S, opentelemetry_sdk::trace::Tracer>, String>
where
    S: Subscriber + for<'span> LookupSpan<'span>,
{
    if !export.endpoint.starts_with("http://") {
        return Err(format!(
            "OTLP endpoint {} is not http://: send spans to a collector beside the process (the ADOT layer on Lambda)",
            export.endpoint
        ));
    }
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(OtlpClient)
        .with_endpoint(export.endpoint.clone())
        .build()
        .map_err(|error| error.to_string())?;
    let resource = Resource::builder_empty()
        .with_service_name(export.service.clone())
        .build();
    let provider = SdkTracerProvider::builder()
        .with_span_processor(ExportOnFlush::new(exporter))
        .with_resource(resource)
        .build();
    let tracer = provider.tracer("bazaar");
    if PROVIDER.set(provider).is_ok() {
        flush_every(FLUSH_INTERVAL);
    }
    bazaar_shared::trace::install(current_parent);
    Ok(tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_tracked_inactivity(false)
        .with_threads(false)
        .with_location(false))
}

/// How long a finished span waits at most in a long-running process (the local server); a
/// Lambda invocation exports its spans before it answers.
const FLUSH_INTERVAL: Duration = Duration::from_secs(5);

/// Flushes from a thread of its own (exporting blocks), for as long as the process runs.
fn flush_every(interval: Duration) {
    let started = std::thread::Builder::new()
        .name("span-export".to_owned())
        .spawn(move || {
            loop {
                std::thread::sleep(interval);
                flush();
            }
        });
    if let Err(error) = started {
        eprintln!("spans are exported only when flushed: {error}");
    }
}

/// Whether spans are being exported.
pub fn enabled() -> bool {
    PROVIDER.get().is_some()
}

/// Exports every finished span now: at the end of a Lambda invocation, before the
/// environment is frozen (spans still waiting would wait for the next invocation, or be lost).
pub fn flush() {
    if let Some(provider) = PROVIDER.get()
        && let Err(error) = provider.force_flush()
    {
        tracing::warn!(%error, "spans not exported");
    }
}

/// Exports what is left and stops the exporter (the local server, on its way out).
pub fn shutdown() {
    if let Some(provider) = PROVIDER.get()
        && let Err(error) = provider.shutdown()
    {
        tracing::warn!(%error, "spans not exported at shutdown");
    }
}

/// Names a request's span `METHOD /route/template` in traces once the route is known (only
/// after routing; a started span ignores a later `otel.name`). Nothing is formatted when
/// traces are off.
pub fn name_request(span: &tracing::Span, method: &str, route: &str) {
    if enabled() {
        span.context()
            .span()
            .update_name(format!("{method} {route}"));
    }
}

/// The current span's context as a W3C `traceparent`.
fn current_parent() -> Option<String> {
    let context = tracing::Span::current().context();
    if !context.span().span_context().is_valid() {
        return None;
    }
    let mut carrier = HashMap::new();
    TraceContextPropagator::new().inject_context(&context, &mut carrier);
    carrier.remove(bazaar_shared::trace::TRACEPARENT)
}

/// Makes `span` (not entered yet) a child of the remote span `traceparent` names, so a
/// message's work continues the trace that sent it. A missing or malformed parent leaves
/// the span a root.
pub fn continue_from(span: &tracing::Span, traceparent: Option<&str>) {
    let Some(traceparent) = traceparent.filter(|_| enabled()) else {
        return;
    };
    let carrier = HashMap::from([(
        bazaar_shared::trace::TRACEPARENT.to_owned(),
        traceparent.to_owned(),
    )]);
    let context = TraceContextPropagator::new().extract(&carrier);
    if context.span().span_context().is_valid() {
        let _ = span.set_parent(context);
    }
}

#[cfg(test)]
mod tests {
    use super::Export;

    fn export(vars: &[(&str, &str)]) -> Option<Export> {
        Export::from_vars(
            |name| {
                vars.iter()
                    .find(|(key, _)| *key == name)
                    .map(|(_, value)| (*value).to_owned())
            },
            "orders-create",
        )
    }

    #[test]
    fn traces_are_exported_only_to_a_configured_endpoint() {
        assert_eq!(export(&[]), None);
        assert_eq!(export(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "")]), None);
        assert_eq!(
            export(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://localhost:4318/")]),
            Some(Export {
                endpoint: "http://localhost:4318/v1/traces".to_owned(),
                service: "orders-create".to_owned(),
            })
        );
        assert_eq!(
            export(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://localhost:4318"),
                (
                    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                    "http://collector:4318/custom"
                ),
                ("OTEL_SERVICE_NAME", "shop"),
            ]),
            Some(Export {
                endpoint: "http://collector:4318/custom".to_owned(),
                service: "shop".to_owned(),
            })
        );
        for off in [
            ("OTEL_SDK_DISABLED", "true"),
            ("OTEL_TRACES_EXPORTER", "none"),
        ] {
            assert_eq!(
                export(&[
                    ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://localhost:4318"),
                    off
                ]),
                None,
                "{off:?}"
            );
        }
    }
}
