//! Consumes the invoices queue: renders invoices into the bucket (SQS, partial batch failures).
#[tokio::main]
async fn main() -> Result<(), bazaar_api::lambda::Error> {
    bazaar_api::lambda::run(&bazaar_api::functions::INVOICES_RENDER).await
}
