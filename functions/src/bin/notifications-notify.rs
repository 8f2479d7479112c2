//! `POST /api/v1/notifications/notify`
#[tokio::main]
async fn main() -> Result<(), bazaar_api::lambda::Error> {
    bazaar_api::lambda::run(&bazaar_api::functions::NOTIFICATIONS_NOTIFY).await
}
