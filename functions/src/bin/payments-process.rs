//! Consumes the payments queue: charges and refunds (SQS, partial batch failures).
#[tokio::main]
async fn main() -> Result<(), bazaar_functions::Error> {
    bazaar_functions::run(&bazaar_api::functions::PAYMENTS_PROCESS).await
}
