//! `POST /api/v1/users/me/email/verify`
#[tokio::main]
async fn main() -> Result<(), bazaar_api::lambda::Error> {
    bazaar_api::lambda::serve_http("users-email-verify").await
}
