//! Blob storage on one S3 bucket, with presigned URLs so that clients move large bodies
//! (catalogue imports, product images) directly to and from S3, not through a Lambda.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::operation::get_object::GetObjectError;
use aws_sdk_s3::operation::head_object::HeadObjectError;
use aws_sdk_s3::presigning::{PresignedRequest as SdkPresigned, PresigningConfig};
use aws_sdk_s3::primitives::ByteStream;
use bazaar_shared::ports::blob::validate_key;

use super::lazy::LazyClient;
use bazaar_shared::ports::{Blob, BlobError, BlobStore, PresignedRequest};

/// What S3 reports for an object stored without a content type.
const DEFAULT_CONTENT_TYPE: &str = "application/octet-stream";

/// A [`BlobStore`] backed by one S3 bucket.
#[derive(Clone, Debug)]
pub struct S3Blobs {
    client: LazyClient<Client>,
    bucket: String,
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
            client: LazyClient::new(config, client),
            public_base: format!("https://{bucket}.s3.amazonaws.com"),
            bucket,
        }
    }

    /// Serves public objects (product images) from `url` (a CDN in front of the bucket),
    /// as `{url}/{key}`.
    pub fn with_public_base(mut self, url: String) -> Self {
        self.public_base = url.trim_end_matches('/').to_owned();
        self
    }
}

/// An S3 client for the shared configuration, path-style when the endpoint is overridden.
pub(crate) fn client(config: &aws_config::SdkConfig) -> Client {
    let s3_config = aws_sdk_s3::config::Builder::from(config)
        .force_path_style(config.endpoint_url().is_some())
        .build();
    Client::from_conf(s3_config)
}

#[async_trait]
impl BlobStore for S3Blobs {
    async fn put(&self, key: &str, body: Vec<u8>, content_type: &str) -> Result<(), BlobError> {
        validate_key(key)?;
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            // What the app writes (rendered invoices) is downloaded, never rendered as a page
            // of the bucket's origin, even through a URL that does not ask for an attachment.
            .content_disposition("attachment")
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<Blob>, BlobError> {
        validate_key(key)?;
        let result = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await;
        let output = match result {
            Ok(output) => output,
            Err(error)
                if matches!(error.as_service_error(), Some(GetObjectError::NoSuchKey(_))) =>
            {
                return Ok(None);
            }
            Err(error) => return Err(unavailable(error)),
        };
        let content_type = output
            .content_type()
            .unwrap_or(DEFAULT_CONTENT_TYPE)
            .to_owned();
        let body = output
            .body
            .collect()
            .await
            .map_err(|error| BlobError::Unavailable(format!("reading {key}: {error}")))?;
        Ok(Some(Blob {
            body: body.into_bytes().to_vec(),
            content_type,
        }))
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
        let result = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .range(format!("bytes={start}-{end}"))
            .send()
            .await;
        let output = match result {
            Ok(output) => output,
            Err(error)
                if matches!(error.as_service_error(), Some(GetObjectError::NoSuchKey(_))) =>
            {
                return Ok(None);
            }
            // A range starting at or past the end of the object (S3 answers 416).
            Err(error) if is_invalid_range(&error) => return Ok(Some(Vec::new())),
            Err(error) => return Err(unavailable(error)),
        };
        let body = output
            .body
            .collect()
            .await
            .map_err(|error| BlobError::Unavailable(format!("reading {key}: {error}")))?;
        Ok(Some(body.into_bytes().to_vec()))
    }

    async fn presign_put(
        &self,
        key: &str,
        content_type: &str,
        content_length: Option<u64>,
        expires_in: Duration,
    ) -> Result<PresignedRequest, BlobError> {
        validate_key(key)?;
        let length = content_length
            .map(|length| {
                i64::try_from(length).map_err(|_| {
                    BlobError::Unavailable(format!("cannot presign an upload of {length} bytes"))
                })
            })
            .transpose()?;
        let presigned = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            // Signed, so the upload must declare the content type the server agreed to and,
            // when given, exactly this length: S3 refuses any other.
            .content_type(content_type)
            .set_content_length(length)
            .presigned(presigning(expires_in)?)
            .await
            .map_err(unavailable)?;
        Ok(convert(&presigned, "PUT"))
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
        let presigned = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            // A presigned download (an invoice document, an export) is saved, not rendered
            // as a page of the bucket's origin.
            .response_content_disposition("attachment")
            .presigned(presigning(expires_in)?)
            .await
            .map_err(unavailable)?;
        Ok(convert(&presigned, "GET"))
    }
}

impl S3Blobs {
    /// Whether the object exists (`HeadObject`).
    async fn exists(&self, key: &str) -> Result<bool, BlobError> {
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(error)
                if matches!(error.as_service_error(), Some(HeadObjectError::NotFound(_))) =>
            {
                Ok(false)
            }
            Err(error) => Err(unavailable(error)),
        }
    }
}

/// Whether S3 refused a ranged read because the range starts at or past the object's end.
fn is_invalid_range(error: &SdkError<GetObjectError, HttpResponse>) -> bool {
    let by_code = error
        .as_service_error()
        .and_then(ProvideErrorMetadata::code)
        == Some("InvalidRange");
    by_code || error.raw_response().map(|raw| raw.status().as_u16()) == Some(416)
}

/// S3 accepts presigned URLs valid for up to a week; a longer `expires_in` is refused.
fn presigning(expires_in: Duration) -> Result<PresigningConfig, BlobError> {
    PresigningConfig::expires_in(expires_in)
        .map_err(|error| BlobError::Unavailable(format!("cannot presign: {error}")))
}

/// The port's form of a presigned request. Its headers are exactly those that were signed
/// (for a PUT: `content-type`), with lower-case names.
fn convert(presigned: &SdkPresigned, method: &'static str) -> PresignedRequest {
    PresignedRequest {
        method,
        url: presigned.uri().to_owned(),
        headers: presigned
            .headers()
            .map(|(name, value)| (name.to_ascii_lowercase(), value.to_owned()))
            .collect(),
    }
}

fn unavailable<E, R>(error: SdkError<E, R>) -> BlobError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    BlobError::Unavailable(DisplayErrorContext(&error).to_string())
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
