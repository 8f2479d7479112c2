//! A function run as Lambda runs it: its bootstrap (`lambda-probe`, any catalogue entry)
//! against a stand-in Runtime API on loopback, with its ports on moto. What it prints is what
//! CloudWatch Logs would get: JSON log lines carrying API Gateway's and the invocation's ids,
//! and Embedded Metric Format lines from which CloudWatch makes the `Bazaar` metrics; and,
//! with a collector configured (the ADOT layer's, here a receiver on loopback), the spans of
//! each invocation, exported before it answers.

use std::process::Stdio;
use std::time::Duration;

use bazaar_adapters::aws::provision;
use bazaar_shared::metrics;
use bazaar_shared::ports::Queue;
use bazaar_tests::moto;
use bazaar_tests::otlp_receiver::OtlpReceiver;
use bazaar_tests::runtime_api::{RuntimeApi, invocation_id};
use bazaar_tests::server::unique;
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;

/// Runs `function` over `events` until it has answered each; returns its answers' bodies and
/// every line it printed.
async fn run_on_lambda(
    function: &str,
    events: Vec<Value>,
    table: &str,
) -> (Vec<Value>, Vec<Value>) {
    run_on_lambda_with(function, events, table, &[]).await
}

/// As [`run_on_lambda`], with more environment variables.
async fn run_on_lambda_with(
    function: &str,
    events: Vec<Value>,
    table: &str,
    more_env: &[(&str, &str)],
) -> (Vec<Value>, Vec<Value>) {
    let count = events.len();
    let runtime = RuntimeApi::start(events).await;
    let endpoint = moto::endpoint();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_lambda-probe"))
        .env_clear()
        .envs([
            ("BAZAAR_PROBE_FUNCTION", function),
            ("AWS_LAMBDA_RUNTIME_API", &runtime.address.to_string()),
            ("AWS_LAMBDA_FUNCTION_NAME", &format!("bazaar-{function}")),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256"),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
            ("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/probe"),
            ("AWS_LAMBDA_LOG_STREAM_NAME", "probe"),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_REGION", "us-east-1"),
            ("BAZAAR_BACKEND", "aws"),
            ("BAZAAR_AWS_ENDPOINT_URL", &endpoint),
            ("BAZAAR_TABLE", table),
            ("BAZAAR_QUEUE_PREFIX", table),
            ("BAZAAR_EMAIL_FROM", moto::VERIFIED_SENDER),
            ("RUST_LOG", "info"),
        ])
        .envs(more_env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|error| panic!("cannot start the probe: {error}"));
    let answers = runtime.answers(count, Duration::from_secs(60)).await;
    assert_eq!(answers.len(), count, "{function} answered {answers:?}");
    assert!(
        answers.iter().all(|answer| !answer.failed),
        "{function} failed: {answers:?}"
    );
    let _ = child.kill().await;
    let mut printed = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        let _ = stdout.read_to_string(&mut printed).await;
    }
    let lines = printed
        .lines()
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|error| {
                panic!("{function} printed a line that is not JSON ({error}): {line}")
            })
        })
        .collect();
    (
        answers.into_iter().map(|answer| answer.body).collect(),
        lines,
    )
}

/// The EMF lines for `metric`.
fn emf<'a>(lines: &'a [Value], metric: &str) -> Vec<&'a Value> {
    lines
        .iter()
        .filter(|line| line["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"] == json!(metric))
        .collect()
}

