//! The fixture of the domain tests: the domain's services over the embedded store, queue and
//! blob store in a temporary directory, with a clock the test moves, the simulated payment
//! providers (their documented test inputs decline or time out), and notification channels
//! that record what they are asked to send and fail on demand.
//!
//! Every test builds its own [`Shop`], so tests share nothing and run in parallel. The
//! queues are driven by hand: a test drains a queue and calls the consuming service itself,
//! as the queue consumers in `api/src/consumers` do.

// Each test crate uses a part of the fixture.
#![allow(dead_code)]

/// How many shards the shop-wide partitions of the domain tests are spread over.
pub const SHARDS: u16 = 8;

pub mod channels;
pub mod clock;
pub mod race;

use std::fmt::Debug;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bazaar_embedded::{EmbeddedBlobs, EmbeddedQueue, EmbeddedStore};
use bazaar_shared::Ports;
use bazaar_shared::auth::{LoginThrottle, SigningSecret, TokenService, TokenSettings};
use bazaar_shared::catalogue::Products;
use bazaar_shared::catalogue::model::Product;
use bazaar_shared::catalogue::requests::CreateProduct;
use bazaar_shared::entity::Stored;
use bazaar_shared::error::Result;
use bazaar_shared::events::Event;
use bazaar_shared::ids::{AddressId, OrderId, ProductId, UserId};
use bazaar_shared::keys;
use bazaar_shared::money::Money;
use bazaar_shared::notifications::model::{DeliverCommand, Delivery};
use bazaar_shared::notifications::{NotificationSettings, Notifications, delivery};
use bazaar_shared::orders::model::PaymentAccepted;
use bazaar_shared::orders::requests::{LineRequest, PayRequest, PlaceOrder};
use bazaar_shared::orders::{Order, OrderSettings, Orders, PaymentCommand};
use bazaar_shared::outbox;
use bazaar_shared::ports::{
    Cond, IdGenerator, Index, Item, Notifiers, Query, Store, UlidGenerator,
};
use bazaar_shared::shards::Shards;
use bazaar_shared::users::requests::AddressRequest;
use bazaar_shared::users::{AddressBook, Role, User, UserService};
use serde_json::Value;

pub use channels::Channels;
pub use clock::TestClock;
pub use race::RaceStore;

/// The currency every test product is priced in.
pub const CURRENCY: &str = "EUR";
/// The correlation id of every request a test makes.
pub const CORRELATION: &str = "domain-test";
/// How many times the embedded queue hands out a message before dead-lettering it.
pub const MAX_RECEIVES: u32 = 5;

/// The value of a call that must succeed; the error otherwise, at the caller's line.
#[track_caller]
pub fn must<T, E: Debug>(result: std::result::Result<T, E>) -> T {
    match result {
        Ok(value) => value,
        Err(error) => panic!("expected success, got {error:?}"),
    }
}

