//! Who is calling: the client address that per-client rate limits and the login back-off count
//! by, and the extractor that applies a rate limit to an endpoint.
//!
//! On Lambda the address is API Gateway's `requestContext.http.sourceIp` (the TCP peer of the
//! gateway; clients cannot forge it). Locally it is the TCP peer, and `X-Forwarded-For` is
//! believed only when that peer is a configured trusted proxy (`BAZAAR_TRUSTED_PROXIES`):
//! anyone can send the header, so otherwise it would let a client choose its own address.

use std::marker::PhantomData;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use bazaar_shared::ratelimit::Limit;
use ipnet::IpNet;
use lambda_http::request::RequestContext;

use crate::App;
use crate::problem::ApiError;

/// The proxies whose `X-Forwarded-For` is believed (none by default).
#[derive(Clone, Debug, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Parses a comma-separated list of CIDR blocks or single addresses
    /// (`10.0.0.0/8, 192.0.2.1, fd00::/8`).
    pub fn parse(text: &str) -> Result<Self, String> {
        text.split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .map(|entry| {
                entry
                    .parse::<IpNet>()
                    .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| {
                        format!(
                            "comma-separated IP addresses or CIDR blocks ({entry:?} is neither)"
                        )
                    })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }

    pub fn contains(&self, address: IpAddr) -> bool {
        let address = canonical(address);
        self.0.iter().any(|net| net.contains(&address))
    }

    /// The client behind `peer`: the peer itself, unless it is trusted, in which case the
    /// right-most `X-Forwarded-For` entry that is not itself a trusted proxy (entries further
    /// left were written by the client and prove nothing).
    pub fn client(&self, peer: IpAddr, forwarded_for: &[&str]) -> IpAddr {
        let mut client = canonical(peer);
        if !self.contains(client) {
            return client;
        }
        let hops = forwarded_for
            .iter()
            .rev()
            .flat_map(|header| header.rsplit(','))
            .map(str::trim);
        for hop in hops {
            let Ok(address) = hop.parse::<IpAddr>() else {
                // A garbled entry: stop believing the chain here.
                return client;
            };
            client = canonical(address);
            if !self.contains(client) {
                return client;
            }
        }
        client
    }
}

/// IPv4-mapped IPv6 addresses (a dual-stack listener's view of IPv4 peers) as IPv4.
fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// The caller's address (see the module documentation).
pub struct ClientAddress(pub IpAddr);

impl ClientAddress {
    fn of(parts: &Parts, app: &App) -> IpAddr {
        Self::from_parts(parts, app.trusted_proxies())
    }

    fn from_parts(parts: &Parts, proxies: &TrustedProxies) -> IpAddr {
        if let Some(RequestContext::ApiGatewayV2(context)) =
            parts.extensions.get::<RequestContext>()
            && let Some(source) = context.http.source_ip.as_deref()
            && let Ok(address) = source.parse::<IpAddr>()
        {
            return canonical(address);
        }
        let Some(ConnectInfo(peer)) = parts.extensions.get::<ConnectInfo<SocketAddr>>() else {
            // Neither Lambda nor a socket (a router driven in-process): one shared bucket.
            return IpAddr::V4(Ipv4Addr::UNSPECIFIED);
        };
        let forwarded: Vec<&str> = parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .collect();
        proxies.client(peer.ip(), &forwarded)
    }
}

impl FromRequestParts<App> for ClientAddress {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        Ok(Self(Self::of(parts, app)))
    }
}

/// A limit an endpoint can name in its signature (see [`RateLimited`]).
pub trait NamedLimit {
    const LIMIT: Limit;
}

/// The limits, as types.
pub mod limit {
    use super::{Limit, NamedLimit};

    pub struct Login;
    pub struct Register;
    pub struct Pay;
    pub struct Subscribe;
    pub struct Verify;

    impl NamedLimit for Login {
        const LIMIT: Limit = Limit::Login;
    }
    impl NamedLimit for Register {
        const LIMIT: Limit = Limit::Register;
    }
    impl NamedLimit for Pay {
        const LIMIT: Limit = Limit::Pay;
    }
    impl NamedLimit for Subscribe {
        const LIMIT: Limit = Limit::Subscribe;
    }
    impl NamedLimit for Verify {
        const LIMIT: Limit = Limit::Verify;
    }
}

