//! Bounds on what a client may send in a request's path, query string and headers, checked
//! once for every route before any handler runs. Path parameters and many query parameters end
//! up in store keys, and DynamoDB refuses an empty key attribute or one over 2048 bytes
//! (partition) or 1024 bytes (sort) with a validation error that would surface as a 500; the
//! embedded store would take them silently. Either way the client's mistake is a 400 here, and
//! the same on both backends. Routes added later get the same bounds without doing anything.

use axum::extract::rejection::RawPathParamsRejection;
use axum::extract::{FromRequestParts, RawPathParams, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::problem::Problem;

/// The longest path parameter (an id or a slug; ids are 26 characters, slugs are shorter than
/// this): with a key prefix it stays far inside DynamoDB's key bounds.
pub const MAX_PATH_PARAMETER_BYTES: usize = 256;
/// The longest query parameter name or value (a cursor is the longest legitimate one).
pub const MAX_QUERY_VALUE_BYTES: usize = 1024;
/// The longest query string.
pub const MAX_QUERY_BYTES: usize = 8 * 1024;
/// The longest header value (a bearer token is well under a kilobyte).
pub const MAX_HEADER_VALUE_BYTES: usize = 8 * 1024;

/// A route layer (it needs the matched route's parameters): refuses, with a 400 naming the
/// part, a request whose path parameters, query parameters or headers are out of bounds.
pub async fn bound_input(request: Request, next: Next) -> Response {
    let (mut parts, body) = request.into_parts();
    let checked = match RawPathParams::from_request_parts(&mut parts, &()).await {
        Ok(params) => check_path_parameters(params.iter()),
        Err(RawPathParamsRejection::InvalidUtf8InPathParam(_)) => Err(Problem::malformed(
            "a path parameter is not valid percent-encoded UTF-8",
        )),
        // A route without parameters.
        Err(_) => Ok(()),
    }
    .and_then(|()| check_query(parts.uri.query()))
    .and_then(|()| check_headers(&parts.headers));
    if let Err(problem) = checked {
        return problem.into_response();
    }
    next.run(Request::from_parts(parts, body)).await
}

fn check_path_parameters<'a>(
    params: impl Iterator<Item = (&'a str, &'a str)>,
) -> Result<(), Problem> {
    for (name, value) in params {
        if value.is_empty() || value.len() > MAX_PATH_PARAMETER_BYTES {
            return Err(Problem::malformed(format!(
                "the {name} in the path must be 1 to {MAX_PATH_PARAMETER_BYTES} bytes long"
            )));
        }
        if value.chars().any(char::is_control) {
            return Err(Problem::malformed(format!(
                "the {name} in the path must not contain control characters"
            )));
        }
    }
    Ok(())
}

fn check_query(query: Option<&str>) -> Result<(), Problem> {
    let Some(query) = query else {
        return Ok(());
    };
    if query.len() > MAX_QUERY_BYTES {
        return Err(Problem::malformed(format!(
            "the query string must be at most {MAX_QUERY_BYTES} bytes long"
        )));
    }
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query)
        .map_err(|_| Problem::malformed("the query string is malformed"))?;
    for (name, value) in &pairs {
        if name.len() > MAX_QUERY_VALUE_BYTES || value.len() > MAX_QUERY_VALUE_BYTES {
            return Err(Problem::malformed(format!(
                "query parameters must be at most {MAX_QUERY_VALUE_BYTES} bytes long"
            )));
        }
        if name.chars().chain(value.chars()).any(char::is_control) {
            return Err(Problem::malformed(
                "query parameters must not contain control characters",
            ));
        }
    }
    Ok(())
}

fn check_headers(headers: &axum::http::HeaderMap) -> Result<(), Problem> {
    match headers
        .iter()
        .find(|(_, value)| value.len() > MAX_HEADER_VALUE_BYTES)
    {
        Some((name, _)) => Err(Problem::malformed(format!(
            "the {name} header must be at most {MAX_HEADER_VALUE_BYTES} bytes long"
        ))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_parameters_are_bounded() {
        let check = |value: &str| check_path_parameters([("id", value)].into_iter()).is_ok();
        assert!(check("01JABCDEFGHJKMNPQRSTVWXYZ0"));
        assert!(check(&"é".repeat(MAX_PATH_PARAMETER_BYTES / 2)));
        assert!(!check(""));
        assert!(!check(&"x".repeat(MAX_PATH_PARAMETER_BYTES + 1)));
        assert!(!check("a\u{0}b"));
    }

    #[test]
    fn query_parameters_are_bounded() {
        assert!(check_query(None).is_ok());
        assert!(check_query(Some("q=lamp&limit=5&cursor=abc")).is_ok());
        let long = "x".repeat(MAX_QUERY_VALUE_BYTES + 1);
        assert!(check_query(Some(&format!("cursor={long}"))).is_err());
        assert!(check_query(Some(&format!("{long}=1"))).is_err());
        assert!(check_query(Some("q=a%0Ab")).is_err());
        assert!(check_query(Some(&"a=b&".repeat(MAX_QUERY_BYTES))).is_err());
    }
}
