//! `GET /api/v1/notifications`
#[tokio::main]
async fn main() -> Result<(), bazaar_api::lambda::Error> {
    bazaar_api::lambda::run(&bazaar_api::functions::NOTIFICATIONS_LIST).await
}
