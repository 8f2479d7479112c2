//! Stand-ins for the ports a function does not declare in its catalogue entry. A deployed
//! function builds (and links) only the adapters it declares; should it reach for another,
//! the call fails with an error naming the port, rather than a client being built behind the
//! catalogue's back. The catalogue's declarations are checked against each function's
//! permissions in SAM and Terraform, which would refuse the call on AWS anyway.

use std::time::Duration;

use async_trait::async_trait;

use crate::ports::notifier::{Notifier, Outgoing, SendError};
use crate::ports::{
    Attributes, Blob, BlobError, BlobStore, PresignedRequest, Queue, QueueError, ReceivedMessage,
};

fn refused(port: &str) -> String {
    tracing::error!(port, "this function does not declare the port it just used");
    format!("this function does not declare the {port} port")
}

/// In place of the queues.
pub struct UndeclaredQueue;

#[async_trait]
impl Queue for UndeclaredQueue {
    async fn send(&self, _: &str, _: &str, _: &Attributes) -> Result<String, QueueError> {
        Err(QueueError::Unavailable(refused("queue")))
    }

    async fn receive(
        &self,
        _: &str,
        _: usize,
        _: Duration,
    ) -> Result<Vec<ReceivedMessage>, QueueError> {
        Err(QueueError::Unavailable(refused("queue")))
    }

    async fn delete(&self, _: &str, _: &str) -> Result<(), QueueError> {
        Err(QueueError::Unavailable(refused("queue")))
    }
}

/// In place of blob storage.
pub struct UndeclaredBlobs;

#[async_trait]
impl BlobStore for UndeclaredBlobs {
    async fn put(&self, _: &str, _: Vec<u8>, _: &str) -> Result<(), BlobError> {
        Err(BlobError::Unavailable(refused("blobs")))
    }

    async fn get(&self, _: &str) -> Result<Option<Blob>, BlobError> {
        Err(BlobError::Unavailable(refused("blobs")))
    }

    async fn get_range(&self, _: &str, _: u64, _: u64) -> Result<Option<Vec<u8>>, BlobError> {
        Err(BlobError::Unavailable(refused("blobs")))
    }

    async fn presign_put(
        &self,
        _: &str,
        _: &str,
        _: Option<u64>,
        _: Duration,
    ) -> Result<PresignedRequest, BlobError> {
        Err(BlobError::Unavailable(refused("blobs")))
    }

    fn public_url(&self, _: &str) -> String {
        refused("blobs");
        String::new()
    }

    async fn presign_get(&self, _: &str, _: Duration) -> Result<PresignedRequest, BlobError> {
        Err(BlobError::Unavailable(refused("blobs")))
    }
}

/// In place of every delivery channel.
pub struct UndeclaredNotifier;

#[async_trait]
impl Notifier for UndeclaredNotifier {
    async fn send(&self, _: &Outgoing) -> Result<(), SendError> {
        Err(SendError::Transient(refused("notifiers")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_call_is_refused_by_name() {
        let sent = UndeclaredQueue
            .send("payments", "{}", &Attributes::new())
            .await;
        assert!(sent.is_err_and(|error| error.to_string().contains("queue port")));
        let read = UndeclaredBlobs.get("imports/a.csv").await;
        assert!(read.is_err_and(|error| error.to_string().contains("blobs port")));
        assert_eq!(UndeclaredBlobs.public_url("products/a.png"), "");
    }
}
