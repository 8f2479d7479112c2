//! Cancels unpaid orders whose reservation expired, releasing their stock (EventBridge schedule).
#[tokio::main]
async fn main() -> Result<(), bazaar_functions::Error> {
    bazaar_functions::run(&bazaar_api::functions::ORDERS_EXPIRE).await
}
