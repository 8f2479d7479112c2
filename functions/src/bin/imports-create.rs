//! `POST /api/v1/imports`
#[tokio::main]
async fn main() -> Result<(), bazaar_api::lambda::Error> {
    bazaar_api::lambda::serve_http("imports-create").await
}
