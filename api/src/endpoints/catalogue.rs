//! The catalogue endpoints (contract: `docs/openapi.yaml`). Public reads carry an `ETag`
//! and `Cache-Control`, answer `If-None-Match` with 304, and are served from the in-process
//! cache when fresh; admin writes clear that cache.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bazaar_shared::Error;
use bazaar_shared::catalogue::listing::{self, ListRequest, Sort};
use bazaar_shared::catalogue::requests::{
    CreateCategory, CreateProduct, StockChange, UpdateProduct,
};
use bazaar_shared::catalogue::{Category, Product, ProductView, stock};
use bazaar_shared::ids::ProductId;
use bazaar_shared::pagination::{Listing, PageRequest};

use crate::App;
use crate::cache::Cached;
use crate::extract::{Admin, Correlation, JsonBody, Page, PathId, page_parameter, query_pairs};
use crate::problem::{ApiError, ApiResult, Problem};

/// Browsers and CDNs may reuse a catalogue read this long, then revalidate with the ETag.
const CACHE_CONTROL: &str = "public, max-age=10, stale-while-revalidate=30";

/// `GET /api/v1/categories`
pub async fn list_categories(
    State(app): State<App>,
    Page(page): Page,
) -> ApiResult<Json<Listing<Category>>> {
    Ok(Json(app.products().categories().list(&page).await?))
}

/// `POST /api/v1/categories` (admin)
pub async fn create_category(
    State(app): State<App>,
    Admin(_admin): Admin,
    JsonBody(request): JsonBody<CreateCategory>,
) -> ApiResult<(StatusCode, Json<Category>)> {
    let category = app.products().categories().create(request).await?;
    app.cache().clear();
    Ok((StatusCode::CREATED, Json(category)))
}

/// `GET /api/v1/products`
pub async fn list_products(
    State(app): State<App>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let request = parse_list_request(&query.unwrap_or_default())?;
    let key = list_key(&request);
    if let Some(cached) = app.cache().get(&key) {
        return Ok(respond(&headers, cached));
    }
    let listing = listing::list(app.products(), &request).await?;
    let body = Bytes::from(serde_json::to_vec(&listing).map_err(internal)?);
    let cached = Cached {
        etag: format!("\"l{}\"", digest(&body)),
        body,
    };
    app.cache().insert(key, cached.clone());
    Ok(respond(&headers, cached))
}

/// `GET /api/v1/products/{id}`
pub async fn get_product(
    State(app): State<App>,
    PathId(id): PathId<ProductId>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let key = format!("product/{id}");
    if let Some(cached) = app.cache().get(&key) {
        return Ok(respond(&headers, cached));
    }
    let product = app.products().get(&id).await?;
    let cached = cached_product(&product)?;
    app.cache().insert(key, cached.clone());
    Ok(respond(&headers, cached))
}

/// `POST /api/v1/products` (admin)
pub async fn create_product(
    State(app): State<App>,
    Admin(_admin): Admin,
    JsonBody(request): JsonBody<CreateProduct>,
) -> ApiResult<Response> {
    let product = app.products().create(request).await?;
    app.cache().clear();
    Ok(with_status(StatusCode::CREATED, cached_product(&product)?))
}

/// `PATCH /api/v1/products/{id}` (admin)
pub async fn update_product(
    State(app): State<App>,
    Admin(_admin): Admin,
    PathId(id): PathId<ProductId>,
    headers: HeaderMap,
    JsonBody(request): JsonBody<UpdateProduct>,
) -> ApiResult<Response> {
    let product = app
        .products()
        .update(&id, request, if_match(&headers)?)
        .await?;
    app.cache().clear();
    Ok(with_status(StatusCode::OK, cached_product(&product)?))
}

/// `DELETE /api/v1/products/{id}` (admin): archives the product.
pub async fn archive_product(
    State(app): State<App>,
    Admin(_admin): Admin,
    PathId(id): PathId<ProductId>,
    headers: HeaderMap,
) -> ApiResult<StatusCode> {
    app.products().archive(&id, if_match(&headers)?).await?;
    app.cache().clear();
    Ok(StatusCode::NO_CONTENT)
}

/// `PUT /api/v1/products/{id}/stock` (admin)
pub async fn change_stock(
    State(app): State<App>,
    Admin(_admin): Admin,
    PathId(id): PathId<ProductId>,
    Correlation(correlation): Correlation,
    JsonBody(request): JsonBody<StockChange>,
) -> ApiResult<Response> {
    let product = stock::change(app.products(), &id, request, &correlation).await?;
    app.cache().clear();
    Ok(with_status(StatusCode::OK, cached_product(&product)?))
}

fn internal(error: serde_json::Error) -> ApiError {
    Error::Internal(format!("response does not serialise: {error}")).into()
}

fn digest(body: &[u8]) -> String {
    bazaar_shared::digest::sha256_hex(body, 12)
}

/// A product's entity tag: its version and its stock version, so it changes with either.
fn product_etag(product: &Product) -> String {
    format!("\"p{}-s{}\"", product.version, product.stock_version)
}

fn cached_product(product: &Product) -> ApiResult<Cached> {
    let body = serde_json::to_vec(&ProductView::from(product)).map_err(internal)?;
    Ok(Cached {
        body: Bytes::from(body),
        etag: product_etag(product),
    })
}

