//! The reference for `products-get`: the smallest honest function that does the same work (one
//! consistent DynamoDB `GetItem` on `PRODUCT#<id>` / `PRODUCT` in `BAZAAR_TABLE`, the answer as
//! JSON, 404 when absent) with nothing else linked in. `infra/package-sizes.sh` and
//! `infra/cold-start.sh` hold `products-get` to budgets relative to this binary's zip size,
//! first response and resident memory; it is never deployed.

use std::collections::HashMap;

use aws_config::BehaviorVersion;
use aws_config::meta::region::RegionProviderChain;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use lambda_http::{Body, Error, Request, RequestExt, Response, run, service_fn};
use serde_json::{Map, Number, Value, json};

/// Same fallback as the real functions: an emulator needs some region to sign with.
const FALLBACK_REGION: &str = "us-east-1";

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();
    let region = RegionProviderChain::default_provider().or_else(FALLBACK_REGION);
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).region(region);
    if let Some(url) = setting("BAZAAR_AWS_ENDPOINT_URL") {
        loader = loader.endpoint_url(url);
    }
    let client = Client::new(&loader.load().await);
    let table = setting("BAZAAR_TABLE").unwrap_or_else(|| "bazaar".to_owned());
    run(service_fn(|request: Request| {
        get_product(&client, &table, request)
    }))
    .await
}

fn setting(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|value| !value.is_empty())
}

async fn get_product(
    client: &Client,
    table: &str,
    request: Request,
) -> Result<Response<Body>, Error> {
    let id = request
        .path_parameters_ref()
        .and_then(|parameters| parameters.first("id"))
        .map(str::to_owned)
        .or_else(|| request.uri().path().rsplit('/').next().map(str::to_owned))
        .unwrap_or_default();
    let output = client
        .get_item()
        .table_name(table)
        .key("pk", AttributeValue::S(format!("PRODUCT#{id}")))
        .key("sk", AttributeValue::S("PRODUCT".to_owned()))
        .consistent_read(true)
        .send()
        .await?;
    let (status, body) = match output.item() {
        Some(item) => (200, Value::Object(object(item))),
        None => (404, json!({ "error": { "code": "not_found" } })),
    };
    Ok(Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::Text(body.to_string()))?)
}

fn object(attributes: &HashMap<String, AttributeValue>) -> Map<String, Value> {
    attributes
        .iter()
        .map(|(name, value)| (name.clone(), to_json(value)))
        .collect()
}

/// The native attribute types the store writes (see docs/data-model.md), back to JSON.
fn to_json(value: &AttributeValue) -> Value {
    match value {
        AttributeValue::S(text) => Value::String(text.clone()),
        AttributeValue::N(number) => number
            .parse::<i64>()
            .map(Number::from)
            .ok()
            .or_else(|| number.parse::<f64>().ok().and_then(Number::from_f64))
            .map_or(Value::Null, Value::Number),
        AttributeValue::Bool(flag) => Value::Bool(*flag),
        AttributeValue::L(list) => Value::Array(list.iter().map(to_json).collect()),
        AttributeValue::M(map) => Value::Object(object(map)),
        _ => Value::Null,
    }
}
