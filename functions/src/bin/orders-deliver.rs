//! `POST /api/v1/admin/orders/{id}/deliver`
#[tokio::main]
async fn main() -> Result<(), bazaar_api::lambda::Error> {
    bazaar_api::lambda::serve_http("orders-deliver").await
}
