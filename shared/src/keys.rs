//! The single-table key design: one function per kind of item, so every key in the system is
//! spelled in one place. `docs/data-model.md` lists the access patterns they serve.

use crate::ids::{
    AddressId, CategoryId, EventId, ImportId, NotificationId, OrderId, PaymentId, ProductId,
    RefundId, SubscriptionId, UserId,
};
use crate::ports::Key;
use crate::shards::Shards;

/// A user's profile: `USER#<id>` / `PROFILE`.
pub fn user(user_id: &UserId) -> Key {
    Key::new(user_partition(user_id), "PROFILE")
}

/// The partition holding a user's profile and everything owned by the user.
pub fn user_partition(user_id: &UserId) -> String {
    format!("USER#{user_id}")
}

/// The claim that makes an e-mail address unique and maps it to its user.
pub fn email_claim(email: &str) -> Key {
    Key::new(format!("EMAIL#{email}"), "CLAIM")
}

/// The claim that makes a username unique.
pub fn username_claim(username: &str) -> Key {
    Key::new(format!("USERNAME#{username}"), "CLAIM")
}

/// The GSI1 partition that lists every user, oldest id first; sharded (see [`crate::shards`]).
pub const USERS_INDEX_PARTITION: &str = "USERS";

/// Where a user is listed in the users index: the user's shard of [`USERS_INDEX_PARTITION`].
pub fn users_index(shards: Shards, user_id: &UserId) -> Key {
    Key::new(
        shards.partition(USERS_INDEX_PARTITION, user_id),
        users_index_sort(user_id),
    )
}

/// The GSI1 sort key of a user in [`USERS_INDEX_PARTITION`].
pub fn users_index_sort(user_id: &UserId) -> String {
    format!("USER#{user_id}")
}

/// Sort-key prefix of a user's addresses, in the user's partition.
pub const ADDRESS_PREFIX: &str = "ADDRESS#";

/// One address in a user's address book.
pub fn address(user_id: &UserId, address_id: &AddressId) -> Key {
    Key::new(
        user_partition(user_id),
        format!("{ADDRESS_PREFIX}{address_id}"),
    )
}

/// The partition of events written but not yet handed to their queue; sharded.
pub const OUTBOX_PARTITION: &str = "OUTBOX";

/// One pending message in the outbox: one per destination queue, in id (= time) order within
/// the message's shard.
pub fn outbox(shards: Shards, message_id: &str, queue: &str) -> Key {
    Key::new(
        shards.partition(OUTBOX_PARTITION, message_id),
        format!("EVENT#{message_id}#{queue}"),
    )
}

/// The marker a consumer writes when it has handled an event, making redelivery harmless.
pub fn consumed(consumer: &str, event_id: &str) -> Key {
    Key::new(format!("EVENT#{event_id}"), format!("CONSUMED#{consumer}"))
}

/// Sort-key prefix of a user's notifications, in the user's partition.
pub const NOTIFICATION_PREFIX: &str = "NOTIFICATION#";

/// One notification sent (or to be sent) to a user.
pub fn notification(user_id: &UserId, notification_id: &NotificationId) -> Key {
    Key::new(
        user_partition(user_id),
        format!("{NOTIFICATION_PREFIX}{notification_id}"),
    )
}

/// A product: `PRODUCT#<id>` / `PRODUCT`.
pub fn product(product_id: &ProductId) -> Key {
    Key::new(product_partition(product_id), "PRODUCT")
}

/// The partition of a product and its stock history.
pub fn product_partition(product_id: &ProductId) -> String {
    format!("PRODUCT#{product_id}")
}

/// Sort-key prefix of a product's stock transitions (out of stock, back in stock).
pub const STOCK_EVENT_PREFIX: &str = "STOCK#";

/// One recorded stock transition of a product.
pub fn stock_event(product_id: &ProductId, event_id: &EventId) -> Key {
    Key::new(
        product_partition(product_id),
        format!("{STOCK_EVENT_PREFIX}{event_id}"),
    )
}

/// The claim that makes a SKU unique (case-insensitively) and maps it to its product.
pub fn sku_claim(sku: &str) -> Key {
    Key::new(format!("SKU#{}", sku.to_uppercase()), "CLAIM")
}

