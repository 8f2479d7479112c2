//! Blob storage on one S3 bucket, with presigned URLs so that clients move large bodies
//! (catalogue imports, product images) directly to and from S3, not through a Lambda.
//!
//! The four calls are plain S3 REST requests ([`client`]) signed with the SDK's signer
//! ([`signing`]); the S3 client itself is only used to create buckets ([`super::provision`]).

mod client;
mod signing;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bazaar_shared::ports::blob::validate_key;
use bazaar_shared::ports::{Blob, BlobError, BlobStore, PresignedRequest};

use client::BucketClient;

/// What S3 reports for an object stored without a content type.
const DEFAULT_CONTENT_TYPE: &str = "application/octet-stream";

/// A [`BlobStore`] backed by one S3 bucket.
#[derive(Clone, Debug)]
pub struct S3Blobs {
    client: Arc<BucketClient>,
    /// Where public objects are served from, without a trailing slash.
    public_base: String,
}

impl S3Blobs {
    /// A store on `bucket`. With an endpoint override (moto, LocalStack) requests use
    /// path-style addressing (`http://host/bucket/key`), since an emulator on `127.0.0.1`
    /// cannot serve virtual-hosted bucket subdomains. Public URLs point at the bucket itself
    /// (`https://{bucket}.s3.amazonaws.com`) unless [`S3Blobs::with_public_base`] names a CDN.
    pub fn new(config: &aws_config::SdkConfig, bucket: impl Into<String>) -> Self {
        let bucket = bucket.into();
        Self {
            client: Arc::new(BucketClient::new(config, &bucket)),
            public_base: format!("https://{bucket}.s3.amazonaws.com"),
        }
    }

    /// Serves public objects (product images) from `url` (a CDN in front of the bucket),
    /// as `{url}/{key}`.
    pub fn with_public_base(mut self, url: String) -> Self {
        self.public_base = url.trim_end_matches('/').to_owned();
        self
    }
}

#[async_trait]
impl BlobStore for S3Blobs {
    async fn put(&self, key: &str, body: Vec<u8>, content_type: &str) -> Result<(), BlobError> {
        validate_key(key)?;
        let length = body.len().to_string();
        let headers = [
            ("content-type", content_type),
            ("content-length", length.as_str()),
            // What the app writes (rendered invoices) is downloaded, never rendered as a page
            // of the bucket's origin, even through a URL that does not ask for an attachment.
            ("content-disposition", "attachment"),
        ];
        let reply = self.client.send("PUT", key, &headers, &body).await?;
        match reply.status {
            200 => Ok(()),
            _ => Err(reply.into_error("PutObject")),
        }
    }

    async fn get(&self, key: &str) -> Result<Option<Blob>, BlobError> {
        validate_key(key)?;
        let reply = self.client.send("GET", key, &[], &[]).await?;
        match reply.status {
            200 => Ok(Some(Blob {
                content_type: reply
                    .content_type
                    .unwrap_or_else(|| DEFAULT_CONTENT_TYPE.to_owned()),
                body: reply.body,
            })),
            404 if reply.xml_error_code() == Some("NoSuchKey") => Ok(None),
            _ => Err(reply.into_error("GetObject")),
        }
    }

    async fn get_range(
        &self,
        key: &str,
        start: u64,
        len: u64,
    ) -> Result<Option<Vec<u8>>, BlobError> {
        validate_key(key)?;
        if len == 0 {
            // No byte range is empty: ask only whether the object exists.
            return self.exists(key).await.map(|found| found.then(Vec::new));
        }
        let end = start.saturating_add(len - 1);
        let range = format!("bytes={start}-{end}");
        let reply = self
            .client
            .send("GET", key, &[("range", range.as_str())], &[])
            .await?;
        match reply.status {
            200 | 206 => Ok(Some(reply.body)),
            404 if reply.xml_error_code() == Some("NoSuchKey") => Ok(None),
            // A range starting at or past the end of the object.
            416 => Ok(Some(Vec::new())),
            _ => Err(reply.into_error("GetObject")),
        }
    }

    async fn presign_put(
        &self,
        key: &str,
        content_type: &str,
        content_length: Option<u64>,
        expires_in: Duration,
    ) -> Result<PresignedRequest, BlobError> {
        validate_key(key)?;
        // Signed, so the upload must declare the content type the server agreed to and,
        // when given, exactly this length: S3 refuses any other.
        let length = content_length.map(|length| length.to_string());
        let mut headers = vec![("content-type", content_type)];
        if let Some(length) = &length {
            headers.push(("content-length", length.as_str()));
        }
        self.client
            .presign("PUT", key, "", &headers, expires_in)
            .await
    }

    fn public_url(&self, key: &str) -> String {
        format!(
            "{}/{}",
            self.public_base,
            bazaar_shared::ports::blob::url_path(key)
        )
    }

    async fn presign_get(
        &self,
        key: &str,
        expires_in: Duration,
    ) -> Result<PresignedRequest, BlobError> {
        validate_key(key)?;
        // A presigned download (an invoice document, an export) is saved, not rendered as a
        // page of the bucket's origin.
        self.client
            .presign(
                "GET",
                key,
                "response-content-disposition=attachment",
                &[],
                expires_in,
            )
            .await
    }
}

