//! Sends single notification deliveries from the deliveries queue (SQS, partial batch failures).
#[tokio::main]
async fn main() -> Result<(), bazaar_api::lambda::Error> {
    bazaar_api::lambda::run(&bazaar_api::functions::NOTIFICATIONS_DELIVER).await
}
