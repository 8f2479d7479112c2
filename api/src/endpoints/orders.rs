//! The order endpoints (contract: `docs/openapi.yaml`). `POST /orders`, `/pay` and
//! `/refund` honour `Idempotency-Key` (see [`crate::idempotent`]).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use bazaar_shared::ids::OrderId;
use bazaar_shared::orders::Order;
use bazaar_shared::orders::invoices::InvoiceView;
use bazaar_shared::orders::model::Tracking;
use bazaar_shared::orders::requests::{PayRequest, PlaceOrder, RefundRequest, ShipRequest};
use bazaar_shared::pagination::Listing;
use bazaar_shared::users::User;

use crate::App;
use crate::client::{RateLimited, limit};
use crate::extract::{
    Admin, Correlation, CurrentUser, IdempotencyKey, JsonBody, OptionalJsonBody, Page, PathId,
};
use crate::idempotent::Idempotent;
use crate::problem::ApiResult;

/// `POST /api/v1/orders`
pub async fn create(
    State(app): State<App>,
    CurrentUser(user): CurrentUser,
    Correlation(correlation): Correlation,
    IdempotencyKey(key): IdempotencyKey,
    JsonBody(request): JsonBody<PlaceOrder>,
) -> ApiResult<Response> {
    let orders = app.orders();
    let customer = &user;
    let operation = Idempotent {
        app: &app,
        user: &user,
        key,
        operation: "POST /orders".to_owned(),
        status: StatusCode::CREATED,
    };
    operation
        .run(request, |request, claim| async move {
            orders
                .place(customer, request, claim.as_ref(), &correlation)
                .await
        })
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
    PathId(id): PathId<OrderId>,
) -> ApiResult<Json<Order>> {
    Ok(Json(app.orders().get(&user, &id).await?))
}

/// `GET /api/v1/orders/{id}/tracking`
pub async fn tracking(
    State(app): State<App>,
    CurrentUser(user): CurrentUser,
    PathId(id): PathId<OrderId>,
) -> ApiResult<Json<Tracking>> {
    Ok(Json(app.orders().tracking(&user, &id).await?))
}

/// `POST /api/v1/orders/{id}/cancel`
pub async fn cancel(
    State(app): State<App>,
    CurrentUser(user): CurrentUser,
    PathId(id): PathId<OrderId>,
    Correlation(correlation): Correlation,
) -> ApiResult<Json<Order>> {
    Ok(Json(app.orders().cancel(&user, &id, &correlation).await?))
}

/// `POST /api/v1/orders/{id}/pay`
pub async fn pay(
    State(app): State<App>,
    CurrentUser(user): CurrentUser,
    _: RateLimited<limit::Pay>,
    PathId(id): PathId<OrderId>,
    Correlation(correlation): Correlation,
    IdempotencyKey(key): IdempotencyKey,
    JsonBody(request): JsonBody<PayRequest>,
) -> ApiResult<Response> {
    let (orders, customer, id) = (app.orders(), &user, &id);
    accepted(&app, &user, key, format!("POST /orders/{id}/pay"))
        .run(request, |request, claim| async move {
            orders
                .pay(customer, id, request, claim.as_ref(), &correlation)
                .await
        })
        .await
}

/// `POST /api/v1/orders/{id}/refund` (admin)
pub async fn refund(
    State(app): State<App>,
    Admin(admin): Admin,
    PathId(id): PathId<OrderId>,
    Correlation(correlation): Correlation,
    IdempotencyKey(key): IdempotencyKey,
    OptionalJsonBody(request): OptionalJsonBody<RefundRequest>,
) -> ApiResult<Response> {
    let (orders, by, id) = (app.orders(), &admin, &id);
    accepted(&app, &admin, key, format!("POST /orders/{id}/refund"))
        .run(request, |request, claim| async move {
            orders
                .refund(by, id, request, claim.as_ref(), &correlation)
                .await
        })
        .await
}

/// Paying and refunding answer 202: the payment step does the work at the provider.
fn accepted<'a>(
    app: &'a App,
    user: &'a User,
    key: Option<String>,
    operation: String,
) -> Idempotent<'a> {
    Idempotent {
        app,
        user,
        key,
        operation,
        status: StatusCode::ACCEPTED,
    }
}

/// `GET /api/v1/orders/{id}/invoice`
pub async fn invoice(
    State(app): State<App>,
    CurrentUser(user): CurrentUser,
    PathId(id): PathId<OrderId>,
) -> ApiResult<Json<InvoiceView>> {
    Ok(Json(app.orders().invoice(&user, &id).await?))
}

/// `POST /api/v1/admin/orders/{id}/ship`
pub async fn ship(
    State(app): State<App>,
    Admin(admin): Admin,
    PathId(id): PathId<OrderId>,
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
    PathId(id): PathId<OrderId>,
    Correlation(correlation): Correlation,
) -> ApiResult<Json<Order>> {
    Ok(Json(app.orders().deliver(&admin, &id, &correlation).await?))
}
