//! `POST /api/v1/orders/{id}/pay`
#[tokio::main]
async fn main() -> Result<(), bazaar_api::lambda::Error> {
    bazaar_api::lambda::run(&bazaar_api::functions::ORDERS_PAY).await
}
