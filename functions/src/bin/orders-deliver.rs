//! `POST /api/v1/admin/orders/{id}/deliver`
#[tokio::main]
async fn main() -> Result<(), bazaar_api::lambda::Error> {
    bazaar_api::lambda::run(&bazaar_api::functions::ORDERS_DELIVER).await
}
