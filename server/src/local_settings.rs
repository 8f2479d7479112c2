//! The settings `bazaar serve` runs with: the environment, with defaults that depend on the
//! address the server is bound to. Presigned URLs point back at the server, and Slack and
//! webhook targets may be private addresses (plain HTTP, loopback, the LAN) only when the
//! server listens on loopback: a server reachable from elsewhere must not let its users
//! make it POST into its own network, unless `BAZAAR_ALLOW_PRIVATE_TARGETS=true` says so.

use std::net::SocketAddr;

use bazaar_shared::settings::Source;

/// `env` completed with the defaults for a server bound to `bound`.
pub fn with_listen_defaults<'a>(bound: SocketAddr, env: &'a Source<'a>) -> Source<'a> {
    let public_url = format!("http://{bound}");
    let loopback = bound.ip().is_loopback();
    Source::new(move |name: &str| match name {
        "BAZAAR_PUBLIC_URL" => env.get(name).or_else(|| Some(public_url.clone())),
        // Off the loopback interface, refused unless set; on it, the backend's default
        // (allowed when embedded, refused on AWS).
        "BAZAAR_ALLOW_PRIVATE_TARGETS" => env
            .get(name)
            .or_else(|| (!loopback).then(|| "false".to_owned())),
        _ => env.get(name),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bazaar_adapters::config::BackendConfig;

    fn private_targets_allowed(bound: &str, explicit: Option<&str>) -> bool {
        let bound: SocketAddr = bound.parse().expect("parse the bound address");
        let env = match explicit {
            Some(value) => Source::pairs(&[("BAZAAR_ALLOW_PRIVATE_TARGETS", value)]),
            None => Source::pairs(&[]),
        };
        BackendConfig::from_source(&with_listen_defaults(bound, &env))
            .expect("read the backend config")
            .notify
            .allow_private_targets
    }

    #[test]
    fn private_targets_are_allowed_by_default_only_on_loopback() {
        assert!(private_targets_allowed("127.0.0.1:3000", None));
        assert!(private_targets_allowed("[::1]:3000", None));
        assert!(!private_targets_allowed("0.0.0.0:3000", None));
        assert!(!private_targets_allowed("[::]:3000", None));
        assert!(!private_targets_allowed("192.168.1.20:3000", None));
        // An explicit setting wins either way.
        assert!(private_targets_allowed("0.0.0.0:3000", Some("true")));
        assert!(!private_targets_allowed("127.0.0.1:3000", Some("false")));
    }

    #[test]
    fn on_aws_private_targets_stay_refused_on_loopback_too() {
        let bound: SocketAddr = "127.0.0.1:3000".parse().expect("parse the bound address");
        let env = Source::pairs(&[("BAZAAR_BACKEND", "aws")]);
        let config = BackendConfig::from_source(&with_listen_defaults(bound, &env))
            .expect("read the backend config");
        assert!(!config.notify.allow_private_targets);
    }

    #[test]
    fn presigned_urls_point_back_at_the_server() {
        let bound: SocketAddr = "127.0.0.1:4000".parse().expect("parse the bound address");
        let env = Source::pairs(&[]);
        assert_eq!(
            with_listen_defaults(bound, &env)
                .get("BAZAAR_PUBLIC_URL")
                .as_deref(),
            Some("http://127.0.0.1:4000")
        );
    }
}
