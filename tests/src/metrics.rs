//! Reading the local server's `GET /metrics` (Prometheus text) in tests. The recorder is one
//! per process and test servers share it, so tests compare a reading before and after what
//! they do, and expect at least their own effect (tests running beside may add more).

use std::collections::HashMap;

use crate::http::Client;

/// One scrape: every sample by its series (`name{label="value",...}` exactly as exposed).
#[derive(Debug, Default)]
pub struct Scrape {
    samples: HashMap<String, f64>,
}

impl Scrape {
    /// Scrapes the server `client` talks to.
    pub async fn take(client: &Client) -> Self {
        let response = client.get("/metrics", None).await;
        response.expect(200);
        Self::parse(&response.text)
    }

    /// Parses Prometheus text exposition (comments skipped).
    pub fn parse(text: &str) -> Self {
        let samples = text
            .lines()
            .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
            .filter_map(|line| {
                let (series, value) = line.rsplit_once(' ')?;
                Some((series.to_owned(), value.parse().ok()?))
            })
            .collect();
        Self { samples }
    }

    /// The sum of every sample of `name` whose labels include all of `labels` (0 if none).
    pub fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.samples
            .iter()
            .filter(|(series, _)| {
                let (series_name, rest) = series.split_once('{').unwrap_or((series.as_str(), ""));
                series_name == name
                    && labels
                        .iter()
                        .all(|(key, value)| rest.contains(&format!("{key}=\"{value}\"")))
            })
            .map(|(_, value)| value)
            .sum()
    }

    /// How much `name{labels}` grew since `before`.
    pub fn grew(&self, before: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.sum(name, labels) - before.sum(name, labels)
    }
}

#[cfg(test)]
mod tests {
    use super::Scrape;

    #[test]
    fn samples_are_summed_over_the_labels_not_asked_for() {
        let scrape = Scrape::parse(
            "# TYPE payments_total counter\n\
             payments_total{method=\"card\",outcome=\"captured\"} 3\n\
             payments_total{method=\"paypal\",outcome=\"captured\"} 2\n\
             payments_total{method=\"card\",outcome=\"declined\"} 1\n\
             orders_placed_total 7\n",
        );
        assert_eq!(
            scrape.sum("payments_total", &[("outcome", "captured")]),
            5.0
        );
        assert_eq!(scrape.sum("payments_total", &[]), 6.0);
        assert_eq!(scrape.sum("orders_placed_total", &[]), 7.0);
        assert_eq!(scrape.sum("refunds_total", &[]), 0.0);
        let before = Scrape::parse("orders_placed_total 4\n");
        assert_eq!(scrape.grew(&before, "orders_placed_total", &[]), 3.0);
    }
}
