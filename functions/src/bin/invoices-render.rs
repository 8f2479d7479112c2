//! Consumes the invoices queue: renders invoices into the bucket (SQS, partial batch failures).
#[tokio::main]
async fn main() -> Result<(), bazaar_api::lambda::Error> {
    bazaar_api::lambda::serve_queue("invoices-render").await
}
