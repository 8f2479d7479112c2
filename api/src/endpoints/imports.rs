//! The catalogue import endpoints: start an import (get an upload URL), follow its progress.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use bazaar_shared::ids::ImportId;
use bazaar_shared::imports::{self, ImportView};
use serde::{Deserialize, Serialize};

use crate::App;
use crate::extract::{Admin, JsonBody, PathId};
use crate::problem::ApiResult;

#[derive(Debug, Default, Deserialize)]
pub struct CreateImport {
    /// The uploaded file's name, kept in its object key (`imports/<id>/<file_name>`).
    pub file_name: Option<String>,
    /// The file's exact size in bytes: the upload URL accepts nothing else.
    pub size: Option<u64>,
}

#[derive(Debug, Serialize)]
pub struct ImportCreated {
    pub id: ImportId,
    pub status: imports::ImportStatus,
    pub upload_url: String,
    pub method: &'static str,
    /// Headers the upload must carry, as signed.
    pub headers: BTreeMap<String, String>,
    pub expires_in: u64,
}

/// `POST /api/v1/imports` (admin)
pub async fn create(
    State(app): State<App>,
    Admin(_admin): Admin,
    JsonBody(request): JsonBody<CreateImport>,
) -> ApiResult<(StatusCode, Json<ImportCreated>)> {
    let (import, upload) =
        imports::create(app.ports(), request.file_name.as_deref(), request.size).await?;
    Ok((
        StatusCode::CREATED,
        Json(ImportCreated {
            id: import.id,
            status: import.status,
            upload_url: upload.url,
            method: upload.method,
            headers: upload.headers.into_iter().collect(),
            expires_in: imports::run::UPLOAD_URL_TTL.as_secs(),
        }),
    ))
}

/// `GET /api/v1/imports/{id}` (admin)
pub async fn get(
    State(app): State<App>,
    Admin(_admin): Admin,
    PathId(id): PathId<ImportId>,
) -> ApiResult<Json<ImportView>> {
    let import = imports::get(app.ports(), &id).await?;
    Ok(Json(ImportView::from(&import)))
}
