//! The application state every handler receives: the domain services over the configured
//! adapters. Built once per process (per Lambda cold start, or once by the local server).

use std::sync::Arc;

use bazaar_adapters::config::{BackendConfig, Connected, connect_with};
use bazaar_shared::Ports;
use bazaar_shared::auth::{LoginThrottle, TokenService};
use bazaar_shared::users::{AddressBook, UserService};

use crate::cache::{self, ResponseCache};
use crate::client::TrustedProxies;
use crate::settings;
use bazaar_shared::catalogue::Products;
use bazaar_shared::notifications::{NotificationSettings, Notifications};
use bazaar_shared::orders::{OrderSettings, Orders};
use bazaar_shared::ratelimit::RateLimits;

#[derive(Clone)]
pub struct App {
    inner: Arc<Inner>,
}

struct Inner {
    connected: Connected,
    users: UserService,
    addresses: AddressBook,
    products: Products,
    orders: Orders,
    notifications: Notifications,
    cache: ResponseCache,
    guards: Guards,
}

/// The edge's abuse guards: per-client rate limits and whose forwarded addresses to believe.
#[derive(Clone, Debug, Default)]
pub struct Guards {
    pub rate_limits: RateLimits,
    pub trusted_proxies: TrustedProxies,
}

impl App {
    /// Wires the app from the process environment. `tokens`: whether this process issues or
    /// verifies tokens, and so needs the signing secret (a function that does not is not
    /// given access to it).
    pub async fn from_env(tokens: bool) -> Result<Self, String> {
        let lookup = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
        let backend = BackendConfig::from_lookup(lookup)?;
        Self::build_with(&backend, &lookup, None, tokens).await
    }

    /// Wires the app, with tokens, for a given backend, reading other settings through `lookup`.
    pub async fn build(
        backend: &BackendConfig,
        lookup: &impl Fn(&str) -> Option<String>,
    ) -> Result<Self, String> {
        Self::build_with(backend, lookup, None, true).await
    }

    /// As [`App::from_env`], with the backend, settings and SDK configuration given.
    pub async fn build_with(
        backend: &BackendConfig,
        lookup: &impl Fn(&str) -> Option<String>,
        sdk: Option<aws_config::SdkConfig>,
        tokens: bool,
    ) -> Result<Self, String> {
        let connected = connect_with(backend, sdk).await?;
        let tokens = if tokens {
            let settings = settings::token_settings(lookup, backend, &connected).await?;
            Some(TokenService::new(settings))
        } else {
            None
        };
        let orders = settings::order_settings(lookup)?;
        let guards = settings::guards(lookup)?;
        Ok(Self::assemble_guarded(connected, tokens, orders, guards))
    }

    /// Wires the app over adapters that are already connected, with default order settings.
    pub fn assemble(connected: Connected, tokens: Option<TokenService>) -> Self {
        Self::assemble_with(connected, tokens, OrderSettings::default())
    }

    /// Wires the app over adapters that are already connected, with the default guards.
    pub fn assemble_with(
        connected: Connected,
        tokens: Option<TokenService>,
        orders: OrderSettings,
    ) -> Self {
        Self::assemble_guarded(connected, tokens, orders, Guards::default())
    }

    /// Wires the app over adapters that are already connected.
    pub fn assemble_guarded(
        connected: Connected,
        tokens: Option<TokenService>,
        orders: OrderSettings,
        guards: Guards,
    ) -> Self {
        let ports = connected.ports.clone();
        let notifications = NotificationSettings {
            allow_private_targets: connected.notify.allow_private_targets,
            max_receives: connected.max_receives,
            budget: connected.notify.budget,
            sms_countries: connected.notify.sms_countries.clone(),
        };
        Self {
            inner: Arc::new(Inner {
                users: UserService::new(ports.clone(), tokens, LoginThrottle::default()),
                addresses: AddressBook::new(ports.clone()),
                products: Products::new(ports.clone()),
                orders: Orders::new(ports.clone(), orders),
                notifications: Notifications::new(ports, notifications),
                cache: ResponseCache::new(cache::TTL, cache::MAX_BYTES),
                connected,
                guards,
            }),
        }
    }

    pub fn ports(&self) -> &Ports {
        &self.inner.connected.ports
    }

    pub fn connected(&self) -> &Connected {
        &self.inner.connected
    }

    pub fn users(&self) -> &UserService {
        &self.inner.users
    }

    pub fn addresses(&self) -> &AddressBook {
        &self.inner.addresses
    }

    pub fn products(&self) -> &Products {
        &self.inner.products
    }

    pub fn orders(&self) -> &Orders {
        &self.inner.orders
    }

    pub fn notifications(&self) -> &Notifications {
        &self.inner.notifications
    }

    /// Hot catalogue reads, kept across warm invocations of a function.
    pub fn cache(&self) -> &ResponseCache {
        &self.inner.cache
    }

    /// The per-client rate limits.
    pub fn rate_limits(&self) -> &RateLimits {
        &self.inner.guards.rate_limits
    }

    /// The proxies whose `X-Forwarded-For` is believed.
    pub fn trusted_proxies(&self) -> &TrustedProxies {
        &self.inner.guards.trusted_proxies
    }
}
