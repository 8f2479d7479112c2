//! Cancels unpaid orders whose reservation expired, releasing their stock (EventBridge schedule).
#[tokio::main]
async fn main() -> Result<(), bazaar_api::lambda::Error> {
    bazaar_api::lambda::run(&bazaar_api::functions::ORDERS_EXPIRE).await
}