impl S3Blobs {
    /// Whether the object exists (`HeadObject`). A 404 to HEAD has no body to tell a missing
    /// key from a missing bucket; both read as "no such object".
    async fn exists(&self, key: &str) -> Result<bool, BlobError> {
        let reply = self.client.send("HEAD", key, &[], &[]).await?;
        match reply.status {
            200 => Ok(true),
            404 => Ok(false),
            _ => Err(reply.into_error("HeadObject")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::moto::Moto;
    use crate::aws::provision;

    /// Runs `curl` (the presigned URL must work for a client without credentials).
    fn curl(args: &[&str]) -> Vec<u8> {
        let output = std::process::Command::new("curl")
            .args(["--silent", "--show-error", "--fail"])
            .args(args)
            .output()
            .expect("run curl");
        assert!(
            output.status.success(),
            "curl failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        output.stdout
    }

    #[tokio::test]
    async fn blob_semantics_hold_on_moto() {
        let moto = Moto::start();
        let config = moto.config().await;
        provision::create_bucket(&config, "bazaar-blobs")
            .await
            .expect("create bucket");
        provision::create_bucket(&config, "bazaar-blobs")
            .await
            .expect("create bucket again");
        let blobs = S3Blobs::new(&config, "bazaar-blobs");

        blobs
            .put("imports/a b.csv", b"sku,price\n".to_vec(), "text/csv")
            .await
            .expect("put");
        let blob = blobs.get("imports/a b.csv").await.expect("get");
        assert_eq!(
            blob,
            Some(Blob {
                body: b"sku,price\n".to_vec(),
                content_type: "text/csv".into()
            })
        );
        assert_eq!(blobs.get("imports/missing.csv").await, Ok(None));
        assert_eq!(
            blobs.get("../etc").await,
            Err(BlobError::InvalidKey("../etc".into()))
        );

        assert_eq!(
            blobs.get_range("imports/a b.csv", 0, 3).await,
            Ok(Some(b"sku".to_vec()))
        );
        assert_eq!(
            blobs.get_range("imports/a b.csv", 4, 100).await,
            Ok(Some(b"price\n".to_vec()))
        );
        assert_eq!(
            blobs.get_range("imports/a b.csv", 10, 5).await,
            Ok(Some(Vec::new())),
            "at the end"
        );
        assert_eq!(
            blobs.get_range("imports/a b.csv", 500, 5).await,
            Ok(Some(Vec::new())),
            "past the end"
        );
        assert_eq!(
            blobs.get_range("imports/a b.csv", 2, 0).await,
            Ok(Some(Vec::new()))
        );
        assert_eq!(blobs.get_range("imports/missing.csv", 0, 5).await, Ok(None));
        assert_eq!(blobs.get_range("imports/missing.csv", 0, 0).await, Ok(None));

        assert_eq!(
            blobs.public_url("products/01J/images/a b.png"),
            "https://bazaar-blobs.s3.amazonaws.com/products/01J/images/a%20b.png"
        );
        assert_eq!(
            blobs
                .clone()
                .with_public_base("https://cdn.example.com/".to_owned())
                .public_url("products/کالا.png"),
            "https://cdn.example.com/products/%DA%A9%D8%A7%D9%84%D8%A7.png"
        );

        let minute = Duration::from_secs(60);
        let upload = blobs
            .presign_put("images/p 1.png", "image/png", None, minute)
            .await
            .expect("presign put");
        assert_eq!(upload.method, "PUT");
        assert_eq!(
            upload.headers,
            vec![("content-type".to_owned(), "image/png".to_owned())]
        );
        let sized = blobs
            .presign_put("images/p 2.png", "image/png", Some(4), minute)
            .await
            .expect("presign a sized put");
        let mut signed = sized.headers.clone();
        signed.sort();
        assert_eq!(
            signed,
            vec![
                ("content-length".to_owned(), "4".to_owned()),
                ("content-type".to_owned(), "image/png".to_owned())
            ]
        );
        assert!(
            sized.url.contains("content-length"),
            "the length is not signed: {}",
            sized.url
        );
        assert!(
            upload
                .url
                .starts_with(&format!("{}/bazaar-blobs/", moto.endpoint)),
            "{}",
            upload.url
        );
        curl(&[
            "-X",
            "PUT",
            "-H",
            "content-type: image/png",
            "--data-binary",
            "PNG!",
            &upload.url,
        ]);
        curl(&[
            "-X",
            "PUT",
            "-H",
            "content-type: image/png",
            "--data-binary",
            "PNG?",
            &sized.url,
        ]);
        assert_eq!(
            blobs.get_range("images/p 2.png", 0, 10).await,
            Ok(Some(b"PNG?".to_vec()))
        );
        let uploaded = blobs.get("images/p 1.png").await.expect("get upload");
        assert_eq!(
            uploaded,
            Some(Blob {
                body: b"PNG!".to_vec(),
                content_type: "image/png".into()
            })
        );

        let download = blobs
            .presign_get("images/p 1.png", minute)
            .await
            .expect("presign get");
        assert_eq!((download.method, download.headers.len()), ("GET", 0));
        assert_eq!(curl(&[&download.url]), b"PNG!");
        assert!(
            blobs
                .presign_get("x", Duration::from_secs(8 * 86_400))
                .await
                .is_err()
        );
    }
}
