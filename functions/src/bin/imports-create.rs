//! `POST /api/v1/imports`
#[tokio::main]
async fn main() -> Result<(), bazaar_functions::Error> {
    bazaar_functions::run(&bazaar_api::functions::IMPORTS_CREATE).await
}
