//! Consumes the notifications queue (SQS, partial batch failures).
#[tokio::main]
async fn main() -> Result<(), bazaar_functions::Error> {
    bazaar_functions::run(&bazaar_api::functions::NOTIFICATIONS_CONSUMER).await
}
