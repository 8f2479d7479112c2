//! `POST /api/v1/orders/{id}/pay`
#[tokio::main]
async fn main() -> Result<(), bazaar_api::lambda::Error> {
    bazaar_api::lambda::serve_http("orders-pay").await
}
