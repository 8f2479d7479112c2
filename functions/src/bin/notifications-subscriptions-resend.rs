//! `POST /api/v1/notifications/subscriptions/{id}/resend`
#[tokio::main]
async fn main() -> Result<(), bazaar_functions::Error> {
    bazaar_functions::run(&bazaar_api::functions::NOTIFICATIONS_SUBSCRIPTIONS_RESEND).await
}
