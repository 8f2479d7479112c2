//! `GET /api/v1/orders/{id}/tracking`
#[tokio::main]
async fn main() -> Result<(), bazaar_functions::Error> {
    bazaar_functions::run(&bazaar_api::functions::ORDERS_TRACKING).await
}
