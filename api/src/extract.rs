//! Extractors that turn a request into domain input, failing with problem details: JSON bodies
//! (size-limited, content-type checked, field-precise errors), typed ids from the path, the
//! caller's identity, and pagination parameters.

use axum::body::{Body, to_bytes};
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use bazaar_shared::ids::TypedId;
use bazaar_shared::pagination::PageRequest;
use bazaar_shared::users::User;
use bazaar_shared::{Error, FieldError};
use serde::de::DeserializeOwned;

use crate::App;
use crate::middleware::RequestId;
use crate::problem::{ApiError, ApiResult, Problem};

/// The largest request body accepted: far above any legitimate request of this API.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The longest cursor accepted: the encoded keys of this API's listings are a few hundred
/// bytes, and what one decodes to stays inside DynamoDB's key bounds.
pub const MAX_CURSOR_BYTES: usize = 1024;

/// A JSON request body.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, _state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(request.headers().get(header::CONTENT_TYPE)) {
            return Err(unsupported_media_type("application/json"));
        }
        let bytes = read_body(request.into_body()).await?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// A JSON body that may be left out: an empty body is the type's default.
pub struct OptionalJsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Default> FromRequest<S> for OptionalJsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let content_type = request.headers().get(header::CONTENT_TYPE).cloned();
        let bytes = read_body(request.into_body()).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self(T::default()));
        }
        if !is_json(content_type.as_ref()) {
            return Err(unsupported_media_type("application/json"));
        }
        parse_json(&bytes).map(OptionalJsonBody)
    }
}

/// The route's one path parameter as a typed id. An id this system could not have made is
/// answered as an unknown one is, with the entity's 404, before any other work; see
/// `bazaar_shared::ids` for why a malformed id is "not found" rather than "bad request".
pub struct PathId<T>(pub T);

impl<S: Send + Sync, T: TypedId> FromRequestParts<S> for PathId<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        // A segment that is not UTF-8 after percent-decoding names nothing either.
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| Error::NotFound(T::KIND))?;
        Ok(Self(T::parse(&raw)?))
    }
}

/// The `Idempotency-Key` header, when sent.
pub struct IdempotencyKey(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        match parts.headers.get(bazaar_shared::idempotency::HEADER) {
            None => Ok(Self(None)),
            Some(value) => {
                let key = value
                    .to_str()
                    .map_err(|_| Problem::malformed("Idempotency-Key must be printable ASCII"))?;
                // Checked here, before any handler can use it in a store key.
                bazaar_shared::idempotency::validate_key(key)?;
                Ok(Self(Some(key.to_owned())))
            }
        }
    }
}

/// The login body: JSON `{email, password}`, or the OAuth2 password-flow form
/// `username=<email>&password=...`.
pub struct JsonOrForm<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonOrForm<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let content_type = request.headers().get(header::CONTENT_TYPE).cloned();
        let is_form = content_type
            .as_ref()
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.starts_with("application/x-www-form-urlencoded"));
        if !is_form && !is_json(content_type.as_ref()) {
            return Err(unsupported_media_type(
                "application/json or application/x-www-form-urlencoded",
            ));
        }
        let bytes = read_body(request.into_body()).await?;
        if is_form {
            let fields: Vec<(String, String)> = serde_urlencoded::from_bytes(&bytes)
                .map_err(|_| Problem::malformed("the form body is not valid URL-encoded data"))?;
            let mut object = serde_json::Map::new();
            for (name, value) in fields {
                // OAuth2's password flow calls the e-mail `username`.
                let name = if name == "username" {
                    "email".to_owned()
                } else {
                    name
                };
                object.insert(name, value.into());
            }
            let value = serde_json::Value::Object(object);
            return serde_json::from_value(value)
                .map(JsonOrForm)
                .map_err(|error| {
                    Problem::malformed(format!("the form is malformed: {error}")).into()
                });
        }
        parse_json(&bytes).map(JsonOrForm)
    }
}

