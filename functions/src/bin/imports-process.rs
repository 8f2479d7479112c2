//! Runs catalogue imports on S3 upload events (`imports/` prefix).
#[tokio::main]
async fn main() -> Result<(), bazaar_api::lambda::Error> {
    bazaar_api::lambda::run(&bazaar_api::functions::IMPORTS_PROCESS).await
}
