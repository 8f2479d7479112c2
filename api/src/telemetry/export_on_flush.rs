//! The span processor: finished spans wait in memory and are exported together when flushed:
//! at the end of every Lambda invocation, every few seconds in the local server, and as soon
//! as a batch is full.
//!
//! Why not the SDK's batch processor: on Lambda the only export that matters is the one at
//! the end of the invocation (the environment may be frozen right after), which a flush gives
//! either way, and the batch processor's own thread, channels and timers cost a function
//! package bytes that buy nothing there. Exporting blocks the flushing thread: the exporter
//! posts to a collector on loopback (see `otlp_client`).

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use opentelemetry::Context;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{Span, SpanData, SpanExporter, SpanProcessor};

/// Spans exported in one request at most; a fuller buffer is exported at once.
const BATCH: usize = 512;

#[derive(Debug)]
pub struct ExportOnFlush<E> {
    exporter: Mutex<E>,
    finished: Mutex<Vec<SpanData>>,
}

impl<E: SpanExporter> ExportOnFlush<E> {
    pub fn new(exporter: E) -> Self {
        Self {
            exporter: Mutex::new(exporter),
            finished: Mutex::new(Vec::new()),
        }
    }

    /// Exports every span finished so far.
    fn export(&self) -> OTelSdkResult {
        let spans = std::mem::take(&mut *lock(&self.finished));
        if spans.is_empty() {
            return Ok(());
        }
        let exporter = lock(&self.exporter);
        futures_executor::block_on(exporter.export(spans))
    }
}

impl<E: SpanExporter> SpanProcessor for ExportOnFlush<E> {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        let full = {
            let mut finished = lock(&self.finished);
            finished.push(span);
            finished.len() >= BATCH
        };
        if full && let Err(error) = self.export() {
            eprintln!("spans not exported: {error}");
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.export()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        let exported = self.export();
        let shut = lock(&self.exporter).shutdown_with_timeout(timeout);
        exported.and(shut)
    }

    fn set_resource(&mut self, resource: &Resource) {
        lock(&self.exporter).set_resource(resource);
    }
}

/// Neither buffer nor exporter can be left inconsistent by a panic elsewhere.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
