//! Everything a process is configured with, read once into one typed value: where data
//! lives, token issuing, orders, the edge's guards and, for the local server, where to listen
//! and which admin to create at start. Every refusal names the setting (see
//! `bazaar_shared::settings`).

use std::net::SocketAddr;

use bazaar_adapters::config::{BackendConfig, NotAws};
use bazaar_shared::auth::{SigningSecret, TokenSettings, WeakSecret};
use bazaar_shared::orders::OrderSettings;
use bazaar_shared::orders::invoices::MAX_INVOICE_SERIES;
use bazaar_shared::orders::requests::MAX_QUANTITY;
use bazaar_shared::ratelimit::{Limit, Rate};
use bazaar_shared::settings::{InvalidSetting, Source};

use crate::app::Guards;
use crate::client::TrustedProxies;

/// The whole configuration of a process.
#[derive(Clone, Debug)]
pub struct Settings {
    pub backend: BackendConfig,
    pub tokens: TokenConfig,
    pub orders: OrderSettings,
    pub guards: Guards,
    /// Where the local server listens (`BAZAAR_LISTEN`, default `127.0.0.1:3000`).
    pub listen: SocketAddr,
    /// The admin the local server creates at start, if any.
    pub admin: Option<AdminSeed>,
}

/// How tokens are signed. The secret is found by [`TokenConfig::settings`].
#[derive(Clone)]
pub struct TokenConfig {
    /// `BAZAAR_JWT_SECRET`: the secret itself.
    pub secret: Option<String>,
    /// `BAZAAR_JWT_SECRET_PARAMETER`: an SSM SecureString holding it (AWS).
    pub secret_parameter: Option<String>,
    pub issuer: String,
    pub audience: String,
    /// `BAZAAR_JWT_TTL_SECONDS`, 60..=86400, default 3600.
    pub ttl_seconds: i64,
}

impl std::fmt::Debug for TokenConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenConfig")
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("secret_parameter", &self.secret_parameter)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("ttl_seconds", &self.ttl_seconds)
            .finish()
    }
}

/// `BAZAAR_ADMIN_EMAIL`, `BAZAAR_ADMIN_PASSWORD` and `BAZAAR_ADMIN_USERNAME` (default
/// `admin`): an admin the local server creates at start (never taking over an account).
#[derive(Clone)]
pub struct AdminSeed {
    pub email: String,
    pub password: String,
    pub username: String,
}

impl std::fmt::Debug for AdminSeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminSeed").finish_non_exhaustive()
    }
}

