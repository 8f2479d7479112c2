//! The one event each run serves: an API Gateway HTTP API (payload v2) request for an HTTP
//! function, an SQS batch of one message for a consumer, or a JSON file as given.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};

/// Where an event comes from, as written on the command line (see [`EventSpec::parse`]).
#[derive(Clone, Debug, PartialEq)]
pub enum EventSpec {
    /// `http:METHOD ROUTE [PATH]`, e.g. `http:GET /api/v1/products/{id} /api/v1/products/p1`.
    Http {
        method: String,
        route: String,
        path: String,
        body: Option<String>,
    },
    /// `sqs:QUEUE:BODY`, e.g. `sqs:bazaar-deliveries:{"user_id":"u","notification_id":"n"}`.
    Sqs { queue: String, body: String },
    /// `file:PATH`: the event as a JSON document.
    File(Value),
}

impl EventSpec {
    pub fn parse(text: &str) -> Result<Self, String> {
        if let Some(rest) = text.strip_prefix("http:") {
            let mut words = rest.split_whitespace();
            let (Some(method), Some(route)) = (words.next(), words.next()) else {
                return Err(format!(
                    "an http event is `http:METHOD ROUTE [PATH] [BODY]`, not {text:?}"
                ));
            };
            let path = words.next().unwrap_or(route).to_owned();
            let body = words.collect::<Vec<_>>().join(" ");
            Ok(Self::Http {
                method: method.to_uppercase(),
                route: route.to_owned(),
                path,
                body: (!body.is_empty()).then_some(body),
            })
        } else if let Some(rest) = text.strip_prefix("sqs:") {
            let (queue, body) = rest
                .split_once(':')
                .ok_or_else(|| format!("an sqs event is `sqs:QUEUE:BODY`, not {text:?}"))?;
            Ok(Self::Sqs {
                queue: queue.to_owned(),
                body: body.to_owned(),
            })
        } else if let Some(path) = text.strip_prefix("file:") {
            let raw = std::fs::read_to_string(path)
                .map_err(|error| format!("cannot read the event file {path}: {error}"))?;
            serde_json::from_str(&raw)
                .map(Self::File)
                .map_err(|error| format!("the event file {path} is not JSON: {error}"))
        } else {
            Err(format!(
                "an event starts with http:, sqs: or file:, not {text:?}"
            ))
        }
    }

    /// The event document, for the invocation `request_id` in `region`.
    pub fn render(&self, request_id: &str, region: &str) -> Value {
        match self {
            Self::Http {
                method,
                route,
                path,
                body,
            } => http_event(method, route, path, body.as_deref(), request_id),
            Self::Sqs { queue, body } => sqs_event(queue, body, request_id, region),
            Self::File(document) => document.clone(),
        }
    }
}

fn epoch_millis() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis())
        .unwrap_or_default()
}

/// The route's `{name}` segments matched against the path's segments.
fn path_parameters(route: &str, path: &str) -> Map<String, Value> {
    route
        .split('/')
        .zip(path.split('/'))
        .filter_map(|(pattern, segment)| {
            let name = pattern.strip_prefix('{')?.strip_suffix('}')?;
            Some((name.trim_end_matches('+').to_owned(), Value::from(segment)))
        })
        .collect()
}

fn http_event(
    method: &str,
    route: &str,
    path: &str,
    body: Option<&str>,
    request_id: &str,
) -> Value {
    let route_key = format!("{method} {route}");
    let parameters = path_parameters(route, path);
    let mut headers = json!({
        "accept": "application/json",
        "host": "api.example.com",
        "user-agent": "bazaar-cold-start",
        "x-forwarded-for": "203.0.113.9",
        "x-forwarded-port": "443",
        "x-forwarded-proto": "https",
    });
    if body.is_some() {
        headers["content-type"] = Value::from("application/json");
    }
    let mut event = json!({
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "bazaar",
            "domainName": "api.example.com",
            "domainPrefix": "api",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.9",
                "userAgent": "bazaar-cold-start",
            },
            "requestId": request_id,
            "routeKey": route_key,
            "stage": "$default",
            "time": "01/Jan/2026:00:00:00 +0000",
            "timeEpoch": epoch_millis() as u64,
        },
        "isBase64Encoded": false,
    });
    if !parameters.is_empty() {
        event["pathParameters"] = Value::Object(parameters);
    }
    if let Some(body) = body {
        event["body"] = Value::from(body);
    }
    event
}

fn sqs_event(queue: &str, body: &str, request_id: &str, region: &str) -> Value {
    let now = epoch_millis().to_string();
    json!({
        "Records": [{
            "messageId": request_id,
            "receiptHandle": format!("receipt-{request_id}"),
            "body": body,
            "attributes": {
                "ApproximateReceiveCount": "1",
                "SentTimestamp": now,
                "SenderId": "123456789012",
                "ApproximateFirstReceiveTimestamp": now,
            },
            "messageAttributes": {},
            "md5OfBody": "",
            "eventSource": "aws:sqs",
            "eventSourceARN": format!("arn:aws:sqs:{region}:123456789012:{queue}"),
            "awsRegion": region,
        }]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_event_carries_the_route_and_its_path_parameters() {
        let spec = EventSpec::parse("http:get /api/v1/products/{id} /api/v1/products/p1")
            .expect("a valid spec");
        let event = spec.render("r1", "us-east-1");
        assert_eq!(event["routeKey"], "GET /api/v1/products/{id}");
        assert_eq!(event["rawPath"], "/api/v1/products/p1");
        assert_eq!(event["pathParameters"]["id"], "p1");
        assert_eq!(event["requestContext"]["http"]["method"], "GET");
        assert!(event.get("body").is_none());
    }

    #[test]
    fn http_event_with_a_body_is_json() {
        let spec = EventSpec::parse("http:POST /api/v1/orders /api/v1/orders {\"items\": []}")
            .expect("a valid spec");
        let event = spec.render("r1", "us-east-1");
        assert_eq!(event["body"], "{\"items\": []}");
        assert_eq!(event["headers"]["content-type"], "application/json");
        assert!(event.get("pathParameters").is_none());
    }

    #[test]
    fn sqs_event_is_one_record_on_the_queue() {
        let spec = EventSpec::parse("sqs:bazaar-deliveries:{\"a\":1}").expect("a valid spec");
        let event = spec.render("r1", "eu-west-1");
        assert_eq!(event["Records"][0]["body"], "{\"a\":1}");
        assert_eq!(
            event["Records"][0]["eventSourceARN"],
            "arn:aws:sqs:eu-west-1:123456789012:bazaar-deliveries"
        );
    }

    #[test]
    fn unknown_kinds_are_refused() {
        assert!(EventSpec::parse("s3:bucket").is_err());
        assert!(EventSpec::parse("http:GET").is_err());
        assert!(EventSpec::parse("sqs:no-body").is_err());
    }
}
