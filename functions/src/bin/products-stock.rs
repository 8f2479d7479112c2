//! `PUT /api/v1/products/{id}/stock`
#[tokio::main]
async fn main() -> Result<(), bazaar_api::lambda::Error> {
    bazaar_api::lambda::run(&bazaar_api::functions::PRODUCTS_STOCK).await
}
