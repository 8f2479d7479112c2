//! Sends outbox events whose inline send was lost (EventBridge schedule).
#[tokio::main]
async fn main() -> Result<(), bazaar_api::lambda::Error> {
    bazaar_api::lambda::serve_scheduled("outbox-relay").await
}
