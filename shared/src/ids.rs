//! Typed ids: one type per kind of entity, so that an order id can never be passed where a
//! user id is expected, and so that an id from outside is checked once, where it enters.
//!
//! Every id the system makes is a ULID (see [`crate::ports::ids`]): 26 characters of
//! Crockford base32. Ids reach the domain in three ways, each with its own constructor:
//! - **made here**: `ports.ids.fresh()` takes a fresh id of the kind asked for from the id port;
//! - **from a client** (a path segment): [`TypedId::parse`] accepts only the ULID shape and
//!   answers anything else with the entity's `NotFound`, the answer the same id would get if it
//!   were well formed but unknown. A malformed id names nothing, so 404 is the truth, and the
//!   answer does not tell a client which ids are well formed. (The HTTP edge has already
//!   refused, with a 400, a segment too long or with control characters to be any key.) No
//!   store read is spent on an id that cannot exist;
//! - **written by the system itself** (stored items, queue messages, signed tokens, request
//!   bodies whose ids are looked up and answered "unknown" when absent): serde and
//!   [`OrderId::trusted`] take the string as it is. Checking there would change no answer
//!   (an unknown and a malformed id are both absent) and would make old data unreadable if
//!   the id format ever changed.
//!
//! The serde form is the bare string, so no JSON document or stored item changes shape.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// What every typed id can do; generic code (the HTTP path extractor) needs only this.
pub trait TypedId: Sized + fmt::Display {
    /// What the entity is called in its `NotFound` error.
    const KIND: &'static str;

    /// The id a client sent, if it has the shape of an id this system makes; otherwise the
    /// entity's `NotFound`.
    fn parse(raw: &str) -> Result<Self>;

    /// The id as text, for keys and messages.
    fn as_str(&self) -> &str;

    /// An id the system made or wrote itself; see [`OrderId::trusted`].
    fn from_trusted(raw: String) -> Self;
}

/// Whether `raw` has the shape of a ULID as the id port writes it (upper-case Crockford
/// base32, 26 characters, the first at most `7` so the value fits 128 bits).
pub fn is_ulid(raw: &str) -> bool {
    raw.len() == 26
        && raw.as_bytes()[0] <= b'7'
        && raw
            .bytes()
            .all(|byte| matches!(byte, b'0'..=b'9' | b'A'..=b'H' | b'J' | b'K' | b'M' | b'N' | b'P'..=b'T' | b'V'..=b'Z'))
}

/// Whether `raw` has the shape of a notification id: the ULID of the message it delivers,
/// alone (a proof-of-ownership code) or followed by `-` and what tells its recipients apart
/// (`inbox`, or a hex digest of the user, medium and target).
pub fn is_notification_id(raw: &str) -> bool {
    let (message, recipient) = match raw.split_once('-') {
        Some((message, recipient)) => (message, Some(recipient)),
        None => (raw, None),
    };
    is_ulid(message)
        && recipient.is_none_or(|recipient| {
            (1..=64).contains(&recipient.len())
                && recipient.bytes().all(|byte| byte.is_ascii_alphanumeric())
        })
}

