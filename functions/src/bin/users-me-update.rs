//! `PATCH /api/v1/users/me`
#[tokio::main]
async fn main() -> Result<(), bazaar_api::lambda::Error> {
    bazaar_api::lambda::serve_http("users-me-update").await
}
