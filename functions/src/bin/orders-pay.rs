//! `POST /api/v1/orders/{id}/pay`
#[tokio::main]
async fn main() -> Result<(), bazaar_functions::Error> {
    bazaar_functions::run(&bazaar_api::functions::ORDERS_PAY).await
}
