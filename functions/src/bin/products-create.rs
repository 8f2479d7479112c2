//! `POST /api/v1/products`
#[tokio::main]
async fn main() -> Result<(), bazaar_api::lambda::Error> {
    bazaar_api::lambda::run(&bazaar_api::functions::PRODUCTS_CREATE).await
}
