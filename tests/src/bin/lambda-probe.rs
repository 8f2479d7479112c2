//! A Lambda bootstrap for any catalogue entry, named by `BAZAAR_PROBE_FUNCTION`: runs it as a
//! deployed function runs (`bazaar_api::lambda::run`), so tests can watch a function's whole
//! Lambda life (its logs, its EMF metrics) against a stand-in Runtime API. The deployed
//! binaries name their entry statically instead, to link only its handler.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let name = std::env::var("BAZAAR_PROBE_FUNCTION").unwrap_or_default();
    let Some(function) = bazaar_api::functions::find(&name) else {
        eprintln!("BAZAAR_PROBE_FUNCTION={name:?} is not in the catalogue");
        return ExitCode::FAILURE;
    };
    match bazaar_api::lambda::run(function).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{name}: {error}");
            ExitCode::FAILURE
        }
    }
}
