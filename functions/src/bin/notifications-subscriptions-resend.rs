//! `POST /api/v1/notifications/subscriptions/{id}/resend`
#[tokio::main]
async fn main() -> Result<(), bazaar_api::lambda::Error> {
    bazaar_api::lambda::serve_http("notifications-subscriptions-resend").await
}
