//! Keeps the deployable functions in agreement across the four places that name them:
//!
//! - `bazaar_api::functions::ALL` (api/src/functions.rs), the source of truth;
//! - the binaries in `functions/src/bin/`;
//! - `template.yaml` (AWS SAM) and the monitoring stack it nests, `monitoring.yaml`;
//! - `terraform/` (the `local.functions` map in functions.tf, the queues in sqs.tf).
//!
//! It also checks that both descriptions declare the same table (the key names the code uses)
//! and the same per-function permissions, including which functions may send notifications
//! (SES e-mail, SNS SMS and push), the same alarms, and only metric names (and EMF dimensions)
//! the code records in alarms and dashboards (CloudWatch and Grafana). Each test collects every
//! disagreement it finds and fails once with the whole list, so one run shows everything to fix.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::path::{Path, PathBuf};

use bazaar_api::functions::{ALL, Function, Trigger};
use serde_yaml::Value as Yaml;

// -------------------------------------------------------------------------------------------
// Shared helpers
// -------------------------------------------------------------------------------------------

/// The workspace root. `BAZAAR_INFRA_ROOT` points the checks at another checkout instead (for
/// example a copy with a deliberate mistake, to see a check fail).
fn repo_root() -> PathBuf {
    match std::env::var_os("BAZAAR_INFRA_ROOT") {
        Some(root) => PathBuf::from(root),
        None => PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/..")),
    }
}

fn read(relative: &str) -> String {
    let path = repo_root().join(relative);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()))
}

/// Every disagreement found by one test; `finish` fails the test with all of them.
#[derive(Default)]
struct Problems(Vec<String>);

impl Problems {
    fn add(&mut self, problem: impl Into<String>) {
        self.0.push(problem.into());
    }

    fn check(&mut self, ok: bool, problem: impl FnOnce() -> String) {
        if !ok {
            self.add(problem());
        }
    }

    /// Adds a problem for each name that only one side has.
    fn same_set<T: Ord + Debug>(
        &mut self,
        what: &str,
        expected: &BTreeSet<T>,
        actual: &BTreeSet<T>,
    ) {
        let missing: Vec<&T> = expected.difference(actual).collect();
        let extra: Vec<&T> = actual.difference(expected).collect();
        if !missing.is_empty() || !extra.is_empty() {
            self.add(format!(
                "{what}:\n      missing (expected, not found): {missing:?}\n      extra (found, not expected):   {extra:?}"
            ));
        }
    }

    /// Fails with `heading` and the list of problems, if there are any.
    fn finish(self, heading: &str) {
        if !self.0.is_empty() {
            let list: Vec<String> = self
                .0
                .iter()
                .map(|problem| format!("  - {problem}"))
                .collect();
            panic!(
                "{heading} ({} problem(s)):\n{}\n",
                self.0.len(),
                list.join("\n")
            );
        }
    }
}

fn names_in_code() -> BTreeSet<String> {
    ALL.iter().map(|spec| spec.name.to_owned()).collect()
}

/// `rate(...)` expression for a schedule of every `minutes` minutes.
fn rate_expression(minutes: u32) -> String {
    if minutes == 1 {
        "rate(1 minute)".to_owned()
    } else {
        format!("rate({minutes} minutes)")
    }
}

/// `users-me-get` → `UsersMeGet` (the template's logical-id convention).
fn pascal_case(name: &str) -> String {
    name.split(['-', '_'])
        .map(|part| {
            let mut chars = part.chars();
            match chars.next() {
                Some(first) => first.to_uppercase().chain(chars).collect::<String>(),
                None => String::new(),
            }
        })
        .collect()
}

/// Logical id of a queue in template.yaml: `notifications` → `NotificationsQueue`.
fn sam_queue_id(queue: &str) -> String {
    format!("{}Queue", pascal_case(queue))
}

#[test]
fn function_names_are_unique_and_routes_distinct() {
    catalogue_problems(ALL)
        .finish("bazaar_api::functions::ALL (api/src/functions.rs) is inconsistent");
}

fn catalogue_problems(specs: &[Function]) -> Problems {
    let mut problems = Problems::default();
    let mut names = BTreeSet::new();
    let mut routes = BTreeSet::new();
    for spec in specs {
        problems.check(names.insert(spec.name), || {
            format!("function {:?} is listed twice", spec.name)
        });
        problems.check(
            !spec.name.is_empty()
                && spec
                    .name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
            || {
                format!(
                    "function name {:?} must be lower-case letters, digits and dashes",
                    spec.name
                )
            },
        );
        if let Trigger::Http { method, path, .. } = spec.trigger {
            problems.check(routes.insert((method, path)), || {
                format!("route {method} {path} is served twice")
            });
        }
    }
    problems
}

// -------------------------------------------------------------------------------------------
// functions/src/bin
// -------------------------------------------------------------------------------------------

/// Binaries as Cargo discovers them: `src/bin/<name>.rs` and `src/bin/<name>/main.rs`.
fn binaries() -> BTreeSet<String> {
    let dir = repo_root().join("functions/src/bin");
    let entries = std::fs::read_dir(&dir).expect("list functions/src/bin");
    let mut names = BTreeSet::new();
    for entry in entries {
        let path = entry.expect("directory entry").path();
        let stem = path
            .file_stem()
            .and_then(|stem| stem.to_str())
            .map(str::to_owned);
        if path.is_file() && path.extension().is_some_and(|ext| ext == "rs") {
            names.extend(stem);
        } else if path.is_dir() && path.join("main.rs").is_file() {
            names.extend(
                path.file_name()
                    .and_then(|name| name.to_str())
                    .map(str::to_owned),
            );
        }
    }
    names
}

#[test]
fn every_function_has_a_binary() {
    let mut problems = Problems::default();
    problems.same_set(
        "binaries in functions/src/bin/ (file stems)",
        &names_in_code(),
        &binaries(),
    );
    problems.finish(
        "functions/src/bin/ disagrees with bazaar_api::functions::ALL (api/src/functions.rs)",
    );
}

/// `users-me-get` → `USERS_ME_GET`, the name of the function's const in api/src/functions.rs.
fn const_name(name: &str) -> String {
    name.to_uppercase().replace('-', "_")
}

/// Each binary's `main` must run its own entry by its const, so that it links that entry's
/// handler only and a mistyped name fails to compile (a string would fail at cold start).
#[test]
fn every_binary_runs_its_own_entry() {
    let mut problems = Problems::default();
    for function in ALL {
        let file = format!("functions/src/bin/{}.rs", function.name);
        let Ok(source) = std::fs::read_to_string(repo_root().join(&file)) else {
            continue; // a missing binary is every_function_has_a_binary's finding
        };
        let call = format!(
            "bazaar_functions::run(&bazaar_api::functions::{})",
            const_name(function.name)
        );
        let runs: Vec<&str> = source.matches("run(").collect();
        problems.check(source.contains(&call) && runs.len() == 1, || {
            format!("{file} must call `{call}` once (and run nothing else)")
        });
    }
    problems.finish(
        "functions/src/bin/ disagrees with bazaar_api::functions::ALL (api/src/functions.rs)",
    );
}

/// Whether the router itself refused `request` (no route, or not this method), as opposed to
/// a handler answering it, whatever its status.
async fn unrouted(
    router: axum::Router,
    request: axum::http::Request<axum::body::Body>,
) -> Option<String> {
    use tower::ServiceExt;
    let response = match router.oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_default();
    let refused = status == axum::http::StatusCode::METHOD_NOT_ALLOWED
        || (status == axum::http::StatusCode::NOT_FOUND && body.contains("no such route"));
    refused.then(|| format!("{status} {body}"))
}

/// Every HTTP entry's own router (what its Lambda serves) answers its method and path, and
/// only the HTTP entries make a router at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_entry_resolves_to_its_handler() {
    let server = bazaar_tests::TestServer::start(bazaar_tests::Backend::Embedded).await;
    let mut problems = Problems::default();
    for function in ALL {
        let router = bazaar_api::router::for_function(server.app.clone(), function);
        let Trigger::Http { method, path, .. } = function.trigger else {
            problems.check(router.is_err(), || {
                format!(
                    "{}: not an HTTP function, yet it made a router",
                    function.name
                )
            });
            continue;
        };
        let Ok(router) = router else {
            problems.add(format!(
                "{}: an HTTP function without a router",
                function.name
            ));
            continue;
        };
        let path = path.replace("{id}", "01JAAAAAAAAAAAAAAAAAAAAAAA");
        let request = |method: &str, path: &str| {
            axum::http::Request::builder()
                .method(method)
                .uri(path)
                .header("content-type", "application/json")
                .body(axum::body::Body::from("{}"))
                .unwrap_or_else(|error| panic!("{method} {path}: {error}"))
        };
        if let Some(refusal) = unrouted(router.clone(), request(method, &path)).await {
            problems.add(format!(
                "{}: its router refuses {method} {path}: {refusal}",
                function.name
            ));
        }
        // The same router must refuse a path it does not serve: this is what a refusal
        // looks like, so the check above can tell.
        let elsewhere = format!("{path}/elsewhere");
        problems.check(
            unrouted(router, request(method, &elsewhere))
                .await
                .is_some(),
            || format!("{}: its router answers {method} {elsewhere}", function.name),
        );
    }
    problems.finish("api/src/functions.rs has entries that do not resolve");
}

// -------------------------------------------------------------------------------------------
// template.yaml
// -------------------------------------------------------------------------------------------

/// The value under any YAML tags (`!Ref`, `!GetAtt`, `!Sub` parse as tagged values).
fn untag(value: &Yaml) -> &Yaml {
    match value {
        Yaml::Tagged(tagged) => untag(&tagged.value),
        other => other,
    }
}

/// `value[key]`, looking through tags.
fn get<'a>(value: &'a Yaml, key: &str) -> Option<&'a Yaml> {
    untag(value).as_mapping()?.get(key)
}

fn get_path<'a>(value: &'a Yaml, keys: &[&str]) -> Option<&'a Yaml> {
    keys.iter().try_fold(value, |value, key| get(value, key))
}

fn get_str<'a>(value: &'a Yaml, keys: &[&str]) -> Option<&'a str> {
    get_path(value, keys).and_then(|value| untag(value).as_str())
}

/// The argument of an intrinsic function, in short (`!Ref x`) or long (`{Ref: x}`,
/// `{"Fn::GetAtt": [...]}`) form.
fn intrinsic<'a>(value: &'a Yaml, name: &str) -> Option<&'a Yaml> {
    match value {
        Yaml::Tagged(tagged) if tagged.tag == name => Some(&tagged.value),
        Yaml::Mapping(map) if map.len() == 1 => {
            let long_name = if name == "Ref" {
                name.to_owned()
            } else {
                format!("Fn::{name}")
            };
            map.get(long_name.as_str())
        }
        _ => None,
    }
}

