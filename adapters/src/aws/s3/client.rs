//! The S3 calls the shop makes (PutObject, GetObject, HeadObject and presigned URLs) as plain
//! REST requests, signed by [`super::signing`] and sent through the SDK's default HTTPS
//! connector: the same TLS stack, pool and timeouts as the DynamoDB and SQS clients, without
//! the S3 client's endpoint rules and checksum code (see the README's package sizes).

use std::sync::{Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_smithy_runtime_api::client::http::{
    HttpConnector, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::byte_stream::ByteStream;
use bazaar_shared::ports::{BlobError, PresignedRequest};

use super::signing::{Placement, Unsigned, sign_request};

/// Tries per request: a dropped connection or an S3 500/503 is worth two more.
const ATTEMPTS: u32 = 3;
/// The wait before the second try, doubled before the third.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// Credentials are fetched again this long before they expire.
const REFRESH_BEFORE_EXPIRY: Duration = Duration::from_secs(300);
/// The longest validity S3 accepts for a presigned URL.
const MAX_PRESIGNED: Duration = Duration::from_secs(7 * 24 * 3600);
/// The region used when none is configured (an emulator still needs one to sign with).
const FALLBACK_REGION: &str = "us-east-1";

/// One bucket's REST endpoint with the credentials and connection pool to call it.
pub(super) struct BucketClient {
    /// Where object keys are appended, without a trailing slash.
    base: String,
    region: String,
    credentials: CachedCredentials,
    /// Timeouts and the sleep implementation for the connector.
    sdk: aws_config::SdkConfig,
    /// Built on first use, like the SDK clients (see [`crate::aws::lazy`]).
    connector: OnceLock<Option<SharedHttpConnector>>,
}

/// What S3 answered.
pub(super) struct Reply {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

impl Reply {
    /// S3's error code (`NoSuchKey`, `InvalidRange`, ...) from an error body.
    pub fn error_code(&self) -> Option<&str> {
        let body = std::str::from_utf8(&self.body).ok()?;
        let start = body.find("<Code>")? + "<Code>".len();
        let length = body[start..].find("</Code>")?;
        Some(&body[start..start + length])
    }

    /// The refusal as the port's error, naming the operation and S3's code and message.
    pub fn into_error(self, operation: &str) -> BlobError {
        let code = self.error_code().unwrap_or("no error code").to_owned();
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
        let region = config
            .region()
            .map_or(FALLBACK_REGION, |region| region.as_ref())
            .to_owned();
        let base = match config.endpoint_url() {
            Some(endpoint) => format!("{}/{bucket}", endpoint.trim_end_matches('/')),
            None => regional_base(bucket, &region),
        };
        Self {
            base,
            region,
            credentials: CachedCredentials::new(config.credentials_provider()),
            sdk: config.clone(),
            connector: OnceLock::new(),
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
        let mut backoff = FIRST_BACKOFF;
        for attempt in 1..=ATTEMPTS {
            let last = attempt == ATTEMPTS;
            let request = self.signed(method, &url, headers, body).await?;
            match self.connector()?.call(request).await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    if !last && matches!(status, 500 | 503) {
                        tracing::warn!(status, attempt, "S3 is unavailable; trying again");
                        tokio::time::sleep(backoff).await;
                        backoff *= 2;
                        continue;
                    }
                    let content_type = response.headers().get("content-type").map(str::to_owned);
                    let body = ByteStream::new(response.into_body())
                        .collect()
                        .await
                        .map_err(|error| {
                            BlobError::Unavailable(format!("S3 {method} {key}: reading: {error}"))
                        })?
                        .into_bytes()
                        .to_vec();
                    return Ok(Reply {
                        status,
                        content_type,
                        body,
                    });
                }
                Err(error) if !last && (error.is_io() || error.is_timeout()) => {
                    tracing::warn!(%error, attempt, "S3 request failed; trying again");
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                }
                Err(error) => {
                    return Err(BlobError::Unavailable(format!("S3 {method}: {error}")));
                }
            }
        }
        unreachable!("the last attempt always returns")
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
        let credentials = self.credentials.get().await?;
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
    ) -> Result<HttpRequest, BlobError> {
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
        )?;
        let mut builder = http::Request::builder().method(method).uri(url);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let mut request = builder
            .body(SdkBody::from(body.to_vec()))
            .map_err(|error| BlobError::Unavailable(format!("S3 {method} {url}: {error}")))?;
        instructions.apply_to_request_http1x(&mut request);
        HttpRequest::try_from(request)
            .map_err(|error| BlobError::Unavailable(format!("S3 {method} {url}: {error}")))
    }

    fn connector(&self) -> Result<&SharedHttpConnector, BlobError> {
        self.connector
            .get_or_init(|| {
                let timeouts = self.sdk.timeout_config();
                let mut settings = HttpConnectorSettings::builder();
                if let Some(timeout) = timeouts.and_then(|t| t.connect_timeout()) {
                    settings = settings.connect_timeout(timeout);
                }
                if let Some(timeout) = timeouts.and_then(|t| t.read_timeout()) {
                    settings = settings.read_timeout(timeout);
                }
                aws_smithy_http_client::default_connector(&settings.build(), self.sdk.sleep_impl())
            })
            .as_ref()
            .ok_or_else(|| BlobError::Unavailable("no HTTPS connector is available".into()))
    }
}

/// `https://{bucket}.s3.{region}.amazonaws.com`, or path-style on the regional endpoint for
/// a bucket name with dots (no certificate covers a dotted subdomain of it).
fn regional_base(bucket: &str, region: &str) -> String {
    let domain = if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    };
    if bucket.contains('.') {
        format!("https://s3.{region}.{domain}/{bucket}")
    } else {
        format!("https://{bucket}.s3.{region}.{domain}")
    }
}

