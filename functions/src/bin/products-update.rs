//! `PATCH /api/v1/products/{id}`
#[tokio::main]
async fn main() -> Result<(), bazaar_api::lambda::Error> {
    bazaar_api::lambda::serve_http("products-update").await
}
