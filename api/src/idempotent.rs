//! `Idempotency-Key` at the edge, for the requests that move money (`POST /orders`, `/pay`,
//! `/refund`). The domain claims the key and commits the answer's body with the work
//! (`bazaar_shared::idempotency`); this module turns that into HTTP: the first request with
//! a key runs the work and answers with the endpoint's status, a repeat gets the remembered
//! body again with the same status and `Idempotency-Replayed: true`, and a failed request
//! gives its key back so that it may be retried.

use std::future::Future;

use axum::Json;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bazaar_shared::idempotency::{self, Begin, Claim};
use bazaar_shared::users::User;
use serde::Serialize;

use crate::App;
use crate::problem::ApiResult;

/// One idempotent operation: who asks, with which key (if any), and what.
pub struct Idempotent<'a> {
    pub app: &'a App,
    pub user: &'a User,
    pub key: Option<String>,
    /// The method and route, e.g. `POST /orders/{id}/pay` with the id filled in: the same body
    /// sent to another order is another request.
    pub operation: String,
    /// The status of a successful answer, first or replayed.
    pub status: StatusCode,
}

impl Idempotent<'_> {
    /// Runs `work` on `request` at most once per key; see the module comment.
    pub async fn run<R, T, F, Fut>(self, request: R, work: F) -> ApiResult<Response>
    where
        R: Serialize,
        T: Serialize,
        F: FnOnce(R, Option<Claim>) -> Fut,
        Fut: Future<Output = Result<T, bazaar_shared::Error>>,
    {
        let Some(key) = self.key else {
            let value = work(request, None).await?;
            return Ok((self.status, Json(value)).into_response());
        };
        let ports = self.app.ports();
        let fingerprint = idempotency::fingerprint(&self.operation, &request);
        match idempotency::begin(ports, &self.user.id, &key, &fingerprint).await? {
            Begin::Replay(stored) => {
                let mut response = (self.status, Json(stored.body)).into_response();
                response
                    .headers_mut()
                    .insert("idempotency-replayed", HeaderValue::from_static("true"));
                Ok(response)
            }
            Begin::Proceed(claim) => match work(request, Some(claim.clone())).await {
                Ok(value) => Ok((self.status, Json(value)).into_response()),
                Err(error) => {
                    idempotency::release(ports, &claim).await;
                    Err(error.into())
                }
            },
        }
    }
}
