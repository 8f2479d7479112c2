//! Metrics on Lambda: a recorder behind the `metrics` facade that writes CloudWatch Embedded
//! Metric Format lines to stdout at the end of every invocation. CloudWatch Logs turns each
//! line into metric data in the `Bazaar` namespace, with no API call and no agent, so a
//! function pays nothing but a log line for its metrics.
//!
//! Every series is one line: its dimensions are `function` (the catalogue name) and the
//! metric's labels, all of them bounded (see `bazaar_shared::metrics`). Counters are written
//! as what they counted since the last flush; histograms as the values recorded (at most 100
//! per line, EMF's limit), from which CloudWatch computes percentiles.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use metrics::{
    Counter, CounterFn, Gauge, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder,
    SharedString, Unit,
};
use serde_json::{Map, Value, json};

/// The CloudWatch namespace of every metric.
pub const NAMESPACE: &str = "Bazaar";
/// The most values EMF accepts for one metric in one line.
const MAX_VALUES: usize = 100;

/// The process's series, once [`install`] has run.
static REGISTRY: OnceLock<Arc<Registry>> = OnceLock::new();

/// Makes the EMF recorder the process's recorder, for `function`, and counts this cold start.
/// Does nothing if a recorder is already installed.
pub fn install(function: &'static str) {
    let registry = Arc::new(Registry::new(function));
    if metrics::set_global_recorder(EmfRecorder(registry.clone())).is_ok() {
        let _ = REGISTRY.set(registry);
        metrics::counter!(bazaar_shared::metrics::COLD_STARTS).increment(1);
    }
}

/// Writes what was recorded since the last flush (one line per series) to stdout.
pub fn flush() {
    if let Some(registry) = REGISTRY.get() {
        for line in registry.drain(now_millis()) {
            println!("{line}");
        }
    }
}

fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as u64)
}

/// The recorder handed to the `metrics` facade.
struct EmfRecorder(Arc<Registry>);

/// Every series recorded in this process, by name and labels.
pub(crate) struct Registry {
    function: &'static str,
    series: Mutex<HashMap<Key, Arc<Series>>>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Counter,
    Histogram,
}

/// One series: the count since the last flush (a counter) or the values (a histogram).
struct Series {
    kind: Kind,
    count: AtomicU64,
    values: Mutex<Vec<f64>>,
}

impl CounterFn for Series {
    fn increment(&self, value: u64) {
        self.count.fetch_add(value, Ordering::Relaxed);
    }

    fn absolute(&self, value: u64) {
        self.count.store(value, Ordering::Relaxed);
    }
}

impl HistogramFn for Series {
    fn record(&self, value: f64) {
        self.values
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(value);
    }
}

impl Registry {
    pub(crate) fn new(function: &'static str) -> Self {
        Self {
            function,
            series: Mutex::new(HashMap::new()),
        }
    }

    fn series(&self, key: &Key, kind: Kind) -> Arc<Series> {
        self.series
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(key.clone())
            .or_insert_with(|| {
                Arc::new(Series {
                    kind,
                    count: AtomicU64::new(0),
                    values: Mutex::new(Vec::new()),
                })
            })
            .clone()
    }

    /// The EMF lines for what was recorded since the last drain, at `timestamp` (ms).
    pub(crate) fn drain(&self, timestamp: u64) -> Vec<String> {
        let series = self.series.lock().unwrap_or_else(PoisonError::into_inner);
        let mut lines = Vec::new();
        for (key, series) in series.iter() {
            match series.kind {
                Kind::Counter => {
                    let count = series.count.swap(0, Ordering::Relaxed);
                    if count > 0 {
                        lines.push(self.line(key, timestamp, json!(count)));
                    }
                }
                Kind::Histogram => {
                    let values = std::mem::take(
                        &mut *series.values.lock().unwrap_or_else(PoisonError::into_inner),
                    );
                    for chunk in values.chunks(MAX_VALUES) {
                        lines.push(self.line(key, timestamp, json!(chunk)));
                    }
                }
            }
        }
        lines
    }

