//! Settings of the edge that are not about where data lives: token issuing, mostly.

use bazaar_adapters::config::{Backend, BackendConfig, Connected, load_or_create_secret};
use bazaar_shared::auth::{SigningSecret, TokenSettings};

/// Reads the token settings. The signing secret comes from `BAZAAR_JWT_SECRET`, or in AWS from
/// the SSM SecureString parameter named by `BAZAAR_JWT_SECRET_PARAMETER`. On AWS there is no
/// fallback: a missing or weak secret stops the function from starting. Embedded, a random
/// secret is created once in the data directory.
pub async fn token_settings(
    lookup: &impl Fn(&str) -> Option<String>,
    backend: &BackendConfig,
    connected: &Connected,
) -> Result<TokenSettings, String> {
    let raw = if let Some(secret) = lookup("BAZAAR_JWT_SECRET") {
        secret
    } else if let (Some(parameter), Some(sdk)) =
        (lookup("BAZAAR_JWT_SECRET_PARAMETER"), &connected.aws)
    {
        bazaar_adapters::aws::read_ssm_secret(sdk, &parameter)
            .await
            .map_err(|error| format!("cannot read the JWT secret parameter {parameter}: {error}"))?
    } else {
        match &backend.backend {
            Backend::Embedded { data_dir, .. } => {
                load_or_create_secret(&data_dir.join("jwt-secret"))?
            }
            Backend::Aws { .. } => {
                return Err(
                    "no JWT signing secret: set BAZAAR_JWT_SECRET_PARAMETER (an SSM SecureString) or BAZAAR_JWT_SECRET"
                        .to_owned(),
                );
            }
        }
    };
    let secret = SigningSecret::new(raw.into_bytes())?;
    let ttl_seconds = match lookup("BAZAAR_JWT_TTL_SECONDS") {
        Some(value) => value
            .parse::<i64>()
            .ok()
            .filter(|ttl| (60..=86_400).contains(ttl))
            .ok_or_else(|| format!("BAZAAR_JWT_TTL_SECONDS must be 60..=86400, not {value:?}"))?,
        None => 3600,
    };
    Ok(TokenSettings {
        secret,
        issuer: lookup("BAZAAR_JWT_ISSUER").unwrap_or_else(|| "bazaar".to_owned()),
        audience: lookup("BAZAAR_JWT_AUDIENCE").unwrap_or_else(|| "bazaar-api".to_owned()),
        ttl_seconds,
    })
}
