//! `docs/openapi.yaml` describes exactly the HTTP functions of `bazaar_api::functions::ALL`:
//! every function's route is documented under its name, every documented `/api/v1/` operation
//! (bar the local server's own) is a function, every operation documents its failures as
//! problem details, every authenticated one documents 401, and every response carries
//! `x-request-id`.

use std::collections::{BTreeMap, BTreeSet};

use bazaar_api::functions::{ALL, Trigger};
use serde_yaml::Value;

const DOCUMENT: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/openapi.yaml"));

const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];
const PROBLEM_REF: &str = "#/components/schemas/Problem";
const PROBLEM_MEDIA_TYPE: &str = "application/problem+json";

fn document() -> Value {
    serde_yaml::from_str(DOCUMENT).expect("parse docs/openapi.yaml as YAML")
}

fn get<'a>(value: &'a Value, key: &str) -> Option<&'a Value> {
    value.as_mapping()?.get(key)
}

fn text<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    get(value, key)?.as_str()
}

/// Follows a local `$ref` (`#/components/...`) to what it names; other values are returned
/// as they are.
fn resolve<'a>(root: &'a Value, value: &'a Value) -> Result<&'a Value, String> {
    let mut current = value;
    for _ in 0..16 {
        let Some(reference) = text(current, "$ref") else {
            return Ok(current);
        };
        let pointer = reference
            .strip_prefix("#/")
            .ok_or_else(|| format!("`{reference}` is not a local reference"))?;
        let mut target = root;
        for segment in pointer.split('/') {
            let segment = segment.replace("~1", "/").replace("~0", "~");
            target =
                get(target, &segment).ok_or_else(|| format!("`{reference}` points at nothing"))?;
        }
        current = target;
    }
    Err("a `$ref` cycle".to_owned())
}

/// One documented operation.
struct Operation<'a> {
    path: &'a str,
    method: &'a str,
    path_item: &'a Value,
    body: &'a Value,
}

impl Operation<'_> {
    fn label(&self) -> String {
        format!("{} {}", self.method.to_uppercase(), self.path)
    }

    fn is_local_only(&self) -> bool {
        let flagged =
            |value: &Value| get(value, "x-local-only").and_then(Value::as_bool) == Some(true);
        let tagged = get(self.body, "tags")
            .and_then(Value::as_sequence)
            .is_some_and(|tags| tags.iter().any(|tag| tag.as_str() == Some("local")));
        flagged(self.body) || flagged(self.path_item) || tagged
    }
}

fn operations(document: &Value) -> Vec<Operation<'_>> {
    let paths = get(document, "paths")
        .and_then(Value::as_mapping)
        .expect("docs/openapi.yaml has no `paths`");
    let mut found = Vec::new();
    for (path, path_item) in paths {
        let path = path
            .as_str()
            .unwrap_or_else(|| panic!("a path key is not a string: {path:?}"));
        for method in METHODS {
            if let Some(body) = get(path_item, method) {
                found.push(Operation {
                    path,
                    method,
                    path_item,
                    body,
                });
            }
        }
    }
    found
}

