//! Ports that open a span around every call, so a trace shows each store, queue, blob,
//! payment provider and notification channel call its operation made, and how long it took.
//!
//! Wrapped around the real adapters only when traces are exported ([`Ports::traced`]).
//! Spans carry the operation and the queue, channel or method, never a key, a body or an
//! address: keys can hold e-mail addresses, and traces leave the process.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tracing::{Instrument, Span};

use crate::Ports;
use crate::ports::notifier::{Notifier, Outgoing, SendError};
use crate::ports::payments::{
    ChargeRequest, GatewayError, Instrument as PaymentInstrument, PaymentDetails, PaymentGateway,
    Receipt, RefundRequest,
};
use crate::ports::{
    Attributes, Blob, BlobError, BlobStore, Cond, Item, Key, Notifiers, Page, PaymentGateways,
    PresignedRequest, Query, Queue, QueueError, ReceivedMessage, Store, StoreError, TxOp, Update,
};
use crate::trace::SPAN_TARGET;

/// A client span named `name` (the `tracing` name is fixed; `otel.name` is the trace's).
fn call(name: &'static str) -> Span {
    tracing::info_span!(target: SPAN_TARGET, "call", otel.name = name, otel.kind = "client")
}

/// A client span for one queue, channel or payment method (`peer`).
fn call_on(name: &'static str, peer: &str) -> Span {
    tracing::info_span!(
        target: SPAN_TARGET,
        "call",
        otel.name = name,
        otel.kind = "client",
        peer,
    )
}

/// `span()` when called within a span, else no span (so no trace of its own).
fn within_operation(span: impl FnOnce() -> Span) -> Span {
    if Span::current().is_none() {
        Span::none()
    } else {
        span()
    }
}

impl Ports {
    /// The same ports, each call inside a span.
    pub fn traced(self) -> Ports {
        Ports {
            store: Arc::new(TracedStore(self.store)),
            queue: Arc::new(TracedQueue(self.queue)),
            blobs: Arc::new(TracedBlobs(self.blobs)),
            clock: self.clock,
            ids: self.ids,
            payments: PaymentGateways {
                card: traced_gateway(self.payments.card, "card"),
                paypal: traced_gateway(self.payments.paypal, "paypal"),
                crypto: traced_gateway(self.payments.crypto, "crypto"),
            },
            notifiers: Notifiers {
                email: traced_notifier(self.notifiers.email, "email"),
                sms: traced_notifier(self.notifiers.sms, "sms"),
                push: traced_notifier(self.notifiers.push, "push"),
                slack: traced_notifier(self.notifiers.slack, "slack"),
                webhook: traced_notifier(self.notifiers.webhook, "webhook"),
            },
            shards: self.shards,
        }
    }
}

struct TracedStore(Arc<dyn Store>);

#[async_trait]
impl Store for TracedStore {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        self.0.get(key).instrument(call("store get")).await
    }

    async fn put(&self, item: Item, cond: Cond) -> Result<(), StoreError> {
        self.0.put(item, cond).instrument(call("store put")).await
    }

    async fn update(
        &self,
        key: &Key,
        updates: Vec<Update>,
        cond: Cond,
    ) -> Result<Item, StoreError> {
        self.0
            .update(key, updates, cond)
            .instrument(call("store update"))
            .await
    }

    async fn delete(&self, key: &Key, cond: Cond) -> Result<(), StoreError> {
        self.0
            .delete(key, cond)
            .instrument(call("store delete"))
            .await
    }

    async fn transact(&self, ops: Vec<TxOp>) -> Result<(), StoreError> {
        self.0
            .transact(ops)
            .instrument(call("store transact"))
            .await
    }

    async fn query(&self, query: &Query) -> Result<Page, StoreError> {
        self.0.query(query).instrument(call("store query")).await
    }

    async fn get_many(&self, keys: &[Key]) -> Result<Vec<Item>, StoreError> {
        self.0
            .get_many(keys)
            .instrument(call("store get_many"))
            .await
    }
}

