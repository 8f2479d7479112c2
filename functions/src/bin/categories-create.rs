//! `POST /api/v1/categories`
#[tokio::main]
async fn main() -> Result<(), bazaar_functions::Error> {
    bazaar_functions::run(&bazaar_api::functions::CATEGORIES_CREATE).await
}