macro_rules! typed_ids {
    ($($(#[$doc:meta])* $name:ident => $kind:literal, $shape:path;)*) => {$(
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// An id the system wrote itself (a stored item, a queue message, a signed token) or
            /// one that is only ever looked up; see the module docs for why it is not checked.
            pub fn trusted(raw: impl Into<String>) -> Self {
                Self(raw.into())
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TypedId for $name {
            const KIND: &'static str = $kind;

            fn parse(raw: &str) -> Result<Self> {
                if $shape(raw) {
                    Ok(Self(raw.to_owned()))
                } else {
                    Err(Error::NotFound($kind))
                }
            }

            fn as_str(&self) -> &str {
                &self.0
            }

            fn from_trusted(raw: String) -> Self {
                Self(raw)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        /// Reading an id as text is always safe (keys, messages, logs); only the way back in
        /// is guarded.
        impl std::ops::Deref for $name {
            type Target = str;

            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl From<&$name> for serde_json::Value {
            fn from(id: &$name) -> serde_json::Value {
                serde_json::Value::String(id.0.clone())
            }
        }

        impl From<$name> for serde_json::Value {
            fn from(id: $name) -> serde_json::Value {
                serde_json::Value::String(id.0)
            }
        }
    )*};
}

typed_ids! {
    /// A customer's or an administrator's account.
    UserId => "user", is_ulid;
    /// One entry of a user's address book.
    AddressId => "address", is_ulid;
    /// A catalogue product.
    ProductId => "product", is_ulid;
    /// A catalogue category.
    CategoryId => "category", is_ulid;
    /// An order.
    OrderId => "order", is_ulid;
    /// One payment attempt on an order.
    PaymentId => "payment attempt", is_ulid;
    /// One refund of an order.
    RefundId => "refund", is_ulid;
    /// A bulk product import.
    ImportId => "import", is_ulid;
    /// One notification to one user.
    NotificationId => "notification", is_notification_id;
    /// A user's subscription to an event type.
    SubscriptionId => "subscription", is_ulid;
    /// A domain event (and the message carrying it).
    EventId => "event", is_ulid;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::UlidGenerator;

    #[test]
    fn generated_ids_parse_back() {
        let ids: &dyn crate::ports::IdGenerator = &UlidGenerator::default();
        let id: OrderId = ids.fresh();
        assert_eq!(
            OrderId::parse(id.as_str()).expect("a generated id parses"),
            id
        );
    }

    #[test]
    fn malformed_ids_are_not_found_for_their_kind() {
        for raw in [
            "",
            "missing",
            "01ARZ3NDEKTSV4RRFFQ69G5FA",   // 25 characters
            "01ARZ3NDEKTSV4RRFFQ69G5FAVV", // 27
            "01arz3ndektsv4rrffq69g5fav",  // lower case: never written
            "01ARZ3NDEKTSV4RRFFQ69G5FAI",  // I is not Crockford
            "81ARZ3NDEKTSV4RRFFQ69G5FAV",  // over 128 bits
            "01ARZ3NDEKTSV4RRFFQ69G5F/V",
        ] {
            match ProductId::parse(raw) {
                Err(Error::NotFound(kind)) => assert_eq!(kind, "product", "{raw:?}"),
                other => panic!("{raw:?} parsed as {other:?}"),
            }
        }
        assert!(ProductId::parse("01ARZ3NDEKTSV4RRFFQ69G5FAV").is_ok());
    }

    #[test]
    fn notification_ids_name_their_message_and_recipient() {
        for good in [
            "01ARZ3NDEKTSV4RRFFQ69G5FAV",
            "01ARZ3NDEKTSV4RRFFQ69G5FAV-inbox",
            "01ARZ3NDEKTSV4RRFFQ69G5FAV-0123456789abcdef",
        ] {
            assert!(NotificationId::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "01ARZ3NDEKTSV4RRFFQ69G5FAV-",
            "01ARZ3NDEKTSV4RRFFQ69G5FAV-a-b",
            "missing-inbox",
            &format!("01ARZ3NDEKTSV4RRFFQ69G5FAV-{}", "a".repeat(65)),
        ] {
            assert!(
                matches!(
                    NotificationId::parse(bad),
                    Err(Error::NotFound("notification"))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn ids_serialise_as_their_bare_string() {
        let id = UserId::trusted("01ARZ3NDEKTSV4RRFFQ69G5FAV");
        let json = serde_json::to_value(&id).expect("serialises");
        assert_eq!(json, serde_json::json!("01ARZ3NDEKTSV4RRFFQ69G5FAV"));
        let back: UserId = serde_json::from_value(json).expect("deserialises");
        assert_eq!(back, id);
    }
}