/// The logical id that `!Ref id` names.
fn ref_target(value: &Yaml) -> Option<&str> {
    intrinsic(value, "Ref")?.as_str()
}

/// `(logical id, attribute)` of `!GetAtt id.Attr` or `{"Fn::GetAtt": [id, Attr]}`.
fn get_att(value: &Yaml) -> Option<(String, String)> {
    match intrinsic(value, "GetAtt")? {
        Yaml::String(dotted) => {
            let (id, attribute) = dotted.split_once('.')?;
            Some((id.to_owned(), attribute.to_owned()))
        }
        Yaml::Sequence(parts) if parts.len() == 2 => {
            Some((parts[0].as_str()?.to_owned(), parts[1].as_str()?.to_owned()))
        }
        _ => None,
    }
}

/// The template string of `!Sub "..."` (or `!Sub ["...", {...}]`).
fn sub_template(value: &Yaml) -> Option<&str> {
    match intrinsic(value, "Sub")? {
        Yaml::String(template) => Some(template),
        Yaml::Sequence(parts) => parts.first()?.as_str(),
        _ => None,
    }
}

/// A scalar or a list of them, as a list.
fn one_or_many(value: &Yaml) -> Vec<&Yaml> {
    match untag(value) {
        Yaml::Sequence(items) => items.iter().collect(),
        _ => vec![value],
    }
}

struct Template {
    resources: serde_yaml::Mapping,
}

impl Template {
    fn load() -> Template {
        Template::load_file("template.yaml")
    }

    fn load_file(relative: &str) -> Template {
        let text = read(relative);
        let document: Yaml = serde_yaml::from_str(&text)
            .unwrap_or_else(|error| panic!("{relative} is not valid YAML: {error}"));
        let resources = get(&document, "Resources")
            .and_then(|resources| untag(resources).as_mapping())
            .cloned()
            .unwrap_or_else(|| panic!("{relative} has no Resources mapping"));
        Template { resources }
    }

    fn resource(&self, id: &str) -> Option<&Yaml> {
        self.resources.get(id)
    }

    fn type_of(&self, id: &str) -> Option<&str> {
        self.resource(id)
            .and_then(|resource| get_str(resource, &["Type"]))
    }

    /// `(logical id, resource)` of every resource of this type.
    fn of_type<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = (&'a str, &'a Yaml)> + 'a {
        self.resources
            .iter()
            .filter(move |(_, resource)| get_str(resource, &["Type"]) == Some(kind))
            .map(|(id, resource)| (id.as_str().unwrap_or("?"), resource))
    }

    /// Function resources by their `Metadata.BuildProperties.Binary`.
    fn functions(&self, problems: &mut Problems) -> BTreeMap<String, (String, &Yaml)> {
        let mut functions = BTreeMap::new();
        for (id, resource) in self.of_type("AWS::Serverless::Function") {
            match get_str(resource, &["Metadata", "BuildProperties", "Binary"]) {
                Some(binary) => {
                    if let Some((other, _)) =
                        functions.insert(binary.to_owned(), (id.to_owned(), resource))
                    {
                        problems.add(format!(
                            "template.yaml: {other} and {id} both build binary {binary:?}"
                        ));
                    }
                }
                None => problems.add(format!(
                    "template.yaml: {id} has no Metadata.BuildProperties.Binary"
                )),
            }
        }
        functions
    }
}

/// The events of a function resource: `(event name, Type, Properties)`.
fn sam_events(function: &Yaml) -> Vec<(String, String, &Yaml)> {
    let Some(events) =
        get_path(function, &["Properties", "Events"]).and_then(|events| untag(events).as_mapping())
    else {
        return Vec::new();
    };
    events
        .iter()
        .map(|(name, event)| {
            (
                name.as_str().unwrap_or("?").to_owned(),
                get_str(event, &["Type"]).unwrap_or("?").to_owned(),
                get(event, "Properties").unwrap_or(&Yaml::Null),
            )
        })
        .collect()
}

#[test]
fn sam_template_declares_every_function_with_its_trigger() {
    let template = Template::load();
    let mut problems = Problems::default();
    let functions = template.functions(&mut problems);

    let declared: BTreeSet<String> = functions.keys().cloned().collect();
    problems.same_set(
        "template.yaml AWS::Serverless::Function Metadata.BuildProperties.Binary",
        &names_in_code(),
        &declared,
    );

    for spec in ALL {
        let Some((id, function)) = functions.get(spec.name) else {
            continue;
        };
        let name = spec.name;

        let expected_id = format!("{}Function", pascal_case(name));
        problems.check(*id == expected_id, || format!("template.yaml: the function building {name:?} is {id}, expected logical id {expected_id}"));
        let function_name =
            get_path(function, &["Properties", "FunctionName"]).and_then(sub_template);
        let expected_name = format!("${{AWS::StackName}}-{name}");
        problems.check(function_name == Some(expected_name.as_str()), || {
            format!("template.yaml: {id} FunctionName is {function_name:?}, expected !Sub {expected_name:?}")
        });
        let log_group_name = format!("/aws/lambda/${{AWS::StackName}}-{name}");
        let has_log_group = template.of_type("AWS::Logs::LogGroup").any(|(_, group)| {
            get_path(group, &["Properties", "LogGroupName"]).and_then(sub_template)
                == Some(log_group_name.as_str())
        });
        problems.check(has_log_group, || {
            format!("template.yaml: no AWS::Logs::LogGroup named !Sub {log_group_name:?} for {id}")
        });

        let events = sam_events(function);
        match spec.trigger {
            Trigger::Http { method, path, .. } => {
                let http: Vec<_> = events
                    .iter()
                    .filter(|(_, kind, _)| kind == "HttpApi")
                    .collect();
                let found: Vec<String> = http
                    .iter()
                    .map(|(_, _, props)| {
                        format!(
                            "{} {}",
                            get_str(props, &["Method"]).unwrap_or("?"),
                            get_str(props, &["Path"]).unwrap_or("?")
                        )
                    })
                    .collect();
                let expected = format!("{method} {path}");
                problems.check(found == [expected.clone()], || {
                    format!("template.yaml: {id} must have exactly one HttpApi event {expected:?}, has {found:?}")
                });
                for (event, _, props) in &http {
                    let api = get(props, "ApiId").and_then(ref_target);
                    problems.check(
                        api.is_some_and(|api| template.type_of(api) == Some("AWS::Serverless::HttpApi")),
                        || format!("template.yaml: {id} event {event} must have ApiId: !Ref <the AWS::Serverless::HttpApi>, has {api:?}"),
                    );
                }
            }
            Trigger::Queue { queue, .. } => {
                let queue_id = sam_queue_id(queue);
                let sqs: Vec<_> = events.iter().filter(|(_, kind, _)| kind == "SQS").collect();
                let on_queue: Vec<_> = sqs
                    .iter()
                    .filter(|(_, _, props)| {
                        get(props, "Queue").and_then(get_att)
                            == Some((queue_id.clone(), "Arn".to_owned()))
                    })
                    .collect();
                problems.check(on_queue.len() == 1, || {
                    format!("template.yaml: {id} must have exactly one SQS event with Queue: !GetAtt {queue_id}.Arn (queue {queue:?}), has {} SQS event(s), {} on that queue", sqs.len(), on_queue.len())
                });
                for (event, _, props) in on_queue {
                    let reports = get(props, "FunctionResponseTypes")
                        .map(one_or_many)
                        .unwrap_or_default()
                        .iter()
                        .any(|kind| untag(kind).as_str() == Some("ReportBatchItemFailures"));
                    problems.check(reports, || {
                        format!("template.yaml: {id} event {event} needs FunctionResponseTypes: [ReportBatchItemFailures]")
                    });
                }
                check_sam_queue(&template, queue, &mut problems);
            }
            Trigger::Upload { prefix, .. } => {
                let uploads: Vec<String> = events
                    .iter()
                    .filter(|(_, kind, _)| kind == "S3")
                    .map(|(_, _, props)| {
                        let bucket = get(props, "Bucket").and_then(ref_target).unwrap_or("?");
                        let rules = get_path(props, &["Filter", "S3Key", "Rules"])
                            .map(one_or_many)
                            .unwrap_or_default();
                        let prefix = rules
                            .iter()
                            .find(|rule| get_str(rule, &["Name"]) == Some("prefix"))
                            .and_then(|rule| get_str(rule, &["Value"]))
                            .unwrap_or("?");
                        let is_bucket = template.type_of(bucket) == Some("AWS::S3::Bucket");
                        format!("{}:{prefix}", if is_bucket { "bucket" } else { bucket })
                    })
                    .collect();
                let expected = format!("bucket:{prefix}");
                problems.check(uploads == [expected.clone()], || {
                    format!("template.yaml: {id} must have exactly one S3 event on a bucket of the template with key prefix {prefix:?}, has {uploads:?}")
                });
            }
            Trigger::Schedule { every_minutes, .. } => {
                let expected = rate_expression(every_minutes);
                let schedules: Vec<String> = events
                    .iter()
                    .filter_map(|(_, kind, props)| match kind.as_str() {
                        "Schedule" => Some(get_str(props, &["Schedule"]).unwrap_or("?").to_owned()),
                        "ScheduleV2" => Some(
                            get_str(props, &["ScheduleExpression"])
                                .unwrap_or("?")
                                .to_owned(),
                        ),
                        _ => None,
                    })
                    .collect();
                problems.check(schedules == [expected.clone()], || {
                    format!("template.yaml: {id} must have exactly one Schedule/ScheduleV2 event {expected:?}, has {schedules:?}")
                });
            }
        }
    }
    problems
        .finish("template.yaml disagrees with bazaar_api::functions::ALL (api/src/functions.rs)");
}

/// The queue exists, and dead-letters into another queue after a bounded number of receives.
fn check_sam_queue(template: &Template, queue: &str, problems: &mut Problems) {
    let queue_id = sam_queue_id(queue);
    let Some(resource) = template.resource(&queue_id) else {
        problems.add(format!(
            "template.yaml: no resource {queue_id} for queue {queue:?}"
        ));
        return;
    };
    problems.check(
        template.type_of(&queue_id) == Some("AWS::SQS::Queue"),
        || format!("template.yaml: {queue_id} must be an AWS::SQS::Queue"),
    );
    let Some(redrive) = get_path(resource, &["Properties", "RedrivePolicy"]) else {
        problems.add(format!(
            "template.yaml: queue {queue_id} has no RedrivePolicy (dead-letter queue)"
        ));
        return;
    };
    let target = get(redrive, "deadLetterTargetArn").and_then(get_att);
    problems.check(
        matches!(&target, Some((dlq, attribute)) if attribute == "Arn" && dlq != &queue_id && template.type_of(dlq) == Some("AWS::SQS::Queue")),
        || format!("template.yaml: {queue_id} RedrivePolicy.deadLetterTargetArn must be !GetAtt <another AWS::SQS::Queue>.Arn, is {target:?}"),
    );
    let max_receives = get(redrive, "maxReceiveCount").and_then(|count| untag(count).as_u64());
    problems.check(max_receives == Some(u64::from(default_max_receives())), || {
        format!(
            "template.yaml: {queue_id} RedrivePolicy.maxReceiveCount is {max_receives:?}, expected {} (the code's BAZAAR_MAX_RECEIVES default)",
            default_max_receives()
        )
    });
}

