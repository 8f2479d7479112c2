//! `PATCH /api/v1/products/{id}`
#[tokio::main]
async fn main() -> Result<(), bazaar_functions::Error> {
    bazaar_functions::run(&bazaar_api::functions::PRODUCTS_UPDATE).await
}
