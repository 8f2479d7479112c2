//! AWS calls as plain HTTPS requests signed with Signature Version 4 (the SDK's own signer,
//! `aws-sigv4`), sent through the SDK's default connector: the same TLS stack, pool and
//! timeouts as the DynamoDB client.
//!
//! Why not the SDK client of each service: a generated client brings its service's endpoint
//! rules, every operation's serialisers and its own configuration code, which a Lambda that
//! makes one call (an e-mail, an SMS, an S3 read) pays for in package size and cold start (see
//! the README's package sizes). The calls made this way are few and simple: S3's object calls
//! ([`super::s3`], which signs as S3 wants), and one call each to SES and SNS
//! ([`ServiceEndpoint`], signed as every other service wants).

use std::future::Future;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::http::{
    HttpConnector, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::identity::Identity;
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::byte_stream::ByteStream;

/// Tries per request: a dropped connection or a 500/503 is worth two more.
const ATTEMPTS: u32 = 3;
/// The wait before the second try, doubled before the third.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// Credentials are fetched again this long before they expire.
const REFRESH_BEFORE_EXPIRY: Duration = Duration::from_secs(300);

/// What a service answered.
#[derive(Debug)]
pub(crate) struct Reply {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

impl Reply {
    /// The error code of an XML error body (`<Code>NoSuchKey</Code>`: S3, SNS and the other
    /// query-protocol services).
    pub fn xml_error_code(&self) -> Option<&str> {
        let body = std::str::from_utf8(&self.body).ok()?;
        let start = body.find("<Code>")? + "<Code>".len();
        let length = body[start..].find("</Code>")?;
        Some(&body[start..start + length])
    }

    /// Whether the service asks to be tried again later: throttled, or failing itself.
    pub fn is_transient(&self) -> bool {
        self.status >= 500
            || self.status == 429
            || self
                .xml_error_code()
                .is_some_and(|code| code.contains("Throttl"))
    }
}

/// The configured region, or the fallback (a configuration from [`super::sdk_config`] always
/// has one; one built by hand may not).
pub(crate) fn region_of(config: &aws_config::SdkConfig) -> String {
    config
        .region()
        .map_or(super::FALLBACK_REGION, |region| region.as_ref())
        .to_owned()
}

/// The configured credentials, fetched on first use and again shortly before they expire
/// (on Lambda they come from the environment; elsewhere from a profile, SSO or IMDS).
pub(crate) struct CachedCredentials {
    provider: Option<SharedCredentialsProvider>,
    current: Mutex<Option<Credentials>>,
}

impl CachedCredentials {
    pub fn new(provider: Option<SharedCredentialsProvider>) -> Self {
        Self {
            provider,
            current: Mutex::new(None),
        }
    }

    pub async fn get(&self) -> Result<Credentials, String> {
        let cached = self
            .current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        if let Some(credentials) = cached.filter(fresh) {
            return Ok(credentials);
        }
        let provider = self
            .provider
            .as_ref()
            .ok_or_else(|| "no AWS credentials are configured".to_owned())?;
        let credentials = provider
            .provide_credentials()
            .await
            .map_err(|error| format!("AWS credentials: {error}"))?;
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

/// The SDK's HTTPS connector with the configuration's timeouts, built on first use like the
/// SDK clients (see [`super::lazy`]), and the retrying send over it.
pub(crate) struct Transport {
    sdk: aws_config::SdkConfig,
    connector: OnceLock<Option<SharedHttpConnector>>,
}

impl Transport {
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        Self {
            sdk: sdk.clone(),
            connector: OnceLock::new(),
        }
    }

    fn connector(&self) -> Result<&SharedHttpConnector, String> {
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
            .ok_or_else(|| "no HTTPS connector is available".to_owned())
    }

    /// Sends the request `signed` makes (anew for each try, since a signature carries its
    /// time), trying again after a dropped connection or a 500/503. Any other answer, success
    /// or refusal, is returned; `what` names the call in logs and errors.
    pub async fn send<F, Fut>(&self, what: &str, signed: F) -> Result<Reply, String>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<HttpRequest, String>>,
    {
        let mut backoff = FIRST_BACKOFF;
        for attempt in 1..=ATTEMPTS {
            let last = attempt == ATTEMPTS;
            let request = signed().await?;
            match self.connector()?.call(request).await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    if !last && matches!(status, 500 | 503) {
                        tracing::warn!(status, attempt, call = what, "unavailable; trying again");
                        tokio::time::sleep(backoff).await;
                        backoff *= 2;
                        continue;
                    }
                    let content_type = response.headers().get("content-type").map(str::to_owned);
                    let body = ByteStream::new(response.into_body())
                        .collect()
                        .await
                        .map_err(|error| format!("{what}: reading the answer: {error}"))?
                        .into_bytes()
                        .to_vec();
                    return Ok(Reply {
                        status,
                        content_type,
                        body,
                    });
                }
                Err(error) if !last && (error.is_io() || error.is_timeout()) => {
                    tracing::warn!(%error, attempt, call = what, "request failed; trying again");
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                }
                Err(error) => return Err(format!("{what}: {error}")),
            }
        }
        unreachable!("the last attempt always returns")
    }
}

/// An HTTP request ready to sign: method, the whole URL (path and query percent-encoded),
/// headers (all signed, besides `host`, which is taken from the URL) and body.
pub(crate) fn http_request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<http::Request<SdkBody>, String> {
    let mut builder = http::Request::builder().method(method).uri(url);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder
        .body(SdkBody::from(body.to_vec()))
        .map_err(|error| format!("{method} {url}: {error}"))
}

/// One service's regional endpoint (or the emulator's), called with requests signed as every
/// service but S3 wants them (default settings: the path normalised and encoded twice, the
/// payload hashed into the signature but not sent as a header).
pub(crate) struct ServiceEndpoint {
    /// The endpoint's URL, without a trailing slash.
    base: String,
    /// The name the service signs under (`ses`, `sns`).
    signing_name: &'static str,
    region: String,
    credentials: CachedCredentials,
    transport: Transport,
}

impl ServiceEndpoint {
    /// `https://{host_prefix}.{region}.amazonaws.com`, or the configuration's endpoint override.
    pub fn new(
        config: &aws_config::SdkConfig,
        signing_name: &'static str,
        host_prefix: &str,
    ) -> Self {
        let region = region_of(config);
        let base = match config.endpoint_url() {
            Some(endpoint) => endpoint.trim_end_matches('/').to_owned(),
            None => format!("https://{host_prefix}.{region}.{}", domain_of(&region)),
        };
        Self {
            base,
            signing_name,
            region,
            credentials: CachedCredentials::new(config.credentials_provider()),
            transport: Transport::new(config),
        }
    }

    /// Sends `method` to `path` (percent-encoded, starting with `/`) with `headers` and `body`.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Reply, String> {
        let url = format!("{}{path}", self.base);
        let what = format!("{} {method} {path}", self.signing_name);
        self.transport
            .send(&what, || async {
                let credentials = self.credentials.get().await?;
                let mut request = http_request(method, &url, headers, body)?;
                sign_standard(
                    &mut request,
                    &credentials,
                    self.signing_name,
                    &self.region,
                    SystemTime::now(),
                )?;
                HttpRequest::try_from(request).map_err(|error| format!("{what}: {error}"))
            })
            .await
    }
}