/// Counts the request against the per-client limit `L` and refuses it with 429 and
/// Retry-After when the client is over it. Put it in a handler's arguments before the body
/// (it runs in order, so before the body is parsed or any password hashed):
///
/// ```ignore
/// pub async fn pay(State(app): State<App>, _: RateLimited<limit::Pay>, ...)
/// ```
///
/// It holds the client's address for handlers that need it too.
pub struct RateLimited<L>(pub IpAddr, pub PhantomData<L>);

impl<L: NamedLimit + Send + Sync> FromRequestParts<App> for RateLimited<L> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        let client = ClientAddress::of(parts, app);
        app.rate_limits()
            .check(app.ports(), L::LIMIT, client)
            .await?;
        Ok(Self(client, PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse()
            .unwrap_or_else(|_| panic!("{text} is not an address"))
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let none = TrustedProxies::default();
        assert_eq!(
            none.client(ip("198.51.100.7"), &["203.0.113.9"]),
            ip("198.51.100.7")
        );

        let proxies =
            TrustedProxies::parse("10.0.0.0/8, 192.0.2.1").expect("parse the trusted proxies");
        // Through the trusted proxy: the address it saw.
        assert_eq!(
            proxies.client(ip("10.1.2.3"), &["203.0.113.9"]),
            ip("203.0.113.9")
        );
        // A client-written prefix is ignored: the right-most untrusted hop counts.
        assert_eq!(
            proxies.client(ip("10.1.2.3"), &["1.1.1.1, 203.0.113.9, 192.0.2.1"]),
            ip("203.0.113.9")
        );
        // Several headers are one list.
        assert_eq!(
            proxies.client(ip("10.1.2.3"), &["1.1.1.1", "203.0.113.9"]),
            ip("203.0.113.9")
        );
        // Garbage stops the chain at the last believable hop.
        assert_eq!(
            proxies.client(ip("10.1.2.3"), &["nonsense"]),
            ip("10.1.2.3")
        );
        // An untrusted peer's header is ignored.
        assert_eq!(
            proxies.client(ip("203.0.113.50"), &["1.1.1.1"]),
            ip("203.0.113.50")
        );
        assert_eq!(
            proxies.client(ip("::ffff:10.0.0.1"), &["203.0.113.9"]),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn the_address_comes_from_api_gateway_or_the_socket() {
        use lambda_http::aws_lambda_events::apigw::{
            ApiGatewayV2httpRequestContext, ApiGatewayV2httpRequestContextHttpDescription,
        };
        let request = |source_ip: Option<&str>, peer: Option<&str>| {
            let (mut parts, ()) = axum::http::Request::builder()
                .header("x-forwarded-for", "192.0.2.200")
                .body(())
                .expect("build the request")
                .into_parts();
            if let Some(source_ip) = source_ip {
                let mut http = ApiGatewayV2httpRequestContextHttpDescription::default();
                http.source_ip = Some(source_ip.to_owned());
                let mut context = ApiGatewayV2httpRequestContext::default();
                context.http = http;
                parts
                    .extensions
                    .insert(RequestContext::ApiGatewayV2(context));
            }
            if let Some(peer) = peer {
                let peer: SocketAddr = peer.parse().expect("parse the peer address");
                parts.extensions.insert(ConnectInfo(peer));
            }
            parts
        };
        let none = TrustedProxies::default();
        // Lambda: API Gateway's source IP; the client's header means nothing.
        let lambda = request(Some("203.0.113.5"), None);
        assert_eq!(ClientAddress::from_parts(&lambda, &none), ip("203.0.113.5"));
        // Local: the TCP peer.
        let local = request(None, Some("198.51.100.9:40000"));
        assert_eq!(ClientAddress::from_parts(&local, &none), ip("198.51.100.9"));
        let trusted = TrustedProxies::parse("198.51.100.0/24").unwrap_or_default();
        assert_eq!(
            ClientAddress::from_parts(&local, &trusted),
            ip("192.0.2.200")
        );
        // Neither: one shared bucket.
        let neither = request(None, None);
        assert_eq!(ClientAddress::from_parts(&neither, &none), ip("0.0.0.0"));
    }

    #[test]
    fn proxy_lists_parse_with_clear_errors() {
        assert!(TrustedProxies::parse("").is_ok_and(|p| p.0.is_empty()));
        assert!(TrustedProxies::parse("10.0.0.0/8,::1").is_ok_and(|p| p.0.len() == 2));
        let error = TrustedProxies::parse("10.0.0.0/8, example.com").err();
        assert!(error.is_some_and(|e| e.contains("example.com")));
    }
}