/// How many receives the code allows before a message is dead-lettered.
fn default_max_receives() -> u32 {
    bazaar_adapters::config::BackendConfig::from_source(
        &bazaar_shared::settings::Source::pairs(&[]),
    )
    .expect("default backend config")
    .max_receives
}

// -------------------------------------------------------------------------------------------
// terraform/
// -------------------------------------------------------------------------------------------

fn parse_hcl(relative: &str) -> hcl::Body {
    hcl::parse(&read(relative))
        .unwrap_or_else(|error| panic!("{relative} is not valid HCL: {error}"))
}

/// The string value of a literal expression.
fn hcl_str(expr: &hcl::Expression) -> Option<&str> {
    match expr {
        hcl::Expression::String(string) => Some(string),
        _ => None,
    }
}

fn attribute<'a>(body: &'a hcl::Body, key: &str) -> Option<&'a hcl::Expression> {
    body.attributes()
        .find(|attribute| attribute.key() == key)
        .map(|attribute| attribute.expr())
}

fn blocks<'a, 'l>(
    body: &'a hcl::Body,
    identifier: &'l str,
    labels: &'l [&'l str],
) -> impl Iterator<Item = &'a hcl::Block> + use<'a, 'l> {
    body.blocks().filter(move |block| {
        block.identifier() == identifier
            && block.labels().len() >= labels.len()
            && block
                .labels()
                .iter()
                .zip(labels)
                .all(|(label, expected)| label.as_str() == *expected)
    })
}

/// The object literal in `expr`, also inside a function call such as `jsonencode({...})`.
fn object_in(expr: &hcl::Expression) -> Option<&hcl::Object<hcl::ObjectKey, hcl::Expression>> {
    match expr {
        hcl::Expression::Object(object) => Some(object),
        hcl::Expression::FuncCall(call) => call.args.iter().find_map(object_in),
        hcl::Expression::Parenthesis(inner) => object_in(inner),
        _ => None,
    }
}

/// One entry of `local.functions`.
#[derive(Debug, Default)]
struct TfFunction {
    route: Option<String>,
    queue: Option<String>,
    schedule: Option<String>,
    table_actions: BTreeSet<String>,
    index_query: bool,
    queue_send: BTreeSet<String>,
    ssm: bool,
    upload: Option<String>,
    bucket_put: BTreeSet<String>,
    bucket_get: BTreeSet<String>,
    notify_send: bool,
}

const TF_FIELDS: [&str; 11] = [
    "route",
    "queue",
    "schedule",
    "table_actions",
    "index_query",
    "queue_send",
    "ssm",
    "upload",
    "bucket_put",
    "bucket_get",
    "notify_send",
];

/// Parses `locals { functions = { ... } }` of terraform/functions.tf.
fn terraform_functions(problems: &mut Problems) -> BTreeMap<String, TfFunction> {
    let body = parse_hcl("terraform/functions.tf");
    let definitions: Vec<&hcl::Expression> = blocks(&body, "locals", &[])
        .filter_map(|locals| attribute(locals.body(), "functions"))
        .collect();
    assert_eq!(
        definitions.len(),
        1,
        "terraform/functions.tf must define local.functions exactly once"
    );
    let hcl::Expression::Object(entries) = definitions[0] else {
        panic!(
            "terraform/functions.tf: local.functions must be an object literal, is {}",
            definitions[0]
        );
    };

    let mut functions = BTreeMap::new();
    for (key, value) in entries.iter() {
        let name = key.to_string();
        let hcl::Expression::Object(fields) = value else {
            problems.add(format!(
                "terraform: local.functions[{name:?}] must be an object literal"
            ));
            continue;
        };
        let fields: BTreeMap<String, &hcl::Expression> = fields
            .iter()
            .map(|(key, value)| (key.to_string(), value))
            .collect();
        let keys: BTreeSet<&str> = fields.keys().map(String::as_str).collect();
        problems.same_set(
            &format!("terraform: fields of local.functions[{name:?}]"),
            &TF_FIELDS.into_iter().collect(),
            &keys,
        );

        let mut optional_string = |field: &str| match fields.get(field) {
            None | Some(hcl::Expression::Null) => None,
            Some(expr) => match hcl_str(expr) {
                Some(string) => Some(string.to_owned()),
                None => {
                    problems.add(format!("terraform: local.functions[{name:?}].{field} must be a string literal or null, is {expr}"));
                    None
                }
            },
        };
        let (route, queue, schedule, upload) = (
            optional_string("route"),
            optional_string("queue"),
            optional_string("schedule"),
            optional_string("upload"),
        );
        let mut strings = |field: &str| -> BTreeSet<String> {
            match fields.get(field) {
                Some(hcl::Expression::Array(items)) => items
                    .iter()
                    .filter_map(|item| {
                        let string = hcl_str(item).map(str::to_owned);
                        if string.is_none() {
                            problems.add(format!("terraform: local.functions[{name:?}].{field} must hold string literals, has {item}"));
                        }
                        string
                    })
                    .collect(),
                other => {
                    problems.add(format!("terraform: local.functions[{name:?}].{field} must be a list literal, is {other:?}"));
                    BTreeSet::new()
                }
            }
        };
        let (table_actions, queue_send) = (strings("table_actions"), strings("queue_send"));
        let (bucket_put, bucket_get) = (strings("bucket_put"), strings("bucket_get"));
        let mut boolean = |field: &str| match fields.get(field) {
            Some(hcl::Expression::Bool(value)) => *value,
            other => {
                problems.add(format!("terraform: local.functions[{name:?}].{field} must be true or false, is {other:?}"));
                false
            }
        };
        let (index_query, ssm, notify_send) = (
            boolean("index_query"),
            boolean("ssm"),
            boolean("notify_send"),
        );
        let function = TfFunction {
            route,
            queue,
            schedule,
            table_actions,
            index_query,
            queue_send,
            ssm,
            upload,
            bucket_put,
            bucket_get,
            notify_send,
        };
        if functions.insert(name.clone(), function).is_some() {
            problems.add(format!("terraform: local.functions has {name:?} twice"));
        }
    }
    functions
}

#[test]
fn terraform_declares_every_function_with_its_trigger() {
    let mut problems = Problems::default();
    let functions = terraform_functions(&mut problems);
    let declared: BTreeSet<String> = functions.keys().cloned().collect();
    problems.same_set(
        "terraform/functions.tf local.functions keys",
        &names_in_code(),
        &declared,
    );

    for spec in ALL {
        let Some(function) = functions.get(spec.name) else {
            continue;
        };
        let name = spec.name;
        let upload = match spec.trigger {
            Trigger::Upload { prefix, .. } => Some(prefix.to_owned()),
            _ => None,
        };
        problems.check(function.upload == upload, || {
            format!(
                "terraform: local.functions[{name:?}].upload is {:?}, expected {upload:?}",
                function.upload
            )
        });
        let (route, queue, schedule) = match spec.trigger {
            Trigger::Http { method, path, .. } => (Some(format!("{method} {path}")), None, None),
            Trigger::Upload { .. } => (None, None, None),
            Trigger::Queue { queue, .. } => (None, Some(queue.to_owned()), None),
            Trigger::Schedule { every_minutes, .. } => {
                (None, None, Some(rate_expression(every_minutes)))
            }
        };
        problems.check(function.route == route, || {
            format!(
                "terraform: local.functions[{name:?}].route is {:?}, expected {route:?}",
                function.route
            )
        });
        problems.check(function.queue == queue, || {
            format!(
                "terraform: local.functions[{name:?}].queue is {:?}, expected {queue:?}",
                function.queue
            )
        });
        problems.check(function.schedule == schedule, || {
            format!(
                "terraform: local.functions[{name:?}].schedule is {:?}, expected {schedule:?}",
                function.schedule
            )
        });
    }

    // Every queue terraform names (as a trigger or as a destination) has a dead-letter queue.
    let queues: BTreeSet<&str> = functions
        .values()
        .flat_map(|function| function.queue.iter().chain(function.queue_send.iter()))
        .map(String::as_str)
        .collect();
    let sqs = parse_hcl("terraform/sqs.tf");
    let queue_map: BTreeSet<String> = blocks(&sqs, "locals", &[])
        .filter_map(|locals| attribute(locals.body(), "queues"))
        .flat_map(|queues| match queues {
            hcl::Expression::Object(entries) => {
                entries.keys().map(ToString::to_string).collect::<Vec<_>>()
            }
            _ => Vec::new(),
        })
        .collect();
    for queue in queues {
        let dlq = format!("{}_dlq", queue);
        problems.check(queue_map.contains(queue), || {
            format!("terraform/sqs.tf: local.queues has no entry {queue:?}")
        });
        problems.check(blocks(&sqs, "resource", &["aws_sqs_queue", &dlq]).count() == 1, || {
            format!("terraform/sqs.tf: no resource \"aws_sqs_queue\" \"{dlq}\" (dead-letter queue of {queue:?})")
        });
        let Some(resource) = blocks(&sqs, "resource", &["aws_sqs_queue", queue]).next() else {
            problems.add(format!(
                "terraform/sqs.tf: no resource \"aws_sqs_queue\" \"{queue}\""
            ));
            continue;
        };
        let redrive = attribute(resource.body(), "redrive_policy");
        let policy: BTreeMap<String, String> = redrive
            .and_then(object_in)
            .map(|object| {
                object
                    .iter()
                    .map(|(key, value)| (key.to_string(), value.to_string()))
                    .collect()
            })
            .unwrap_or_default();
        let target = format!("aws_sqs_queue.{dlq}.arn");
        let max_receives = default_max_receives().to_string();
        problems.check(
            policy.get("deadLetterTargetArn") == Some(&target) && policy.get("maxReceiveCount") == Some(&max_receives),
            || {
                format!(
                    "terraform/sqs.tf: aws_sqs_queue.{queue} needs redrive_policy = jsonencode({{ deadLetterTargetArn = {target}, maxReceiveCount = {max_receives} }}) (max receives as the code's BAZAAR_MAX_RECEIVES default), has {}",
                    redrive.map(ToString::to_string).unwrap_or_else(|| "none".to_owned())
                )
            },
        );
    }
    problems.finish("terraform/ disagrees with bazaar_api::functions::ALL (api/src/functions.rs)");
}

// -------------------------------------------------------------------------------------------
// The table
// -------------------------------------------------------------------------------------------

