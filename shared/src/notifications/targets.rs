//! Checking where a subscription may send: an e-mail address, an E.164 phone number, an SNS
//! push endpoint, or a URL (Slack, webhooks). URLs are where server-side request forgery
//! hides: in AWS mode only HTTPS to public addresses is allowed (checked here for literal
//! addresses and names like `localhost`, and again at send time after DNS resolution);
//! locally, HTTP and private addresses are allowed for development.

use std::net::IpAddr;
use std::sync::LazyLock;

use url::{Host, Url};

use crate::ports::notifier::Channel;
use crate::validation;

static PUSH_ENDPOINT: LazyLock<regex_lite::Regex> = LazyLock::new(|| {
    regex_lite::Regex::new(
        r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:endpoint/(APNS|APNS_SANDBOX|GCM|ADM|BAIDU|WNS|MPNS)/[A-Za-z0-9_.-]{1,256}/[A-Za-z0-9-]{1,64}$",
    )
    .expect("a valid pattern")
});

/// The normalised target, or why it is refused.
pub fn check(channel: Channel, target: &str, allow_private: bool) -> Result<String, String> {
    let target = target.trim();
    match channel {
        Channel::Email => {
            let email = validation::normalise_email(target);
            if email.len() <= 254 && validation::is_email(&email) {
                Ok(email)
            } else {
                Err("must be a valid e-mail address".into())
            }
        }
        Channel::Sms => validation::phone(target)
            .map(|()| target.to_owned())
            .map_err(|_| "must be a phone number in E.164 form, e.g. +14155550100".into()),
        Channel::Push => {
            if PUSH_ENDPOINT.is_match(target) {
                Ok(target.to_owned())
            } else {
                Err("must be an Amazon SNS platform endpoint ARN (arn:aws:sns:<region>:<account>:endpoint/<platform>/<app>/<id>)".into())
            }
        }
        Channel::Slack | Channel::Webhook => check_url(target, allow_private).map(String::from),
    }
}

/// A URL notifications may be POSTed to.
pub fn check_url(target: &str, allow_private: bool) -> Result<Url, String> {
    if target.len() > 2048 {
        return Err("must be at most 2048 characters long".into());
    }
    let url = Url::parse(target).map_err(|_| "must be an absolute http(s) URL".to_owned())?;
    match url.scheme() {
        "https" => {}
        "http" if allow_private => {}
        _ => return Err("must be an https URL".into()),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry credentials".into());
    }
    let host = url.host().ok_or("must name a host")?;
    if !allow_private {
        let refused = match &host {
            Host::Ipv4(ip) => !is_public(IpAddr::V4(*ip)),
            Host::Ipv6(ip) => !is_public(IpAddr::V6(*ip)),
            Host::Domain(name) => {
                let name = name.trim_end_matches('.').to_ascii_lowercase();
                name == "localhost"
                    || name.ends_with(".localhost")
                    || name.ends_with(".internal")
                    || name.ends_with(".local")
                    || !name.contains('.')
            }
        };
        if refused {
            return Err("must point at a public address".into());
        }
    }
    Ok(url)
}

/// What may be shown or logged of a Slack or webhook URL: its scheme, host and port. Their
/// paths and queries are bearer secrets (`hooks.slack.com/services/T…/B…/<secret>`).
pub fn origin(target: &str) -> String {
    match Url::parse(target) {
        Ok(url) => match url.origin() {
            url::Origin::Tuple(..) => url.origin().ascii_serialization(),
            url::Origin::Opaque(_) => format!("{}:", url.scheme()),
        },
        Err(_) => "(not a URL)".to_owned(),
    }
}

