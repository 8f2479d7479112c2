//! `POST /api/v1/notifications/notify`
#[tokio::main]
async fn main() -> Result<(), bazaar_functions::Error> {
    bazaar_functions::run(&bazaar_api::functions::NOTIFICATIONS_NOTIFY).await
}
