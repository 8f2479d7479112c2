//! No input, however wrong, gets a server error: every route of the API is sent a battery of
//! malformed bodies, query strings and tokens, and must answer with a 4xx problem.

use bazaar_api::functions::http_functions;
use bazaar_tests::http::Client;
use bazaar_tests::recording::Call;
use bazaar_tests::{Backend, TestServer};
use reqwest::Method;

const BODIES: &[&str] = &[
    "",
    "null",
    "[]",
    "\"string\"",
    "12345678901234567890123456789",
    "{\"email\": null, \"username\": [], \"password\": {}}",
    "{\"email\": \"a@b.c\", \"password\": 1e999}",
    "{\"first_name\": \"\\u0000\", \"is_default\": \"yes\", \"role\": 7}",
    "{\"line1\": \"\\ud800\"}",
    "{{{{",
    "{\"a\":",
];

fn deep_nesting() -> String {
    format!("{}{}", "[".repeat(10_000), "]".repeat(10_000))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_bad_input_gets_a_server_error() {
    let server = TestServer::start(Backend::Embedded).await;
    let client = Client::new(&server);
    let (token, _) = client.register("fuzzy").await;
    let deep = deep_nesting();
    let mut bodies: Vec<&str> = BODIES.to_vec();
    bodies.push(&deep);
    for (spec, method, path) in http_functions() {
        let path = path.replace("{id}", "%00..%2F..%2Fetc");
        let method = Method::from_bytes(method.as_bytes()).unwrap_or(Method::GET);
        for body in &bodies {
            for content_type in [
                "application/json",
                "application/x-www-form-urlencoded",
                "text/plain",
            ] {
                for auth in [Some(token.as_str()), Some("e30.e30.e30"), None] {
                    let request = client
                        .request(method.clone(), &format!("{path}?limit=-1&cursor=%FF"), auth)
                        .header("content-type", content_type)
                        .body(body.to_string());
                    let response = client.send(request).await;
                    assert!(
                        response.status < 500,
                        "{} {method} {path} with {content_type} body {:.60?} → {}: {}",
                        spec.name,
                        body,
                        response.status,
                        response.text
                    );
                    if response.status >= 400 {
                        assert_eq!(
                            response.header("content-type"),
                            Some("application/problem+json"),
                            "{} answered {} without problem details",
                            spec.name,
                            response.status
                        );
                    }
                }
            }
        }
    }
}

bazaar_tests::on_both_backends!(
    no_oversized_or_odd_key_gets_a_server_error,
    a_malformed_id_is_not_found_and_never_becomes_a_key,
);

/// Path parameters that would be store keys DynamoDB refuses (over 2048 bytes for a partition
/// key, over 1024 for a sort key) or that are odd: invalid UTF-8, control characters, encoded
/// slashes, spaces.
fn odd_ids() -> Vec<String> {
    vec![
        "x".repeat(3000),
        "é".repeat(1500),
        "~".repeat(1100),
        "x".repeat(257),
        "%FF%FE".to_owned(),
        "%00".to_owned(),
        "%20".to_owned(),
        "a%2Fb".to_owned(),
        "%E2%80%AE".to_owned(),
    ]
}

/// Query strings whose values become keys (cursor, category, q) or bounds, out of range.
fn odd_queries() -> Vec<String> {
    let key = |value: serde_json::Value| {
        bazaar_shared::pagination::encode(&value.as_object().cloned().unwrap_or_default())
    };
    let long_sort_key = key(serde_json::json!({
        "pk": "CATEGORY#x", "sk": "CATEGORY", "gsi1pk": "CATEGORIES", "gsi1sk": "y".repeat(1100),
    }));
    let empty_keys = key(serde_json::json!({"pk": "", "sk": "", "gsi1pk": "", "gsi1sk": ""}));
    let empty_sort_key = key(serde_json::json!({
        "pk": "CATEGORY#x", "sk": "CATEGORY", "gsi1pk": "CATEGORIES", "gsi1sk": "",
    }));
    let long = "x".repeat(3000);
    let wide = "é".repeat(1500);
    vec![
        format!("cursor={long}"),
        format!("cursor={long_sort_key}"),
        format!("cursor={empty_keys}"),
        format!("cursor={empty_sort_key}"),
        "cursor=".to_owned(),
        format!("category={long}"),
        format!("category={wide}"),
        "category=".to_owned(),
        format!("q={long}"),
        format!("q={wide}"),
        format!("q={}", "word ".repeat(400)),
        "q=%00".to_owned(),
        "limit=99999999999999999999999&min_price=99999999999999999999".to_owned(),
        format!("{long}={long}"),
        "a=1&".repeat(3000),
    ]
}

/// Headers that reach the store or its conditions, oversized or odd.
fn odd_headers() -> Vec<(&'static str, String)> {
    let long = "k".repeat(3000);
    vec![
        ("idempotency-key", long.clone()),
        ("idempotency-key", String::new()),
        ("idempotency-key", "with space".to_owned()),
        ("if-match", long.clone()),
        ("if-match", "\"p99999999999999999999999-s1\"".to_owned()),
        ("if-none-match", long.clone()),
        ("x-request-id", long.clone()),
        ("x-forwarded-for", "1.2.3.4, ".repeat(1000)),
        ("authorization", format!("Bearer {}", "x".repeat(9000))),
    ]
}

/// DynamoDB's bounds on key attributes: 1 to 2048 bytes for a partition key, 1 to 1024 for a
/// sort key. Checked on every call the store receives, so that the sweep shows no bad key
/// reaches it even where the emulator would not refuse it as DynamoDB does.
fn keys_within_dynamodb_bounds(what: &str, calls: &[Call]) {
    for call in calls {
        for partition in &call.partitions {
            assert!(
                (1..=2048).contains(&partition.len()),
                "{what}: {} with a partition key of {} bytes",
                call.operation,
                partition.len()
            );
        }
        for key in &call.keys {
            assert!(
                (1..=1024).contains(&key.sk.len()),
                "{what}: {} with a sort key of {} bytes",
                call.operation,
                key.sk.len()
            );
        }
    }
}

async fn no_oversized_or_odd_key_gets_a_server_error(backend: Backend) {
    let (server, recorder) = TestServer::start_recording(backend).await;
    let client = Client::new(&server);
    let admin = client.admin(&server).await;
    recorder.clear();
    let check = |what: String, response: bazaar_tests::http::Response| {
        keys_within_dynamodb_bounds(&what, &recorder.take());
        assert!(
            response.status < 500,
            "{what} → {}: {}",
            response.status,
            response.text
        );
        if response.status >= 400 {
            assert_eq!(
                response.header("content-type"),
                Some("application/problem+json"),
                "{what} answered {} without problem details",
                response.status
            );
        }
    };
    for (spec, method, template) in http_functions() {
        let method = Method::from_bytes(method.as_bytes()).unwrap_or(Method::GET);
        let plain = template.replace("{id}", "01JAAAAAAAAAAAAAAAAAAAAAAA");
        let body = "{}";
        if template.contains("{id}") {
            for id in odd_ids() {
                let path = template.replace("{id}", &id);
                let request = client
                    .request(method.clone(), &path, Some(&admin))
                    .header("content-type", "application/json")
                    .body(body);
                let what = format!("{} {method} {:.80}", spec.name, path);
                check(what, client.send(request).await);
            }
        }
        for query in odd_queries() {
            let path = format!("{plain}?{query}");
            let request = client
                .request(method.clone(), &path, Some(&admin))
                .header("content-type", "application/json")
                .body(body);
            let what = format!("{} {method} {:.80}", spec.name, path);
            check(what, client.send(request).await);
        }
        for (name, value) in odd_headers() {
            let token = (name != "authorization").then_some(admin.as_str());
            let request = client
                .request(method.clone(), &plain, token)
                .header(name, value.as_str())
                .header("content-type", "application/json")
                .body(body);
            let what = format!("{} {method} {plain} with {name}: {:.40}", spec.name, value);
            check(what, client.send(request).await);
        }
    }
}

/// Ids this system could not have made (every id is a ULID; a notification's adds a suffix):
/// each is answered as an unknown id is, with a 404 problem, and none reaches the store inside
/// a key.
async fn a_malformed_id_is_not_found_and_never_becomes_a_key(backend: Backend) {
    let (server, recorder) = TestServer::start_recording(backend).await;
    let client = Client::new(&server);
    let admin = client.admin(&server).await;
    // (Over-long segments are the bounds' 400, checked above.)
    let malformed = [
        "not-an-id",
        "01jaaaaaaaaaaaaaaaaaaaaaaa", // lower case: never written
        "01JAAAAAAAAAAAAAAAAAAAAAA",  // 25 characters
        "81JAAAAAAAAAAAAAAAAAAAAAAA", // over 128 bits
        "01JAAAAAAAAAAAAAAAAAAAAAAI", // I is not Crockford base32
    ];
    let mut checked = 0;
    for (spec, method, template) in http_functions() {
        if !template.contains("{id}") {
            continue;
        }
        let method = Method::from_bytes(method.as_bytes()).unwrap_or(Method::GET);
        for id in malformed {
            recorder.clear();
            let path = template.replace("{id}", id);
            let request = client
                .request(method.clone(), &path, Some(&admin))
                .header("content-type", "application/json")
                .body("{}");
            let response = client.send(request).await;
            let what = format!("{} {method} {:.80}", spec.name, path);
            assert_eq!(response.status, 404, "{what}: {}", response.text);
            assert_eq!(
                response.header("content-type"),
                Some("application/problem+json"),
                "{what}"
            );
            for call in recorder.take() {
                let keyed = call.partitions.iter().any(|pk| pk.contains(id))
                    || call.keys.iter().any(|key| key.sk.contains(id));
                assert!(!keyed, "{what}: the id reached a {} key", call.operation);
            }
            checked += 1;
        }
    }
    assert!(
        checked >= 20 * malformed.len(),
        "only {checked} requests checked"
    );
}
