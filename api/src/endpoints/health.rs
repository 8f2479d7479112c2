//! `GET /api/v1/health`.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use crate::App;

pub async fn health(State(app): State<App>) -> Json<Value> {
    let backend = if app.connected().aws.is_some() {
        "aws"
    } else {
        "embedded"
    };
    Json(json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "backend": backend,
    }))
}
