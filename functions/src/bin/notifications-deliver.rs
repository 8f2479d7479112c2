//! Sends single notification deliveries from the deliveries queue (SQS, partial batch failures).
#[tokio::main]
async fn main() -> Result<(), bazaar_functions::Error> {
    bazaar_functions::run(&bazaar_api::functions::NOTIFICATIONS_DELIVER).await
}
