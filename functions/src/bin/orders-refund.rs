//! `POST /api/v1/orders/{id}/refund`
#[tokio::main]
async fn main() -> Result<(), bazaar_api::lambda::Error> {
    bazaar_api::lambda::serve_http("orders-refund").await
}
