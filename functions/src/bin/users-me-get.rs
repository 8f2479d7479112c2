//! `GET /api/v1/users/me`
#[tokio::main]
async fn main() -> Result<(), bazaar_functions::Error> {
    bazaar_functions::run(&bazaar_api::functions::USERS_ME_GET).await
}
