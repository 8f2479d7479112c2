//! Resumes catalogue imports whose run died and whose lease lapsed (EventBridge schedule).
#[tokio::main]
async fn main() -> Result<(), bazaar_functions::Error> {
    bazaar_functions::run(&bazaar_api::functions::IMPORTS_SWEEP).await
}
