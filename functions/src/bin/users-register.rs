//! `POST /api/v1/users/register`
#[tokio::main]
async fn main() -> Result<(), bazaar_functions::Error> {
    bazaar_functions::run(&bazaar_api::functions::USERS_REGISTER).await
}