fn dimensions(line: &Value) -> Value {
    line["_aws"]["CloudWatchMetrics"][0]["Dimensions"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_function_on_lambda_writes_emf_and_logs_the_aws_request_ids() {
    let table = unique("lambda-emf");
    let sdk = moto::sdk_config().await;
    provision::create_table(&sdk, &table)
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    let route = "/api/v1/products/{id}";
    let path = "/api/v1/products/01JNOSUCHPRODUCT0000000000";
    let event = json!({
        "version": "2.0",
        "routeKey": format!("GET {route}"),
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"host": "api.example.com", "accept": "application/json"},
        "pathParameters": {"id": "01JNOSUCHPRODUCT0000000000"},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "bazaar",
            "domainName": "api.example.com",
            "http": {"method": "GET", "path": path, "protocol": "HTTP/1.1", "sourceIp": "203.0.113.9", "userAgent": "test"},
            "requestId": "gateway-request-1",
            "routeKey": format!("GET {route}"),
            "stage": "$default",
            "time": "01/Dec/2026:00:00:00 +0000",
            "timeEpoch": 1_795_000_000_000_u64,
        },
        "isBase64Encoded": false,
    });
    let (answers, lines) = run_on_lambda("products-get", vec![event], &table).await;
    assert_eq!(answers[0]["statusCode"], json!(404), "{answers:?}");

    let served = lines
        .iter()
        .find(|line| line["message"] == json!("request served"))
        .unwrap_or_else(|| panic!("no request line in {lines:#?}"));
    assert_eq!(
        served["span"]["request_id"],
        json!("gateway-request-1"),
        "{served}"
    );
    assert_eq!(served["span"]["correlation_id"], json!("gateway-request-1"));
    assert_eq!(served["span"]["aws_request_id"], json!(invocation_id(1)));

    let requests = emf(&lines, metrics::HTTP_REQUESTS);
    assert_eq!(requests.len(), 1, "{lines:#?}");
    let request = requests[0];
    assert_eq!(
        request["_aws"]["CloudWatchMetrics"][0]["Namespace"],
        json!("Bazaar")
    );
    assert_eq!(
        dimensions(request),
        json!([["function", "method", "route", "status"]])
    );
    assert_eq!(
        (
            &request["function"],
            &request["method"],
            &request["route"],
            &request["status"]
        ),
        (
            &json!("products-get"),
            &json!("GET"),
            &json!(route),
            &json!("404")
        )
    );
    assert_eq!(request[metrics::HTTP_REQUESTS], json!(1));
    let durations = emf(&lines, metrics::HTTP_REQUEST_DURATION);
    assert_eq!(durations.len(), 1, "{lines:#?}");
    assert_eq!(
        durations[0]["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Unit"],
        json!("Seconds")
    );
    assert!(
        durations[0][metrics::HTTP_REQUEST_DURATION][0]
            .as_f64()
            .is_some()
    );
    let cold = emf(&lines, metrics::COLD_STARTS);
    assert_eq!(cold.len(), 1, "{lines:#?}");
    assert_eq!(cold[0][metrics::COLD_STARTS], json!(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_on_lambda_counts_each_message_and_its_age_in_emf() {
    let table = unique("lambda-emf");
    let sdk = moto::sdk_config().await;
    provision::create_table(&sdk, &table)
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    // As deployed: the dead-letter queue's URL comes with the environment.
    let (_, dead_letters) = provision::create_queue(&sdk, &table, "payments", 5, 30)
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    let sent = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |now| now.as_millis() - 2_000);
    let record = |id: &str, body: &str| {
        json!({
            "messageId": id,
            "receiptHandle": format!("receipt-{id}"),
            "body": body,
            "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": sent.to_string()},
            "messageAttributes": {},
            "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:bazaar-payments",
            "awsRegion": "us-east-1",
        })
    };
    // A body that is no command, and a charge for an attempt that does not exist: both
    // poison, dead-lettered on their first receive rather than retried.
    let charge =
        r#"{"kind":"charge","order_id":"o-1","payment_id":"p-1","correlation_id":"req-7"}"#;
    let event = json!({"Records": [
        record("m-1", "not a command"),
        record("m-2", charge),
    ]});
    let (answers, lines) = run_on_lambda_with(
        "payments-process",
        vec![event],
        &table,
        &[("BAZAAR_QUEUE_URL_PAYMENTS_DLQ", &dead_letters)],
    )
    .await;
    assert_eq!(
        answers[0]["batchItemFailures"],
        json!([]),
        "poison is handled, not retried: {answers:?}"
    );
    let queue = bazaar_adapters::aws::SqsQueue::new(
        &sdk,
        [("payments-dlq".to_owned(), dead_letters)].into(),
        "",
    );
    let dead = queue
        .receive("payments-dlq", 10, Duration::from_secs(30))
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    let mut bodies: Vec<&str> = dead.iter().map(|message| message.body.as_str()).collect();
    bodies.sort_unstable();
    assert_eq!(bodies, ["not a command", charge]);

    let counted = emf(&lines, metrics::QUEUE_MESSAGES);
    assert_eq!(counted.len(), 1, "{lines:#?}");
    assert_eq!(
        dimensions(counted[0]),
        json!([["function", "queue", "outcome"]])
    );
    assert_eq!(
        (
            &counted[0]["queue"],
            &counted[0]["outcome"],
            &counted[0][metrics::QUEUE_MESSAGES]
        ),
        (&json!("payments"), &json!("dead_lettered"), &json!(2))
    );
    let ages = emf(&lines, metrics::QUEUE_MESSAGE_AGE);
    assert_eq!(ages.len(), 1, "{lines:#?}");
    let age_values = ages[0][metrics::QUEUE_MESSAGE_AGE]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(age_values.len(), 2);
    assert!(
        age_values
            .iter()
            .all(|age| age.as_f64().is_some_and(|age| age >= 2.0))
    );

    // The consumer's lines carry the message's queue, id, receive count and correlation id
    // (read from the decoded command), and the reason without the body.
    let dead_lettered = |id: &str| {
        lines
            .iter()
            .find(|line| line["span"]["message_id"] == json!(id) && line["level"] == json!("ERROR"))
            .unwrap_or_else(|| panic!("no error for {id} in {lines:#?}"))
    };
    let line = dead_lettered("m-2");
    assert_eq!(line["span"]["queue"], json!("payments"));
    assert_eq!(line["span"]["correlation_id"], json!("req-7"));
    assert_eq!(line["span"]["receive_count"], json!(1));
    assert_eq!(line["dead_letter_queue"], json!("payments-dlq"));
    let line = dead_lettered("m-1").to_string();
    assert!(
        line.contains("not a payment command") && !line.contains("not a command"),
        "{line}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_on_lambda_continues_the_senders_trace_and_exports_before_answering() {
    let table = unique("lambda-trace");
    let sdk = moto::sdk_config().await;
    provision::create_table(&sdk, &table)
        .await
        .unwrap_or_else(|error| panic!("{error}"));
    let collector = OtlpReceiver::start();
    let (trace_id, parent_id) = ("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331");
    let event = json!({"Records": [{
        "messageId": "m-1",
        "receiptHandle": "receipt-m-1",
        "body": r#"{"kind":"charge","order_id":"o-1","payment_id":"p-1","correlation_id":"req-7"}"#,
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1795000000000"},
        "messageAttributes": {"traceparent": {
            "stringValue": format!("00-{trace_id}-{parent_id}-01"),
            "dataType": "String",
        }},
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:bazaar-payments",
        "awsRegion": "us-east-1",
    }]});
    let endpoint = collector.endpoint.clone();
    run_on_lambda_with(
        "payments-process",
        vec![event],
        &table,
        &[("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)],
    )
    .await;

    // Read once the invocation has answered: a span still queued then would have waited for
    // the next invocation (or been lost with a frozen environment).
    let spans = collector.spans();
    let consumed = spans
        .iter()
        .find(|span| span.name == "payments" && span.kind == 5)
        .unwrap_or_else(|| panic!("no consumer span in {spans:#?}"));
    assert_eq!(
        (consumed.trace_id.as_str(), consumed.parent_span_id.as_str()),
        (trace_id, parent_id),
        "the message's work continues the trace that sent it"
    );
    assert_eq!(consumed.service, "payments-process");
    assert!(
        spans
            .iter()
            .any(|span| span.name == "orders.process_payment"
                && span.parent_span_id == consumed.span_id),
        "{spans:#?}"
    );
    assert!(
        spans
            .iter()
            .any(|span| span.name == "store get" && span.trace_id == trace_id),
        "{spans:#?}"
    );
}
