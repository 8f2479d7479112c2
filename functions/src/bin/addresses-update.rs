//! `PATCH /api/v1/users/me/addresses/{id}`
#[tokio::main]
async fn main() -> Result<(), bazaar_api::lambda::Error> {
    bazaar_api::lambda::run(&bazaar_api::functions::ADDRESSES_UPDATE).await
}