fn with_status(status: StatusCode, cached: Cached) -> Response {
    let mut response = (status, cached.body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(etag) = HeaderValue::from_str(&cached.etag) {
        headers.insert(header::ETAG, etag);
    }
    response
}

/// 304 when the client holds this representation already, else the body; both with the
/// entity tag and the caching policy.
fn respond(request: &HeaderMap, cached: Cached) -> Response {
    let unchanged = request
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|tags| {
            tags.split(',')
                .map(|tag| tag.trim().trim_start_matches("W/"))
                .any(|tag| tag == "*" || tag == cached.etag)
        });
    let mut response = if unchanged {
        let mut response = StatusCode::NOT_MODIFIED.into_response();
        if let Ok(etag) = HeaderValue::from_str(&cached.etag) {
            response.headers_mut().insert(header::ETAG, etag);
        }
        response
    } else {
        with_status(StatusCode::OK, cached)
    };
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(CACHE_CONTROL),
    );
    response
}

/// The version named by `If-Match`: a product ETag (`"p3-s7"`) or a bare version (`"3"`).
fn if_match(headers: &HeaderMap) -> ApiResult<Option<u64>> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let tag = value
        .to_str()
        .unwrap_or_default()
        .trim()
        .trim_start_matches("W/")
        .trim_matches('"');
    let version = tag
        .strip_prefix('p')
        .map(|rest| rest.split('-').next().unwrap_or_default())
        .unwrap_or(tag);
    version.parse::<u64>().map(Some).map_err(|_| {
        Problem::new(
            StatusCode::PRECONDITION_FAILED,
            "precondition-failed",
            "Precondition failed",
            "If-Match must be a product ETag or a version number",
        )
        .into()
    })
}

/// The cache key of a listing: the parameters as parsed, in a fixed order, so that the same
/// listing asked for with parameters in another order, repeated, or with unknown parameters
/// added is one entry, and junk in the query string cannot make new ones.
fn list_key(request: &ListRequest) -> String {
    let ListRequest {
        category,
        q,
        min_price,
        max_price,
        in_stock,
        sort,
        page: PageRequest { limit, cursor },
    } = request;
    // `Debug` quotes and escapes strings, so distinct requests never share a key.
    format!(
        "list?category={category:?}&q={q:?}&min_price={min_price:?}&max_price={max_price:?}\
         &in_stock={in_stock}&sort={sort:?}&limit={limit:?}&cursor={cursor:?}"
    )
}

/// Reads the listing parameters; anything malformed is a 400 naming the parameter.
fn parse_list_request(query: &str) -> ApiResult<ListRequest> {
    let mut request = ListRequest {
        page: PageRequest::default(),
        ..ListRequest::default()
    };
    let amount = |name: &str, value: &str| {
        value.parse::<i64>().map_err(|_| {
            Problem::malformed(format!("{name} must be a whole number of minor units"))
        })
    };
    for (name, value) in query_pairs(query)? {
        if page_parameter(&mut request.page, &name, &value)? {
            continue;
        }
        match name.as_str() {
            "category" => request.category = Some(value),
            "q" => request.q = Some(value),
            "min_price" => request.min_price = Some(amount(&name, &value)?),
            "max_price" => request.max_price = Some(amount(&name, &value)?),
            "in_stock" => {
                request.in_stock = match value.as_str() {
                    "true" | "1" => true,
                    "false" | "0" => false,
                    _ => return Err(Problem::malformed("in_stock must be true or false").into()),
                }
            }
            "sort" => {
                request.sort = Sort::parse(&value).ok_or_else(|| {
                    Problem::malformed("sort must be one of newest, price_asc, price_desc, name")
                })?
            }
            _ => {}
        }
    }
    Ok(request)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_match_takes_an_etag_or_a_version() {
        let with = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(
                header::IF_MATCH,
                HeaderValue::from_str(value).unwrap_or(HeaderValue::from_static("")),
            );
            if_match(&headers).ok().flatten()
        };
        assert_eq!(with("\"p3-s7\""), Some(3));
        assert_eq!(with("W/\"p12-s0\""), Some(12));
        assert_eq!(with("\"4\""), Some(4));
        assert_eq!(with("5"), Some(5));
        assert_eq!(with("\"garbage\""), None);
        assert_eq!(if_match(&HeaderMap::new()).ok(), Some(None));
    }

    #[test]
    fn list_keys_are_the_parsed_known_parameters() {
        let key = |query: &str| {
            parse_list_request(query)
                .map(|request| list_key(&request))
                .ok()
        };
        let plain = key("q=lamp&sort=name&limit=5");
        assert!(plain.is_some());
        assert_eq!(key("limit=5&junk=1&sort=name&q=lamp&zzz"), plain);
        assert_ne!(key("q=lamp&sort=name&limit=6"), plain);
        assert_ne!(key("q=lamp%22&sort=name&limit=5"), plain);
    }

    #[test]
    fn list_parameters_are_checked() {
        assert!(parse_list_request("sort=price_desc&min_price=10&in_stock=true&limit=5").is_ok());
        for bad in [
            "sort=random",
            "min_price=1.5",
            "in_stock=maybe",
            "limit=abc",
            "limit=-1",
        ] {
            assert!(parse_list_request(bad).is_err(), "{bad} accepted");
        }
    }
}
