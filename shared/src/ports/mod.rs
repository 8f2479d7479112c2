//! Ports: the traits through which the domain reaches everything outside the process.
//!
//! Each has two adapters in `bazaar-adapters`: AWS (DynamoDB, SQS, S3) and embedded (SQLite
//! and files under a data directory). Their semantics are the AWS ones, so code written against
//! a port behaves the same on a laptop and in the cloud; one conformance suite checks both.

pub mod blob;
pub mod clock;
pub mod ids;
pub mod notifier;
pub mod payments;
pub mod queue;
pub mod store;
pub mod traced;
pub mod undeclared;

pub use blob::{Blob, BlobError, BlobStore, PresignedRequest};
pub use clock::{Clock, SystemClock};
pub use ids::{IdGenerator, UlidGenerator};
pub use notifier::{Channel, Notifier, Notifiers};
pub use payments::{PaymentGateway, PaymentGateways, PaymentMethod};
pub use queue::{Attributes, Queue, QueueError, ReceivedMessage};
pub use store::{Cond, Index, Item, Key, Page, Query, Store, StoreError, TxOp, Update};
