//! The OpenAPI document and a page to browse it. The page is made here from the document, once:
//! an index of the operations (method, path, summary) linking to the raw YAML. It loads nothing
//! from anywhere else and runs no script, so it works offline and trusts no third party.

use std::fmt::Write;
use std::sync::LazyLock;

use axum::http::header;
use axum::response::{Html, IntoResponse};

pub const OPENAPI_PATH: &str = "/api/v1/openapi.yaml";
pub const DOCS_PATH: &str = "/api/v1/docs";

/// The contract, as written in `docs/openapi.yaml`.
pub const OPENAPI: &str = include_str!("../../docs/openapi.yaml");

/// The page may use its own inline style and nothing else.
const PAGE_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'";

const METHODS: &[&str] = &["get", "put", "post", "delete", "options", "head", "patch"];

pub async fn openapi() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/yaml; charset=utf-8")],
        OPENAPI,
    )
}

static PAGE: LazyLock<String> = LazyLock::new(|| render(OPENAPI));

pub async fn page() -> impl IntoResponse {
    (
        [(header::CONTENT_SECURITY_POLICY, PAGE_POLICY)],
        Html(PAGE.as_str()),
    )
}

/// One operation of the document.
struct Operation {
    method: String,
    path: String,
    summary: String,
    tag: String,
}

fn operations(document: &serde_yaml::Value) -> Vec<Operation> {
    let text = |value: Option<&serde_yaml::Value>| {
        value
            .and_then(serde_yaml::Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let Some(paths) = document
        .get("paths")
        .and_then(serde_yaml::Value::as_mapping)
    else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for (path, item) in paths {
        for method in METHODS {
            if let Some(operation) = item.get(*method) {
                found.push(Operation {
                    method: method.to_ascii_uppercase(),
                    path: text(Some(path)),
                    summary: text(operation.get("summary")),
                    tag: text(operation.get("tags").and_then(|tags| tags.get(0))),
                });
            }
        }
    }
    found
}

/// The index page of `yaml`: its title and description, then a table of operations by tag.
fn render(yaml: &str) -> String {
    let document: serde_yaml::Value = serde_yaml::from_str(yaml).unwrap_or_default();
    let info = |name: &str| {
        document
            .get("info")
            .and_then(|info| info.get(name))
            .and_then(serde_yaml::Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let mut operations = operations(&document);
    operations.sort_by(|a, b| (&a.tag, &a.path).cmp(&(&b.tag, &b.path)));
    let mut page = String::new();
    let _ = write!(
        page,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <style>body{{font-family:sans-serif;margin:2em auto;max-width:60em;padding:0 1em}}\
         table{{border-collapse:collapse;width:100%}}td,th{{border-bottom:1px solid #ddd;\
         padding:.3em .6em;text-align:left;vertical-align:top}}code{{white-space:nowrap}}\
         pre{{white-space:pre-wrap}}</style></head><body><h1>{title} {version}</h1>\
         <p>The full contract: <a href=\"{OPENAPI_PATH}\">{OPENAPI_PATH}</a> (OpenAPI {openapi}).\
         </p><pre>{description}</pre><table><tr><th>Tag</th><th>Method</th><th>Path</th>\
         <th>Summary</th></tr>",
        title = escape(&info("title")),
        version = escape(&info("version")),
        openapi = escape(
            document
                .get("openapi")
                .and_then(serde_yaml::Value::as_str)
                .unwrap_or_default()
        ),
        description = escape(&info("description")),
    );
    for operation in &operations {
        let _ = write!(
            page,
            "<tr><td>{}</td><td><code>{}</code></td><td><code>{}</code></td><td>{}</td></tr>",
            escape(&operation.tag),
            escape(&operation.method),
            escape(&operation.path),
            escape(&operation.summary),
        );
    }
    page.push_str("</table></body></html>");
    page
}

fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            other => escaped.push(other),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_lists_every_operation_and_loads_nothing() {
        let page = render(OPENAPI);
        let document: serde_yaml::Value = serde_yaml::from_str(OPENAPI).unwrap_or_default();
        let listed = operations(&document);
        assert!(listed.len() > 30, "{} operations", listed.len());
        for operation in &listed {
            assert!(
                page.contains(&format!("<code>{}</code>", escape(&operation.path))),
                "{} is missing",
                operation.path
            );
        }
        assert!(!page.contains("<script"), "the page runs a script");
        assert!(!page.contains("src="), "the page loads something");
        assert!(page.contains(OPENAPI_PATH));
    }

    #[test]
    fn text_is_escaped() {
        let page = render(
            "openapi: 3.1.0\ninfo: {title: '<b>x</b>', version: '1'}\npaths:\n  /a:\n    get: {summary: '<script>'}\n",
        );
        assert!(
            !page.contains("<script>") && !page.contains("<b>"),
            "{page}"
        );
        assert!(page.contains("&lt;script&gt;"));
    }
}
