//! The user endpoints (contract: `docs/openapi.yaml`).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use bazaar_shared::ids::UserId;
use bazaar_shared::notifications::requests::VerifyRequest;
use bazaar_shared::pagination::Listing;
use bazaar_shared::users::requests::{
    AdminUpdateRequest, LoginRequest, RegisterRequest, UpdateProfileRequest,
};
use bazaar_shared::users::{LoggedIn, ProfileUpdated, Registered, UserView};

use crate::App;
use crate::client::{ClientAddress, RateLimited, limit};
use crate::extract::{Admin, Correlation, CurrentUser, JsonBody, JsonOrForm, Page, PathId};
use crate::problem::ApiResult;

/// `POST /api/v1/users/register`
pub async fn register(
    State(app): State<App>,
    _: RateLimited<limit::Register>,
    Correlation(correlation): Correlation,
    JsonBody(request): JsonBody<RegisterRequest>,
) -> ApiResult<(StatusCode, Json<Registered>)> {
    let registered = app.users().register(request, &correlation).await?;
    Ok((StatusCode::CREATED, Json(registered)))
}

/// `POST /api/v1/users/login`
pub async fn login(
    State(app): State<App>,
    RateLimited(client, ..): RateLimited<limit::Login>,
    JsonOrForm(request): JsonOrForm<LoginRequest>,
) -> ApiResult<Json<LoggedIn>> {
    Ok(Json(app.users().login(request, client).await?))
}

/// `GET /api/v1/users/me`
pub async fn me(CurrentUser(user): CurrentUser) -> Json<UserView> {
    Json(UserView::from(&user))
}

/// `PATCH /api/v1/users/me`
pub async fn update_me(
    State(app): State<App>,
    CurrentUser(user): CurrentUser,
    ClientAddress(client): ClientAddress,
    JsonBody(request): JsonBody<UpdateProfileRequest>,
) -> ApiResult<Json<ProfileUpdated>> {
    Ok(Json(
        app.users().update_profile(&user, request, client).await?,
    ))
}

/// `GET /api/v1/users` (admin)
pub async fn list(
    State(app): State<App>,
    Admin(user): Admin,
    Page(page): Page,
) -> ApiResult<Json<Listing<UserView>>> {
    Ok(Json(app.users().list(&user, &page).await?))
}

/// `PATCH /api/v1/users/{id}` (admin)
pub async fn update(
    State(app): State<App>,
    Admin(user): Admin,
    PathId(id): PathId<UserId>,
    JsonBody(request): JsonBody<AdminUpdateRequest>,
) -> ApiResult<Json<UserView>> {
    Ok(Json(app.users().admin_update(&user, &id, request).await?))
}

/// `POST /api/v1/users/me/email/verify`: the code sent to the account e-mail proves it.
pub async fn verify_email(
    State(app): State<App>,
    CurrentUser(user): CurrentUser,
    _: RateLimited<limit::Verify>,
    JsonBody(request): JsonBody<VerifyRequest>,
) -> ApiResult<Json<UserView>> {
    app.notifications()
        .verify_account_email(&user, request)
        .await?;
    let user = app.users().find(&user.id).await?.unwrap_or(user);
    Ok(Json(UserView::from(&user)))
}

/// `POST /api/v1/users/me/email/verification`: a new code to the account e-mail.
pub async fn resend_email_code(
    State(app): State<App>,
    CurrentUser(user): CurrentUser,
    _: RateLimited<limit::Subscribe>,
    Correlation(correlation): Correlation,
) -> ApiResult<(StatusCode, Json<serde_json::Value>)> {
    app.notifications()
        .resend_account_email_code(&user, &correlation)
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(serde_json::json!({"status": "sent"})),
    ))
}