/// `(HASH, RANGE)` attribute names of a CloudFormation KeySchema.
fn sam_key_schema(key_schema: Option<&Yaml>) -> (Option<String>, Option<String>) {
    let mut keys = (None, None);
    for element in key_schema.map(one_or_many).unwrap_or_default() {
        let name = get_str(element, &["AttributeName"]).map(str::to_owned);
        match get_str(element, &["KeyType"]) {
            Some("HASH") => keys.0 = name,
            Some("RANGE") => keys.1 = name,
            _ => {}
        }
    }
    keys
}

#[test]
fn both_descriptions_declare_the_table_the_code_uses() {
    use bazaar_adapters::aws::dynamodb::GSI1_NAME;
    use bazaar_adapters::aws::provision::TTL_ATTRIBUTE;
    use bazaar_shared::ports::store::{GSI1PK, GSI1SK, PK, SK};

    let expected_keys = (Some(PK.to_owned()), Some(SK.to_owned()));
    let expected_gsi = (Some(GSI1PK.to_owned()), Some(GSI1SK.to_owned()));
    let expected_attributes: BTreeSet<String> = [PK, SK, GSI1PK, GSI1SK].map(str::to_owned).into();
    let mut problems = Problems::default();

    // template.yaml
    let template = Template::load();
    let tables: Vec<_> = template.of_type("AWS::DynamoDB::Table").collect();
    problems.check(tables.len() == 1, || {
        format!(
            "template.yaml: expected one AWS::DynamoDB::Table, found {}",
            tables.len()
        )
    });
    if let Some((id, table)) = tables.first() {
        let props = get(table, "Properties").unwrap_or(&Yaml::Null);
        let keys = sam_key_schema(get(props, "KeySchema"));
        problems.check(keys == expected_keys, || {
            format!("template.yaml: {id} KeySchema is {keys:?}, expected {expected_keys:?}")
        });
        let attributes: BTreeSet<String> = get(props, "AttributeDefinitions")
            .map(one_or_many)
            .unwrap_or_default()
            .into_iter()
            .filter(|definition| get_str(definition, &["AttributeType"]) == Some("S"))
            .filter_map(|definition| get_str(definition, &["AttributeName"]).map(str::to_owned))
            .collect();
        problems.same_set(
            &format!("template.yaml: {id} AttributeDefinitions of type S"),
            &expected_attributes,
            &attributes,
        );
        let indexes: Vec<&Yaml> = get(props, "GlobalSecondaryIndexes")
            .map(one_or_many)
            .unwrap_or_default();
        let gsi = indexes
            .iter()
            .find(|index| get_str(index, &["IndexName"]) == Some(GSI1_NAME));
        match gsi {
            Some(gsi) => {
                let keys = sam_key_schema(get(gsi, "KeySchema"));
                problems.check(keys == expected_gsi, || format!("template.yaml: {id} index {GSI1_NAME} keys are {keys:?}, expected {expected_gsi:?}"));
                let projection = get_str(gsi, &["Projection", "ProjectionType"]);
                problems.check(projection == Some("ALL"), || format!("template.yaml: {id} index {GSI1_NAME} projection is {projection:?}, expected ALL"));
            }
            None => problems.add(format!(
                "template.yaml: {id} has no global secondary index {GSI1_NAME:?}"
            )),
        }
        let ttl = get_str(props, &["TimeToLiveSpecification", "AttributeName"]);
        problems.check(ttl == Some(TTL_ATTRIBUTE), || {
            format!("template.yaml: {id} TTL attribute is {ttl:?}, expected {TTL_ATTRIBUTE:?}")
        });
    }

    // terraform/dynamodb.tf
    let body = parse_hcl("terraform/dynamodb.tf");
    let tables: Vec<&hcl::Block> = blocks(&body, "resource", &["aws_dynamodb_table"]).collect();
    problems.check(tables.len() == 1, || {
        format!(
            "terraform/dynamodb.tf: expected one aws_dynamodb_table, found {}",
            tables.len()
        )
    });
    if let Some(table) = tables.first() {
        let table = table.body();
        let string =
            |body: &hcl::Body, key: &str| attribute(body, key).and_then(hcl_str).map(str::to_owned);
        let keys = (string(table, "hash_key"), string(table, "range_key"));
        problems.check(keys == expected_keys, || {
            format!(
                "terraform/dynamodb.tf: hash_key/range_key are {keys:?}, expected {expected_keys:?}"
            )
        });
        let attributes: BTreeSet<String> = blocks(table, "attribute", &[])
            .filter(|block| string(block.body(), "type").as_deref() == Some("S"))
            .filter_map(|block| string(block.body(), "name"))
            .collect();
        problems.same_set(
            "terraform/dynamodb.tf: attribute blocks of type S",
            &expected_attributes,
            &attributes,
        );
        let gsi = blocks(table, "global_secondary_index", &[])
            .find(|block| string(block.body(), "name").as_deref() == Some(GSI1_NAME));
        match gsi {
            Some(gsi) => {
                let keys = (
                    string(gsi.body(), "hash_key"),
                    string(gsi.body(), "range_key"),
                );
                problems.check(keys == expected_gsi, || format!("terraform/dynamodb.tf: index {GSI1_NAME} keys are {keys:?}, expected {expected_gsi:?}"));
                let projection = string(gsi.body(), "projection_type");
                problems.check(projection.as_deref() == Some("ALL"), || format!("terraform/dynamodb.tf: index {GSI1_NAME} projection is {projection:?}, expected ALL"));
            }
            None => problems.add(format!(
                "terraform/dynamodb.tf: no global_secondary_index {GSI1_NAME:?}"
            )),
        }
        let ttl = blocks(table, "ttl", &[])
            .next()
            .and_then(|ttl| string(ttl.body(), "attribute_name"));
        problems.check(ttl.as_deref() == Some(TTL_ATTRIBUTE), || {
            format!("terraform/dynamodb.tf: ttl attribute is {ttl:?}, expected {TTL_ATTRIBUTE:?}")
        });
    }
    problems.finish("template.yaml or terraform/dynamodb.tf declares a table other than the one the code uses (pk/sk, gsi1 on gsi1pk/gsi1sk, TTL)");
}

// -------------------------------------------------------------------------------------------
// Permissions: template.yaml and terraform grant each function the same
// -------------------------------------------------------------------------------------------

/// What a function may do, in terms both descriptions can be compared on.
#[derive(Debug, Default, PartialEq, Eq)]
struct Grants {
    table_actions: BTreeSet<String>,
    index_query: bool,
    /// Logical ids of template queues (`NotificationsQueue`).
    queue_send: BTreeSet<String>,
    /// Logical ids of dead-letter queues (`PaymentsDeadLetterQueue`) it may send poison to.
    dead_letter_send: BTreeSet<String>,
    ssm: bool,
    /// Key prefixes of the assets bucket it may write and read.
    bucket_put: BTreeSet<String>,
    bucket_get: BTreeSet<String>,
    /// `ses:SendEmail` (on any resource): it may send e-mail.
    ses_send_email: bool,
    /// `sns:Publish` (on any resource): it may send SMS and push notifications.
    sns_publish: bool,
}

/// The key prefix a statement on `arn:...:s3:::<assets bucket>/<prefix>*` covers.
fn bucket_prefix(sub: &str) -> Option<String> {
    let (_, object) = sub.split_once("-assets-${AWS::AccountId}-${AWS::Region}/")?;
    object.strip_suffix('*').map(str::to_owned)
}

/// The grants of a function's inline `Policies` statements in template.yaml.
fn sam_grants(
    id: &str,
    function: &Yaml,
    dead_letter_queues: &BTreeSet<String>,
    problems: &mut Problems,
) -> Grants {
    let mut grants = Grants::default();
    let policies = get_path(function, &["Properties", "Policies"])
        .map(one_or_many)
        .unwrap_or_default();
    for policy in policies {
        let Some(statements) = get(policy, "Statement") else {
            problems.add(format!("template.yaml: {id} Policies must be inline policy documents (with Statement) so they can be compared with terraform, found {policy:?}"));
            continue;
        };
        for statement in one_or_many(statements) {
            if get_str(statement, &["Effect"]) != Some("Allow") {
                continue;
            }
            let actions: Vec<&str> = get(statement, "Action")
                .map(one_or_many)
                .unwrap_or_default()
                .into_iter()
                .filter_map(|a| untag(a).as_str())
                .collect();
            for resource in get(statement, "Resource")
                .map(one_or_many)
                .unwrap_or_default()
            {
                let att = get_att(resource);
                let sub = sub_template(resource).unwrap_or_default();
                for &action in &actions {
                    let on_table = att
                        .as_ref()
                        .is_some_and(|(target, attribute)| target == "Table" && attribute == "Arn");
                    if action.starts_with("dynamodb:") && on_table {
                        grants.table_actions.insert(action.to_owned());
                    } else if action == "dynamodb:Query" && sub == "${Table.Arn}/index/*" {
                        grants.index_query = true;
                    } else if action == "sqs:SendMessage"
                        && let Some((queue, _)) = &att
                    {
                        if dead_letter_queues.contains(queue) {
                            grants.dead_letter_send.insert(queue.clone());
                        } else {
                            grants.queue_send.insert(queue.clone());
                        }
                    } else if action == "s3:PutObject" && bucket_prefix(sub).is_some() {
                        grants.bucket_put.extend(bucket_prefix(sub));
                    } else if action == "s3:GetObject" && bucket_prefix(sub).is_some() {
                        grants.bucket_get.extend(bucket_prefix(sub));
                    } else if action == "ssm:GetParameter"
                        && sub.ends_with(":parameter${JwtSecretParameterName}")
                    {
                        grants.ssm = true;
                    } else if action == "ses:SendEmail" {
                        grants.ses_send_email = true;
                    } else if action == "sns:Publish" {
                        grants.sns_publish = true;
                    }
                }
            }
        }
    }
    grants
}

