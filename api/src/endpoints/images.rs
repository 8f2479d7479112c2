//! Product images (contract: `docs/openapi.yaml`): an admin gets a presigned upload URL
//! and sends the image straight to blob storage; the function never sees the bytes.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use bazaar_shared::catalogue::images::{self, ImageUpload, PresignImage};
use bazaar_shared::ids::ProductId;

use crate::App;
use crate::extract::{Admin, JsonBody, PathId};
use crate::problem::ApiResult;

/// `POST /api/v1/products/{id}/images` (admin): an upload URL for one image of exactly the
/// announced type and size, valid 15 minutes; the image's URL is listed on the product at once.
pub async fn presign_image(
    State(app): State<App>,
    Admin(_admin): Admin,
    PathId(id): PathId<ProductId>,
    JsonBody(request): JsonBody<PresignImage>,
) -> ApiResult<(StatusCode, Json<ImageUpload>)> {
    let upload = images::presign(app.products(), &id, request).await?;
    // The product's `images` and `version` changed: cached reads of it are stale.
    app.cache().clear();
    Ok((StatusCode::CREATED, Json(upload)))
}