fn is_json(content_type: Option<&header::HeaderValue>) -> bool {
    content_type
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| {
            let essence = value
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase();
            essence == "application/json"
                || (essence.starts_with("application/") && essence.ends_with("+json"))
        })
}

fn unsupported_media_type(expected: &str) -> ApiError {
    Problem::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported-media-type",
        "Unsupported media type",
        format!("the body must be {expected}"),
    )
    .into()
}

async fn read_body(body: Body) -> Result<axum::body::Bytes, ApiError> {
    to_bytes(body, MAX_BODY_BYTES).await.map_err(|_| {
        Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload-too-large",
            "Payload too large",
            format!("the body must be at most {MAX_BODY_BYTES} bytes"),
        )
        .into()
    })
}

/// Parses JSON, telling malformed JSON (400) from JSON of the wrong shape (422, naming the field).
fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|error| Problem::malformed(format!("the body is not valid JSON: {error}")))?;
    if !value.is_object() {
        return Err(Problem::malformed("the body must be a JSON object").into());
    }
    serde_path_to_error::deserialize::<_, T>(value).map_err(|error| {
        let path = error.path().to_string();
        let message = error.into_inner().to_string();
        Error::Validation(vec![FieldError::new(path, message)]).into()
    })
}

/// The authenticated caller, read fresh from the store (so deactivation and role changes
/// apply at once).
pub struct CurrentUser(pub User);

impl FromRequestParts<App> for CurrentUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        let missing = || Error::Unauthenticated("a bearer token is required".to_owned());
        let value = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .ok_or_else(missing)?;
        let (scheme, token) = value.split_once(' ').ok_or_else(missing)?;
        if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
            return Err(missing().into());
        }
        let user = app.users().authenticate(token.trim()).await?;
        tracing::Span::current().record("user_id", user.id.as_str());
        Ok(Self(user))
    }
}

/// The authenticated caller, who must be an admin. Being a parts extractor, it runs before
/// the body is read: a customer is refused with 403 whatever the body holds.
pub struct Admin(pub User);

impl FromRequestParts<App> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        let CurrentUser(user) = CurrentUser::from_request_parts(parts, app).await?;
        bazaar_shared::users::service::require_admin(&user)?;
        Ok(Self(user))
    }
}

/// `?limit=&cursor=`, parsed by hand so that a bad value is a 400 naming the parameter.
pub struct Page(pub PageRequest);

impl<S: Send + Sync> FromRequestParts<S> for Page {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let mut page = PageRequest::default();
        for (name, value) in query_pairs(parts.uri.query().unwrap_or_default())? {
            page_parameter(&mut page, &name, &value)?;
        }
        page.limit().map_err(ApiError::from)?;
        Ok(Self(page))
    }
}

/// The decoded `name=value` pairs of a query string; a malformed one is a 400.
pub fn query_pairs(query: &str) -> ApiResult<Vec<(String, String)>> {
    serde_urlencoded::from_str(query)
        .map_err(|_| Problem::malformed("the query string is malformed").into())
}

/// Takes `limit` or `cursor` into `page`; false for any other parameter.
pub fn page_parameter(page: &mut PageRequest, name: &str, value: &str) -> ApiResult<bool> {
    match name {
        "limit" => {
            let limit = value.parse::<usize>().map_err(|_| {
                Problem::malformed("limit must be a whole number between 1 and 100")
            })?;
            page.limit = Some(limit);
        }
        "cursor" => {
            // A cursor names a store key; a longer one is no cursor this API made.
            if value.is_empty() || value.len() > MAX_CURSOR_BYTES {
                return Err(Problem::malformed("the cursor is not valid for this listing").into());
            }
            page.cursor = Some(value.to_owned());
        }
        _ => return Ok(false),
    }
    Ok(true)
}

/// The request id, for correlating events with the request that caused them.
pub struct Correlation(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Correlation {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let id = parts
            .extensions
            .get::<RequestId>()
            .map(|id| id.0.clone())
            .unwrap_or_else(|| ulid::Ulid::new().to_string());
        Ok(Self(id))
    }
}
