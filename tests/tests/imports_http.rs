//! Catalogue imports end to end: an admin starts an import, uploads a CSV through the
//! presigned URL, the upload triggers the import (locally through the server's bucket events;
//! on AWS the test delivers the S3 event the bucket would send), and the status shows what
//! happened line by line.

use std::time::Duration;

use bazaar_api::consumers::imports::{event_for, handle};
use bazaar_api::functions::{self, Trigger};
use bazaar_shared::keys;
use bazaar_shared::ports::{Cond, Update};
use bazaar_tests::http::{Client, Response};
use bazaar_tests::{Backend, TestServer};
use serde_json::{Value, json};

bazaar_tests::on_both_backends!(
    an_uploaded_catalogue_is_imported_and_bad_lines_are_reported,
    importing_the_same_file_again_changes_nothing,
    a_bad_header_fails_the_import_and_imports_nothing,
    an_interrupted_import_resumes_without_duplicates,
    the_sweeper_resumes_an_import_whose_run_died,
    an_import_upload_is_bounded_by_its_announced_size,
);

const HEADER: &str = "sku,name,description,category,price,currency,stock\n";

/// Starts an import, uploads `csv`, makes sure the upload's event is delivered, and waits
/// for the import to finish.
async fn import(
    server: &TestServer,
    client: &Client,
    admin: &str,
    file_name: &str,
    csv: Vec<u8>,
) -> Response {
    import_and_wait(
        server,
        client,
        admin,
        file_name,
        csv,
        Duration::from_secs(60),
    )
    .await
}

async fn import_and_wait(
    server: &TestServer,
    client: &Client,
    admin: &str,
    file_name: &str,
    csv: Vec<u8>,
    patience: Duration,
) -> Response {
    let created = client
        .post(
            "/api/v1/imports",
            Some(admin),
            json!({"file_name": file_name, "size": csv.len()}),
        )
        .await;
    created.expect(201);
    let id = created.body["id"].as_str().unwrap_or_default().to_owned();
    assert_eq!(created.body["status"], "pending");
    let mut upload =
        reqwest::Client::new().put(created.body["upload_url"].as_str().unwrap_or_default());
    if let Some(headers) = created.body["headers"].as_object() {
        for (name, value) in headers {
            upload = upload.header(name, value.as_str().unwrap_or_default());
        }
    }
    let size = csv.len();
    let uploaded = upload.body(csv).send().await.expect("upload the CSV file");
    assert!(
        uploaded.status().is_success(),
        "upload refused: {}",
        uploaded.status()
    );
    if server.backend == Backend::Aws {
        // moto sends no bucket notifications: deliver the event S3 would send.
        let key = format!("imports/{id}/{file_name}");
        let event = event_for("assets", &key, size).expect("build the upload event");
        handle(&server.app, event)
            .await
            .expect("handle the upload event");
    }
    wait_until_finished(client, admin, &id, patience).await
}

