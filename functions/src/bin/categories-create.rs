//! `POST /api/v1/categories`
#[tokio::main]
async fn main() -> Result<(), bazaar_api::lambda::Error> {
    bazaar_api::lambda::run(&bazaar_api::functions::CATEGORIES_CREATE).await
}
