//! The single-table key design: one function per kind of item, so every key in the system is
//! spelled in one place. `docs/data-model.md` lists the access patterns they serve.

use crate::ports::Key;

/// A user's profile: `USER#<id>` / `PROFILE`.
pub fn user(user_id: &str) -> Key {
    Key::new(user_partition(user_id), "PROFILE")
}

/// The partition holding a user's profile and everything owned by the user.
pub fn user_partition(user_id: &str) -> String {
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

/// The GSI1 partition that lists every user, newest id last.
pub const USERS_INDEX_PARTITION: &str = "USERS";

/// The GSI1 sort key of a user in [`USERS_INDEX_PARTITION`].
pub fn users_index_sort(user_id: &str) -> String {
    format!("USER#{user_id}")
}

/// Sort-key prefix of a user's addresses, in the user's partition.
pub const ADDRESS_PREFIX: &str = "ADDRESS#";

/// One address in a user's address book.
pub fn address(user_id: &str, address_id: &str) -> Key {
    Key::new(
        user_partition(user_id),
        format!("{ADDRESS_PREFIX}{address_id}"),
    )
}

/// Failed-login counter of one account (by normalised e-mail) in one time window.
pub fn login_failures(email: &str, window: i64) -> Key {
    Key::new(format!("LOGIN#{email}"), format!("WINDOW#{window}"))
}

/// The partition of events written but not yet handed to their queue.
pub const OUTBOX_PARTITION: &str = "OUTBOX";

/// One pending event in the outbox.
pub fn outbox(event_id: &str) -> Key {
    Key::new(OUTBOX_PARTITION, format!("EVENT#{event_id}"))
}

/// The marker a consumer writes when it has handled an event, making redelivery harmless.
pub fn consumed(consumer: &str, event_id: &str) -> Key {
    Key::new(format!("EVENT#{event_id}"), format!("CONSUMED#{consumer}"))
}

/// Sort-key prefix of a user's notifications, in the user's partition.
pub const NOTIFICATION_PREFIX: &str = "NOTIFICATION#";

/// One notification sent (or to be sent) to a user.
pub fn notification(user_id: &str, notification_id: &str) -> Key {
    Key::new(
        user_partition(user_id),
        format!("{NOTIFICATION_PREFIX}{notification_id}"),
    )
}

/// A product: `PRODUCT#<id>` / `PRODUCT`.
pub fn product(product_id: &str) -> Key {
    Key::new(product_partition(product_id), "PRODUCT")
}

/// The partition of a product and its stock history.
pub fn product_partition(product_id: &str) -> String {
    format!("PRODUCT#{product_id}")
}

/// Sort-key prefix of a product's stock transitions (out of stock, back in stock).
pub const STOCK_EVENT_PREFIX: &str = "STOCK#";

/// One recorded stock transition of a product.
pub fn stock_event(product_id: &str, event_id: &str) -> Key {
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
pub fn category(category_id: &str) -> Key {
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
pub fn import(import_id: &str) -> Key {
    Key::new(format!("IMPORT#{import_id}"), "IMPORT")
}
