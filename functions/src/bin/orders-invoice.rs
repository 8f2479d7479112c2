//! `GET /api/v1/orders/{id}/invoice`
#[tokio::main]
async fn main() -> Result<(), bazaar_api::lambda::Error> {
    bazaar_api::lambda::run(&bazaar_api::functions::ORDERS_INVOICE).await
}
