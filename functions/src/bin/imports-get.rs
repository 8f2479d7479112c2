//! `GET /api/v1/imports/{id}`
#[tokio::main]
async fn main() -> Result<(), bazaar_functions::Error> {
    bazaar_functions::run(&bazaar_api::functions::IMPORTS_GET).await
}
