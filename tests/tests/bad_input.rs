//! No input, however wrong, gets a server error: every route of the API is sent a battery of
//! malformed bodies, query strings and tokens, and must answer with a 4xx problem.

use bazaar_api::router::http_functions;
use bazaar_tests::http::Client;
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
