//! Resumes catalogue imports whose run died and whose lease lapsed (EventBridge schedule).
#[tokio::main]
async fn main() -> Result<(), bazaar_api::lambda::Error> {
    bazaar_api::lambda::run(&bazaar_api::functions::IMPORTS_SWEEP).await
}