/// The configured credentials, fetched on first use and again shortly before they expire
/// (on Lambda they come from the environment; elsewhere from a profile, SSO or IMDS).
struct CachedCredentials {
    provider: Option<SharedCredentialsProvider>,
    current: Mutex<Option<Credentials>>,
}

impl CachedCredentials {
    fn new(provider: Option<SharedCredentialsProvider>) -> Self {
        Self {
            provider,
            current: Mutex::new(None),
        }
    }

    async fn get(&self) -> Result<Credentials, BlobError> {
        let cached = self
            .current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        if let Some(credentials) = cached.filter(fresh) {
            return Ok(credentials);
        }
        let provider = self.provider.as_ref().ok_or_else(|| {
            BlobError::Unavailable("no AWS credentials are configured for S3".into())
        })?;
        let credentials = provider
            .provide_credentials()
            .await
            .map_err(|error| BlobError::Unavailable(format!("AWS credentials: {error}")))?;
        *self
            .current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(credentials.clone());
        Ok(credentials)
    }
}

fn fresh(credentials: &Credentials) -> bool {
    credentials
        .expiry()
        .is_none_or(|expiry| expiry > SystemTime::now() + REFRESH_BEFORE_EXPIRY)
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
        assert_eq!(reply.error_code(), Some("NoSuchKey"));
        let empty = Reply {
            status: 404,
            content_type: None,
            body: Vec::new(),
        };
        assert_eq!(empty.error_code(), None);
        assert_eq!(
            empty.into_error("GetObject"),
            BlobError::Unavailable("S3 GetObject answered 404 (no error code)".into())
        );
    }

    #[test]
    fn expired_credentials_are_not_reused() {
        let now = SystemTime::now();
        let lasting = Credentials::new("a", "b", None, Some(now + Duration::from_secs(3600)), "t");
        let expiring = Credentials::new("a", "b", None, Some(now + Duration::from_secs(60)), "t");
        let permanent = Credentials::new("a", "b", None, None, "t");
        assert!(fresh(&lasting));
        assert!(!fresh(&expiring));
        assert!(fresh(&permanent));
    }
}