/// A category: `CATEGORY#<id>` / `CATEGORY`.
pub fn category(category_id: &CategoryId) -> Key {
    Key::new(format!("CATEGORY#{category_id}"), "CATEGORY")
}

/// The claim that makes a category slug unique and maps it to its category.
pub fn category_slug_claim(slug: &str) -> Key {
    Key::new(format!("CATSLUG#{slug}"), "CLAIM")
}

/// The GSI1 partition listing every category, by slug.
pub const CATEGORIES_INDEX_PARTITION: &str = "CATEGORIES";

/// A listing partition: the products of one scope (`ALL` or `CAT#<id>`) in one order
/// (`NEWEST`, `PRICE`, `NAME`). Each listed product has one entry in each of its partitions.
pub fn listing_partition(scope: &str, order: &str) -> String {
    format!("LIST#{scope}#{order}")
}

/// The partition of the search term index: one entry per product containing the word.
pub fn term_partition(token: &str) -> String {
    format!("TERM#{token}")
}

/// A catalogue import: `IMPORT#<id>` / `IMPORT`.
pub fn import(import_id: &ImportId) -> Key {
    Key::new(format!("IMPORT#{import_id}"), "IMPORT")
}

/// An order: `ORDER#<id>` / `ORDER`. Its partition also holds its history, payment attempts,
/// refunds and invoice, so that tracking is one query.
pub fn order(order_id: &OrderId) -> Key {
    Key::new(order_partition(order_id), "ORDER")
}

pub fn order_partition(order_id: &OrderId) -> String {
    format!("ORDER#{order_id}")
}

/// The GSI1 partition listing one user's orders, by order id (= time).
pub fn user_orders_partition(user_id: &UserId) -> String {
    format!("ORDERS#{user_id}")
}

/// The partition listing every order (admins), one entry per order, by id (= time); sharded.
pub const ALL_ORDERS_PARTITION: &str = "ORDERS";

pub fn all_orders_entry(shards: Shards, order_id: &OrderId) -> Key {
    Key::new(
        shards.partition(ALL_ORDERS_PARTITION, order_id),
        order_id.as_str(),
    )
}

/// Sort-key prefix of an order's history entries.
pub const HISTORY_PREFIX: &str = "HISTORY#";

/// The history entry written by the change that produced `version`.
pub fn order_history(order_id: &OrderId, version: u64) -> Key {
    Key::new(
        order_partition(order_id),
        format!("{HISTORY_PREFIX}{version:06}"),
    )
}

pub fn payment_attempt(order_id: &OrderId, payment_id: &PaymentId) -> Key {
    Key::new(order_partition(order_id), format!("PAYMENT#{payment_id}"))
}

pub fn refund(order_id: &OrderId, refund_id: &RefundId) -> Key {
    Key::new(order_partition(order_id), format!("REFUND#{refund_id}"))
}

pub fn invoice(order_id: &OrderId) -> Key {
    Key::new(order_partition(order_id), "INVOICE")
}

/// The counter behind gap-free invoice numbers: one per year, or per year and series when
/// there are several series.
pub fn invoice_counter(year: i32, series: Option<u16>) -> Key {
    match series {
        None => Key::new(format!("COUNTER#INVOICE#{year}"), "COUNTER"),
        Some(series) => Key::new(format!("COUNTER#INVOICE#{year}#S{series:02}"), "COUNTER"),
    }
}

/// The partition of reservation deadlines, read by the expiry schedule up to "now"; sharded.
pub const EXPIRY_PARTITION: &str = "EXPIRY";

/// The deadline entry of an unpaid order, in the order's shard: sorted by time, then order.
pub fn expiry(shards: Shards, expires_at: i64, order_id: &OrderId) -> Key {
    Key::new(
        shards.partition(EXPIRY_PARTITION, order_id),
        expiry_sort(expires_at, order_id),
    )
}

pub fn expiry_sort(expires_at: i64, order_id: &str) -> String {
    format!("{:012}#{order_id}", expires_at.max(0))
}

