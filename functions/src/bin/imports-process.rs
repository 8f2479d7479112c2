//! Runs catalogue imports on S3 upload events (`imports/` prefix).
#[tokio::main]
async fn main() -> Result<(), bazaar_functions::Error> {
    bazaar_functions::run(&bazaar_api::functions::IMPORTS_PROCESS).await
}