async fn wait_until_finished(
    client: &Client,
    admin: &str,
    id: &str,
    patience: Duration,
) -> Response {
    let started = std::time::Instant::now();
    while started.elapsed() < patience {
        let status = client
            .get(&format!("/api/v1/imports/{id}"), Some(admin))
            .await;
        status.expect(200);
        if matches!(status.body["status"].as_str(), Some("done" | "failed")) {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("import {id} did not finish within {patience:?}");
}

fn rejected_lines(status: &Response) -> Vec<(u64, String)> {
    status.body["rejected"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|r| {
            (
                r["line"].as_u64().unwrap_or(0),
                r["reason"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

async fn an_uploaded_catalogue_is_imported_and_bad_lines_are_reported(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = Client::new(&server);
    let admin = client.admin(&server).await;
    let mut csv = HEADER.as_bytes().to_vec();
    csv.extend_from_slice(
        "BK-1,کتاب قدیمی,\"چاپ اول, ۱۳۵۰\",books,250000,IRR,3\n\
         BK-2,Second Book,,books,1999,USD,0\n\
         BAD-COLS,only three,columns\n\
         BK-3,Negative,,books,-5,USD,1\n\
         BK-4,Fraction,,books,12.50,USD,1\n\
         BK-5,Bad Category,,Not A Slug,100,USD,1\n\
         BK-6,Bad stock,,books,100,USD,many\n"
            .as_bytes(),
    );
    csv.extend_from_slice(b"BK-7,\xff\xfe broken,,books,100,USD,1\n");
    csv.extend_from_slice(format!("BK-8,{},,books,100,USD,1\n", "n".repeat(300)).as_bytes());
    csv.extend_from_slice(
        format!("BK-9,Huge category,,{},100,USD,1\n", "x".repeat(20_000)).as_bytes(),
    );
    csv.extend_from_slice("TOY-1,Spinning top,,toys,500,USD,10".as_bytes());
    let status = import(&server, &client, &admin, "کاتالوگ پاییز 1.csv", csv).await;
    assert_eq!(status.body["status"], "done", "{}", status.text);
    assert_eq!(status.body["rows_read"], 11);
    assert_eq!(status.body["created"], 3);
    assert_eq!(status.body["updated"], 0);
    assert_eq!(status.body["rejected_count"], 8);
    let rejected = rejected_lines(&status);
    let lines: Vec<u64> = rejected.iter().map(|(line, _)| *line).collect();
    assert_eq!(lines, [4, 5, 6, 7, 8, 9, 10, 11], "{rejected:?}");
    // Reasons quote what was wrong, but never so much that the import record could outgrow
    // a DynamoDB item.
    assert!(
        rejected
            .iter()
            .all(|(_, reason)| reason.chars().count() <= 200),
        "{rejected:?}"
    );
    for (line, expected) in [
        (4, "columns"),
        (5, "price"),
        (6, "price"),
        (7, "category"),
        (8, "stock"),
        (9, "UTF-8"),
        (10, "name"),
    ] {
        let reason = &rejected
            .iter()
            .find(|(l, _)| *l == line)
            .map(|(_, r)| r.clone())
            .unwrap_or_default();
        assert!(
            reason.contains(expected),
            "line {line}: {reason:?} should mention {expected}"
        );
    }

    // The products are in the catalogue, with their categories created on the way.
    let found = client
        .get("/api/v1/products?q=%DA%A9%D8%AA%D8%A7%D8%A8", None)
        .await;
    found.expect(200);
    assert_eq!(found.body["items"][0]["sku"], "BK-1");
    assert_eq!(found.body["items"][0]["description"], "چاپ اول, ۱۳۵۰");
    assert_eq!(found.body["items"][0]["stock"], 3);
    let books = client
        .get("/api/v1/products?category=books&sort=price_asc", None)
        .await;
    let skus: Vec<&str> = books.body["items"]
        .as_array()
        .map(|items| items.iter().filter_map(|p| p["sku"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(skus, ["BK-2", "BK-1"]);
    let categories = client.get("/api/v1/categories", None).await;
    let slugs: Vec<&str> = categories.body["items"]
        .as_array()
        .map(|items| items.iter().filter_map(|c| c["slug"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(slugs, ["books", "toys"]);

    // Admins only; an unknown import is a 404.
    let (customer, _) = client.register("shopper").await;
    client
        .post("/api/v1/imports", Some(&customer), json!({}))
        .await
        .expect_problem(403);
    client
        .get("/api/v1/imports/01HZZZZZZZZZZZZZZZZZZZZZZZ", Some(&admin))
        .await
        .expect_problem(404);
    client
        .post(
            "/api/v1/imports",
            Some(&admin),
            json!({"file_name": "../escape.csv"}),
        )
        .await
        .expect_problem(422);
}

async fn importing_the_same_file_again_changes_nothing(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = Client::new(&server);
    let admin = client.admin(&server).await;
    let csv =
        format!("{HEADER}A-1,Alpha,first,letters,100,USD,5\nB-2,Beta,second,letters,200,USD,0\n");
    let first = import(
        &server,
        &client,
        &admin,
        "letters.csv",
        csv.clone().into_bytes(),
    )
    .await;
    assert_eq!(
        (
            first.body["created"].as_u64(),
            first.body["unchanged"].as_u64()
        ),
        (Some(2), Some(0))
    );
    let before = client.get("/api/v1/products?sort=name", None).await;
    let again = import(&server, &client, &admin, "letters.csv", csv.into_bytes()).await;
    assert_eq!(again.body["status"], "done");
    assert_eq!(
        (
            again.body["created"].as_u64(),
            again.body["updated"].as_u64(),
            again.body["unchanged"].as_u64()
        ),
        (Some(0), Some(0), Some(2)),
        "{}",
        again.text
    );
    let after = client.get("/api/v1/products?sort=name", None).await;
    assert_eq!(before.body, after.body, "a re-run changed the catalogue");

    // A changed row updates its product in place.
    let changed = format!("{HEADER}A-1,Alpha,first,letters,150,USD,7\n");
    let third = import(
        &server,
        &client,
        &admin,
        "letters v2.csv",
        changed.into_bytes(),
    )
    .await;
    assert_eq!(
        (
            third.body["updated"].as_u64(),
            third.body["created"].as_u64()
        ),
        (Some(1), Some(0))
    );
    let alpha = client.get("/api/v1/products?q=alpha", None).await;
    assert_eq!(alpha.body["items"][0]["price"]["amount"], 150);
    assert_eq!(alpha.body["items"][0]["stock"], 7);
    assert_eq!(alpha.body["items"].as_array().map(Vec::len), Some(1));
}

async fn a_bad_header_fails_the_import_and_imports_nothing(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = Client::new(&server);
    let admin = client.admin(&server).await;
    let status = import(
        &server,
        &client,
        &admin,
        "wrong.csv",
        b"name,price\nA,1\n".to_vec(),
    )
    .await;
    assert_eq!(status.body["status"], "failed");
    assert!(
        status.body["error"]
            .as_str()
            .unwrap_or_default()
            .contains("header"),
        "{}",
        status.text
    );
    assert_eq!(status.body["created"], 0);
    let empty = import(&server, &client, &admin, "empty.csv", Vec::new()).await;
    assert_eq!(empty.body["status"], "failed");
    let listed = client.get("/api/v1/products", None).await;
    assert_eq!(listed.body["items"], json!([]));
}

async fn an_interrupted_import_resumes_without_duplicates(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = Client::new(&server);
    let admin = client.admin(&server).await;
    let rows: String = (0..20)
        .map(|n| format!("R-{n},Row {n},,rows,{},USD,1\n", 100 + n))
        .collect();
    let csv = format!("{HEADER}{rows}");
    let status = import(
        &server,
        &client,
        &admin,
        "rows.csv",
        csv.clone().into_bytes(),
    )
    .await;
    assert_eq!(status.body["created"], 20);
    let id = status.body["id"].as_str().unwrap_or_default().to_owned();

    // As if the run had died after line 8: running, lease lapsed, checkpoint at line 9.
    let offset = HEADER.len()
        + rows
            .lines()
            .take(7)
            .map(|line| line.len() + 1)
            .sum::<usize>();
    server
        .app
        .ports()
        .store
        .update(
            &keys::import(&bazaar_shared::ids::ImportId::trusted(id.as_str())),
            vec![
                Update::set("status", "running"),
                Update::set("lease_until", 0),
                Update::set("checkpoint_offset", offset as u64),
                Update::set("checkpoint_line", 9),
                Update::set("finished_at", Value::Null),
            ],
            Cond::Exists,
        )
        .await
        .expect("rewind the import to a checkpoint");
    // The event is delivered again (S3 retries): the run resumes from the checkpoint.
    let event = event_for("assets", &format!("imports/{id}/rows.csv"), csv.len())
        .expect("build the upload event");
    handle(&server.app, event)
        .await
        .expect("handle the redelivered upload event");
    let resumed = wait_until_finished(&client, &admin, &id, Duration::from_secs(60)).await;
    assert_eq!(resumed.body["status"], "done");
    // Rows 9..=21 were read again: 13 more reads, each finding its product unchanged.
    assert_eq!(resumed.body["rows_read"], 33, "{}", resumed.text);
    assert_eq!(resumed.body["unchanged"], 13);
    let mut skus = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/products?limit=100&cursor={c}"),
            None => "/api/v1/products?limit=100".to_owned(),
        };
        let page = client.get(&path, None).await;
        skus.extend(
            page.body["items"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .filter_map(|p| p["sku"].as_str().map(str::to_owned)),
        );
        match page.body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    skus.sort();
    skus.dedup();
    assert_eq!(skus.len(), 20, "duplicates or losses: {skus:?}");
}

/// A generated catalogue of 100,000 rows (every 1,000th one bad) through the whole path on
/// the embedded backend: upload, bucket event, streaming import, counts.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_thousand_row_catalogue_is_imported() {
    const ROWS: usize = 100_000;
    let server = TestServer::start(Backend::Embedded).await;
    let client = Client::new(&server);
    let admin = client.admin(&server).await;
    let mut csv = String::with_capacity(ROWS * 64);
    csv.push_str(HEADER);
    for n in 0..ROWS {
        if n % 1000 == 999 {
            csv.push_str(&format!(
                "GEN-{n},Broken {n},,generated,not-a-price,USD,1\n"
            ));
        } else {
            let category = ["tools", "toys", "books", "کتاب"][n % 4];
            csv.push_str(&format!(
                "GEN-{n},Item {n},generated row {n},{category},{},USD,{}\n",
                100 + n,
                n % 7
            ));
        }
    }
    let started = std::time::Instant::now();
    let status = import_and_wait(
        &server,
        &client,
        &admin,
        "generated.csv",
        csv.into_bytes(),
        Duration::from_secs(1800),
    )
    .await;
    eprintln!(
        "imported {ROWS} rows in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(status.body["status"], "done", "{}", status.text);
    assert_eq!(status.body["rows_read"], ROWS as u64);
    assert_eq!(status.body["created"], (ROWS - ROWS / 1000) as u64);
    assert_eq!(status.body["rejected_count"], (ROWS / 1000) as u64);
    let first_rejected = &status.body["rejected"][0];
    assert_eq!(
        first_rejected["line"], 1001,
        "header is line 1, GEN-999 is line 1001"
    );
    let page = client
        .get(
            "/api/v1/products?category=%DA%A9%D8%AA%D8%A7%D8%A8&limit=100",
            None,
        )
        .await;
    assert_eq!(page.body["items"].as_array().map(Vec::len), Some(100));
}

/// The clock `by` ahead of the real one.
struct Ahead(chrono::TimeDelta);

impl bazaar_shared::ports::Clock for Ahead {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::Utc::now() + self.0
    }
}

/// The running imports the sweeper's index partition lists.
async fn listed_as_running(server: &TestServer) -> Vec<String> {
    let query = bazaar_shared::ports::Query::partition(
        bazaar_shared::ports::Index::Gsi1,
        keys::RUNNING_IMPORTS_PARTITION,
    );
    let page = server
        .app
        .ports()
        .store
        .query(&query)
        .await
        .expect("query the running imports");
    page.items
        .iter()
        .filter_map(|item| item.get("id").and_then(Value::as_str).map(str::to_owned))
        .collect()
}

async fn the_sweeper_resumes_an_import_whose_run_died(backend: Backend) {
    let (server, store) = bazaar_tests::faults::server_with_dying_store(backend).await;
    let client = Client::new(&server);
    let admin = client.admin(&server).await;
    let rows: String = (0..20)
        .map(|n| format!("S-{n},Row {n},,,{},USD,1\n", 100 + n))
        .collect();
    let csv = format!("{HEADER}{rows}");
    let created = client
        .post(
            "/api/v1/imports",
            Some(&admin),
            json!({"file_name": "rows.csv", "size": csv.len()}),
        )
        .await;
    created.expect(201);
    let id = created.body["id"].as_str().unwrap_or_default().to_owned();

    // The process dies after a few rows: every later write fails, and nothing retries.
    store.die_after(6);
    let mut upload =
        reqwest::Client::new().put(created.body["upload_url"].as_str().unwrap_or_default());
    if let Some(headers) = created.body["headers"].as_object() {
        for (name, value) in headers {
            upload = upload.header(name, value.as_str().unwrap_or_default());
        }
    }
    let uploaded = upload
        .body(csv.clone())
        .send()
        .await
        .expect("upload the CSV file");
    assert!(uploaded.status().is_success(), "{}", uploaded.status());
    if server.backend == Backend::Aws {
        let event = event_for("assets", &format!("imports/{id}/rows.csv"), csv.len())
            .expect("build the upload event");
        assert!(handle(&server.app, event).await.is_err());
    }
    let started = std::time::Instant::now();
    while store.deaths.load(std::sync::atomic::Ordering::SeqCst) == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the run never died"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    store.disarm();
    let stranded = client
        .get(&format!("/api/v1/imports/{id}"), Some(&admin))
        .await;
    assert_eq!(stranded.body["status"], "running", "{}", stranded.text);
    let products_before = client.get("/api/v1/products?limit=50", None).await;
    let made_before = products_before.body["items"]
        .as_array()
        .map(Vec::len)
        .unwrap_or_default();
    assert!(made_before > 0 && made_before < 20, "{made_before} made");
    assert_eq!(listed_as_running(&server).await, vec![id.clone()]);

    // While the dead run's lease is still live, the sweeper leaves the import alone.
    let Trigger::Schedule { handler: sweep, .. } = functions::IMPORTS_SWEEP.trigger else {
        panic!("imports-sweep is not a scheduled function");
    };
    let swept = sweep(server.app.clone())
        .await
        .expect("sweep while the lease is live");
    assert_eq!(swept["resumed"], 0, "{swept}");
    assert_eq!(swept["busy"], 1, "{swept}");

    // Past the lease, two sweepers at once: the import is resumed, by exactly one of them.
    let mut later = server.app.ports().clone();
    later.clock = std::sync::Arc::new(Ahead(chrono::TimeDelta::minutes(2)));
    let products = bazaar_shared::catalogue::Products::new(later);
    let (first, second) = tokio::join!(
        bazaar_shared::imports::sweep(&products),
        bazaar_shared::imports::sweep(&products)
    );
    let (first, second) = (
        first.expect("the first sweep"),
        second.expect("the second sweep"),
    );
    assert!(first.resumed + second.resumed >= 1, "{first:?} {second:?}");
    assert_eq!(first.failed + second.failed, 0, "{first:?} {second:?}");

    let finished = wait_until_finished(&client, &admin, &id, Duration::from_secs(30)).await;
    assert_eq!(finished.body["status"], "done", "{}", finished.text);
    // No checkpoint was saved before the death: the whole file was read again, once.
    assert_eq!(finished.body["rows_read"], 20, "{}", finished.text);
    assert_eq!(
        finished.body["created"],
        20 - made_before,
        "{}",
        finished.text
    );
    assert_eq!(finished.body["unchanged"], made_before, "{}", finished.text);
    let listed = client.get("/api/v1/products?limit=100", None).await;
    assert_eq!(
        listed.body["items"].as_array().map(Vec::len),
        Some(20),
        "{}",
        listed.text
    );
    assert!(listed_as_running(&server).await.is_empty());
}

async fn an_import_upload_is_bounded_by_its_announced_size(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = Client::new(&server);
    let admin = client.admin(&server).await;
    let max = bazaar_shared::imports::run::MAX_IMPORT_BYTES;
    for body in [
        json!({"file_name": "a.csv"}),
        json!({"file_name": "a.csv", "size": max + 1}),
        json!({"file_name": "a.csv", "size": -1}),
    ] {
        let refused = client.post("/api/v1/imports", Some(&admin), body).await;
        refused.expect_problem(422);
        assert_eq!(refused.error_fields(), ["size"], "{}", refused.text);
    }

    let csv = format!("{HEADER}B-1,Book,,,100,USD,1\n");
    let created = client
        .post(
            "/api/v1/imports",
            Some(&admin),
            json!({"file_name": "a.csv", "size": csv.len()}),
        )
        .await;
    created.expect(201);
    // The URL is signed for exactly that length.
    assert_eq!(
        created.body["headers"]["content-length"],
        csv.len().to_string(),
        "{}",
        created.text
    );
    let url = created.body["upload_url"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    if backend == Backend::Aws {
        let signed = url
            .split(['?', '&'])
            .find_map(|pair| pair.strip_prefix("X-Amz-SignedHeaders="))
            .unwrap_or_default()
            .to_owned();
        assert!(signed.contains("content-length"), "{url}");
    }
    let put = |body: Vec<u8>| {
        let mut request = reqwest::Client::new().put(&url);
        if let Some(headers) = created.body["headers"].as_object() {
            for (name, value) in headers {
                if name != "content-length" {
                    request = request.header(name, value.as_str().unwrap_or_default());
                }
            }
        }
        request.body(body).send()
    };
    if backend == Backend::Embedded {
        // moto does not check signatures; S3 and the local server refuse another length.
        let mut larger = csv.clone().into_bytes();
        larger.extend_from_slice(&[b'x'; 4096]);
        let status = put(larger).await.expect("send the larger upload").status();
        assert!(
            status.is_client_error(),
            "a larger file was accepted: {status}"
        );
    }
    let status = put(csv.into_bytes())
        .await
        .expect("send the upload of the signed length")
        .status();
    assert!(
        status.is_success(),
        "the announced file was refused: {status}"
    );
}
