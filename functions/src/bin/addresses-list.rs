//! `GET /api/v1/users/me/addresses`
#[tokio::main]
async fn main() -> Result<(), bazaar_functions::Error> {
    bazaar_functions::run(&bazaar_api::functions::ADDRESSES_LIST).await
}