/// Whether an address is on the public internet: not loopback, private, link-local (the
/// instance metadata service lives there), shared, documentation, multicast or unspecified.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => {
            let [a, b, c, _] = ip.octets();
            !(ip.is_loopback()
                || ip.is_private()
                || ip.is_link_local()
                || ip.is_broadcast()
                || ip.is_documentation()
                || ip.is_unspecified()
                || ip.is_multicast()
                || a == 0
                || (a == 100 && (64..128).contains(&b)) // carrier-grade NAT
                || (a == 198 && (b == 18 || b == 19)) // benchmarking
                || (a == 192 && b == 0 && c == 0) // IETF protocol assignments (DS-Lite, NAT64 discovery)
                || a >= 240)
        }
        IpAddr::V6(ip) => {
            if let Some(v4) = ip.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let segments = ip.segments();
            let first = segments[0];
            // Prefixes that embed an IPv4 address the network translates to (and so reach
            // private IPv4 space through a gateway) are refused whatever they embed.
            let nat64 = first == 0x64 && segments[1] == 0xff9b && (segments[2] <= 1); // 64:ff9b::/96 and 64:ff9b:1::/48
            let six_to_four = first == 0x2002; // 2002::/16
            let teredo = first == 0x2001 && segments[1] == 0; // 2001::/32
            let ipv4_compatible = segments[..6].iter().all(|segment| *segment == 0); // ::/96
            !(ip.is_loopback()
                || ip.is_unspecified()
                || ip.is_multicast()
                || nat64
                || six_to_four
                || teredo
                || ipv4_compatible
                || (first & 0xfe00) == 0xfc00 // unique local
                || (first & 0xffc0) == 0xfe80 // link local
                || first == 0x2001 && ip.segments()[1] == 0x0db8) // documentation
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_local_urls_are_refused_in_aws_mode() {
        for url in [
            "http://example.com/hook",
            "https://127.0.0.1/hook",
            "https://10.1.2.3/hook",
            "https://169.254.169.254/latest/meta-data",
            "https://[::1]/hook",
            "https://[fd00::1]/hook",
            "https://[::ffff:192.168.1.1]/hook",
            "https://localhost/hook",
            "https://metadata.google.internal/",
            "https://intranet/hook",
            "https://user:pass@example.com/hook",
            "ftp://example.com/",
            "not a url",
        ] {
            assert!(check_url(url, false).is_err(), "{url} was allowed");
        }
        assert!(check_url("https://hooks.slack.com/services/T0/B0/x", false).is_ok());
        assert!(check_url("https://[2606:4700:4700::1111]/hook", false).is_ok());
        assert!(check_url("https://93.184.216.34/hook", false).is_ok());
        assert!(check_url("http://127.0.0.1:8080/hook", true).is_ok());
    }

    #[test]
    fn addresses_that_translate_to_ipv4_are_refused() {
        for url in [
            "https://[64:ff9b::a9fe:a9fe]/hook",  // NAT64 of 169.254.169.254
            "https://[64:ff9b::808:808]/hook",    // NAT64, even of a public address
            "https://[64:ff9b:1::a00:1]/hook",    // local-use NAT64
            "https://[2002:a9fe:a9fe::1]/hook",   // 6to4 of 169.254.169.254
            "https://[2001:0:4136:e378::1]/hook", // Teredo
            "https://[::a9fe:a9fe]/hook",         // IPv4-compatible
            "https://192.0.0.1/hook",             // 192.0.0.0/24
            "https://192.0.0.170/hook",           // NAT64 discovery
        ] {
            assert!(check_url(url, false).is_err(), "{url} was allowed");
        }
        assert!(check_url("https://192.0.2.1/hook", false).is_err());
        assert!(check_url("https://192.0.1.1/hook", false).is_ok());
    }

    #[test]
    fn only_the_origin_of_a_url_is_shown() {
        assert_eq!(
            origin("https://hooks.slack.com/services/T0/B0/secret?x=1"),
            "https://hooks.slack.com"
        );
        assert_eq!(
            origin("http://127.0.0.1:8080/hook/secret"),
            "http://127.0.0.1:8080"
        );
        assert_eq!(origin("https://[2001:db8::1]/x"), "https://[2001:db8::1]");
        assert_eq!(origin("not a url /secret"), "(not a URL)");
    }

    #[test]
    fn targets_are_checked_per_channel() {
        assert_eq!(
            check(Channel::Email, " Sara@Example.COM ", false).ok(),
            Some("sara@example.com".into())
        );
        assert!(check(Channel::Email, "sara@", false).is_err());
        assert!(check(Channel::Sms, "+989121234567", false).is_ok());
        assert!(check(Channel::Sms, "09121234567", false).is_err());
        assert!(
            check(
                Channel::Push,
                "arn:aws:sns:eu-west-1:123456789012:endpoint/GCM/bazaar/5e3e9847-3183-3f18-a7e8-671c3a57d4b3",
                false
            )
            .is_ok()
        );
        assert!(check(Channel::Push, "device-token-123", false).is_err());
    }
}
