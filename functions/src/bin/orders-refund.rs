//! `POST /api/v1/orders/{id}/refund`
#[tokio::main]
async fn main() -> Result<(), bazaar_functions::Error> {
    bazaar_functions::run(&bazaar_api::functions::ORDERS_REFUND).await
}
