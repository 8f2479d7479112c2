//! Medians, 90th percentiles and the summary table.

use std::collections::BTreeSet;
use std::fmt::Write;
use std::time::Duration;

use crate::runtime_api::Sample;

/// The summary of one function's runs.
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    pub name: String,
    pub runs: usize,
    pub init_ms: Spread,
    pub first_response_ms: Spread,
    pub rss_mib: Spread,
    pub hwm_mib: Spread,
    pub answers: BTreeSet<String>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spread {
    pub median: f64,
    pub p90: f64,
}

impl Spread {
    pub fn of(values: &[f64]) -> Self {
        Self {
            median: median(values),
            p90: percentile(values, 0.9),
        }
    }
}

pub fn median(values: &[f64]) -> f64 {
    let sorted = sorted(values);
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// Nearest-rank percentile: the smallest value with at least `share` of the values at or
/// below it.
pub fn percentile(values: &[f64], share: f64) -> f64 {
    let sorted = sorted(values);
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (share * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn sorted(values: &[f64]) -> Vec<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

pub fn summarise(name: &str, samples: &[Sample]) -> Summary {
    let spread =
        |value: fn(&Sample) -> f64| Spread::of(&samples.iter().map(value).collect::<Vec<_>>());
    Summary {
        name: name.to_owned(),
        runs: samples.len(),
        init_ms: spread(|sample| millis(sample.init)),
        first_response_ms: spread(|sample| millis(sample.first_response)),
        rss_mib: spread(|sample| mib(sample.rss_kib)),
        hwm_mib: spread(|sample| mib(sample.hwm_kib)),
        answers: samples.iter().map(|sample| sample.answer.clone()).collect(),
    }
}

pub fn table(summaries: &[Summary], reference: Option<&Summary>) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<26} {:>4}  {:>17}  {:>17}  {:>15}  {:>9}  {:>18}  answers",
        "function",
        "runs",
        "init ms med/p90",
        "first resp med/p90",
        "RSS MiB med/p90",
        "HWM MiB",
        "x ref (resp / RSS)"
    );
    for summary in summaries {
        let ratios = match reference {
            Some(reference) => format!(
                "{:.2} / {:.2}",
                summary.first_response_ms.median / reference.first_response_ms.median,
                summary.rss_mib.median / reference.rss_mib.median
            ),
            None => "-".to_owned(),
        };
        let answers = summary
            .answers
            .iter()
            .cloned()
            .collect::<Vec<_>>()
            .join(",");
        let _ = writeln!(
            out,
            "{:<26} {:>4}  {:>8.1} / {:>6.1}  {:>8.1} / {:>6.1}  {:>6.1} / {:>6.1}  {:>9.1}  {:>18}  {answers}",
            summary.name,
            summary.runs,
            summary.init_ms.median,
            summary.init_ms.p90,
            summary.first_response_ms.median,
            summary.first_response_ms.p90,
            summary.rss_mib.median,
            summary.rss_mib.p90,
            summary.hwm_mib.median,
            ratios,
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn nearest_rank_p90() {
        let values: Vec<f64> = (1..=21).map(f64::from).collect();
        assert_eq!(percentile(&values, 0.9), 19.0);
        assert_eq!(percentile(&[5.0], 0.9), 5.0);
        assert_eq!(
            percentile(&(1..=10).map(f64::from).collect::<Vec<_>>(), 0.9),
            9.0
        );
    }

    #[test]
    fn summary_converts_units() {
        let samples = [Sample {
            init: Duration::from_millis(4),
            first_response: Duration::from_millis(10),
            rss_kib: 2048,
            hwm_kib: 3072,
            answer: "200".to_owned(),
        }];
        let summary = summarise("f", &samples);
        assert_eq!(summary.first_response_ms.median, 10.0);
        assert_eq!(summary.rss_mib.median, 2.0);
        assert_eq!(summary.hwm_mib.median, 3.0);
        assert!(table(std::slice::from_ref(&summary), Some(&summary)).contains("1.00 / 1.00"));
    }
}
