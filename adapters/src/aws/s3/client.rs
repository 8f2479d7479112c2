//! The S3 calls the shop makes (PutObject, GetObject, HeadObject and presigned URLs) as plain
//! REST requests, signed by [`super::signing`] and sent through the SDK's default HTTPS
//! connector: the same TLS stack, pool and timeouts as the DynamoDB and SQS clients, without
//! the S3 client's endpoint rules and checksum code (see the README's package sizes).

use std::time::{Duration, SystemTime};

use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use bazaar_shared::ports::{BlobError, PresignedRequest};

use super::signing::{Placement, Unsigned, sign_request};
use crate::aws::signed::{CachedCredentials, Transport, domain_of, http_request, region_of};

pub(super) use crate::aws::signed::Reply;

/// The longest validity S3 accepts for a presigned URL.
const MAX_PRESIGNED: Duration = Duration::from_secs(7 * 24 * 3600);

/// One bucket's REST endpoint with the credentials and connection pool to call it.
pub(super) struct BucketClient {
    /// Where object keys are appended, without a trailing slash.
    base: String,
    region: String,
    credentials: CachedCredentials,
    transport: Transport,
}

impl Reply {
    /// The refusal as the port's error, naming the operation and S3's code and message.
    pub fn into_error(self, operation: &str) -> BlobError {
        let code = self.xml_error_code().unwrap_or("no error code").to_owned();
        BlobError::Unavailable(format!("S3 {operation} answered {} ({code})", self.status))
    }
}

impl std::fmt::Debug for BucketClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BucketClient")
            .field("base", &self.base)
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

impl BucketClient {
    /// A client for `bucket`. With an endpoint override (moto, LocalStack) requests use
    /// path-style addressing (`http://host/bucket/key`), since an emulator on `127.0.0.1`
    /// cannot serve bucket subdomains; on AWS they go to the bucket's regional virtual host.
    pub fn new(config: &aws_config::SdkConfig, bucket: &str) -> Self {
        let region = region_of(config);
        let base = match config.endpoint_url() {
            Some(endpoint) => format!("{}/{bucket}", endpoint.trim_end_matches('/')),
            None => regional_base(bucket, &region),
        };
        Self {
            base,
            region,
            credentials: CachedCredentials::new(config.credentials_provider()),
            transport: Transport::new(config),
        }
    }

    /// The URL of `key` (each path segment percent-encoded).
    pub fn object_url(&self, key: &str) -> String {
        format!(
            "{}/{}",
            self.base,
            bazaar_shared::ports::blob::url_path(key)
        )
    }

    /// Sends a signed request for `key` with `headers` and `body`, trying again after a
    /// dropped connection or an S3 500/503. Any other answer, success or refusal, is returned.
    pub async fn send(
        &self,
        method: &str,
        key: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Reply, BlobError> {
        let url = self.object_url(key);
        self.transport
            .send(&format!("S3 {method}"), || {
                self.signed(method, &url, headers, body)
            })
            .await
            .map_err(BlobError::Unavailable)
    }

    /// A URL through which a client without credentials can send `method` to `key` for
    /// `expires_in`, with `query` added and `headers` signed (the client must send exactly
    /// those).
    pub async fn presign(
        &self,
        method: &'static str,
        key: &str,
        query: &str,
        headers: &[(&str, &str)],
        expires_in: Duration,
    ) -> Result<PresignedRequest, BlobError> {
        if expires_in > MAX_PRESIGNED {
            return Err(BlobError::Unavailable(format!(
                "cannot presign for {} s: S3 accepts at most a week",
                expires_in.as_secs()
            )));
        }
        let mut url = self.object_url(key);
        if !query.is_empty() {
            url = format!("{url}?{query}");
        }
        let credentials = self
            .credentials
            .get()
            .await
            .map_err(BlobError::Unavailable)?;
        let unsigned = Unsigned {
            method,
            url: &url,
            headers,
        };
        let instructions = sign_request(
            &unsigned,
            &credentials,
            &self.region,
            SystemTime::now(),
            Placement::Query { expires_in },
        )?;
        let mut request = http::Request::builder()
            .method(method)
            .uri(&url)
            .body(())
            .map_err(|error| BlobError::Unavailable(format!("cannot presign {url}: {error}")))?;
        instructions.apply_to_request_http1x(&mut request);
        Ok(PresignedRequest {
            method,
            url: request.uri().to_string(),
            headers: headers
                .iter()
                .map(|(name, value)| (name.to_ascii_lowercase(), (*value).to_owned()))
                .collect(),
        })
    }

    /// The request, its signature in its headers.
    async fn signed(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<HttpRequest, String> {
        let credentials = self.credentials.get().await?;
        let instructions = sign_request(
            &Unsigned {
                method,
                url,
                headers,
            },
            &credentials,
            &self.region,
            SystemTime::now(),
            Placement::Headers { payload: body },
        )
        .map_err(|error| match error {
            BlobError::Unavailable(text) | BlobError::InvalidKey(text) => text,
        })?;
        let mut request = http_request(method, url, headers, body)?;
        instructions.apply_to_request_http1x(&mut request);
        HttpRequest::try_from(request).map_err(|error| format!("S3 {method} {url}: {error}"))
    }
}

/// `https://{bucket}.s3.{region}.amazonaws.com`, or path-style on the regional endpoint for
/// a bucket name with dots (no certificate covers a dotted subdomain of it).
fn regional_base(bucket: &str, region: &str) -> String {
    let domain = domain_of(region);
    if bucket.contains('.') {
        format!("https://s3.{region}.{domain}/{bucket}")
    } else {
        format!("https://{bucket}.s3.{region}.{domain}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_addressed_by_their_regional_virtual_host() {
        assert_eq!(
            regional_base("bazaar-assets", "eu-west-1"),
            "https://bazaar-assets.s3.eu-west-1.amazonaws.com"
        );
        assert_eq!(
            regional_base("shop.example.com", "us-east-1"),
            "https://s3.us-east-1.amazonaws.com/shop.example.com"
        );
        assert_eq!(
            regional_base("bazaar", "cn-north-1"),
            "https://bazaar.s3.cn-north-1.amazonaws.com.cn"
        );
    }

    #[test]
    fn an_endpoint_override_is_addressed_path_style() {
        let sdk = aws_config::SdkConfig::builder()
            .endpoint_url("http://127.0.0.1:5000/")
            .build();
        let client = BucketClient::new(&sdk, "bazaar-blobs");
        assert_eq!(
            client.object_url("imports/a b/c+d.csv"),
            "http://127.0.0.1:5000/bazaar-blobs/imports/a%20b/c%2Bd.csv"
        );
    }

    #[test]
    fn error_codes_are_read_from_the_error_body() {
        let reply = Reply {
            status: 404,
            content_type: Some("application/xml".into()),
            body: b"<?xml version=\"1.0\"?><Error><Code>NoSuchKey</Code><Message>gone</Message></Error>"
                .to_vec(),
        };
        assert_eq!(reply.xml_error_code(), Some("NoSuchKey"));
        let empty = Reply {
            status: 404,
            content_type: None,
            body: Vec::new(),
        };
        assert_eq!(empty.xml_error_code(), None);
        assert_eq!(
            empty.into_error("GetObject"),
            BlobError::Unavailable("S3 GetObject answered 404 (no error code)".into())
        );
    }
}
