//! `POST /api/v1/notifications/subscriptions`
#[tokio::main]
async fn main() -> Result<(), bazaar_functions::Error> {
    bazaar_functions::run(&bazaar_api::functions::NOTIFICATIONS_SUBSCRIBE).await
}
