//! Settings of the edge that are not about where data lives: token issuing, mostly.

use bazaar_adapters::config::{Backend, BackendConfig, Connected, load_or_create_secret};
use bazaar_shared::auth::{SigningSecret, TokenSettings};
use bazaar_shared::orders::OrderSettings;
use bazaar_shared::orders::requests::MAX_QUANTITY;

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

/// Reads the order settings: `BAZAAR_RESERVATION_MINUTES` (1..=1440, default 15),
/// `BAZAAR_TAX_RATE_BPS` (0..=10000 basis points, default 0), `BAZAAR_CARRIER`,
/// `BAZAAR_MAX_PENDING_ORDERS` (unpaid orders one customer may hold, 1..=1000, default 3) and
/// `BAZAAR_MAX_UNITS_PER_LINE` (units of one product per order, 1..=1000, default 10).
pub fn order_settings(lookup: &impl Fn(&str) -> Option<String>) -> Result<OrderSettings, String> {
    let mut settings = OrderSettings::default();
    if let Some(value) = lookup("BAZAAR_RESERVATION_MINUTES") {
        let minutes = value
            .parse::<u64>()
            .ok()
            .filter(|minutes| (1..=1440).contains(minutes))
            .ok_or_else(|| format!("BAZAAR_RESERVATION_MINUTES must be 1..=1440, not {value:?}"))?;
        settings.reservation = std::time::Duration::from_secs(minutes * 60);
    }
    if let Some(value) = lookup("BAZAAR_TAX_RATE_BPS") {
        settings.tax_rate_bps = value
            .parse::<u32>()
            .ok()
            .filter(|bps| *bps <= 10_000)
            .ok_or_else(|| format!("BAZAAR_TAX_RATE_BPS must be 0..=10000, not {value:?}"))?;
    }
    if let Some(carrier) = lookup("BAZAAR_CARRIER") {
        settings.carrier = carrier;
    }
    if let Some(value) = lookup("BAZAAR_MAX_PENDING_ORDERS") {
        settings.max_pending_orders = value
            .parse::<u32>()
            .ok()
            .filter(|max| (1..=1000).contains(max))
            .ok_or_else(|| format!("BAZAAR_MAX_PENDING_ORDERS must be 1..=1000, not {value:?}"))?;
    }
    if let Some(value) = lookup("BAZAAR_MAX_UNITS_PER_LINE") {
        settings.max_units_per_line = value
            .parse::<i64>()
            .ok()
            .filter(|max| (1..=MAX_QUANTITY).contains(max))
            .ok_or_else(|| {
                format!("BAZAAR_MAX_UNITS_PER_LINE must be 1..={MAX_QUANTITY}, not {value:?}")
            })?;
    }
    Ok(settings)
}

/// Reads the abuse guards: `BAZAAR_RATE_LIMIT_<NAME>` per limit (`<count>/<seconds>` or
/// `off`; names `LOGIN`, `REGISTER`, `PAY`, `SUBSCRIBE`, `VERIFY`) and
/// `BAZAAR_TRUSTED_PROXIES` (comma-separated CIDR blocks; default none).
pub fn guards(lookup: &impl Fn(&str) -> Option<String>) -> Result<crate::app::Guards, String> {
    use bazaar_shared::ratelimit::{Limit, Rate};
    let mut guards = crate::app::Guards::default();
    for limit in Limit::ALL {
        let name = format!("BAZAAR_RATE_LIMIT_{}", limit.name().to_uppercase());
        if let Some(value) = lookup(&name) {
            let rate = Rate::parse(&value).map_err(|error| format!("{name}: {error}"))?;
            guards.rate_limits.set(limit, rate);
        }
    }
    if let Some(value) = lookup("BAZAAR_TRUSTED_PROXIES") {
        guards.trusted_proxies = crate::client::TrustedProxies::parse(&value)
            .map_err(|error| format!("BAZAAR_TRUSTED_PROXIES: {error}"))?;
    }
    Ok(guards)
}

#[cfg(test)]
mod tests {
    use super::order_settings;

    fn with(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect();
        move |name| {
            pairs
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.clone())
        }
    }

    #[test]
    fn order_limits_default_and_parse() {
        let defaults = order_settings(&with(&[])).ok();
        assert_eq!(
            defaults.map(|s| (s.max_pending_orders, s.max_units_per_line)),
            Some((3, 10))
        );
        let set = order_settings(&with(&[
            ("BAZAAR_MAX_PENDING_ORDERS", "7"),
            ("BAZAAR_MAX_UNITS_PER_LINE", "250"),
        ]))
        .ok();
        assert_eq!(
            set.map(|s| (s.max_pending_orders, s.max_units_per_line)),
            Some((7, 250))
        );
    }

    #[test]
    fn order_limits_out_of_range_are_refused_by_name() {
        for (name, value) in [
            ("BAZAAR_MAX_PENDING_ORDERS", "0"),
            ("BAZAAR_MAX_PENDING_ORDERS", "many"),
            ("BAZAAR_MAX_UNITS_PER_LINE", "0"),
            ("BAZAAR_MAX_UNITS_PER_LINE", "1001"),
        ] {
            let error = order_settings(&with(&[(name, value)])).err();
            assert!(
                error.as_deref().is_some_and(|error| error.contains(name)),
                "{name}={value}: {error:?}"
            );
        }
    }
}