/// The HTTP functions: (lower-case method, path) → function name.
fn http_functions() -> BTreeMap<(String, &'static str), &'static str> {
    ALL.iter()
        .filter_map(|spec| match spec.trigger {
            Trigger::Http { method, path, .. } => Some(((method.to_lowercase(), path), spec.name)),
            _ => None,
        })
        .collect()
}

/// The status of a `responses` key (YAML may read an unquoted `404` as a number); `4XX`-style
/// ranges count as their lowest status.
fn status_of(key: &Value) -> Option<u16> {
    match key {
        Value::Number(number) => number.as_u64().and_then(|n| u16::try_from(n).ok()),
        Value::String(text) => text.parse().ok().or_else(|| {
            text.strip_suffix("XX")
                .and_then(|hundreds| hundreds.parse::<u16>().ok())
                .map(|h| h * 100)
        }),
        _ => None,
    }
}

fn fail_all(what: &str, failures: &[String]) {
    assert!(
        failures.is_empty(),
        "docs/openapi.yaml disagrees with the implementation ({what}):\n  - {}",
        failures.join("\n  - ")
    );
}

#[test]
fn every_http_function_is_documented_under_its_name() {
    let document = document();
    let mut failures = Vec::new();
    for ((method, path), name) in http_functions() {
        let Some(path_item) = get(&document, "paths").and_then(|paths| get(paths, path)) else {
            failures.push(format!(
                "function `{name}`: path `{path}` is not documented"
            ));
            continue;
        };
        let Some(operation) = get(path_item, &method) else {
            failures.push(format!(
                "function `{name}`: `{path}` has no `{method}` operation"
            ));
            continue;
        };
        match text(operation, "operationId") {
            Some(id) if id == name => {}
            Some(id) => failures.push(format!(
                "function `{name}` ({} {path}): operationId is `{id}`, expected `{name}`",
                method.to_uppercase()
            )),
            None => failures.push(format!(
                "function `{name}` ({} {path}): no operationId (expected `{name}`)",
                method.to_uppercase()
            )),
        }
    }
    fail_all("functions missing from the document", &failures);
}

#[test]
fn every_documented_api_operation_is_a_function() {
    let document = document();
    let functions = http_functions();
    let mut failures = Vec::new();
    for operation in operations(&document) {
        if !operation.path.starts_with("/api/v1/") || operation.is_local_only() {
            continue;
        }
        let id = text(operation.body, "operationId").unwrap_or("<none>");
        match functions.get(&(operation.method.to_owned(), operation.path)) {
            Some(name) if *name == id => {}
            Some(name) => failures.push(format!(
                "{}: operationId `{id}`, but the function at this route is `{name}`",
                operation.label()
            )),
            None => failures.push(format!(
                "{} (operationId `{id}`): no function in functions::ALL serves it \
                 (mark it `x-local-only: true` if only the local server does)",
                operation.label()
            )),
        }
    }
    fail_all("documented operations that nothing implements", &failures);
}

#[test]
fn operation_ids_are_unique() {
    let document = document();
    let mut seen = BTreeSet::new();
    let mut failures = Vec::new();
    for operation in operations(&document) {
        match text(operation.body, "operationId") {
            Some(id) if !seen.insert(id.to_owned()) => failures.push(format!(
                "{}: operationId `{id}` is used twice",
                operation.label()
            )),
            Some(_) => {}
            None => failures.push(format!("{}: no operationId", operation.label())),
        }
    }
    fail_all("operation ids", &failures);
}

#[test]
fn every_operation_documents_its_failures_as_problem_details() {
    let document = document();
    let mut failures = Vec::new();
    for operation in operations(&document) {
        let Some(responses) = get(operation.body, "responses").and_then(Value::as_mapping) else {
            failures.push(format!("{}: no responses", operation.label()));
            continue;
        };
        let mut problems = 0;
        for (key, response) in responses {
            let Some(status) = status_of(key) else {
                continue;
            };
            if status < 400 {
                continue;
            }
            let schema = resolve(&document, response).map(|response| {
                get(response, "content")
                    .and_then(|content| get(content, PROBLEM_MEDIA_TYPE))
                    .and_then(|media| get(media, "schema"))
                    .and_then(|schema| text(schema, "$ref"))
            });
            match schema {
                Ok(Some(PROBLEM_REF)) => problems += 1,
                Ok(_) => failures.push(format!(
                    "{}: response {status} is not `{PROBLEM_MEDIA_TYPE}` with schema `{PROBLEM_REF}`",
                    operation.label()
                )),
                Err(error) => failures.push(format!("{}: response {status}: {error}", operation.label())),
            }
        }
        if problems == 0 {
            failures.push(format!(
                "{}: no error response (400 or above) referencing `{PROBLEM_REF}`",
                operation.label()
            ));
        }
    }
    fail_all("error responses", &failures);
}

#[test]
fn every_authenticated_operation_documents_401() {
    let document = document();
    let global = get(&document, "security");
    let mut failures = Vec::new();
    let mut authenticated = 0;
    for operation in operations(&document) {
        let security = get(operation.body, "security").or(global);
        let needs_auth = security
            .and_then(Value::as_sequence)
            .is_some_and(|requirements| {
                !requirements.is_empty()
                    && requirements
                        .iter()
                        .all(|requirement| requirement.as_mapping().is_some_and(|m| !m.is_empty()))
            });
        if !needs_auth {
            continue;
        }
        authenticated += 1;
        let has_401 = get(operation.body, "responses")
            .and_then(Value::as_mapping)
            .is_some_and(|responses| responses.keys().any(|key| status_of(key) == Some(401)));
        if !has_401 {
            failures.push(format!(
                "{}: requires a bearer token but lists no 401",
                operation.label()
            ));
        }
    }
    fail_all("authenticated operations", &failures);
    assert!(
        authenticated > 0,
        "no operation requires authentication: `security` is missing"
    );
}

#[test]
fn every_response_carries_x_request_id() {
    let document = document();
    let mut failures = Vec::new();
    for operation in operations(&document) {
        let Some(responses) = get(operation.body, "responses").and_then(Value::as_mapping) else {
            continue;
        };
        for (key, response) in responses {
            let status =
                status_of(key).map_or_else(|| format!("{key:?}"), |status| status.to_string());
            let header = resolve(&document, response).map(|response| {
                get(response, "headers")
                    .and_then(|headers| get(headers, "x-request-id"))
                    .is_some()
            });
            match header {
                Ok(true) => {}
                Ok(false) => failures.push(format!(
                    "{}: response {status} has no `x-request-id` header",
                    operation.label()
                )),
                Err(error) => {
                    failures.push(format!("{}: response {status}: {error}", operation.label()))
                }
            }
        }
    }
    fail_all("x-request-id", &failures);
}

#[test]
fn the_problem_schema_has_the_contract_fields() {
    let document = document();
    let problem = get(&document, "components")
        .and_then(|components| get(components, "schemas"))
        .and_then(|schemas| get(schemas, "Problem"))
        .expect("components.schemas.Problem is missing");
    let properties = get(problem, "properties").expect("Problem has no properties");
    let missing: Vec<&str> = ["type", "title", "status", "detail", "errors"]
        .into_iter()
        .filter(|field| get(properties, field).is_none())
        .collect();
    assert!(missing.is_empty(), "Problem lacks {missing:?}");
    let errors = get(properties, "errors")
        .and_then(|errors| get(errors, "items"))
        .map(|items| resolve(&document, items))
        .unwrap_or_else(|| Err("Problem.errors has no items".to_owned()))
        .expect("resolve the Problem.errors items");
    let item_properties =
        get(errors, "properties").expect("Problem.errors items have no properties");
    for field in ["field", "message"] {
        assert!(
            get(item_properties, field).is_some(),
            "Problem.errors items lack `{field}`"
        );
    }
}
