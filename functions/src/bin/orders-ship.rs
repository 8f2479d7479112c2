//! `POST /api/v1/admin/orders/{id}/ship`
#[tokio::main]
async fn main() -> Result<(), bazaar_functions::Error> {
    bazaar_functions::run(&bazaar_api::functions::ORDERS_SHIP).await
}
