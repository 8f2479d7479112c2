//! `POST /api/v1/users/me/email/verify`
#[tokio::main]
async fn main() -> Result<(), bazaar_functions::Error> {
    bazaar_functions::run(&bazaar_api::functions::USERS_EMAIL_VERIFY).await
}
