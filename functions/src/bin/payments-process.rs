//! Consumes the payments queue: charges and refunds (SQS, partial batch failures).
#[tokio::main]
async fn main() -> Result<(), bazaar_api::lambda::Error> {
    bazaar_api::lambda::serve_queue("payments-process").await
}
