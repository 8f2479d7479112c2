//! Traces, read as an operator reads them in Jaeger or X-Ray: the shop exports its spans over
//! OTLP/HTTP (here to a receiver on loopback standing in for the collector) and an order's
//! whole life is one trace: from `POST /orders` through the notification of its placing, the
//! payment, the invoice and the e-mail deliveries, across every queue hop (the trace context
//! travels as an SQS message attribute, through moto's SQS on the AWS backend), with a span
//! for each domain operation and each store, queue, blob, payment and channel call.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Once, OnceLock};
use std::time::Duration;

use bazaar_api::telemetry::{self, Export};
use bazaar_tests::http::Client;
use bazaar_tests::otlp_receiver::{OtlpReceiver, ReceivedSpan};
use bazaar_tests::server::unique;
use bazaar_tests::{Backend, TestServer};
use serde_json::{Value, json};
use tracing_subscriber::filter::{LevelFilter, Targets};

bazaar_tests::on_both_backends!(an_orders_life_is_one_trace_across_every_queue);

const SERVER: i32 = 2;
const CLIENT: i32 = 3;
const CONSUMER: i32 = 5;

/// The receiver, with the process's subscriber exporting to it (installed once, as `bazaar
/// serve` does when `OTEL_EXPORTER_OTLP_ENDPOINT` is set).
fn collector() -> &'static OtlpReceiver {
    static RECEIVER: OnceLock<OtlpReceiver> = OnceLock::new();
    static INSTALL: Once = Once::new();
    let receiver = RECEIVER.get_or_init(OtlpReceiver::start);
    INSTALL.call_once(|| {
        let export = Export {
            endpoint: format!("{}/v1/traces", receiver.endpoint),
            service: "bazaar-test".to_owned(),
        };
        let logs = Targets::new().with_default(LevelFilter::WARN);
        telemetry::init_with(logs, std::io::sink, Some(&export));
    });
    receiver
}

fn text(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_owned()
}

/// The spans of one trace, by span id.
fn trace_of(spans: &[ReceivedSpan], trace_id: &str) -> BTreeMap<String, ReceivedSpan> {
    spans
        .iter()
        .filter(|span| span.trace_id == trace_id)
        .map(|span| (span.span_id.clone(), span.clone()))
        .collect()
}

fn has(trace: &BTreeMap<String, ReceivedSpan>, name: &str, kind: i32, peer: Option<&str>) -> bool {
    trace.values().any(|span| {
        span.name == name
            && span.kind == kind
            && peer.is_none_or(|peer| span.attributes.get("peer").map(String::as_str) == Some(peer))
    })
}

async fn an_orders_life_is_one_trace_across_every_queue(backend: Backend) {
    let collector = collector();
    let server = TestServer::start(backend).await;
    let client = Client::new(&server);
    let admin = client.admin(&server).await;

    let name = unique("tr").replace('-', "");
    let email = format!("{name}@example.com");
    let password = format!("correct horse {name}");
    let card = "4242424242424242";
    let registered = client
        .post(
            "/api/v1/users/register",
            None,
            json!({"email": email, "username": name, "password": password, "password_confirm": password}),
        )
        .await;
    registered.expect(201);
    let token = text(&registered.body["access_token"]);
    server.verify_email(&client, &token, &email).await;
    let address = client
        .post(
            "/api/v1/users/me/addresses",
            Some(&token),
            json!({"line1": "1 Main St", "city": "Tehran", "state": "Tehran", "postal_code": "1234567890", "country": "IR"}),
        )
        .await;
    address.expect(201);
    let sku = format!("{name}-SKU");
    let address_id = text(&address.body["id"]);
    let paid = client
        .order_and_pay(&admin, &token, &address_id, &sku, card)
        .await;
    let (order, placing_request) = (paid.id, paid.placing_request);

    // The order's trace: rooted at the placing request's span, holding every step after it.
    let expected: &[(&str, i32, Option<&str>)] = &[
        ("POST /api/v1/orders", SERVER, None),
        ("orders.place", 1, None),
        ("store transact", CLIENT, None),
        ("queue send", CLIENT, Some("notifications")),
        ("notifications", CONSUMER, None),
        ("notifications.fan_out", 1, None),
        ("deliveries", CONSUMER, None),
        ("notifications.deliver", 1, None),
        ("channel send", CLIENT, Some("email")),
        ("payments", CONSUMER, None),
        ("orders.process_payment", 1, None),
        ("payment charge", CLIENT, Some("card")),
        ("invoices", CONSUMER, None),
        ("orders.issue_invoice", 1, None),
        ("blob put", CLIENT, None),
    ];
    let mut trace = BTreeMap::new();
    let mut missing = expected.to_vec();
    for _ in 0..300 {
        telemetry::traces::flush();
        let spans = collector.spans();
        let root = spans.iter().find(|span| {
            span.kind == SERVER
                && span.attributes.get("request_id").map(String::as_str)
                    == Some(placing_request.as_str())
        });
        trace = root
            .map(|root| trace_of(&spans, &root.trace_id))
            .unwrap_or_default();
        missing.retain(|(name, kind, peer)| !has(&trace, name, *kind, *peer));
        if missing.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let seen: BTreeSet<(&str, i32, Option<&String>)> = trace
        .values()
        .map(|span| (span.name.as_str(), span.kind, span.attributes.get("peer")))
        .collect();
    assert!(
        missing.is_empty(),
        "the order's trace lacks {missing:?}; it holds {seen:#?}"
    );
    server.stop().await;
    telemetry::traces::flush();
    let spans = collector.spans();
    let root = trace
        .values()
        .find(|span| span.parent_span_id.is_empty())
        .expect("the trace has a root");
    let trace = trace_of(&spans, &root.trace_id);

    assert_eq!(root.name, "POST /api/v1/orders", "{root:?}");
    assert_eq!(root.service, "bazaar-test");
    // One tree: every span but the root hangs off a span of the same trace.
    let orphans: Vec<&ReceivedSpan> = trace
        .values()
        .filter(|span| span.span_id != root.span_id && !trace.contains_key(&span.parent_span_id))
        .collect();
    assert!(
        orphans.is_empty(),
        "spans whose parent is not in the trace: {orphans:#?}"
    );
    // Each consumer span continues the span that sent its message, across the queue.
    for queue in ["notifications", "payments", "invoices", "deliveries"] {
        for consumed in trace
            .values()
            .filter(|span| span.kind == CONSUMER && span.name == queue)
        {
            let parent = &trace[&consumed.parent_span_id];
            assert_ne!(
                parent.kind, CONSUMER,
                "{queue}: {consumed:?} under {parent:?}"
            );
        }
    }
    // The payment request is a trace of its own; the payment it asked for is in the order's.
    let paying: Vec<&ReceivedSpan> = spans
        .iter()
        .filter(|span| span.kind == SERVER && span.name == "POST /api/v1/orders/{id}/pay")
        .filter(|span| {
            span.attributes
                .get("path")
                .is_some_and(|path| path.contains(&order))
        })
        .collect();
    assert_eq!(paying.len(), 1, "{paying:#?}");
    assert_ne!(paying[0].trace_id, root.trace_id);
    // What leaves the process holds no personal data.
    let values: BTreeSet<&String> = trace
        .values()
        .flat_map(|span| span.attributes.values())
        .collect();
    for secret in [email.as_str(), password.as_str(), card, token.as_str()] {
        assert!(
            values.iter().all(|value| !value.contains(secret)),
            "a span attribute holds {secret}"
        );
    }
}
