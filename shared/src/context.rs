//! The set of ports a service needs, passed around as one cheap-to-clone value.

use std::sync::Arc;

use crate::ports::{BlobStore, Clock, IdGenerator, Notifiers, PaymentGateways, Queue, Store};
use crate::shards::Shards;

/// Every port, wired once at start-up by whoever runs the domain (a Lambda function, the
/// local server, a test) with the adapters that configuration chose.
#[derive(Clone)]
pub struct Ports {
    pub store: Arc<dyn Store>,
    pub queue: Arc<dyn Queue>,
    pub blobs: Arc<dyn BlobStore>,
    pub clock: Arc<dyn Clock>,
    pub ids: Arc<dyn IdGenerator>,
    pub payments: PaymentGateways,
    pub notifiers: Notifiers,
    /// How many shards each shop-wide partition is spread over (`BAZAAR_WRITE_SHARDS`).
    pub shards: Shards,
}
