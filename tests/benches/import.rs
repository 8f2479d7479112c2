//! Catalogue import throughput and memory: a generated CSV of 1,000,000 rows (override with
//! `BAZAAR_BENCH_ROWS`) imported on the embedded backend. Run with
//! `cargo bench -p bazaar-tests --bench import`.
//!
//! Peak memory is the process's resident high-water mark during the import alone: the mark is
//! reset (Linux `clear_refs`) after the file has been generated and stored.

use std::time::Instant;

use bazaar_api::consumers::imports::{event_for, handle};
use bazaar_shared::imports;
use bazaar_tests::{Backend, TestServer};

fn resident_high_water_mark_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn resident_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let rows: usize = std::env::var("BAZAAR_BENCH_ROWS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(1_000_000);
    let server = TestServer::start(Backend::Embedded).await;
    let ports = server.app.ports().clone();

    // The file is put straight into the store below; the upload URL (signed for the largest
    // file) goes unused.
    let (import, _) = imports::create(
        &ports,
        Some("bench.csv"),
        Some(imports::run::MAX_IMPORT_BYTES),
    )
    .await
    .expect("create the import");
    let mut csv = String::with_capacity(rows * 70);
    csv.push_str("sku,name,description,category,price,currency,stock\n");
    for n in 0..rows {
        let category = ["tools", "toys", "books", "garden"][n % 4];
        csv.push_str(&format!(
            "SKU-{n},Item {n},generated row {n},{category},{},USD,{}\n",
            100 + n % 100_000,
            n % 50
        ));
    }
    let size = csv.len();
    ports
        .blobs
        .put(&import.key, csv.into_bytes(), "text/csv")
        .await
        .expect("put the CSV file");

    // Measure the import alone.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let before = resident_kib().unwrap_or(0);
    let started = Instant::now();
    let event = event_for("bench", &import.key, size).expect("build the upload event");
    handle(&server.app, event).await.expect("run the import");
    let elapsed = started.elapsed();
    let peak = resident_high_water_mark_kib().unwrap_or(0);
    let done = imports::get(&ports, &import.id)
        .await
        .expect("read the finished import");
    assert_eq!(done.created, rows as u64, "{done:?}");
    println!(
        "import of {rows} rows ({:.1} MiB): {:.1} s, {:.0} rows/s; resident memory {:.1} MiB before, peak {:.1} MiB during",
        size as f64 / 1048576.0,
        elapsed.as_secs_f64(),
        rows as f64 / elapsed.as_secs_f64(),
        before as f64 / 1024.0,
        peak as f64 / 1024.0,
    );
    server.stop().await;
}
