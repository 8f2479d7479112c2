//! Slack and webhook deliveries by HTTP POST.
//!
//! Webhook bodies are the event envelope, signed like Stripe's: `x-signature:
//! t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" under the subscription's secret>`, so
//! that receivers can check who sent it and refuse replays older than a few minutes;
//! `x-bazaar-delivery` carries the delivery id for dropping duplicates.
//!
//! Unless private targets are allowed (local development), the target's name is resolved
//! here and the request is pinned to an address checked to be public, so that DNS cannot
//! point a webhook at the instance metadata service or the VPC after it was accepted. A
//! literal address (`https://[2001:db8::1]/`) is checked as it is, without DNS.
//!
//! Slack and webhook URLs are bearer secrets: no error text made here names more of the
//! target than its origin (scheme, host, port), since errors reach logs and the delivery log.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use async_trait::async_trait;
use bazaar_shared::notifications::targets;
use bazaar_shared::ports::notifier::{Channel, Notifier, Outgoing, SendError};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// How long one POST may take.
const TIMEOUT: Duration = Duration::from_secs(5);

pub struct HttpNotifier {
    allow_private: bool,
    /// Reused (connection pool, TLS set-up) wherever no address has to be pinned.
    shared: reqwest::Client,
}

impl HttpNotifier {
    pub fn new(allow_private: bool) -> Self {
        let shared = builder().build().unwrap_or_default();
        Self {
            allow_private,
            shared,
        }
    }
}

fn builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .timeout(TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent("Bazaar-Webhooks/1")
}

/// The `x-signature` header value for `body` sent at `timestamp`.
pub fn signature(secret: &str, timestamp: i64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(format!("{timestamp}.{body}").as_bytes());
    let digest = mac.finalize().into_bytes();
    format!("t={timestamp},v1={}", bazaar_shared::digest::hex(&digest))
}

impl HttpNotifier {
    /// The shared client, or (on AWS) one pinned to the target's checked public address.
    async fn client_for(&self, url: &url::Url) -> Result<reqwest::Client, SendError> {
        if self.allow_private {
            return Ok(self.shared.clone());
        }
        // `host_str` of an IPv6 literal is bracketed, which DNS cannot resolve: literals
        // need no resolving (nor pinning), only the check.
        let host = match url.host() {
            Some(url::Host::Domain(name)) => name.to_owned(),
            Some(url::Host::Ipv4(ip)) => return self.literal(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => return self.literal(IpAddr::V6(ip)),
            None => return Err(SendError::Permanent("the target names no host".into())),
        };
        let port = url.port_or_known_default().unwrap_or(443);
        let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|error| SendError::Transient(format!("cannot resolve {host}: {error}")))?
            .collect();
        let Some(public) = addresses
            .iter()
            .find(|address| targets::is_public(address.ip()))
        else {
            return Err(SendError::Permanent(format!(
                "{host} does not resolve to a public address"
            )));
        };
        if addresses
            .iter()
            .any(|address| !targets::is_public(address.ip()))
        {
            return Err(SendError::Permanent(format!(
                "{host} resolves to a private address"
            )));
        }
        builder()
            .resolve(&host, *public)
            .build()
            .map_err(|error| SendError::Transient(describe(error)))
    }

    /// The shared client, for a literal address that is public.
    fn literal(&self, ip: IpAddr) -> Result<reqwest::Client, SendError> {
        if targets::is_public(ip) {
            Ok(self.shared.clone())
        } else {
            Err(SendError::Permanent(format!(
                "{ip} is not a public address"
            )))
        }
    }
}

/// An HTTP client error's text without the URL it was about (and its causes, which name at
/// most the host and port).
fn describe(error: reqwest::Error) -> String {
    use std::error::Error as _;
    let mut text = match error.url() {
        Some(url) => format!("{}: ", targets::origin(url.as_str())),
        None => String::new(),
    };
    let error = error.without_url();
    text.push_str(&error.to_string());
    let mut cause = error.source();
    while let Some(inner) = cause {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        cause = inner.source();
    }
    text
}

