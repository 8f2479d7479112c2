//! Consumes the invoices queue: renders invoices into the bucket (SQS, partial batch failures).
#[tokio::main]
async fn main() -> Result<(), bazaar_functions::Error> {
    bazaar_functions::run(&bazaar_api::functions::INVOICES_RENDER).await
}
