//! `POST /api/v1/users/me/email/verification`
#[tokio::main]
async fn main() -> Result<(), bazaar_functions::Error> {
    bazaar_functions::run(&bazaar_api::functions::USERS_EMAIL_VERIFICATION).await
}
