//! Per-client rate limits: at most `max` requests of one client under one named limit per
//! fixed window. The count is one atomic store update (the Store port's `ADD`), so it holds
//! across every Lambda instance and on both backends; the counter carries an `expires_at`
//! so that DynamoDB's TTL removes old windows. The API gateway's stage throttle is global:
//! without this, one client could use it all.

use std::net::IpAddr;

use serde_json::Value;

use crate::Ports;
use crate::error::{Error, Result};
use crate::keys;
use crate::ports::store::EXPIRES_AT;
use crate::ports::{Cond, Update};

/// The counted attribute of a client's window.
const REQUESTS: &str = "requests";

/// The endpoints that are rate-limited per client.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Limit {
    Login,
    Register,
    Pay,
    Subscribe,
    Verify,
}

impl Limit {
    pub const ALL: [Limit; 5] = [
        Limit::Login,
        Limit::Register,
        Limit::Pay,
        Limit::Subscribe,
        Limit::Verify,
    ];

    /// The limit's name in store keys and in its setting (`BAZAAR_RATE_LIMIT_<NAME>`).
    pub fn name(self) -> &'static str {
        match self {
            Limit::Login => "login",
            Limit::Register => "register",
            Limit::Pay => "pay",
            Limit::Subscribe => "subscribe",
            Limit::Verify => "verify",
        }
    }

    /// The default: generous for a person, tight for a script.
    pub fn default_rate(self) -> Option<Rate> {
        Some(match self {
            Limit::Login => Rate::new(30, 60),
            Limit::Register => Rate::new(10, 3600),
            Limit::Pay => Rate::new(20, 60),
            Limit::Subscribe => Rate::new(20, 3600),
            Limit::Verify => Rate::new(10, 600),
        })
    }
}

/// `max` requests per `window_seconds`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    pub max: i64,
    pub window_seconds: i64,
}

impl Rate {
    pub const fn new(max: i64, window_seconds: i64) -> Self {
        Self {
            max,
            window_seconds,
        }
    }

    /// Parses a setting: `<max>/<seconds>` (e.g. `30/60`), or `off`.
    pub fn parse(text: &str) -> std::result::Result<Option<Self>, String> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("off") {
            return Ok(None);
        }
        let parsed = text.split_once('/').and_then(|(max, seconds)| {
            let max = max.trim().parse::<i64>().ok()?;
            let seconds = seconds.trim().parse::<i64>().ok()?;
            ((1..=1_000_000).contains(&max) && (1..=86_400).contains(&seconds))
                .then_some(Self::new(max, seconds))
        });
        parsed
            .map(Some)
            .ok_or_else(|| "`<count>/<seconds>` (1..=1000000 per 1..=86400 s) or `off`".to_owned())
    }
}

/// Every limit's rate; a limit without one is off.
#[derive(Clone, Debug)]
pub struct RateLimits {
    rates: Vec<(Limit, Rate)>,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            rates: Limit::ALL
                .iter()
                .filter_map(|limit| limit.default_rate().map(|rate| (*limit, rate)))
                .collect(),
        }
    }
}

impl RateLimits {
    /// Sets (or with `None`, turns off) one limit.
    pub fn set(&mut self, limit: Limit, rate: Option<Rate>) {
        self.rates.retain(|(known, _)| *known != limit);
        if let Some(rate) = rate {
            self.rates.push((limit, rate));
        }
    }

    pub fn rate(&self, limit: Limit) -> Option<Rate> {
        self.rates
            .iter()
            .find(|(known, _)| *known == limit)
            .map(|(_, rate)| *rate)
    }

    /// Counts one request of `client` under `limit`, and refuses it (`Error::Throttled`, with
    /// the seconds until the window ends) once the client is over the limit in this window.
    pub async fn check(&self, ports: &Ports, limit: Limit, client: IpAddr) -> Result<()> {
        let Some(rate) = self.rate(limit) else {
            return Ok(());
        };
        let now = ports.clock.now().timestamp();
        let window = now.div_euclid(rate.window_seconds);
        let window_end = (window + 1) * rate.window_seconds;
        let counter = ports
            .store
            .update(
                &keys::rate_limit(limit.name(), &client_key(client), window),
                vec![
                    Update::add(REQUESTS, 1),
                    Update::set(EXPIRES_AT, window_end + rate.window_seconds),
                ],
                Cond::Always,
            )
            .await?;
        let requests = counter.get(REQUESTS).and_then(Value::as_i64).unwrap_or(0);
        if requests > rate.max {
            return Err(Error::Throttled {
                retry_after_secs: (window_end - now).max(1) as u64,
            });
        }
        Ok(())
    }
}

/// How a client is known to the limits: its IPv4 address, or the /64 of its IPv6 address
/// (one subscriber gets a whole /64, so single IPv6 addresses would be free for the taking).
pub fn client_key(client: IpAddr) -> String {
    match client {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let segments = v6.segments();
                format!(
                    "{:x}:{:x}:{:x}:{:x}::/64",
                    segments[0], segments[1], segments[2], segments[3]
                )
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_with_clear_errors() {
        assert_eq!(Rate::parse("30/60"), Ok(Some(Rate::new(30, 60))));
        assert_eq!(Rate::parse(" 5 / 3600 "), Ok(Some(Rate::new(5, 3600))));
        assert_eq!(Rate::parse("off"), Ok(None));
        for bad in ["", "30", "0/60", "30/0", "-1/60", "x/y", "30/100000"] {
            assert!(Rate::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn ipv6_clients_are_counted_per_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1"
            .parse()
            .unwrap_or(IpAddr::from([0; 4]));
        let b: IpAddr = "2001:db8:1:2:bbbb::9"
            .parse()
            .unwrap_or(IpAddr::from([0; 4]));
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap_or(IpAddr::from([0; 4]));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap_or(IpAddr::from([0; 4]));
        assert_eq!(client_key(a), client_key(b));
        assert_ne!(client_key(a), client_key(other));
        assert_eq!(client_key(a), "2001:db8:1:2::/64");
        assert_eq!(client_key(mapped), "192.0.2.7");
    }
}
