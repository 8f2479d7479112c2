//! The application state every handler receives: the domain services over the configured
//! adapters. Built once per process (per Lambda cold start, or once by the local server).

use std::sync::Arc;

use bazaar_adapters::config::{Connected, connect_aws};
use bazaar_shared::Ports;
use bazaar_shared::auth::{LoginThrottle, TokenService};
use bazaar_shared::users::{AddressBook, UserService};

use crate::cache::{self, ResponseCache};
use crate::client::TrustedProxies;
use crate::settings::{Settings, SettingsError};
use bazaar_shared::catalogue::Products;
use bazaar_shared::notifications::{NotificationSettings, Notifications};
use bazaar_shared::orders::Orders;
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
    /// The app of a function package: the AWS adapters its catalogue entry declares (each
    /// SDK client built on first use), and no token service: a function that neither issues
    /// nor verifies tokens is not given the signing secret, nor reads it. The flags are
    /// constants so that what a function does not declare is not linked into it (see
    /// `functions::Needs`). `sdk`: given by tests; loaded from the environment when `None`.
    pub async fn on_aws<const QUEUE: bool, const BLOBS: bool, const NOTIFIERS: bool>(
        settings: &Settings,
        sdk: Option<aws_config::SdkConfig>,
    ) -> Result<Self, SettingsError> {
        let connected = connect_aws::<QUEUE, BLOBS, NOTIFIERS>(&settings.backend, sdk).await?;
        Ok(Self::new(settings, connected, None))
    }

    /// As [`App::on_aws`], with the token service and its signing secret (read from SSM when
    /// configured so).
    pub async fn on_aws_with_tokens<const QUEUE: bool, const BLOBS: bool, const NOTIFIERS: bool>(
        settings: &Settings,
        sdk: Option<aws_config::SdkConfig>,
    ) -> Result<Self, SettingsError> {
        let connected = connect_aws::<QUEUE, BLOBS, NOTIFIERS>(&settings.backend, sdk).await?;
        let found = settings
            .tokens
            .settings(connected.aws.as_ref(), || None)
            .await?;
        Ok(Self::new(
            settings,
            connected,
            Some(TokenService::new(found)),
        ))
    }

    /// Wires the app over adapters that are already connected (the local server chooses
    /// them; tests change them). When traces are exported, every port call gets its span.
    pub fn new(
        settings: &Settings,
        mut connected: Connected,
        tokens: Option<TokenService>,
    ) -> Self {
        if crate::telemetry::traces::enabled() {
            connected.ports = connected.ports.traced();
        }
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
                orders: Orders::new(ports.clone(), settings.orders.clone()),
                notifications: Notifications::new(ports, notifications),
                cache: ResponseCache::new(cache::TTL, cache::MAX_BYTES),
                connected,
                guards: settings.guards.clone(),
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

    /// How often a queue hands a message out before dead-lettering it.
    pub fn max_receives(&self) -> u32 {
        self.inner.connected.max_receives
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
