//! Blob storage, with S3's semantics: objects by key, and presigned URLs that let a client
//! upload or download one object directly, for a limited time, without credentials.

use std::time::Duration;

use async_trait::async_trait;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blob {
    pub body: Vec<u8>,
    pub content_type: String,
}

/// A request a client may make without credentials until it expires.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PresignedRequest {
    pub method: &'static str,
    pub url: String,
    /// Headers the client must send exactly as given (they are part of the signature).
    pub headers: Vec<(String, String)>,
}

#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum BlobError {
    #[error("invalid object key {0:?}")]
    InvalidKey(String),
    #[error("blob storage unavailable: {0}")]
    Unavailable(String),
}

#[async_trait]
pub trait BlobStore: Send + Sync {
    async fn put(&self, key: &str, body: Vec<u8>, content_type: &str) -> Result<(), BlobError>;

    async fn get(&self, key: &str) -> Result<Option<Blob>, BlobError>;

    /// Up to `len` bytes of the object from byte `start` (S3's ranged `GetObject`), so that a
    /// large object can be streamed in bounded memory: `None` when there is no such object,
    /// an empty vector at or past its end.
    async fn get_range(
        &self,
        key: &str,
        start: u64,
        len: u64,
    ) -> Result<Option<Vec<u8>>, BlobError>;

    /// A URL through which a client can upload `key` with this content type and, when given,
    /// exactly this many bytes (the length is part of the signature, so a larger upload is
    /// refused by the store itself).
    async fn presign_put(
        &self,
        key: &str,
        content_type: &str,
        content_length: Option<u64>,
        expires_in: Duration,
    ) -> Result<PresignedRequest, BlobError>;

    /// The public address an object will be served at (a CDN in front of the bucket, or the
    /// local server's `/assets/`), for objects meant to be public such as product images.
    fn public_url(&self, key: &str) -> String;

    /// A URL through which a client can download `key`.
    async fn presign_get(
        &self,
        key: &str,
        expires_in: Duration,
    ) -> Result<PresignedRequest, BlobError>;
}

/// Object keys both backends accept: non-empty, at most 1024 bytes, relative, no `..`
/// segments and no control characters (S3 allows more; nothing here needs more).
pub fn validate_key(key: &str) -> Result<(), BlobError> {
    let bad = key.is_empty()
        || key.len() > 1024
        || key.starts_with('/')
        || key
            .split('/')
            .any(|segment| segment.is_empty() || segment == "." || segment == "..")
        || key.chars().any(char::is_control);
    if bad {
        Err(BlobError::InvalidKey(key.to_owned()))
    } else {
        Ok(())
    }
}

/// Everything but RFC 3986's unreserved characters is escaped in a URL path segment.
const PATH_SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The URL path of a key: each segment percent-encoded, the slashes kept.
pub fn url_path(key: &str) -> String {
    key.split('/')
        .map(|segment| percent_encoding::utf8_percent_encode(segment, PATH_SEGMENT).to_string())
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::{url_path, validate_key};

    #[test]
    fn url_paths_escape_all_but_unreserved_characters() {
        assert_eq!(
            url_path("imports/01J/catalogue 1.csv"),
            "imports/01J/catalogue%201.csv"
        );
        assert_eq!(url_path("a+b/c~d_e.f"), "a%2Bb/c~d_e.f");
        assert_eq!(url_path("کالا"), "%DA%A9%D8%A7%D9%84%D8%A7");
    }

    #[test]
    fn keys_cannot_escape_the_store() {
        assert!(validate_key("imports/01J/catalogue 1.csv").is_ok());
        assert!(validate_key("تصاویر/کالا.png").is_ok());
        for bad in ["", "/etc/passwd", "a/../b", "a//b", "..", "a/./b", "a\nb"] {
            assert!(validate_key(bad).is_err(), "{bad:?} accepted");
        }
    }
}
