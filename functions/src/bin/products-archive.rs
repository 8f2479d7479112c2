//! `DELETE /api/v1/products/{id}`
#[tokio::main]
async fn main() -> Result<(), bazaar_api::lambda::Error> {
    bazaar_api::lambda::run(&bazaar_api::functions::PRODUCTS_ARCHIVE).await
}
