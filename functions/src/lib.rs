//! What every function binary's `main` calls. A package built for Lambda (`cargo lambda build
//! --release`) runs on the AWS adapters its catalogue entry declares and links nothing else.
//! With the `local` feature (`cargo lambda watch --features local`), the same binary runs over
//! the backend the configuration chooses, embedded by default, as the local server does.

use bazaar_api::functions::Function;

pub type Error = bazaar_api::lambda::Error;

/// Runs `function` under the Lambda runtime until it is stopped.
pub async fn run(function: &'static Function) -> Result<(), Error> {
    #[cfg(not(feature = "local"))]
    return bazaar_api::lambda::run(function).await;
    #[cfg(feature = "local")]
    return local::run(function).await;
}

#[cfg(feature = "local")]
mod local {
    use super::{Error, Function};
    use bazaar_api::settings::Settings;

    pub async fn run(function: &'static Function) -> Result<(), Error> {
        bazaar_api::telemetry::init();
        let local = bazaar::Local::start(&Settings::from_env()?).await?;
        bazaar_api::lambda::serve(function, local.app).await
    }
}