/// A remembered `Idempotency-Key` of one user.
pub fn idempotency(user_id: &UserId, key: &str) -> Key {
    Key::new(format!("IDEMPOTENCY#{user_id}#{key}"), "KEY")
}

/// Sort-key prefix of a user's notification subscriptions, in the user's partition.
pub const SUBSCRIPTION_PREFIX: &str = "SUBSCRIPTION#";

pub fn subscription(user_id: &UserId, subscription_id: &SubscriptionId) -> Key {
    Key::new(
        user_partition(user_id),
        format!("{SUBSCRIPTION_PREFIX}{subscription_id}"),
    )
}

/// The claim that makes (channel, target) unique among one user's subscriptions; `digest`
/// is a hash of the normalised target.
pub fn subscription_claim(user_id: &UserId, channel: &str, digest: &str) -> Key {
    Key::new(
        user_partition(user_id),
        format!("SUBCLAIM#{channel}#{digest}"),
    )
}

/// How many subscriptions a user holds (bounded by a conditional add).
pub fn subscription_count(user_id: &UserId) -> Key {
    Key::new(user_partition(user_id), "SUBCOUNT")
}

/// The partition listing every subscription to one event type: what an event without a
/// user (out of stock, import finished) and an admin's broadcast read; sharded.
pub fn subscribers_partition(event_type: &str) -> String {
    format!("SUBSCRIBERS#{event_type}")
}

/// Where versions before sharding listed a subscription among its event type's subscribers
/// (read by the fan-out, deleted by unsubscribing).
pub fn unsharded_subscriber_entry(event_type: &str, subscription_id: &SubscriptionId) -> Key {
    Key::new(subscribers_partition(event_type), subscription_id.as_str())
}

/// A subscription's entry in its shard of its event type's subscribers.
pub fn subscriber_entry(shards: Shards, event_type: &str, subscription_id: &SubscriptionId) -> Key {
    Key::new(
        shards.partition(&subscribers_partition(event_type), subscription_id),
        subscription_id.as_str(),
    )
}

/// The `gsi1` partition listing the imports that are running (`gsi1sk` = the import's id): a
/// run takes an import into it with its lease and takes it out when it finishes, so the
/// sweeper finds stranded imports without a scan.
pub const RUNNING_IMPORTS_PARTITION: &str = "IMPORTS_RUNNING";
/// How many unpaid orders a customer holds (bounded by a conditional add when placing,
/// given back when an order is paid, cancelled or expires).
pub fn unpaid_order_count(user_id: &UserId) -> Key {
    Key::new(user_partition(user_id), "UNPAIDCOUNT")
}

/// Requests of one client (an address, or an IPv6 /64) under one named rate limit in one
/// fixed window.
pub fn rate_limit(limit: &str, client: &str, window: i64) -> Key {
    Key::new(format!("RATE#{limit}#{client}"), format!("WINDOW#{window}"))
}

/// Failed-login back-off of one account (by normalised e-mail) from one client.
pub fn login_backoff(email: &str, client: &str) -> Key {
    Key::new(format!("LOGIN#{email}"), format!("CLIENT#{client}"))
}

/// One send-budget counter for one UTC day: `scope` is `ACCOUNT` (by user id) or `TARGET`
/// (by a digest of the channel and target, never the plain address or number).
pub fn send_budget(scope: &str, subject: &str, day: i64) -> Key {
    Key::new(format!("BUDGET#{scope}#{subject}"), format!("DAY#{day}"))
}

/// A user's pending proof-of-ownership code: for the account e-mail (`subject` = `EMAIL`) or
/// for one subscription (`SUBSCRIPTION#<id>`). Only its keyed digest is stored.
pub fn verification_code(user_id: &UserId, subject: &str) -> Key {
    Key::new(user_partition(user_id), format!("VERIFY#{subject}"))
}

/// How many codes and test messages went to one target (across users) in one hour window;
/// `digest` is a hash of the normalised target.
pub fn verification_sends(channel: &str, digest: &str, window: i64) -> Key {
    Key::new(
        format!("VERIFYSENDS#{channel}#{digest}"),
        format!("WINDOW#{window}"),
    )
}