#[async_trait]
impl Notifier for HttpNotifier {
    async fn send(&self, message: &Outgoing) -> Result<(), SendError> {
        let url = targets::check_url(&message.target, self.allow_private)
            .map_err(|reason| SendError::Permanent(format!("target refused: {reason}")))?;
        let client = self.client_for(&url).await?;
        let (body, mut request) = match message.channel {
            Channel::Slack => {
                let body = serde_json::json!({ "text": message.text }).to_string();
                (body, client.post(url))
            }
            _ => (message.payload.clone(), client.post(url)),
        };
        request = request
            .header("content-type", "application/json")
            .header("x-bazaar-event", &message.event_type)
            .header("x-bazaar-delivery", &message.delivery_id);
        if let Some(secret) = &message.signing_secret {
            let now = chrono::Utc::now().timestamp();
            request = request
                .header("x-bazaar-timestamp", now.to_string())
                .header("x-signature", signature(secret, now, &body));
        }
        let response =
            request.body(body).send().await.map_err(|error| {
                SendError::Transient(format!("POST failed: {}", describe(error)))
            })?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else if status.is_server_error() || status.as_u16() == 429 || status.as_u16() == 408 {
            Err(SendError::Transient(format!(
                "the target answered {status}"
            )))
        } else {
            Err(SendError::Permanent(format!(
                "the target answered {status}"
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outgoing(channel: Channel, target: &str) -> Outgoing {
        Outgoing {
            channel,
            target: target.to_owned(),
            delivery_id: "d1".into(),
            event_type: "ORDER_CREATED".into(),
            subject: "s".into(),
            text: "t".into(),
            payload: "{}".into(),
            signing_secret: Some("whsec_test".into()),
        }
    }

    #[tokio::test]
    async fn ipv6_literals_are_checked_without_dns() {
        let notifier = HttpNotifier::new(false);
        let parse = |url: &str| url::Url::parse(url).expect("parse the URL");
        assert!(
            notifier
                .client_for(&parse("https://[2606:4700:4700::1111]/hook"))
                .await
                .is_ok(),
            "a public IPv6 literal is usable"
        );
        for private in [
            "https://[64:ff9b::a9fe:a9fe]/hook",
            "https://[2002:a00:1::1]/hook",
            "https://[fd00::1]/hook",
            "https://192.0.0.170/hook",
        ] {
            assert!(
                matches!(
                    notifier.client_for(&parse(private)).await,
                    Err(SendError::Permanent(_))
                ),
                "{private} was usable"
            );
        }
    }

    #[tokio::test]
    async fn transport_errors_never_carry_the_url() {
        // Nothing listens on port 1 of loopback: the connection is refused.
        let notifier = HttpNotifier::new(true);
        for channel in [Channel::Webhook, Channel::Slack] {
            let result = notifier
                .send(&outgoing(
                    channel,
                    "http://127.0.0.1:1/hooks/T0/SECRET-path?token=SECRET-query",
                ))
                .await;
            let Err(SendError::Transient(text)) = result else {
                panic!("{result:?}");
            };
            assert!(!text.contains("SECRET"), "{text}");
            assert!(text.contains("http://127.0.0.1:1"), "{text}");
        }
    }

    #[test]
    fn signatures_cover_the_timestamp_and_the_body() {
        let one = signature("whsec_test", 1_700_000_000, "{\"id\":1}");
        assert!(one.starts_with("t=1700000000,v1="));
        assert_eq!(one.len(), "t=1700000000,v1=".len() + 64);
        assert_ne!(one, signature("whsec_test", 1_700_000_001, "{\"id\":1}"));
        assert_ne!(one, signature("whsec_test", 1_700_000_000, "{\"id\":2}"));
        assert_ne!(one, signature("whsec_other", 1_700_000_000, "{\"id\":1}"));
    }
}