/// A temporary directory, removed with everything in it when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        // In memory where the system offers it: the embedded store syncs every commit to
        // disk, which would make the store's durability (not under test here) most of each
        // test's time.
        let name = format!("bazaar-domain-{}-{}", std::process::id(), ulid::Ulid::new());
        let in_memory = Path::new("/dev/shm").join(&name);
        if std::fs::create_dir(&in_memory).is_ok() {
            return Self(in_memory);
        }
        let path = std::env::temp_dir().join(name);
        must(std::fs::create_dir_all(&path));
        Self(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What an operator tunes, for the tests that need other values than the defaults.
#[derive(Clone, Debug, Default)]
pub struct Setup {
    pub orders: OrderSettings,
    pub notifications: NotificationSettings,
}

/// The domain services over one fresh embedded backend.
pub struct Shop {
    pub ports: Ports,
    pub clock: Arc<TestClock>,
    pub channels: Arc<Channels>,
    /// The state store as the services see it: the embedded store, with a gate for races.
    pub store: Arc<RaceStore>,
    pub orders: Orders,
    pub users: UserService,
    pub products: Products,
    pub addresses: AddressBook,
    pub notifications: Notifications,
    _dir: TempDir,
}

impl Shop {
    pub fn new() -> Self {
        Self::with(Setup::default())
    }

    pub fn with(setup: Setup) -> Self {
        let dir = TempDir::new();
        let store = Arc::new(RaceStore::new(must(EmbeddedStore::open(
            &dir.path().join("state.sqlite3"),
        ))));
        let queue = must(EmbeddedQueue::open(
            &dir.path().join("queues.sqlite3"),
            MAX_RECEIVES,
        ));
        let blobs = EmbeddedBlobs::new(
            dir.path().join("blobs"),
            "http://127.0.0.1:3000".to_owned(),
            b"domain-test-blob-signing-key".to_vec(),
        );
        let clock = Arc::new(TestClock::new());
        let channels = Arc::new(Channels::default());
        let ids: Arc<dyn IdGenerator> = Arc::new(UlidGenerator::default());
        let ledger: Arc<dyn Store> = store.clone();
        let ports = Ports {
            store: store.clone(),
            queue: Arc::new(queue),
            blobs: Arc::new(blobs),
            clock: clock.clone(),
            payments: bazaar_adapters::payments::simulated(ledger, ids.clone()),
            ids,
            notifiers: Notifiers {
                email: channels.clone(),
                sms: channels.clone(),
                push: channels.clone(),
                slack: channels.clone(),
                webhook: channels.clone(),
            },
            shards: Shards::new(SHARDS).expect("a valid shard count"),
        };
        let tokens = TokenService::new(TokenSettings {
            secret: must(SigningSecret::new(
                "domain-tests-0123456789-abcdefghijklmnopqrstuvwxyz",
            )),
            issuer: "bazaar-domain-tests".to_owned(),
            audience: "bazaar".to_owned(),
            ttl_seconds: 3600,
        });
        Self {
            orders: Orders::new(ports.clone(), setup.orders),
            users: UserService::new(ports.clone(), Some(tokens), LoginThrottle::default()),
            products: Products::new(ports.clone()),
            addresses: AddressBook::new(ports.clone()),
            notifications: Notifications::new(ports.clone(), setup.notifications),
            ports,
            clock,
            channels,
            store,
            _dir: dir,
        }
    }

    // Accounts, written directly (registration hashes a password; only the user tests need it).

    pub async fn customer(&self) -> User {
        self.account(Role::Customer).await
    }

    pub async fn admin(&self) -> User {
        self.account(Role::Admin).await
    }

    async fn account(&self, role: Role) -> User {
        let id = self.ports.ids.new_id();
        let mut user = User::example(&id);
        user.role = role;
        user.created_at = self.clock.now();
        user.updated_at = user.created_at;
        must(
            self.ports
                .store
                .put(
                    must(user.to_item_under(&self.ports.shards)),
                    Cond::NotExists,
                )
                .await,
        );
        user
    }

    /// A customer who logs in with `email` and `password`, written directly. The hash is
    /// Argon2id at its smallest cost (a verifier takes the cost from the hash), so a login
    /// takes microseconds where the production cost takes a tenth of a second.
    pub async fn account_with_password(&self, email: &str, username: &str, password: &str) -> User {
        use argon2::password_hash::{PasswordHasher, SaltString};
        let cheapest = must(argon2::Params::new(8, 1, 1, None));
        let hasher = argon2::Argon2::new(
            argon2::Algorithm::Argon2id,
            argon2::Version::V0x13,
            cheapest,
        );
        let salt = must(SaltString::encode_b64(b"domain-test-salt"));
        let mut user = self.customer().await;
        user.email = email.to_owned();
        user.username = username.to_owned();
        user.password_hash = must(hasher.hash_password(password.as_bytes(), &salt)).to_string();
        must(
            self.ports
                .store
                .put(must(user.to_item_under(&self.ports.shards)), Cond::Always)
                .await,
        );
        for claim in [keys::email_claim(email), keys::username_claim(username)] {
            let item =
                bazaar_shared::entity::keyed(&claim, serde_json::json!({"user_id": user.id}));
            must(self.ports.store.put(item, Cond::NotExists).await);
        }
        user
    }

    /// The user as stored now.
    pub async fn reload_user(&self, user_id: &UserId) -> User {
        must(self.users.find(user_id).await).unwrap_or_else(|| panic!("no user {user_id}"))
    }

    /// A new address in the user's book; its id.
    pub async fn address(&self, user: &User) -> AddressId {
        let request = AddressRequest {
            line1: Some("Vali Asr St. 12".to_owned()),
            city: Some("Tehran".to_owned()),
            state: Some("Tehran".to_owned()),
            postal_code: Some("1434-843".to_owned()),
            country: Some("IR".to_owned()),
            ..AddressRequest::default()
        };
        must(self.addresses.create(user, request).await).id
    }

    /// A customer with an address to ship to.
    pub async fn buyer(&self) -> (User, AddressId) {
        let user = self.customer().await;
        let address = self.address(&user).await;
        (user, address)
    }

    // The catalogue.

    /// An active product at `price` minor units with `stock` units on hand.
    pub async fn product(&self, price: i64, stock: i64) -> Product {
        let request = CreateProduct {
            sku: Some(format!("SKU-{}", self.ports.ids.new_id())),
            name: Some("Copper teapot".to_owned()),
            price: Some(Money {
                amount: price,
                currency: CURRENCY.to_owned(),
            }),
            stock: Some(stock),
            ..CreateProduct::default()
        };
        must(self.products.create(request).await)
    }

    /// (available, reserved) of a product as stored.
    pub async fn stock(&self, product_id: &ProductId) -> (i64, i64) {
        let product = must(self.products.find(product_id).await)
            .unwrap_or_else(|| panic!("no product {product_id}"));
        (product.available, product.reserved)
    }

    // Orders.

    pub async fn place(
        &self,
        user: &User,
        address_id: &AddressId,
        lines: &[(&str, i64)],
    ) -> Result<Order> {
        let request = PlaceOrder {
            items: Some(
                lines
                    .iter()
                    .map(|(product_id, quantity)| LineRequest {
                        product_id: Some((*product_id).to_owned()),
                        quantity: Some(*quantity),
                    })
                    .collect(),
            ),
            shipping_address_id: Some(address_id.to_string()),
        };
        self.orders.place(user, request, None, CORRELATION).await
    }

    /// A new customer's unpaid order of `quantity` units of a new product at `price`.
    pub async fn unpaid_order(&self, price: i64, quantity: i64) -> (User, Product, Order) {
        let product = self.product(price, 10).await;
        let (user, address) = self.buyer().await;
        let order = must(
            self.place(&user, &address, &[(&product.id, quantity)])
                .await,
        );
        (user, product, order)
    }

    /// A new customer's order of 2 units at 500, paid by card and captured.
    pub async fn paid_order(&self) -> (User, Product, Order) {
        let (user, product, order) = self.unpaid_order(500, 2).await;
        must(self.pay_card(&user, &order.id, CARD_SUCCEEDS).await);
        self.settle_payments().await;
        let order = must(self.orders.load(&order.id).await);
        (user, product, order)
    }

    /// As [`Shop::paid_order`], then shipped and delivered by `admin`.
    pub async fn delivered_order(&self, admin: &User) -> (User, Product, Order) {
        let (user, product, order) = self.paid_order().await;
        let ship = bazaar_shared::orders::requests::ShipRequest::default();
        must(self.orders.ship(admin, &order.id, ship, CORRELATION).await);
        let order = must(self.orders.deliver(admin, &order.id, CORRELATION).await);
        (user, product, order)
    }

    pub async fn pay_card(
        &self,
        user: &User,
        order_id: &OrderId,
        number: &str,
    ) -> Result<PaymentAccepted> {
        let request = PayRequest::Card {
            card_number: Some(number.to_owned()),
            exp_month: Some(12),
            exp_year: Some(2030),
            cvc: Some("123".to_owned()),
        };
        self.orders
            .pay(user, order_id, request, None, CORRELATION)
            .await
    }

    /// The commands waiting on the payments queue, taken off it.
    pub async fn payment_commands(&self) -> Vec<PaymentCommand> {
        self.drain(outbox::PAYMENTS_QUEUE)
            .await
            .iter()
            .map(|body| must(serde_json::from_str(body)))
            .collect()
    }

    /// Runs the payment step over everything on the payments queue; each must succeed.
    pub async fn settle_payments(&self) -> usize {
        let commands = self.payment_commands().await;
        for command in &commands {
            must(self.orders.process_payment(command).await);
        }
        commands.len()
    }

    /// How many unpaid-order slots the customer holds.
    pub async fn unpaid_slots(&self, user_id: &UserId) -> i64 {
        self.number(&keys::unpaid_order_count(user_id), "count")
            .await
    }

    /// The simulated provider's ledger of an order: its charges or refunds (`"CHARGE#"`,
    /// `"REFUND#"`).
    pub async fn ledger(&self, order_id: &OrderId, kind: &str) -> Vec<Item> {
        self.query(&format!("PSP#{order_id}"), kind).await
    }

    // Stored items and queues.

    pub async fn item(&self, key: &bazaar_shared::ports::Key) -> Option<Item> {
        must(self.ports.store.get(key).await)
    }

    /// A number attribute of an item, 0 when the item or the attribute is missing.
    pub async fn number(&self, key: &bazaar_shared::ports::Key, attribute: &str) -> i64 {
        self.item(key)
            .await
            .and_then(|item| item.get(attribute).and_then(Value::as_i64))
            .unwrap_or(0)
    }

    /// Every item of a partition whose sort key starts with `prefix`.
    pub async fn query(&self, partition: &str, prefix: &str) -> Vec<Item> {
        let query = Query::partition(Index::Primary, partition)
            .prefix(prefix)
            .limit(1000);
        must(self.ports.store.query(&query).await).items
    }

    /// The bodies of every message on `queue`, taken off it.
    pub async fn drain(&self, queue: &str) -> Vec<String> {
        let mut bodies = Vec::new();
        loop {
            let received = must(
                self.ports
                    .queue
                    .receive(queue, 10, Duration::from_secs(300))
                    .await,
            );
            if received.is_empty() {
                return bodies;
            }
            for message in received {
                must(
                    self.ports
                        .queue
                        .delete(queue, &message.receipt_handle)
                        .await,
                );
                bodies.push(message.body);
            }
        }
    }

    /// The events on `queue` (other messages dropped), taken off it.
    pub async fn events(&self, queue: &str) -> Vec<Event> {
        self.drain(queue)
            .await
            .iter()
            .filter_map(|body| serde_json::from_str(body).ok())
            .collect()
    }

    // Notifications.

    /// The user's deliveries (their notification log), oldest first.
    pub async fn deliveries(&self, user_id: &UserId) -> Vec<Delivery> {
        self.query(&keys::user_partition(user_id), keys::NOTIFICATION_PREFIX)
            .await
            .into_iter()
            .map(|item| must(Delivery::from_item(item)))
            .collect()
    }

    /// The send commands waiting on the deliveries queue, taken off it.
    pub async fn delivery_commands(&self) -> Vec<DeliverCommand> {
        self.drain(outbox::DELIVERIES_QUEUE)
            .await
            .iter()
            .map(|body| must(serde_json::from_str(body)))
            .collect()
    }

    /// Runs the delivery step over everything on the deliveries queue (first receive).
    pub async fn deliver_queued(&self) -> Vec<delivery::Outcome> {
        let mut outcomes = Vec::new();
        for command in self.delivery_commands().await {
            outcomes.push(must(self.notifications.deliver(&command, 1).await));
        }
        outcomes
    }

    /// Runs the fan-out step over everything on the notifications queue; how many
    /// deliveries it wrote.
    pub async fn fan_out_queued(&self) -> usize {
        let mut written = 0;
        for body in self.drain(outbox::NOTIFICATIONS_QUEUE).await {
            if let bazaar_shared::notifications::fanout::Outcome::FannedOut(count) =
                must(self.notifications.fan_out(&incoming(&body)).await)
            {
                written += count;
            }
        }
        written
    }
}

// The card numbers of the simulated card provider (README, "Payment test inputs").
pub const CARD_SUCCEEDS: &str = bazaar_adapters::payments::CARD_SUCCEEDS;
pub const CARD_DECLINED: &str = bazaar_adapters::payments::CARD_DECLINED;
pub const CARD_TIMES_OUT: &str = bazaar_adapters::payments::CARD_TIMES_OUT;

/// A notifications queue body as the fan-out step receives it.
pub fn incoming(body: &str) -> bazaar_shared::notifications::fanout::Incoming {
    serde_json::from_str(body).expect("a notifications queue body")
}
