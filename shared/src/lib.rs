//! Bazaar's domain: what the shop is and does, independent of where it runs.
//!
//! Everything outside the process (the state store, queues, blob storage, the clock, id
//! generation) is reached through the traits in [`ports`]; the `bazaar-adapters` crate
//! implements them for AWS and for the embedded, on-disk backend. Nothing here names an AWS type.

pub mod auth;
pub mod catalogue;
pub mod commit;
pub mod context;
pub mod counter;
pub mod digest;
pub mod entity;
pub mod error;
pub mod events;
pub mod idempotency;
pub mod ids;
pub mod imports;
pub mod keys;
pub mod metrics;
pub mod money;
pub mod notifications;
pub mod orders;
pub mod outbox;
pub mod pagination;
pub mod ports;
pub mod ratelimit;
pub mod settings;
pub mod shards;
pub mod trace;
pub mod users;
pub mod validation;

pub use context::Ports;
pub use error::{Error, FieldError};