    fn line(&self, key: &Key, timestamp: u64, value: Value) -> String {
        let name = key.name();
        let unit = if name.ends_with("_seconds") {
            "Seconds"
        } else {
            "Count"
        };
        let mut dimensions = vec!["function".to_owned()];
        let mut record = Map::new();
        record.insert("function".into(), json!(self.function));
        for label in key.labels() {
            dimensions.push(label.key().to_owned());
            record.insert(label.key().to_owned(), json!(label.value()));
        }
        record.insert(name.to_owned(), value);
        record.insert(
            "_aws".into(),
            json!({
                "Timestamp": timestamp,
                "CloudWatchMetrics": [{
                    "Namespace": NAMESPACE,
                    "Dimensions": [dimensions],
                    "Metrics": [{ "Name": name, "Unit": unit }],
                }],
            }),
        );
        Value::Object(record).to_string()
    }
}

impl Recorder for EmfRecorder {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(self.0.series(key, Kind::Counter))
    }

    /// The shop records no gauges (a Lambda's state ends with its invocation).
    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::noop()
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::from_arc(self.0.series(key, Kind::Histogram))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(lines: &[String]) -> Vec<Value> {
        let mut parsed: Vec<Value> = lines
            .iter()
            .map(|line| serde_json::from_str(line).expect("a JSON line"))
            .collect();
        parsed.sort_by_key(|line| line.to_string());
        parsed
    }

    #[test]
    fn counters_and_histograms_become_emf_lines_with_their_labels_as_dimensions() {
        let registry = Arc::new(Registry::new("payments-process"));
        let recorder = EmfRecorder(registry.clone());
        metrics::with_local_recorder(&recorder, || {
            metrics::counter!("payments_total", "method" => "card", "outcome" => "captured")
                .increment(2);
            metrics::counter!("payments_total", "method" => "card", "outcome" => "captured")
                .increment(1);
            metrics::histogram!("queue_message_age_seconds", "queue" => "payments").record(0.5);
            metrics::histogram!("queue_message_age_seconds", "queue" => "payments").record(1.5);
            metrics::counter!("outbox_swept_total").increment(0);
        });
        let lines = parsed(&registry.drain(1_700_000_000_000));
        assert_eq!(lines.len(), 2, "{lines:?}");
        let payments = lines
            .iter()
            .find(|line| line.get("payments_total").is_some())
            .expect("the counter's line");
        assert_eq!(payments["payments_total"], json!(3));
        assert_eq!(payments["function"], json!("payments-process"));
        assert_eq!(payments["method"], json!("card"));
        assert_eq!(payments["outcome"], json!("captured"));
        let metadata = &payments["_aws"];
        assert_eq!(metadata["Timestamp"], json!(1_700_000_000_000_u64));
        let directive = &metadata["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], json!("Bazaar"));
        assert_eq!(
            directive["Dimensions"],
            json!([["function", "method", "outcome"]])
        );
        assert_eq!(
            directive["Metrics"],
            json!([{"Name": "payments_total", "Unit": "Count"}])
        );
        let ages = lines
            .iter()
            .find(|line| line.get("queue_message_age_seconds").is_some())
            .expect("the histogram's line");
        assert_eq!(ages["queue_message_age_seconds"], json!([0.5, 1.5]));
        assert_eq!(
            ages["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Unit"],
            json!("Seconds")
        );

        // A drain takes what it wrote: the next one has nothing to say.
        assert!(registry.drain(1_700_000_060_000).is_empty());
    }

    #[test]
    fn more_values_than_one_line_holds_are_split() {
        let registry = Arc::new(Registry::new("products-get"));
        let recorder = EmfRecorder(registry.clone());
        metrics::with_local_recorder(&recorder, || {
            for value in 0..250 {
                metrics::histogram!("http_request_duration_seconds").record(f64::from(value));
            }
        });
        let lines = parsed(&registry.drain(0));
        let sizes: Vec<usize> = lines
            .iter()
            .map(|line| {
                line["http_request_duration_seconds"]
                    .as_array()
                    .map_or(0, Vec::len)
            })
            .collect();
        assert_eq!(sizes.iter().sum::<usize>(), 250);
        assert!(sizes.iter().all(|size| *size <= MAX_VALUES), "{sizes:?}");
    }
}