/// `amazonaws.com`, or the domain of the China regions.
pub(crate) fn domain_of(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    }
}

/// Signs `request` in its headers with the default SigV4 settings.
fn sign_standard(
    request: &mut http::Request<SdkBody>,
    credentials: &Credentials,
    signing_name: &str,
    region: &str,
    time: SystemTime,
) -> Result<(), String> {
    let identity = Identity::from(credentials.clone());
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(signing_name)
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .map_err(|error| format!("cannot sign for {signing_name}: {error}"))?
        .into();
    let uri = request.uri().to_string();
    let headers = request
        .headers()
        .iter()
        .map(|(name, value)| (name.as_str(), value.to_str().unwrap_or_default()));
    let body = request.body().bytes().unwrap_or_default();
    let signable = SignableRequest::new(
        request.method().as_str(),
        &uri,
        headers,
        SignableBody::Bytes(body),
    )
    .map_err(|error| format!("cannot sign for {signing_name}: {error}"))?;
    let (instructions, _signature) = sign(signable, &params)
        .map_err(|error| format!("cannot sign for {signing_name}: {error}"))?
        .into_parts();
    instructions.apply_to_request_http1x(request);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The worked example of Amazon's Signature Version 4 documentation (an IAM `ListUsers`
    /// GET at 2015-08-30T12:36:00Z): moto does not check signatures, so this is what shows
    /// that real services will accept ours.
    #[test]
    fn a_request_is_signed_as_the_documentation_signs_it() {
        let credentials = Credentials::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            None,
            None,
            "example",
        );
        let mut request = http_request(
            "GET",
            "https://iam.amazonaws.com/?Action=ListUsers&Version=2010-05-08",
            &[(
                "content-type",
                "application/x-www-form-urlencoded; charset=utf-8",
            )],
            b"",
        )
        .expect("a request");
        let time = SystemTime::UNIX_EPOCH + Duration::from_secs(1_440_938_160);
        sign_standard(&mut request, &credentials, "iam", "us-east-1", time).expect("sign");
        let authorization = request
            .headers()
            .get("authorization")
            .and_then(|value| value.to_str().ok())
            .expect("an authorization header");
        assert_eq!(
            authorization,
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, \
             SignedHeaders=content-type;host;x-amz-date, \
             Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
        );
    }

    #[test]
    fn endpoints_are_regional_unless_overridden() {
        let regional = aws_config::SdkConfig::builder()
            .region(aws_config::Region::new("eu-west-1"))
            .build();
        assert_eq!(
            ServiceEndpoint::new(&regional, "ses", "email").base,
            "https://email.eu-west-1.amazonaws.com"
        );
        let china = aws_config::SdkConfig::builder()
            .region(aws_config::Region::new("cn-north-1"))
            .build();
        assert_eq!(
            ServiceEndpoint::new(&china, "sns", "sns").base,
            "https://sns.cn-north-1.amazonaws.com.cn"
        );
        let emulated = aws_config::SdkConfig::builder()
            .endpoint_url("http://127.0.0.1:5000/")
            .build();
        assert_eq!(
            ServiceEndpoint::new(&emulated, "sns", "sns").base,
            "http://127.0.0.1:5000"
        );
    }

    #[test]
    fn throttling_and_service_faults_are_transient() {
        let reply = |status: u16, body: &str| Reply {
            status,
            content_type: None,
            body: body.as_bytes().to_vec(),
        };
        let throttled = "<ErrorResponse><Error><Code>Throttling</Code></Error></ErrorResponse>";
        assert!(reply(400, throttled).is_transient());
        assert!(reply(429, "").is_transient());
        assert!(reply(503, "").is_transient());
        let refused = "<ErrorResponse><Error><Code>InvalidParameter</Code></Error></ErrorResponse>";
        assert_eq!(
            reply(400, refused).xml_error_code(),
            Some("InvalidParameter")
        );
        assert!(!reply(400, refused).is_transient());
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
