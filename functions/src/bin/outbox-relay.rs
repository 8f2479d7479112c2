//! Sends outbox events whose inline send was lost (EventBridge schedule).
#[tokio::main]
async fn main() -> Result<(), bazaar_functions::Error> {
    bazaar_functions::run(&bazaar_api::functions::OUTBOX_RELAY).await
}
