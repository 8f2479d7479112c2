//! Consumes the payments queue: charges and refunds (SQS, partial batch failures).
#[tokio::main]
async fn main() -> Result<(), bazaar_api::lambda::Error> {
    bazaar_api::lambda::run(&bazaar_api::functions::PAYMENTS_PROCESS).await
}
