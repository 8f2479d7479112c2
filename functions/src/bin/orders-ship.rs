//! `POST /api/v1/admin/orders/{id}/ship`
#[tokio::main]
async fn main() -> Result<(), bazaar_api::lambda::Error> {
    bazaar_api::lambda::serve_http("orders-ship").await
}
