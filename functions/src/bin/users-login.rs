//! `POST /api/v1/users/login`
#[tokio::main]
async fn main() -> Result<(), bazaar_api::lambda::Error> {
    bazaar_api::lambda::run(&bazaar_api::functions::USERS_LOGIN).await
}