#[test]
fn sam_and_terraform_grant_the_same_permissions() {
    let template = Template::load();
    let mut problems = Problems::default();
    let sam = template.functions(&mut problems);
    let terraform = terraform_functions(&mut problems);
    let dead_letter_queues = sam_dead_letter_queues(&template);
    let terraform_dead_letters = terraform_grants_dead_letters(&mut problems);
    for spec in ALL {
        let (Some((id, function)), Some(tf)) = (sam.get(spec.name), terraform.get(spec.name))
        else {
            continue;
        };
        let in_sam = sam_grants(id, function, &dead_letter_queues, &mut problems);
        // A queue consumer that declares the queue port (it dead-letters poison at once, see
        // the const assert in api/src/functions.rs) may send to its own queue's dead-letter
        // queue, and to no other (api/src/consumers/dead_letter.rs); any other function may
        // send to none: the catalogue's trigger and needs say which.
        let own_dead_letters = |queue: Option<&str>| -> BTreeSet<String> {
            queue
                .and_then(|queue| sam_dead_letter_queue(&template, queue))
                .into_iter()
                .collect()
        };
        let consumed = match spec.trigger {
            Trigger::Queue { queue, .. } => Some(queue),
            _ => None,
        };
        let expected = own_dead_letters(consumed.filter(|_| spec.needs.queue));
        problems.check(in_sam.dead_letter_send == expected, || {
            format!(
                "{}: template.yaml {id} may send to the dead-letter queues {:?}, but the function consumes {consumed:?} (needs.queue = {}) and may send poison to {expected:?} only",
                spec.name, in_sam.dead_letter_send, spec.needs.queue,
            )
        });
        let in_terraform = Grants {
            table_actions: tf.table_actions.clone(),
            index_query: tf.index_query,
            queue_send: tf
                .queue_send
                .iter()
                .map(|queue| sam_queue_id(queue))
                .collect(),
            dead_letter_send: if terraform_dead_letters.contains(spec.name) {
                own_dead_letters(tf.queue.as_deref())
            } else {
                BTreeSet::new()
            },
            ssm: tf.ssm,
            bucket_put: tf.bucket_put.clone(),
            bucket_get: tf.bucket_get.clone(),
            // `notify_send` grants both: e-mail through SES, SMS and push through SNS.
            ses_send_email: tf.notify_send,
            sns_publish: tf.notify_send,
        };
        problems.check(in_terraform.dead_letter_send == expected, || {
            format!(
                "{}: terraform lets it send to the dead-letter queues {:?}, but the function consumes {consumed:?} (needs.queue = {}) and may send poison to {expected:?} only (local.dead_letter_at_once)",
                spec.name, in_terraform.dead_letter_send, spec.needs.queue,
            )
        });
        // Exactly the functions that handle tokens may read the signing secret: the others
        // start without it (`Needs::tokens` in api/src/functions.rs) and must not be granted it.
        problems.check(tf.ssm == spec.needs.tokens, || {
            format!(
                "{}: terraform grants ssm = {}, but the function {} the signing secret",
                spec.name,
                tf.ssm,
                if spec.needs.tokens {
                    "reads"
                } else {
                    "never reads"
                }
            )
        });
        // What the catalogue says a function needs is what it is granted, and no more: its
        // App builds the queue, blob and notifier clients from the same declaration.
        let granted = [
            (
                "queue",
                "queue_send or a dead-letter queue",
                !tf.queue_send.is_empty() || !in_terraform.dead_letter_send.is_empty(),
                spec.needs.queue,
            ),
            (
                "blobs",
                "bucket_put/bucket_get",
                !tf.bucket_put.is_empty() || !tf.bucket_get.is_empty(),
                spec.needs.blobs,
            ),
            (
                "notifiers",
                "notify_send",
                tf.notify_send,
                spec.needs.notifiers,
            ),
        ];
        for (need, grant, in_terraform, needed) in granted {
            problems.check(in_terraform == needed, || {
                format!(
                    "{}: api/src/functions.rs says needs.{need} = {needed}, but terraform {} {grant}",
                    spec.name,
                    if in_terraform { "grants" } else { "does not grant" },
                )
            });
        }
        // Sending e-mail, SMS and push reaches people outside the system: exactly the functions
        // terraform marks `notify_send` may do it, in both descriptions.
        problems.check(
            in_sam.ses_send_email == tf.notify_send && in_sam.sns_publish == tf.notify_send,
            || {
                format!(
                    "{}: terraform says notify_send = {}, but template.yaml {id} {} ses:SendEmail and {} sns:Publish",
                    spec.name,
                    tf.notify_send,
                    if in_sam.ses_send_email { "grants" } else { "does not grant" },
                    if in_sam.sns_publish { "grants" } else { "does not grant" },
                )
            },
        );
        problems.check(in_sam == in_terraform, || {
            format!("{}: template.yaml {id} grants {in_sam:?}\n      but terraform local.functions grants {in_terraform:?}", spec.name)
        });
    }
    problems.finish("template.yaml and terraform/functions.tf grant different permissions");
}

/// The logical id of the queue that `queue`'s RedrivePolicy dead-letters into.
fn sam_dead_letter_queue(template: &Template, queue: &str) -> Option<String> {
    let resource = template.resource(&sam_queue_id(queue))?;
    let target = get_path(
        resource,
        &["Properties", "RedrivePolicy", "deadLetterTargetArn"],
    )?;
    get_att(target).map(|(dead_letters, _)| dead_letters)
}

/// Every queue that some queue's RedrivePolicy dead-letters into.
fn sam_dead_letter_queues(template: &Template) -> BTreeSet<String> {
    template
        .of_type("AWS::SQS::Queue")
        .filter_map(|(_, queue)| {
            let target = get_path(
                queue,
                &["Properties", "RedrivePolicy", "deadLetterTargetArn"],
            )?;
            get_att(target).map(|(dead_letters, _)| dead_letters)
        })
        .collect()
}

/// The functions terraform's policy lets send to their own queue's dead-letter queue: those
/// named in `local.dead_letter_at_once`, when a statement for `each.value.queue` of exactly
/// those allows exactly `sqs:SendMessage` on exactly `local.queues[<that queue>].dlq_arn`;
/// none otherwise.
fn terraform_grants_dead_letters(problems: &mut Problems) -> BTreeSet<String> {
    let body = parse_hcl("terraform/functions.tf");
    let Some(policy) = blocks(&body, "data", &["aws_iam_policy_document", "function"]).next()
    else {
        problems.add("terraform/functions.tf: no data \"aws_iam_policy_document\" \"function\"");
        return BTreeSet::new();
    };
    let text = |block: &hcl::Block, key: &str| {
        attribute(block.body(), key).map(|expr| {
            let text = expr.to_string();
            text.split_whitespace().collect::<String>()
        })
    };
    let granted = blocks(policy.body(), "dynamic", &["statement"]).any(|statement| {
        let content = blocks(statement.body(), "content", &[]).next();
        text(statement, "for_each").as_deref()
            == Some("each.value.queue!=null&&contains(local.dead_letter_at_once,each.key)?[each.value.queue]:[]")
            && content.is_some_and(|content| {
                text(content, "actions").as_deref() == Some("[\"sqs:SendMessage\"]")
                    && text(content, "resources").as_deref()
                        == Some("[local.queues[statement.value].dlq_arn]")
            })
    });
    problems.check(granted, || {
        "terraform/functions.tf: data.aws_iam_policy_document.function needs a dynamic \"statement\" with for_each = each.value.queue != null && contains(local.dead_letter_at_once, each.key) ? [each.value.queue] : [], actions = [\"sqs:SendMessage\"] and resources = [local.queues[statement.value].dlq_arn] (a consumer dead-letters poison)".to_owned()
    });
    if !granted {
        return BTreeSet::new();
    }
    let lists: Vec<&hcl::Expression> = blocks(&body, "locals", &[])
        .filter_map(|locals| attribute(locals.body(), "dead_letter_at_once"))
        .collect();
    let [hcl::Expression::Array(names)] = lists.as_slice() else {
        problems.add(format!(
            "terraform/functions.tf: local.dead_letter_at_once must be defined once, as a list literal, is {lists:?}"
        ));
        return BTreeSet::new();
    };
    names
        .iter()
        .filter_map(|name| hcl_str(name).map(str::to_owned))
        .collect()
}

/// A consumer reaches its dead-letter queue by the URL in its environment (it has no
/// permission to look queues up by name): both descriptions give every function the URL of
/// each queue's dead-letter queue, under the variable the adapter reads.
#[test]
fn both_descriptions_give_consumers_the_url_of_their_dead_letter_queue() {
    let template = Template::load();
    let document: Yaml =
        serde_yaml::from_str(&read("template.yaml")).expect("parse template.yaml as YAML");
    let terraform = parse_hcl("terraform/functions.tf");
    let mut problems = Problems::default();
    for queue in bazaar_api::functions::queues() {
        let variable = format!("BAZAAR_QUEUE_URL_{}_DLQ", queue.to_uppercase());
        // The adapter takes the variable as the URL of `<queue>-dlq`, the name the code
        // dead-letters to.
        let config = bazaar_adapters::config::BackendConfig::from_source(
            &bazaar_shared::settings::Source::pairs(&[
                ("BAZAAR_BACKEND", "aws"),
                (variable.as_str(), "https://dlq"),
            ]),
        )
        .expect("backend config");
        let read_as = match &config.backend {
            bazaar_adapters::config::Backend::Aws { queue_urls, .. } => queue_urls
                .iter()
                .find(|(_, url)| url.as_str() == "https://dlq")
                .map(|(name, _)| name.clone()),
            _ => None,
        };
        let dead_letters = bazaar_shared::ports::queue::dead_letter_queue(queue);
        problems.check(read_as.as_deref() == Some(dead_letters.as_str()), || {
            format!(
                "the adapter reads {variable} as the URL of {read_as:?}, not of {dead_letters:?}"
            )
        });

        let expected = sam_dead_letter_queue(&template, queue);
        let in_sam = sam_global_environment(&document, &variable);
        problems.check(expected.is_some() && in_sam == expected.as_deref(), || {
            format!("template.yaml: Globals.Function.Environment.Variables.{variable} must be !Ref {expected:?}, is {in_sam:?}")
        });

        let in_terraform = tf_function_environment(&terraform, &variable);
        let wanted = format!("aws_sqs_queue.{queue}_dlq.url");
        problems.check(in_terraform.as_deref() == Some(wanted.as_str()), || {
            format!("terraform/functions.tf: local.function_environment.{variable} must be {wanted}, is {in_terraform:?}")
        });
    }
    problems.finish("a consumer could not find its dead-letter queue on AWS");
}

/// Every writer and reader of the sharded partitions must agree on the shard count (a reader
/// with fewer shards misses items), and every invoice step on the series: both descriptions
/// set each once, for every function, from one parameter or variable whose default is the
/// code's.
#[test]
fn both_descriptions_give_every_function_one_shard_count_and_series_count() {
    let document: Yaml =
        serde_yaml::from_str(&read("template.yaml")).expect("parse template.yaml as YAML");
    let terraform = parse_hcl("terraform/functions.tf");
    let variables = read("terraform/variables.tf");
    let defaults = [
        (
            "BAZAAR_WRITE_SHARDS",
            "WriteShards",
            "write_shards",
            bazaar_shared::shards::Shards::DEFAULT.count(),
        ),
        (
            "BAZAAR_INVOICE_SERIES",
            "InvoiceSeries",
            "invoice_series",
            bazaar_shared::orders::OrderSettings::default().invoice_series,
        ),
    ];
    let mut problems = Problems::default();
    for (variable, parameter, tf_variable, default) in defaults {
        let in_sam = sam_global_environment(&document, variable);
        problems.check(in_sam == Some(parameter), || {
            format!("template.yaml: Globals.Function.Environment.Variables.{variable} must be !Ref {parameter}, is {in_sam:?}")
        });
        let sam_default = get_path(&document, &["Parameters", parameter, "Default"])
            .and_then(|value| value.as_u64());
        problems.check(sam_default == Some(u64::from(default)), || {
            format!("template.yaml: Parameters.{parameter}.Default must be {default} (the code's), is {sam_default:?}")
        });
        let in_terraform = tf_function_environment(&terraform, variable);
        let wanted = format!("tostring(var.{tf_variable})");
        problems.check(in_terraform.as_deref() == Some(wanted.as_str()), || {
            format!("terraform/functions.tf: local.function_environment.{variable} must be {wanted}, is {in_terraform:?}")
        });
        let declared = format!("variable \"{tf_variable}\"");
        let tf_default = variables
            .split(&declared)
            .nth(1)
            .and_then(|rest| {
                rest.lines()
                    .find(|line| line.trim_start().starts_with("default"))
            })
            .and_then(|line| line.split('=').nth(1))
            .map(|value| value.trim().to_owned());
        problems.check(tf_default.as_deref() == Some(default.to_string().as_str()), || {
            format!("terraform/variables.tf: {tf_variable} must default to {default} (the code's), is {tf_default:?}")
        });
    }
    problems.finish("functions could disagree on where shop-wide items are");
}

