//! The notification endpoints (contract: `docs/openapi.yaml`).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use bazaar_shared::ids::SubscriptionId;
use bazaar_shared::notifications::model::{AdminMessage, Subscribed};
use bazaar_shared::notifications::requests::{NotifyRequest, SubscribeRequest, VerifyRequest};
use bazaar_shared::notifications::{NotificationView, SubscriptionView};
use bazaar_shared::pagination::Listing;
use serde_json::{Value, json};

use crate::App;
use crate::client::{RateLimited, limit};
use crate::extract::{Admin, Correlation, CurrentUser, JsonBody, Page, PathId};
use crate::problem::ApiResult;

/// `POST /api/v1/notifications/subscriptions`
pub async fn subscribe(
    State(app): State<App>,
    CurrentUser(user): CurrentUser,
    _: RateLimited<limit::Subscribe>,
    Correlation(correlation): Correlation,
    JsonBody(request): JsonBody<SubscribeRequest>,
) -> ApiResult<(StatusCode, Json<Subscribed>)> {
    let subscribed = app
        .notifications()
        .subscribe(&user, request, &correlation)
        .await?;
    Ok((StatusCode::CREATED, Json(subscribed)))
}

/// `GET /api/v1/notifications/subscriptions`
pub async fn subscriptions(
    State(app): State<App>,
    CurrentUser(user): CurrentUser,
) -> ApiResult<Json<Listing<SubscriptionView>>> {
    Ok(Json(app.notifications().subscriptions(&user).await?))
}

/// `DELETE /api/v1/notifications/subscriptions/{id}`
pub async fn unsubscribe(
    State(app): State<App>,
    CurrentUser(user): CurrentUser,
    PathId(id): PathId<SubscriptionId>,
) -> ApiResult<StatusCode> {
    app.notifications().unsubscribe(&user, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/notifications`
pub async fn list(
    State(app): State<App>,
    CurrentUser(user): CurrentUser,
    Page(page): Page,
) -> ApiResult<Json<Listing<NotificationView>>> {
    Ok(Json(app.notifications().log(&user, &page).await?))
}

/// `POST /api/v1/notifications/notify` (admin)
pub async fn notify(
    State(app): State<App>,
    Admin(admin): Admin,
    Correlation(correlation): Correlation,
    JsonBody(request): JsonBody<NotifyRequest>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let message: AdminMessage = app
        .notifications()
        .notify(&admin, request, &correlation)
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({
            "id": message.id,
            "user_id": message.user_id,
            "event": message.event,
            "status": "queued",
        })),
    ))
}

/// `POST /api/v1/notifications/subscriptions/{id}/verify`: the code sent to an e-mail or
/// SMS target activates its subscription.
pub async fn verify(
    State(app): State<App>,
    CurrentUser(user): CurrentUser,
    _: RateLimited<limit::Verify>,
    PathId(id): PathId<SubscriptionId>,
    JsonBody(request): JsonBody<VerifyRequest>,
) -> ApiResult<Json<SubscriptionView>> {
    let subscription = app
        .notifications()
        .verify_subscription(&user, &id, request)
        .await?;
    Ok(Json(SubscriptionView::from(&subscription)))
}

/// `POST /api/v1/notifications/subscriptions/{id}/resend`: a new code (or test delivery) for
/// a pending subscription.
pub async fn resend(
    State(app): State<App>,
    CurrentUser(user): CurrentUser,
    _: RateLimited<limit::Subscribe>,
    Correlation(correlation): Correlation,
    PathId(id): PathId<SubscriptionId>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    app.notifications()
        .resend_proof(&user, &id, &correlation)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(json!({"status": "sent"}))))
}