/// Why a process refused its configuration.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error(transparent)]
    Invalid(#[from] InvalidSetting),
    #[error(
        "no JWT signing secret: set BAZAAR_JWT_SECRET_PARAMETER (an SSM SecureString) or BAZAAR_JWT_SECRET"
    )]
    NoSigningSecret,
    #[error("cannot read the JWT secret parameter {parameter}: {reason}")]
    SecretParameter { parameter: String, reason: String },
    #[error(transparent)]
    WeakSecret(#[from] WeakSecret),
    #[error("the local JWT secret file: {0}")]
    SecretFile(String),
    #[error(transparent)]
    NotAws(#[from] NotAws),
}

pub const DEFAULT_LISTEN: &str = "127.0.0.1:3000";

impl Settings {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, SettingsError> {
        Self::from_source(&Source::env())
    }

    /// Where the local server listens (`BAZAAR_LISTEN`): read on its own too, since the
    /// server binds before the rest of its settings are known (they default to the bound
    /// address).
    pub fn listen(source: &Source) -> Result<SocketAddr, InvalidSetting> {
        let text = source.text("BAZAAR_LISTEN", DEFAULT_LISTEN);
        text.parse()
            .map_err(|_| InvalidSetting::new("BAZAAR_LISTEN", "host:port", &text))
    }

    pub fn from_source(source: &Source) -> Result<Self, SettingsError> {
        let listen = Self::listen(source)?;
        let admin = match (
            source.get("BAZAAR_ADMIN_EMAIL"),
            source.get("BAZAAR_ADMIN_PASSWORD"),
        ) {
            (Some(email), Some(password)) => Some(AdminSeed {
                email,
                password,
                username: source.text("BAZAAR_ADMIN_USERNAME", "admin"),
            }),
            _ => None,
        };
        Ok(Self {
            backend: BackendConfig::from_source(source)?,
            tokens: TokenConfig::from_source(source)?,
            orders: order_settings(source)?,
            guards: guards(source)?,
            listen,
            admin,
        })
    }
}

impl TokenConfig {
    fn from_source(source: &Source) -> Result<Self, InvalidSetting> {
        Ok(Self {
            secret: source.get("BAZAAR_JWT_SECRET"),
            secret_parameter: source.get("BAZAAR_JWT_SECRET_PARAMETER"),
            issuer: source.text("BAZAAR_JWT_ISSUER", "bazaar"),
            audience: source.text("BAZAAR_JWT_AUDIENCE", "bazaar-api"),
            ttl_seconds: source.number("BAZAAR_JWT_TTL_SECONDS", 60..=86_400, 3600)?,
        })
    }

    /// The token settings with their secret: `BAZAAR_JWT_SECRET`, else the SSM parameter
    /// (when on AWS), else the secret `kept` by the local backend (a file in its data
    /// directory). On AWS there is no such fallback: a missing or weak secret stops the
    /// function from starting.
    pub async fn settings(
        &self,
        sdk: Option<&aws_config::SdkConfig>,
        kept: impl FnOnce() -> Option<Result<String, String>>,
    ) -> Result<TokenSettings, SettingsError> {
        let raw = if let Some(secret) = &self.secret {
            secret.clone()
        } else if let (Some(parameter), Some(sdk)) = (&self.secret_parameter, sdk) {
            bazaar_adapters::aws::read_ssm_secret(sdk, parameter)
                .await
                .map_err(|reason| SettingsError::SecretParameter {
                    parameter: parameter.clone(),
                    reason,
                })?
        } else {
            match kept() {
                Some(secret) => secret.map_err(SettingsError::SecretFile)?,
                None => return Err(SettingsError::NoSigningSecret),
            }
        };
        Ok(TokenSettings {
            secret: SigningSecret::new(raw.into_bytes())?,
            issuer: self.issuer.clone(),
            audience: self.audience.clone(),
            ttl_seconds: self.ttl_seconds,
        })
    }
}

/// The order settings: `BAZAAR_RESERVATION_MINUTES` (1..=1440, default 15),
/// `BAZAAR_TAX_RATE_BPS` (0..=10000 basis points, default 0), `BAZAAR_CARRIER`,
/// `BAZAAR_MAX_PENDING_ORDERS` (unpaid orders one customer may hold, 1..=1000, default 3) and
/// `BAZAAR_MAX_UNITS_PER_LINE` (units of one product per order, 1..=1000, default 10) and
/// `BAZAAR_INVOICE_SERIES` (invoice number series, 1..=99, default 1).
fn order_settings(source: &Source) -> Result<OrderSettings, InvalidSetting> {
    let defaults = OrderSettings::default();
    let minutes = source.number(
        "BAZAAR_RESERVATION_MINUTES",
        1..=1440,
        defaults.reservation.as_secs() / 60,
    )?;
    Ok(OrderSettings {
        reservation: std::time::Duration::from_secs(minutes * 60),
        tax_rate_bps: source.number("BAZAAR_TAX_RATE_BPS", 0..=10_000, defaults.tax_rate_bps)?,
        carrier: source.text("BAZAAR_CARRIER", &defaults.carrier),
        max_pending_orders: source.number(
            "BAZAAR_MAX_PENDING_ORDERS",
            1..=1000,
            defaults.max_pending_orders,
        )?,
        max_units_per_line: source.number(
            "BAZAAR_MAX_UNITS_PER_LINE",
            1..=MAX_QUANTITY,
            defaults.max_units_per_line,
        )?,
        invoice_series: source.number(
            "BAZAAR_INVOICE_SERIES",
            1..=MAX_INVOICE_SERIES,
            defaults.invoice_series,
        )?,
    })
}

/// The abuse guards: `BAZAAR_RATE_LIMIT_<NAME>` per limit (`<count>/<seconds>` or `off`;
/// names `LOGIN`, `REGISTER`, `PAY`, `SUBSCRIBE`, `VERIFY`) and `BAZAAR_TRUSTED_PROXIES`
/// (comma-separated CIDR blocks; default none).
fn guards(source: &Source) -> Result<Guards, InvalidSetting> {
    let mut guards = Guards::default();
    for limit in Limit::ALL {
        let name = format!("BAZAAR_RATE_LIMIT_{}", limit.name().to_uppercase());
        if let Some(rate) = source.parsed(&name, Rate::parse)? {
            guards.rate_limits.set(limit, rate);
        }
    }
    if let Some(proxies) = source.parsed("BAZAAR_TRUSTED_PROXIES", TrustedProxies::parse)? {
        guards.trusted_proxies = proxies;
    }
    Ok(guards)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Result<Settings, SettingsError> {
        Settings::from_source(&Source::pairs(pairs))
    }

    #[test]
    fn order_limits_default_and_parse() {
        let defaults = settings(&[]).ok();
        assert_eq!(
            defaults.map(|s| (s.orders.max_pending_orders, s.orders.max_units_per_line)),
            Some((3, 10))
        );
        let set = settings(&[
            ("BAZAAR_MAX_PENDING_ORDERS", "7"),
            ("BAZAAR_MAX_UNITS_PER_LINE", "250"),
            ("BAZAAR_RESERVATION_MINUTES", "30"),
        ])
        .ok();
        assert_eq!(
            set.map(|s| (
                s.orders.max_pending_orders,
                s.orders.max_units_per_line,
                s.orders.reservation.as_secs()
            )),
            Some((7, 250, 1800))
        );
    }

    #[test]
    fn refused_values_are_named() {
        for (name, value) in [
            ("BAZAAR_MAX_PENDING_ORDERS", "0"),
            ("BAZAAR_MAX_PENDING_ORDERS", "many"),
            ("BAZAAR_MAX_UNITS_PER_LINE", "0"),
            ("BAZAAR_MAX_UNITS_PER_LINE", "1001"),
            ("BAZAAR_JWT_TTL_SECONDS", "5"),
            ("BAZAAR_RATE_LIMIT_LOGIN", "lots"),
            ("BAZAAR_TRUSTED_PROXIES", "10.0.0.0/8, nowhere"),
            ("BAZAAR_LISTEN", "localhost"),
            ("BAZAAR_BACKEND", "azure"),
            ("BAZAAR_SMS_COUNTRIES", "98"),
        ] {
            let error = settings(&[(name, value)]).err().map(|e| e.to_string());
            assert!(
                error
                    .as_deref()
                    .is_some_and(|error| error.starts_with(name)),
                "{name}={value}: {error:?}"
            );
        }
    }

    #[test]
    fn the_admin_seed_needs_both_address_and_password_and_never_prints_them() {
        let seeded = settings(&[
            ("BAZAAR_ADMIN_EMAIL", "root@example.com"),
            ("BAZAAR_ADMIN_PASSWORD", "a long secret phrase"),
        ])
        .ok()
        .and_then(|s| s.admin);
        let printed = format!("{seeded:?}");
        assert!(seeded.is_some_and(|admin| admin.username == "admin"));
        assert!(!printed.contains("example.com") && !printed.contains("secret"));
        let half = settings(&[("BAZAAR_ADMIN_EMAIL", "root@example.com")]).ok();
        assert!(half.is_some_and(|s| s.admin.is_none()));
    }

    #[tokio::test]
    async fn the_secret_comes_from_the_setting_then_the_kept_file_else_refuses() {
        let given = settings(&[("BAZAAR_JWT_SECRET", "Xq7#Lm2$Vb9!Rt4&Wz6*Np1@Ks8^Hd3-given")])
            .expect("read settings with a given secret");
        let kept_read = std::cell::Cell::new(false);
        let found = given
            .tokens
            .settings(None, || {
                kept_read.set(true);
                None
            })
            .await;
        assert!(found.is_ok() && !kept_read.get(), "{found:?}");
        let local = settings(&[]).expect("read settings without a secret");
        let kept = local
            .tokens
            .settings(None, || {
                Some(Ok("Zr8#Tq3$Wm6!Lp1&Vx4*Nc9@Hs2^Kd7-kept".to_owned()))
            })
            .await;
        assert!(kept.is_ok(), "{kept:?}");
        let none = local.tokens.settings(None, || None).await;
        assert!(matches!(none, Err(SettingsError::NoSigningSecret)));
        let weak = settings(&[("BAZAAR_JWT_SECRET", "short")])
            .expect("read settings with a weak secret")
            .tokens
            .settings(None, || None)
            .await;
        assert!(matches!(weak, Err(SettingsError::WeakSecret(_))));
    }
}