#[test]
fn repo_root_is_the_workspace() {
    // Guards the relative paths above: a moved test crate would otherwise fail confusingly.
    assert!(
        Path::new(&repo_root().join("api/src/functions.rs")).is_file(),
        "repo root {} has no api/src/functions.rs",
        repo_root().display()
    );
}

// -------------------------------------------------------------------------------------------
// Upload functions: failed invocations are kept and alarmed
// -------------------------------------------------------------------------------------------

/// S3 invokes upload functions asynchronously: an event that fails all its tries must land in
/// an on-failure destination (an SQS queue) that raises an alarm, in both descriptions.
#[test]
fn upload_functions_keep_and_alarm_their_failed_events() {
    let template = Template::load();
    let monitoring = Template::load_file("monitoring.yaml");
    let mut problems = Problems::default();
    let sam = template.functions(&mut problems);
    let functions_tf = parse_hcl("terraform/functions.tf");
    let sqs_tf = parse_hcl("terraform/sqs.tf");
    let alarms_tf = parse_hcl("terraform/alarms.tf");
    for spec in ALL {
        if !matches!(spec.trigger, Trigger::Upload { .. }) {
            continue;
        }
        let name = spec.name;

        // template.yaml: EventInvokeConfig.DestinationConfig.OnFailure → a queue with an alarm.
        if let Some((id, function)) = sam.get(name) {
            let on_failure = get_path(
                function,
                &[
                    "Properties",
                    "EventInvokeConfig",
                    "DestinationConfig",
                    "OnFailure",
                ],
            );
            let kind = on_failure.and_then(|target| get_str(target, &["Type"]));
            let queue = on_failure
                .and_then(|target| get(target, "Destination"))
                .and_then(get_att)
                .filter(|(queue, attribute)| {
                    attribute == "Arn" && template.type_of(queue) == Some("AWS::SQS::Queue")
                })
                .map(|(queue, _)| queue);
            problems.check(kind == Some("SQS") && queue.is_some(), || {
                format!("template.yaml: {id} needs EventInvokeConfig.DestinationConfig.OnFailure {{Type: SQS, Destination: !GetAtt <an AWS::SQS::Queue>.Arn}}")
            });
            if let Some(queue) = queue {
                // The alarms are in the nested monitoring.yaml, which gets the queue's name as
                // a parameter.
                let parameter = monitoring_parameter_for(&template, &queue, "QueueName");
                let alarmed = monitoring
                    .of_type("AWS::CloudWatch::Alarm")
                    .any(|(_, alarm)| {
                        let watches = get_path(alarm, &["Properties", "Dimensions"])
                            .map(one_or_many)
                            .unwrap_or_default()
                            .iter()
                            .any(|dimension| {
                                get_str(dimension, &["Name"]) == Some("QueueName")
                                    && get(dimension, "Value").and_then(ref_target)
                                        == parameter.as_deref()
                            });
                        let acts = get_path(alarm, &["Properties", "AlarmActions"])
                            .is_some_and(|actions| !one_or_many(actions).is_empty());
                        watches && acts
                    });
                problems.check(alarmed, || {
                    format!("monitoring.yaml: no AWS::CloudWatch::Alarm with AlarmActions on the QueueName of {queue} (the on-failure destination of {id}, passed by template.yaml)")
                });
            }
        }

        // terraform: aws_lambda_function_event_invoke_config → a queue in sqs.tf with an alarm.
        let function_ref = format!("aws_lambda_function.function[\"{name}\"]");
        let config = blocks(
            &functions_tf,
            "resource",
            &["aws_lambda_function_event_invoke_config"],
        )
        .find(|block| {
            attribute(block.body(), "function_name")
                .is_some_and(|expr| expr.to_string().starts_with(&function_ref))
        });
        let destination = config
            .and_then(|block| blocks(block.body(), "destination_config", &[]).next())
            .and_then(|block| blocks(block.body(), "on_failure", &[]).next())
            .and_then(|block| attribute(block.body(), "destination"))
            .map(ToString::to_string);
        let queue = destination
            .as_deref()
            .and_then(|target| target.strip_prefix("aws_sqs_queue."))
            .and_then(|target| target.strip_suffix(".arn"))
            .filter(|queue| blocks(&sqs_tf, "resource", &["aws_sqs_queue", queue]).count() == 1)
            .map(str::to_owned);
        problems.check(queue.is_some(), || {
            format!("terraform/functions.tf: {name} needs a resource \"aws_lambda_function_event_invoke_config\" (function_name = {function_ref}...) whose destination_config.on_failure.destination is an aws_sqs_queue of sqs.tf, has {destination:?}")
        });
        if let Some(queue) = queue {
            let queue_name = format!("aws_sqs_queue.{queue}.name");
            let alarmed =
                blocks(&alarms_tf, "resource", &["aws_cloudwatch_metric_alarm"]).any(|alarm| {
                    let watches = attribute(alarm.body(), "dimensions")
                        .is_some_and(|dimensions| dimensions.to_string().contains(&queue_name));
                    watches && attribute(alarm.body(), "alarm_actions").is_some()
                });
            problems.check(alarmed, || {
                format!("terraform/alarms.tf: no aws_cloudwatch_metric_alarm with alarm_actions whose dimensions name {queue_name} (the on-failure destination of {name})")
            });
        }
    }
    problems.finish("an upload function's failed events are not kept and alarmed");
}

// -------------------------------------------------------------------------------------------
// Function packages: only the AWS backend
// -------------------------------------------------------------------------------------------

