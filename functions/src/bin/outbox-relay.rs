//! Sends outbox events whose inline send was lost (EventBridge schedule).
#[tokio::main]
async fn main() -> Result<(), bazaar_api::lambda::Error> {
    bazaar_api::lambda::run(&bazaar_api::functions::OUTBOX_RELAY).await
}
