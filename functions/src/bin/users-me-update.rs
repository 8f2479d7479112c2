//! `PATCH /api/v1/users/me`
#[tokio::main]
async fn main() -> Result<(), bazaar_api::lambda::Error> {
    bazaar_api::lambda::run(&bazaar_api::functions::USERS_ME_UPDATE).await
}