struct TracedQueue(Arc<dyn Queue>);

#[async_trait]
impl Queue for TracedQueue {
    async fn send(
        &self,
        queue: &str,
        body: &str,
        attributes: &Attributes,
    ) -> Result<String, QueueError> {
        let span = call_on("queue send", queue);
        self.0.send(queue, body, attributes).instrument(span).await
    }

    async fn receive(
        &self,
        queue: &str,
        max: usize,
        visibility: Duration,
    ) -> Result<Vec<ReceivedMessage>, QueueError> {
        // A poll (the local server's workers) is no operation of its own: traced only
        // inside one.
        let span = within_operation(|| call_on("queue receive", queue));
        self.0
            .receive(queue, max, visibility)
            .instrument(span)
            .await
    }

    async fn delete(&self, queue: &str, receipt_handle: &str) -> Result<(), QueueError> {
        let span = within_operation(|| call_on("queue delete", queue));
        self.0.delete(queue, receipt_handle).instrument(span).await
    }
}

struct TracedBlobs(Arc<dyn BlobStore>);

#[async_trait]
impl BlobStore for TracedBlobs {
    async fn put(&self, key: &str, body: Vec<u8>, content_type: &str) -> Result<(), BlobError> {
        self.0
            .put(key, body, content_type)
            .instrument(call("blob put"))
            .await
    }

    async fn get(&self, key: &str) -> Result<Option<Blob>, BlobError> {
        self.0.get(key).instrument(call("blob get")).await
    }

    async fn get_range(
        &self,
        key: &str,
        start: u64,
        len: u64,
    ) -> Result<Option<Vec<u8>>, BlobError> {
        self.0
            .get_range(key, start, len)
            .instrument(call("blob get_range"))
            .await
    }

    async fn presign_put(
        &self,
        key: &str,
        content_type: &str,
        content_length: Option<u64>,
        expires_in: Duration,
    ) -> Result<PresignedRequest, BlobError> {
        let presigned = self
            .0
            .presign_put(key, content_type, content_length, expires_in);
        presigned.instrument(call("blob presign_put")).await
    }

    fn public_url(&self, key: &str) -> String {
        self.0.public_url(key)
    }

    async fn presign_get(
        &self,
        key: &str,
        expires_in: Duration,
    ) -> Result<PresignedRequest, BlobError> {
        self.0
            .presign_get(key, expires_in)
            .instrument(call("blob presign_get"))
            .await
    }
}

struct TracedGateway {
    inner: Arc<dyn PaymentGateway>,
    method: &'static str,
}

fn traced_gateway(inner: Arc<dyn PaymentGateway>, method: &'static str) -> Arc<dyn PaymentGateway> {
    Arc::new(TracedGateway { inner, method })
}

#[async_trait]
impl PaymentGateway for TracedGateway {
    fn tokenize(&self, details: &PaymentDetails) -> Result<PaymentInstrument, GatewayError> {
        call_on("payment tokenize", self.method).in_scope(|| self.inner.tokenize(details))
    }

    async fn charge(&self, request: &ChargeRequest) -> Result<Receipt, GatewayError> {
        let span = call_on("payment charge", self.method);
        self.inner.charge(request).instrument(span).await
    }

    async fn refund(&self, request: &RefundRequest) -> Result<Receipt, GatewayError> {
        let span = call_on("payment refund", self.method);
        self.inner.refund(request).instrument(span).await
    }
}

struct TracedNotifier {
    inner: Arc<dyn Notifier>,
    channel: &'static str,
}

fn traced_notifier(inner: Arc<dyn Notifier>, channel: &'static str) -> Arc<dyn Notifier> {
    Arc::new(TracedNotifier { inner, channel })
}

#[async_trait]
impl Notifier for TracedNotifier {
    async fn send(&self, message: &Outgoing) -> Result<(), SendError> {
        let span = call_on("channel send", self.channel);
        self.inner.send(message).instrument(span).await
    }
}
