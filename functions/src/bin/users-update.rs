//! `PATCH /api/v1/users/{id}`
#[tokio::main]
async fn main() -> Result<(), bazaar_api::lambda::Error> {
    bazaar_api::lambda::serve_http("users-update").await
}
