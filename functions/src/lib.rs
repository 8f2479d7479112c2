//! What every function binary's `main` calls. A package built for Lambda (`cargo lambda build
//! --release`) runs on the AWS adapters its catalogue entry declares and links nothing else.
//! With the `local` feature (`cargo lambda watch --features local`), the same binary runs over
//! the backend the configuration chooses, embedded by default, as the local server does.

use bazaar_api::functions::Function;
use bazaar_api::lambda::Serving;

pub type Error = bazaar_api::lambda::Error;

/// Runs `function` under the Lambda runtime until it is stopped. Not an `async fn`, so that
/// what `function` selects is decided while it is still a constant (see
/// `bazaar_api::lambda::run`).
#[cfg(not(feature = "local"))]
#[inline(always)]
pub fn run(function: &'static Function) -> Serving {
    bazaar_api::lambda::run(function)
}

/// Runs `function` under the Lambda runtime, over the backend the configuration chooses.
#[cfg(feature = "local")]
pub fn run(function: &'static Function) -> Serving {
    use bazaar_api::settings::Settings;
    Box::pin(async move {
        bazaar_api::telemetry::init(function.name);
        let local = bazaar::Local::start(&Settings::from_env()?).await?;
        bazaar_api::lambda::serve(function, local.app).await
    })
}
