//! The address book endpoints (contract: `docs/openapi.yaml`).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use bazaar_shared::ids::AddressId;
use bazaar_shared::pagination::Listing;
use bazaar_shared::users::Address;
use bazaar_shared::users::requests::AddressRequest;

use crate::App;
use crate::extract::{CurrentUser, JsonBody, PathId};
use crate::problem::ApiResult;

/// `GET /api/v1/users/me/addresses`
pub async fn list(
    State(app): State<App>,
    CurrentUser(user): CurrentUser,
) -> ApiResult<Json<Listing<Address>>> {
    Ok(Json(app.addresses().list(&user).await?))
}

/// `POST /api/v1/users/me/addresses`
pub async fn create(
    State(app): State<App>,
    CurrentUser(user): CurrentUser,
    JsonBody(request): JsonBody<AddressRequest>,
) -> ApiResult<(StatusCode, Json<Address>)> {
    Ok((
        StatusCode::CREATED,
        Json(app.addresses().create(&user, request).await?),
    ))
}

/// `PATCH /api/v1/users/me/addresses/{id}`
pub async fn update(
    State(app): State<App>,
    CurrentUser(user): CurrentUser,
    PathId(id): PathId<AddressId>,
    JsonBody(request): JsonBody<AddressRequest>,
) -> ApiResult<Json<Address>> {
    Ok(Json(app.addresses().update(&user, &id, request).await?))
}

/// `DELETE /api/v1/users/me/addresses/{id}`
pub async fn delete(
    State(app): State<App>,
    CurrentUser(user): CurrentUser,
    PathId(id): PathId<AddressId>,
) -> ApiResult<StatusCode> {
    app.addresses().delete(&user, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