/// The non-optional `[dependencies]` of a member's Cargo.toml: (name, the directory of the
/// crate when it is one of this repository's, relative to the repository).
fn required_dependencies(manifest: &str) -> Vec<(String, Option<String>)> {
    let member = Path::new(manifest).parent().unwrap_or(Path::new(""));
    let workspace = read("Cargo.toml");
    let path_of = |line: &str| {
        line.split("path = \"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .map(str::to_owned)
    };
    let mut found = Vec::new();
    let mut in_dependencies = false;
    for line in read(manifest).lines().map(str::trim) {
        if line.starts_with('[') {
            in_dependencies = line == "[dependencies]";
            continue;
        }
        if !in_dependencies || line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line.contains("optional = true") {
            continue;
        }
        let name = line
            .split(['=', '.', ' '])
            .next()
            .unwrap_or_default()
            .to_owned();
        let directory = if line.contains(".workspace") || line.contains("workspace = true") {
            workspace
                .lines()
                .find(|entry| entry.starts_with(&format!("{name} = ")))
                .and_then(path_of)
        } else {
            // `../server` from `functions/` is `server`.
            path_of(line).map(|path| {
                let joined = member.join(path);
                joined
                    .components()
                    .fold(PathBuf::new(), |mut normal, part| {
                        match part {
                            std::path::Component::ParentDir => {
                                normal.pop();
                            }
                            other => normal.push(other),
                        }
                        normal
                    })
                    .to_string_lossy()
                    .into_owned()
            })
        };
        found.push((name, directory));
    }
    found
}

/// Every package a function binary links through this repository's own crates (without the
/// `local` feature that `cargo lambda watch` uses): never the embedded backend, SQLite, the
/// SMTP client or the local server.
#[test]
fn function_packages_link_only_the_aws_backend() {
    let mut seen = BTreeSet::new();
    let mut pending = vec!["functions/Cargo.toml".to_owned()];
    while let Some(manifest) = pending.pop() {
        for (name, path) in required_dependencies(&manifest) {
            if let Some(path) = path
                && seen.insert(name.clone())
            {
                pending.push(format!("{path}/Cargo.toml"));
            } else {
                seen.insert(name);
            }
        }
    }
    assert!(
        seen.contains("bazaar-adapters"),
        "the walk found nothing: {seen:?}"
    );
    let forbidden: Vec<&str> = ["bazaar-embedded", "bazaar", "rusqlite", "lettre"]
        .into_iter()
        .filter(|name| seen.contains(*name))
        .collect();
    assert!(
        forbidden.is_empty(),
        "function packages would link {forbidden:?} (through {seen:?}); keep the local backends in embedded/"
    );
}

// -------------------------------------------------------------------------------------------
// Alarms, dashboards and metric names
// -------------------------------------------------------------------------------------------

/// The alarms the catalogue calls for, by name after the stack's prefix: errors and throttles
/// of every function, 5xx rate and p99 latency of every route, a dead-letter and a backlog
/// alarm per queue.
fn alarms_per_catalogue() -> BTreeSet<String> {
    let mut alarms = BTreeSet::new();
    for function in ALL {
        alarms.insert(format!("{}-errors", function.name));
        alarms.insert(format!("{}-throttles", function.name));
        if matches!(function.trigger, Trigger::Http { .. }) {
            alarms.insert(format!("{}-5xx-rate", function.name));
            alarms.insert(format!("{}-p99-latency", function.name));
        }
    }
    for queue in bazaar_api::functions::queues() {
        alarms.insert(format!("{queue}-dlq-not-empty"));
        alarms.insert(format!("{queue}-queue-backlog"));
    }
    alarms
}

/// The alarm names of the SAM description (its nested monitoring.yaml), after `${StackName}-`
/// (the parent stack's name).
fn sam_alarms(problems: &mut Problems) -> BTreeSet<String> {
    let template = Template::load_file("monitoring.yaml");
    let mut names = BTreeSet::new();
    for (id, alarm) in template.of_type("AWS::CloudWatch::Alarm") {
        let name = get_path(alarm, &["Properties", "AlarmName"])
            .and_then(sub_template)
            .and_then(|name| name.strip_prefix("${StackName}-"));
        match name {
            Some(name) => {
                names.insert(name.to_owned());
            }
            None => problems.add(format!(
                "monitoring.yaml: {id} has no AlarmName of the form !Sub \"${{StackName}}-...\""
            )),
        }
    }
    problems.check(
        Template::load()
            .of_type("AWS::CloudWatch::Alarm")
            .next()
            .is_none(),
        || "template.yaml declares alarms itself; they belong in monitoring.yaml".to_owned(),
    );
    names
}

/// The `AWS::Serverless::Application` resources of template.yaml that nest monitoring.yaml.
fn monitoring_apps(template: &Template) -> Vec<(&str, &Yaml)> {
    template
        .of_type("AWS::Serverless::Application")
        .filter(|(_, app)| get_str(app, &["Properties", "Location"]) == Some("monitoring.yaml"))
        .collect()
}

/// The keys of the mapping at `value` (none when it is absent or no mapping).
fn mapping_keys(value: Option<&Yaml>) -> BTreeSet<String> {
    value
        .and_then(|value| untag(value).as_mapping())
        .map(|mapping| {
            mapping
                .keys()
                .filter_map(|key| key.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The parameter of the nested monitoring stack to which template.yaml passes
/// `!GetAtt <resource>.<attribute>`.
fn monitoring_parameter_for(
    template: &Template,
    resource: &str,
    attribute: &str,
) -> Option<String> {
    let (_, app) = *monitoring_apps(template).first()?;
    let parameters = get_path(app, &["Properties", "Parameters"])
        .and_then(|parameters| untag(parameters).as_mapping())?;
    parameters.iter().find_map(|(name, value)| {
        (get_att(value) == Some((resource.to_owned(), attribute.to_owned())))
            .then(|| name.as_str().map(str::to_owned))
            .flatten()
    })
}

/// template.yaml nests monitoring.yaml and passes it exactly the parameters it declares.
#[test]
fn the_monitoring_stack_gets_every_parameter_it_declares() {
    let mut problems = Problems::default();
    let document: Yaml =
        serde_yaml::from_str(&read("monitoring.yaml")).expect("parse monitoring.yaml as YAML");
    let declared = mapping_keys(get(&document, "Parameters"));
    let template = Template::load();
    let nested = monitoring_apps(&template);
    problems.check(nested.len() == 1, || {
        format!(
            "template.yaml must nest monitoring.yaml once, not {} times",
            nested.len()
        )
    });
    if let Some((id, app)) = nested.first() {
        let passed = mapping_keys(get_path(app, &["Properties", "Parameters"]));
        problems.same_set(
            &format!("monitoring.yaml's parameters (expected) against those {id} passes (found)"),
            &declared,
            &passed,
        );
    }
    problems.finish("template.yaml and its nested monitoring.yaml disagree");
}

/// The alarm names of terraform/alarms.tf, after `${var.name_prefix}-`, with `for_each` over
/// the functions, the HTTP functions or the queues expanded from the catalogue.
fn terraform_alarms(problems: &mut Problems) -> BTreeSet<String> {
    let body = parse_hcl("terraform/alarms.tf");
    let http: Vec<&str> = bazaar_api::functions::http_functions()
        .map(|(function, _, _)| function.name)
        .collect();
    let mut names = BTreeSet::new();
    for block in blocks(&body, "resource", &["aws_cloudwatch_metric_alarm"]) {
        let label = block.labels().get(1).map_or("?", |label| label.as_str());
        let template = match attribute(block.body(), "alarm_name") {
            Some(hcl::Expression::TemplateExpr(template)) => match template.as_ref() {
                hcl::TemplateExpr::QuotedString(text) => text.clone(),
                hcl::TemplateExpr::Heredoc(heredoc) => heredoc.template.clone(),
            },
            Some(expr) => hcl_str(expr).unwrap_or_default().to_owned(),
            None => String::new(),
        };
        let Some(tail) = template.strip_prefix("${var.name_prefix}-") else {
            problems.add(format!(
                "terraform/alarms.tf: {label}'s alarm_name does not start with ${{var.name_prefix}}-"
            ));
            continue;
        };
        let keys: Vec<String> = match attribute(block.body(), "for_each") {
            None => {
                names.insert(tail.to_owned());
                continue;
            }
            Some(expr) => match expr.to_string().as_str() {
                "local.functions" => ALL.iter().map(|f| f.name.to_owned()).collect(),
                "local.http_functions" => http.iter().map(|name| (*name).to_owned()).collect(),
                "local.queues" => bazaar_api::functions::queues().map(str::to_owned).collect(),
                other => {
                    problems.add(format!(
                        "terraform/alarms.tf: {label} repeats over {other}, which this test cannot expand"
                    ));
                    continue;
                }
            },
        };
        for key in keys {
            names.insert(tail.replace("${each.key}", &key));
        }
    }
    names
}

/// Both descriptions raise the same alarms, and those cover every function, route and queue.
#[test]
fn both_descriptions_hold_the_same_alarms() {
    let mut problems = Problems::default();
    let sam = sam_alarms(&mut problems);
    let terraform = terraform_alarms(&mut problems);
    problems.same_set(
        "alarms: monitoring.yaml (expected) against terraform/alarms.tf (found)",
        &sam,
        &terraform,
    );
    let wanted = alarms_per_catalogue();
    let missing: BTreeSet<String> = wanted.difference(&sam).cloned().collect();
    problems.check(missing.is_empty(), || {
        format!("monitoring.yaml lacks the catalogue's alarms {missing:?}")
    });
    problems.finish("the alarms of template.yaml and terraform/ disagree");
}

/// The Bazaar metrics a text names: snake_case names after `MetricName` or `metric_name`
/// (AWS's own metrics are CamelCase), each with the dimensions of the `{Bazaar,...}` SEARCH
/// that names it, if any.
fn metrics_named_in(text: &str) -> Vec<(String, Option<Vec<String>>)> {
    let mut found = Vec::new();
    for marker in ["MetricName", "metric_name"] {
        for (at, _) in text.match_indices(marker) {
            let rest = text[at + marker.len()..].trim_start_matches([' ', ':', '=', '"', '\\']);
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
                .collect();
            if !name.contains('_') {
                continue;
            }
            // The SEARCH schema just before, on the same line: `{Bazaar,function,...}`.
            let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
            let dimensions = text[line_start..at].rfind("{Bazaar,").and_then(|start| {
                let schema = &text[line_start + start + "{Bazaar,".len()..at];
                let end = schema.find('}')?;
                Some(schema[..end].split(',').map(str::to_owned).collect())
            });
            found.push((name, dimensions));
        }
    }
    // Explicit dashboard rows: ["Bazaar", "orders_placed_total", ...].
    for (at, _) in text.match_indices("\"Bazaar\", \"") {
        let rest = &text[at + "\"Bazaar\", \"".len()..];
        if let Some(end) = rest.find('"') {
            found.push((rest[..end].to_owned(), None));
        }
    }
    found
}

/// Every metric an alarm or a dashboard (CloudWatch or Grafana) names is one the code records,
/// with the dimensions it records it with (`function`, then its labels).
#[test]
fn every_metric_the_infrastructure_names_is_recorded() {
    use bazaar_shared::metrics;
    let mut problems = Problems::default();
    let mut named = BTreeSet::new();
    let mut files = vec!["template.yaml".to_owned(), "monitoring.yaml".to_owned()];
    for entry in std::fs::read_dir(repo_root().join("terraform")).expect("terraform/") {
        let path = entry.expect("a terraform file").path();
        if path.extension().is_some_and(|ext| ext == "tf") {
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            files.push(format!("terraform/{name}"));
        }
    }
    for file in &files {
        for (name, dimensions) in metrics_named_in(&read(file)) {
            let Some(metric) = metrics::find(&name) else {
                problems.add(format!("{file} names {name}, which the code never records"));
                continue;
            };
            if let Some(dimensions) = dimensions {
                let recorded: Vec<&str> = std::iter::once("function")
                    .chain(metric.labels.iter().copied())
                    .collect();
                problems.check(dimensions == recorded, || {
                    format!(
                        "{file} searches {name} by {dimensions:?}; it is recorded with {recorded:?}"
                    )
                });
            }
            named.insert(format!("{file}: {name}"));
        }
    }
    // Grafana reads Prometheus names: a histogram also as _bucket, _count and _sum.
    let grafana = "infra/observability/grafana/dashboards/bazaar.json";
    let dashboard: serde_json::Value =
        serde_json::from_str(&read(grafana)).expect("parse the Grafana dashboard as JSON");
    let mut expressions = Vec::new();
    collect_exprs(&dashboard, &mut expressions);
    for expr in &expressions {
        for token in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
            let base = ["_bucket", "_count", "_sum"]
                .iter()
                .find_map(|suffix| token.strip_suffix(suffix))
                .filter(|base| base.ends_with("_seconds"))
                .unwrap_or(token);
            if base.ends_with("_total") || base.ends_with("_seconds") {
                problems.check(metrics::find(base).is_some(), || {
                    format!("{grafana} queries {token}, which the code never records")
                });
                named.insert(format!("{grafana}: {base}"));
            }
        }
    }
    for (file, wanted) in [
        ("monitoring.yaml", metrics::PAYMENTS),
        ("terraform/alarms.tf", metrics::PAYMENTS),
        (grafana, metrics::ORDERS_PLACED),
    ] {
        problems.check(named.contains(&format!("{file}: {wanted}")), || {
            format!("{file} no longer names {wanted}: has this test stopped finding metric names?")
        });
    }
    problems.finish("the alarms and dashboards name metrics the code does not record");
}

/// Every `expr` string of a Grafana dashboard.
fn collect_exprs(value: &serde_json::Value, into: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, value) in map {
                match value {
                    serde_json::Value::String(text) if key == "expr" => into.push(text.clone()),
                    other => collect_exprs(other, into),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|item| collect_exprs(item, into)),
        _ => {}
    }
}

// -------------------------------------------------------------------------------------------
// Traces: the optional OpenTelemetry collector layer
// -------------------------------------------------------------------------------------------

/// The environment variable the code reads for its OTLP/HTTP collector (it posts to
/// `<endpoint>/v1/traces`); unset or empty, it exports nothing.
const OTLP_ENDPOINT_VARIABLE: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
/// Where the collector layer (ADOT) receives OTLP/HTTP: the function's own loopback.
const COLLECTOR_ENDPOINT: &str = "http://localhost:4318";
const SAM_COLLECTOR_PARAMETER: &str = "OtelCollectorLayerArn";
const TF_COLLECTOR_VARIABLE: &str = "otel_collector_layer_arn";

/// `!If [condition, then, else]` (or `{"Fn::If": [...]}`) as its three parts.
fn if_parts(value: &Yaml) -> Option<(&str, &Yaml, &Yaml)> {
    match intrinsic(value, "If").map(untag)? {
        Yaml::Sequence(parts) if parts.len() == 3 => {
            Some((untag(&parts[0]).as_str()?, &parts[1], &parts[2]))
        }
        _ => None,
    }
}

/// `!Not [!Equals [!Ref <parameter>, ""]]`, either operand first: true when it is set.
fn is_set_condition(condition: &Yaml, parameter: &str) -> bool {
    let Some(Yaml::Sequence(not)) = intrinsic(condition, "Not").map(untag) else {
        return false;
    };
    let Some(Yaml::Sequence(operands)) = not
        .first()
        .and_then(|equals| intrinsic(equals, "Equals"))
        .map(untag)
    else {
        return false;
    };
    let refs = operands
        .iter()
        .filter(|operand| ref_target(operand) == Some(parameter))
        .count();
    let empties = operands
        .iter()
        .filter(|operand| untag(operand).as_str() == Some(""))
        .count();
    not.len() == 1 && operands.len() == 2 && refs == 1 && empties == 1
}

/// template.yaml: the parameter (default ""), a condition on it, and on every function
/// (directly or through Globals.Function) the conditional layer and the endpoint variable.
fn sam_collector_problems(problems: &mut Problems) {
    let document: Yaml =
        serde_yaml::from_str(&read("template.yaml")).expect("parse template.yaml as YAML");
    let parameter = SAM_COLLECTOR_PARAMETER;
    match get_path(&document, &["Parameters", parameter]) {
        None => problems.add(format!("template.yaml: no parameter {parameter}")),
        Some(declared) => {
            let kind = get_str(declared, &["Type"]);
            let default = get_str(declared, &["Default"]);
            problems.check(kind == Some("String") && default == Some(""), || {
                format!("template.yaml: parameter {parameter} must be Type: String with Default: \"\" (no collector unless asked for), is Type {kind:?}, Default {default:?}")
            });
        }
    }
    let conditions: BTreeSet<String> = get(&document, "Conditions")
        .and_then(|conditions| untag(conditions).as_mapping())
        .map(|conditions| {
            conditions
                .iter()
                .filter(|(_, condition)| is_set_condition(condition, parameter))
                .filter_map(|(name, _)| name.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    problems.check(!conditions.is_empty(), || {
        format!(
            "template.yaml: no condition !Not [!Equals [!Ref {parameter}, \"\"]] under Conditions"
        )
    });

    // What every function must get, each either from Globals.Function or set on itself.
    let variable = OTLP_ENDPOINT_VARIABLE;
    let layers_ok = |layers: &Yaml| {
        if_parts(layers).is_some_and(|(condition, then, otherwise)| {
            conditions.contains(condition)
                && matches!(untag(then), Yaml::Sequence(arns) if arns.len() == 1 && ref_target(&arns[0]) == Some(parameter))
                && ref_target(otherwise) == Some("AWS::NoValue")
        })
    };
    let layers_wanted =
        format!("!If [<condition on {parameter}>, [!Ref {parameter}], !Ref AWS::NoValue]");
    let endpoint_ok = |endpoint: &Yaml| {
        if_parts(endpoint).is_some_and(|(condition, then, otherwise)| {
            conditions.contains(condition)
                && untag(then).as_str() == Some(COLLECTOR_ENDPOINT)
                && untag(otherwise).as_str() == Some("")
        })
    };
    let endpoint_wanted = format!("!If [<condition on {parameter}>, {COLLECTOR_ENDPOINT:?}, \"\"]");

    // Globals.Function, checked once.
    let globals = get_path(&document, &["Globals", "Function"]);
    let global_layers = globals.and_then(|globals| get(globals, "Layers"));
    if let Some(layers) = global_layers {
        problems.check(layers_ok(layers), || {
            format!("template.yaml: Globals.Function.Layers must be {layers_wanted}, is {layers:?}")
        });
    }
    let global_endpoint =
        globals.and_then(|globals| get_path(globals, &["Environment", "Variables", variable]));
    if let Some(endpoint) = global_endpoint {
        problems.check(endpoint_ok(endpoint), || {
            format!("template.yaml: Globals.Function.Environment.Variables.{variable} must be {endpoint_wanted}, is {endpoint:?}")
        });
    }

    // Each function: its own setting replaces the global one (SAM keeps a function's own list
    // over a global intrinsic such as the !If, and merges variables by name), so it must be
    // right too; without either, the function has none.
    let template = Template::load();
    let functions: Vec<(&str, &Yaml)> = template.of_type("AWS::Serverless::Function").collect();
    problems.check(!functions.is_empty(), || {
        "template.yaml: no AWS::Serverless::Function to check".to_owned()
    });
    for (id, function) in functions {
        match get_path(function, &["Properties", "Layers"]) {
            Some(layers) => problems.check(layers_ok(layers), || {
                format!("template.yaml: {id} Properties.Layers (which replaces Globals.Function.Layers) must be {layers_wanted}, is {layers:?}")
            }),
            None => problems.check(global_layers.is_some(), || {
                format!("template.yaml: {id} gets no Layers (neither its own nor Globals.Function.Layers); expected {layers_wanted}")
            }),
        }
        match get_path(function, &["Properties", "Environment", "Variables", variable]) {
            Some(endpoint) => problems.check(endpoint_ok(endpoint), || {
                format!("template.yaml: {id} Properties.Environment.Variables.{variable} must be {endpoint_wanted}, is {endpoint:?}")
            }),
            None => problems.check(global_endpoint.is_some(), || {
                format!("template.yaml: {id} has no environment variable {variable} (neither its own nor in Globals.Function); expected {endpoint_wanted}")
            }),
        }
    }
}

/// What `Globals.Function.Environment.Variables.<variable>` of template.yaml `!Ref`s.
fn sam_global_environment<'a>(document: &'a Yaml, variable: &str) -> Option<&'a str> {
    get_path(
        document,
        &["Globals", "Function", "Environment", "Variables", variable],
    )
    .and_then(ref_target)
}

/// What `local.function_environment` of terraform/functions.tf gives `variable`, following
/// the locals it is merged from.
fn tf_function_environment(functions_tf: &hcl::Body, variable: &str) -> Option<String> {
    let locals: BTreeMap<String, &hcl::Expression> = blocks(functions_tf, "locals", &[])
        .flat_map(|locals| locals.body().attributes())
        .map(|local| (local.key().to_owned(), local.expr()))
        .collect();
    tf_object_entry(locals.get("function_environment")?, &locals, variable, 0)
}

/// The entry `key` of the object that `expr` builds: an object literal, a `local.<name>`
/// holding one, or `merge(...)` of those (the last argument that has it wins). Returns the
/// entry's expression as text.
fn tf_object_entry(
    expr: &hcl::Expression,
    locals: &BTreeMap<String, &hcl::Expression>,
    key: &str,
    depth: usize,
) -> Option<String> {
    if depth > 8 {
        return None;
    }
    match expr {
        hcl::Expression::Object(object) => object
            .iter()
            .find(|(name, _)| name.to_string().trim_matches('"') == key)
            .map(|(_, value)| value.to_string()),
        hcl::Expression::FuncCall(call) => call
            .args
            .iter()
            .filter_map(|arg| tf_object_entry(arg, locals, key, depth + 1))
            .next_back(),
        hcl::Expression::Parenthesis(inner) => tf_object_entry(inner, locals, key, depth + 1),
        other => {
            let text = other.to_string();
            let name = text.strip_prefix("local.")?;
            tf_object_entry(locals.get(name)?, locals, key, depth + 1)
        }
    }
}

/// terraform/: the variable (default ""), and on every aws_lambda_function the conditional
/// `layers` and the endpoint variable in its environment.
fn terraform_collector_problems(problems: &mut Problems) {
    let variable = TF_COLLECTOR_VARIABLE;
    let variables = parse_hcl("terraform/variables.tf");
    match blocks(&variables, "variable", &[variable]).next() {
        None => problems.add(format!(
            "terraform/variables.tf: no variable \"{variable}\""
        )),
        Some(declared) => {
            let kind = attribute(declared.body(), "type").map(ToString::to_string);
            let default = attribute(declared.body(), "default");
            problems.check(
                kind.as_deref() == Some("string") && default.and_then(hcl_str) == Some(""),
                || format!("terraform/variables.tf: variable \"{variable}\" must have type = string and default = \"\" (no collector unless asked for), has type {kind:?}, default {:?}", default.map(ToString::to_string)),
            );
        }
    }

    let mut files = Vec::new();
    for entry in std::fs::read_dir(repo_root().join("terraform")).expect("terraform/") {
        let path = entry.expect("a terraform file").path();
        if path.extension().is_some_and(|ext| ext == "tf") {
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            let file = format!("terraform/{name}");
            let body = parse_hcl(&file);
            files.push((file, body));
        }
    }
    files.sort_by(|a, b| a.0.cmp(&b.0));
    let locals: BTreeMap<String, &hcl::Expression> = files
        .iter()
        .flat_map(|(_, body)| blocks(body, "locals", &[]))
        .flat_map(|locals| locals.body().attributes())
        .map(|local| (local.key().to_owned(), local.expr()))
        .collect();

    let reference = format!("var.{variable}");
    let mut found = 0;
    for (file, body) in &files {
        for function in blocks(body, "resource", &["aws_lambda_function"]) {
            found += 1;
            let label = function.labels().get(1).map_or("?", |label| label.as_str());
            let layers = attribute(function.body(), "layers").map(ToString::to_string);
            problems.check(
                layers.as_deref().is_some_and(|layers| layers.contains(&reference)),
                || format!("{file}: aws_lambda_function.{label} needs layers = {reference} == \"\" ? [] : [{reference}], has {layers:?}"),
            );
            let endpoint = blocks(function.body(), "environment", &[])
                .next()
                .and_then(|environment| attribute(environment.body(), "variables"))
                .and_then(|variables| {
                    tf_object_entry(variables, &locals, OTLP_ENDPOINT_VARIABLE, 0)
                });
            problems.check(
                endpoint.as_deref().is_some_and(|endpoint| {
                    endpoint.contains(&format!("\"{COLLECTOR_ENDPOINT}\""))
                        && endpoint.contains(&reference)
                }),
                || format!("{file}: aws_lambda_function.{label} needs the environment variable {OTLP_ENDPOINT_VARIABLE} = {reference} == \"\" ? \"\" : {COLLECTOR_ENDPOINT:?}, has {endpoint:?}"),
            );
        }
    }
    problems.check(found > 0, || {
        "terraform/: no resource \"aws_lambda_function\" to check".to_owned()
    });
}

/// Both descriptions can add an OpenTelemetry collector layer (such as ADOT's, which exports
/// to X-Ray) to every function and point the code's OTLP/HTTP exporter at it on loopback;
/// neither adds one unless asked (the parameter and the variable default to "", which leaves
/// the endpoint empty: no export).
#[test]
fn both_descriptions_wire_the_optional_trace_collector() {
    let mut problems = Problems::default();
    sam_collector_problems(&mut problems);
    terraform_collector_problems(&mut problems);
    problems.finish(
        "template.yaml or terraform/ does not wire the optional trace collector layer the same way",
    );
}
