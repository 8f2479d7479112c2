//! `POST /api/v1/notifications/subscriptions/{id}/resend`
#[tokio::main]
async fn main() -> Result<(), bazaar_api::lambda::Error> {
    bazaar_api::lambda::run(&bazaar_api::functions::NOTIFICATIONS_SUBSCRIPTIONS_RESEND).await
}
