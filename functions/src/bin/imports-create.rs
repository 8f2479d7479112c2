//! `POST /api/v1/imports`
#[tokio::main]
async fn main() -> Result<(), bazaar_api::lambda::Error> {
    bazaar_api::lambda::run(&bazaar_api::functions::IMPORTS_CREATE).await
}
