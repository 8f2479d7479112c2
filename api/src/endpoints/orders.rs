//! The order endpoints (contract: `docs/openapi.yaml`). `POST /orders`, `/pay` and
//! `/refund` honour `Idempotency-Key` (see [`idempotent`]).

use std::future::Future;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bazaar_shared::idempotency::{self, Begin, Claim};
use bazaar_shared::orders::Order;
use bazaar_shared::orders::invoices::InvoiceView;
use bazaar_shared::orders::model::{PaymentAccepted, RefundView, Tracking};
use bazaar_shared::orders::requests::{PayRequest, PlaceOrder, RefundRequest, ShipRequest};
use bazaar_shared::pagination::Listing;
use bazaar_shared::users::User;
use serde::Serialize;

use crate::App;
use crate::client::{RateLimited, limit};
use crate::extract::{
    Admin, Correlation, CurrentUser, IdempotencyKey, JsonBody, OptionalJsonBody, Page,
};
use crate::problem::ApiResult;

/// Runs `work` at most once per idempotency key: the first request with a key does the work
/// (committing its response with it); a repeat gets that response again, marked with
/// `Idempotency-Replayed: true`. Without a key the work simply runs.
async fn idempotent<T, F, Fut>(
    app: &App,
    user: &User,
    key: Option<String>,
    fingerprint: String,
    status: StatusCode,
    work: F,
) -> ApiResult<Response>
where
    T: Serialize,
    F: FnOnce(Option<Claim>) -> Fut,
    Fut: Future<Output = Result<T, bazaar_shared::Error>>,
{
    let Some(key) = key else {
        let value = work(None).await?;
        return Ok((status, Json(value)).into_response());
    };
    let ports = app.ports();
    match idempotency::begin(ports, &user.id, &key, &fingerprint).await? {
        Begin::Replay(stored) => {
            let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
            let mut response = (status, Json(stored.body)).into_response();
            response
                .headers_mut()
                .insert("idempotency-replayed", HeaderValue::from_static("true"));
            Ok(response)
        }
        Begin::Proceed(claim) => match work(Some(claim.clone())).await {
            Ok(value) => Ok((status, Json(value)).into_response()),
            Err(error) => {
                idempotency::release(ports, &claim).await;
                Err(error.into())
            }
        },
    }
}

/// `POST /api/v1/orders`
pub async fn create(
    State(app): State<App>,
    CurrentUser(user): CurrentUser,
    Correlation(correlation): Correlation,
    IdempotencyKey(key): IdempotencyKey,
    JsonBody(request): JsonBody<PlaceOrder>,
) -> ApiResult<Response> {
    let fingerprint = idempotency::fingerprint("POST /orders", &request);
    let orders = app.orders();
    let customer = &user;
    idempotent(
        &app,
        &user,
        key,
        fingerprint,
        StatusCode::CREATED,
        |claim| async move {
            orders
                .place(customer, request, claim.as_ref(), &correlation)
                .await
        },
    )
    .await
}

/// `GET /api/v1/orders`
pub async fn list(
    State(app): State<App>,
    CurrentUser(user): CurrentUser,
    Page(page): Page,
) -> ApiResult<Json<Listing<Order>>> {
    Ok(Json(app.orders().list(&user, &page).await?))
}

/// `GET /api/v1/orders/{id}`
pub async fn get(
    State(app): State<App>,
    CurrentUser(user): CurrentUser,
    Path(id): Path<String>,
) -> ApiResult<Json<Order>> {
    Ok(Json(app.orders().get(&user, &id).await?))
}

/// `GET /api/v1/orders/{id}/tracking`
pub async fn tracking(
    State(app): State<App>,
    CurrentUser(user): CurrentUser,
    Path(id): Path<String>,
) -> ApiResult<Json<Tracking>> {
    Ok(Json(app.orders().tracking(&user, &id).await?))
}

/// `POST /api/v1/orders/{id}/cancel`
pub async fn cancel(
    State(app): State<App>,
    CurrentUser(user): CurrentUser,
    Path(id): Path<String>,
    Correlation(correlation): Correlation,
) -> ApiResult<Json<Order>> {
    Ok(Json(app.orders().cancel(&user, &id, &correlation).await?))
}

/// `POST /api/v1/orders/{id}/pay`
pub async fn pay(
    State(app): State<App>,
    CurrentUser(user): CurrentUser,
    _: RateLimited<limit::Pay>,
    Path(id): Path<String>,
    Correlation(correlation): Correlation,
    IdempotencyKey(key): IdempotencyKey,
    JsonBody(request): JsonBody<PayRequest>,
) -> ApiResult<Response> {
    let fingerprint = idempotency::fingerprint(&format!("POST /orders/{id}/pay"), &request);
    let orders = app.orders();
    let customer = &user;
    idempotent(
        &app,
        &user,
        key,
        fingerprint,
        StatusCode::ACCEPTED,
        |claim| async move {
            let accepted: PaymentAccepted = orders
                .pay(customer, &id, request, claim.as_ref(), &correlation)
                .await?;
            Ok(accepted)
        },
    )
    .await
}

/// `POST /api/v1/orders/{id}/refund` (admin)
pub async fn refund(
    State(app): State<App>,
    Admin(admin): Admin,
    Path(id): Path<String>,
    Correlation(correlation): Correlation,
    IdempotencyKey(key): IdempotencyKey,
    OptionalJsonBody(request): OptionalJsonBody<RefundRequest>,
) -> ApiResult<Response> {
    let fingerprint = idempotency::fingerprint(&format!("POST /orders/{id}/refund"), &request);
    let orders = app.orders();
    let by = &admin;
    idempotent(
        &app,
        &admin,
        key,
        fingerprint,
        StatusCode::ACCEPTED,
        |claim| async move {
            let refund: RefundView = orders
                .refund(by, &id, request, claim.as_ref(), &correlation)
                .await?;
            Ok(refund)
        },
    )
    .await
}

/// `GET /api/v1/orders/{id}/invoice`
pub async fn invoice(
    State(app): State<App>,
    CurrentUser(user): CurrentUser,
    Path(id): Path<String>,
) -> ApiResult<Json<InvoiceView>> {
    Ok(Json(app.orders().invoice(&user, &id).await?))
}

/// `POST /api/v1/admin/orders/{id}/ship`
pub async fn ship(
    State(app): State<App>,
    Admin(admin): Admin,
    Path(id): Path<String>,
    Correlation(correlation): Correlation,
    OptionalJsonBody(request): OptionalJsonBody<ShipRequest>,
) -> ApiResult<Json<Order>> {
    Ok(Json(
        app.orders()
            .ship(&admin, &id, request, &correlation)
            .await?,
    ))
}

/// `POST /api/v1/admin/orders/{id}/deliver`
pub async fn deliver(
    State(app): State<App>,
    Admin(admin): Admin,
    Path(id): Path<String>,
    Correlation(correlation): Correlation,
) -> ApiResult<Json<Order>> {
    Ok(Json(app.orders().deliver(&admin, &id, &correlation).await?))
}
