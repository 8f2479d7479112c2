//! `PATCH /api/v1/users/{id}`
#[tokio::main]
async fn main() -> Result<(), bazaar_functions::Error> {
    bazaar_functions::run(&bazaar_api::functions::USERS_UPDATE).await
}
