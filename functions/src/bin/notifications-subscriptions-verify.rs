//! `POST /api/v1/notifications/subscriptions/{id}/verify`
#[tokio::main]
async fn main() -> Result<(), bazaar_functions::Error> {
    bazaar_functions::run(&bazaar_api::functions::NOTIFICATIONS_SUBSCRIPTIONS_VERIFY).await
}
