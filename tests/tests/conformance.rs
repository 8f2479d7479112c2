//! One conformance suite for the ports, run against both adapters: the embedded backend and
//! the AWS adapters against moto. Whatever the domain relies on is asserted here.

use std::collections::HashSet;
use std::time::Duration;

use bazaar_shared::Ports;
use bazaar_shared::events::{Event, EventType};
use bazaar_shared::outbox::{self, Staged};
use bazaar_shared::ports::queue::dead_letter_queue;
use bazaar_shared::ports::{
    Attributes, Cond, Index, Item, Key, Query, Store, StoreError, TxOp, Update,
};
use bazaar_tests::server::unique;
use bazaar_tests::{Backend, TestServer};
use serde_json::{Value, json};

bazaar_tests::on_both_backends!(
    fifty_concurrent_decrements_of_ten_succeed_exactly_ten_times,
    a_transaction_with_one_failing_condition_writes_nothing,
    single_item_writes_honour_their_conditions,
    queries_read_one_partition_in_order_a_page_at_a_time,
    sort_key_ranges_are_inclusive_and_paginate,
    batch_reads_return_what_exists,
    an_undeleted_message_returns_and_is_dead_lettered_after_n_receives,
    deleted_messages_are_gone,
    blobs_round_trip_through_presigned_urls,
    a_sized_presigned_upload_signs_its_length,
    blobs_are_read_by_range,
    an_event_stranded_in_the_outbox_is_still_delivered,
    a_listing_spread_over_shards_reads_every_item_once_in_order,
    redelivered_events_are_handled_once_and_poison_is_dead_lettered,
);

fn item(value: Value) -> Item {
    match value {
        Value::Object(map) => map,
        _ => Item::new(),
    }
}

fn ports(server: &TestServer) -> Ports {
    server.app.ports().clone()
}

async fn fifty_concurrent_decrements_of_ten_succeed_exactly_ten_times(backend: Backend) {
    let server = TestServer::start(backend).await;
    let ports = ports(&server);
    let key = Key::new("PRODUCT#p1", "STOCK");
    ports
        .store
        .put(
            item(json!({"pk": key.pk, "sk": key.sk, "stock": 10})),
            Cond::NotExists,
        )
        .await
        .expect("put the stock of ten");
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..50 {
        let ports = ports.clone();
        let key = key.clone();
        tasks.spawn(async move {
            ports
                .store
                .update(
                    &key,
                    vec![Update::add("stock", -1)],
                    Cond::AtLeast("stock".into(), 1),
                )
                .await
        });
    }
    let (mut won, mut refused) = (0, 0);
    while let Some(result) = tasks.join_next().await {
        match result.expect("join a decrement task") {
            Ok(_) => won += 1,
            Err(StoreError::ConditionFailed) => refused += 1,
            Err(other) => panic!("unexpected error {other}"),
        }
    }
    assert_eq!((won, refused), (10, 40));
    let stored = ports.store.get(&key).await.expect("get the stock");
    assert_eq!(stored.and_then(|i| i.get("stock").cloned()), Some(json!(0)));
}

async fn a_transaction_with_one_failing_condition_writes_nothing(backend: Backend) {
    let server = TestServer::start(backend).await;
    let ports = ports(&server);
    ports
        .store
        .put(item(json!({"pk": "A", "sk": "1", "n": 1})), Cond::Always)
        .await
        .expect("put item A");
    let ops = vec![
        TxOp::Put {
            item: item(json!({"pk": "B", "sk": "1"})),
            cond: Cond::NotExists,
        },
        TxOp::Update {
            key: Key::new("A", "1"),
            updates: vec![Update::add("n", 1)],
            cond: Cond::eq("n", 1),
        },
        TxOp::Check {
            key: Key::new("C", "1"),
            cond: Cond::Exists,
        },
    ];
    let result = ports.store.transact(ops).await;
    assert_eq!(
        result,
        Err(StoreError::TransactionCancelled { failed: vec![2] })
    );
    assert_eq!(
        ports.store.get(&Key::new("B", "1")).await,
        Ok(None),
        "the put leaked"
    );
    let a = ports.store.get(&Key::new("A", "1")).await.ok().flatten();
    assert_eq!(
        a.and_then(|i| i.get("n").cloned()),
        Some(json!(1)),
        "the update leaked"
    );

    // The same transaction with the condition met applies everything.
    ports
        .store
        .put(item(json!({"pk": "C", "sk": "1"})), Cond::Always)
        .await
        .expect("put item C");
    let ops = vec![
        TxOp::Put {
            item: item(json!({"pk": "B", "sk": "1"})),
            cond: Cond::NotExists,
        },
        TxOp::Update {
            key: Key::new("A", "1"),
            updates: vec![Update::add("n", 1)],
            cond: Cond::eq("n", 1),
        },
        TxOp::Delete {
            key: Key::new("C", "1"),
            cond: Cond::Exists,
        },
    ];
    ports
        .store
        .transact(ops)
        .await
        .expect("run the transaction whose conditions are met");
    assert!(
        ports
            .store
            .get(&Key::new("B", "1"))
            .await
            .ok()
            .flatten()
            .is_some()
    );
    assert_eq!(ports.store.get(&Key::new("C", "1")).await, Ok(None));
}

async fn single_item_writes_honour_their_conditions(backend: Backend) {
    let server = TestServer::start(backend).await;
    let store = ports(&server).store;
    let key = Key::new("USER#1", "PROFILE");
    let first = item(json!({"pk": "USER#1", "sk": "PROFILE", "name": "نام", "version": 1}));
    store
        .put(first.clone(), Cond::NotExists)
        .await
        .expect("put the first profile");
    assert_eq!(
        store.put(first, Cond::NotExists).await,
        Err(StoreError::ConditionFailed)
    );
    let updated = store
        .update(
            &key,
            vec![Update::set("name", "new"), Update::add("version", 1)],
            Cond::eq("version", 1),
        )
        .await
        .expect("update the profile at version 1");
    assert_eq!(updated.get("version"), Some(&json!(2)));
    assert_eq!(updated.get("name"), Some(&json!("new")));
    // A stale version is refused and changes nothing.
    assert_eq!(
        store
            .update(
                &key,
                vec![Update::set("name", "stale")],
                Cond::eq("version", 1)
            )
            .await,
        Err(StoreError::ConditionFailed)
    );
    assert_eq!(
        store.delete(&key, Cond::eq("version", 1)).await,
        Err(StoreError::ConditionFailed)
    );
    let stored = store.get(&key).await.ok().flatten();
    assert_eq!(
        stored.and_then(|i| i.get("name").cloned()),
        Some(json!("new"))
    );
    store
        .delete(&key, Cond::Exists)
        .await
        .expect("delete the existing profile");
    assert_eq!(store.get(&key).await, Ok(None));
    assert_eq!(
        store.delete(&key, Cond::Exists).await,
        Err(StoreError::ConditionFailed)
    );
    store
        .delete(&key, Cond::Always)
        .await
        .expect("delete the missing profile unconditionally");
}

async fn queries_read_one_partition_in_order_a_page_at_a_time(backend: Backend) {
    let server = TestServer::start(backend).await;
    let store = ports(&server).store;
    for n in 0..7 {
        let entry = item(json!({
            "pk": "USER#q", "sk": format!("ADDRESS#{n:02}"),
            "gsi1pk": "CITY#tehran", "gsi1sk": format!("{:02}", 10 - n),
        }));
        store
            .put(entry, Cond::Always)
            .await
            .expect("put an address");
    }
    for other in [("USER#q", "PROFILE"), ("USER#r", "ADDRESS#00")] {
        store
            .put(item(json!({"pk": other.0, "sk": other.1})), Cond::Always)
            .await
            .expect("put an item outside the query");
    }
    let read_all = |query: Query| {
        let store = store.clone();
        async move {
            let mut seen = Vec::new();
            let mut query = query;
            loop {
                let page = store.query(&query).await.expect("query a page");
                assert!(page.items.len() <= query.limit);
                seen.extend(
                    page.items
                        .iter()
                        .filter_map(|i| i.get("sk").and_then(Value::as_str).map(str::to_owned)),
                );
                match page.last_key {
                    Some(last) => query = query.start_after(Some(last)),
                    None => return seen,
                }
            }
        }
    };
    let ascending = read_all(
        Query::partition(Index::Primary, "USER#q")
            .prefix("ADDRESS#")
            .limit(3),
    )
    .await;
    let expected: Vec<String> = (0..7).map(|n| format!("ADDRESS#{n:02}")).collect();
    assert_eq!(ascending, expected);
    let descending = read_all(
        Query::partition(Index::Primary, "USER#q")
            .prefix("ADDRESS#")
            .descending()
            .limit(2),
    )
    .await;
    assert_eq!(
        descending,
        expected.iter().rev().cloned().collect::<Vec<_>>()
    );
    // On the index, sorted by gsi1sk (10 - n): the reverse of the table order.
    let by_index = read_all(Query::partition(Index::Gsi1, "CITY#tehran").limit(4)).await;
    assert_eq!(by_index, expected.iter().rev().cloned().collect::<Vec<_>>());
    let none = read_all(Query::partition(Index::Primary, "USER#nobody")).await;
    assert!(none.is_empty());
}

/// Reads a query page by page: the `sk` of every item in the order read, and the number of
/// pages. Every page but the last must be full.
async fn read_pages(store: &dyn Store, query: Query) -> (Vec<String>, usize) {
    let mut seen = Vec::new();
    let mut pages = 0;
    let mut query = query;
    loop {
        let page = store.query(&query).await.expect("query a page");
        pages += 1;
        assert!(pages <= 50, "pagination does not terminate");
        assert!(page.items.len() <= query.limit);
        seen.extend(
            page.items
                .iter()
                .filter_map(|i| i.get("sk").and_then(Value::as_str).map(str::to_owned)),
        );
        match page.last_key {
            Some(last) => query = query.start_after(Some(last)),
            None => return (seen, pages),
        }
    }
}

fn strings(values: &[&str]) -> Vec<String> {
    values.iter().map(|v| (*v).to_owned()).collect()
}

async fn sort_key_ranges_are_inclusive_and_paginate(backend: Backend) {
    let server = TestServer::start(backend).await;
    let store = ports(&server).store;
    for n in 1..=8 {
        // On the index, gsi1sk runs backwards: T#19 for EVENT#01 down to T#12 for EVENT#08.
        let event = item(json!({
            "pk": "USER#r", "sk": format!("EVENT#{n:02}"),
            "gsi1pk": "FEED#r", "gsi1sk": format!("T#{:02}", 20 - n),
        }));
        store.put(event, Cond::Always).await.expect("put an event");
    }
    for (pk, sk) in [
        ("USER#r", "ALERT#05"),
        ("USER#r", "PROFILE"),
        ("USER#s", "EVENT#04"),
    ] {
        let other = item(json!({"pk": pk, "sk": sk, "gsi1pk": "FEED#s", "gsi1sk": "T#15"}));
        store
            .put(other, Cond::Always)
            .await
            .expect("put an item outside the range");
    }
    let middle = strings(&["EVENT#03", "EVENT#04", "EVENT#05", "EVENT#06"]);
    let reversed: Vec<String> = middle.iter().rev().cloned().collect();

    let primary = Query::partition(Index::Primary, "USER#r").between("EVENT#03", "EVENT#06");
    let (whole, pages) = read_pages(&*store, primary.clone()).await;
    assert_eq!(whole, middle, "both bounds are included");
    assert_eq!(pages, 1);
    let (ascending, pages) = read_pages(&*store, primary.clone().limit(3)).await;
    assert_eq!(ascending, middle);
    assert!(
        pages >= 2,
        "a limit of 3 over 4 items takes two pages, not {pages}"
    );
    let (descending, pages) = read_pages(&*store, primary.clone().descending().limit(1)).await;
    assert_eq!(descending, reversed);
    assert!(pages >= 4, "{pages}");
    let first = store
        .query(&primary.clone().descending().limit(2))
        .await
        .expect("query the first two events");
    assert_eq!(first.items.len(), 2);
    assert_eq!(
        first.last_key.as_ref().and_then(|k| k.get("sk")),
        Some(&json!("EVENT#05"))
    );
    // Bounds need not be stored keys, and a range may be a single key.
    let (loose, _) = read_pages(
        &*store,
        Query::partition(Index::Primary, "USER#r").between("EVENT#025", "EVENT#065"),
    )
    .await;
    assert_eq!(loose, middle);
    let (point, _) = read_pages(
        &*store,
        Query::partition(Index::Primary, "USER#r").between("EVENT#08", "EVENT#08"),
    )
    .await;
    assert_eq!(point, strings(&["EVENT#08"]));
    let (spanning, _) = read_pages(
        &*store,
        Query::partition(Index::Primary, "USER#r").between("A", "EVENT#01"),
    )
    .await;
    assert_eq!(spanning, strings(&["ALERT#05", "EVENT#01"]));

    // T#14..=T#17 on the index: EVENT#06 down to EVENT#03, in gsi1sk order.
    let by_time = Query::partition(Index::Gsi1, "FEED#r").between("T#14", "T#17");
    let (ascending, pages) = read_pages(&*store, by_time.clone().limit(3)).await;
    assert_eq!(ascending, reversed);
    assert!(pages >= 2, "{pages}");
    let (descending, pages) = read_pages(&*store, by_time.clone().descending().limit(1)).await;
    assert_eq!(descending, middle);
    assert!(pages >= 4, "{pages}");
    let (none, _) = read_pages(
        &*store,
        Query::partition(Index::Gsi1, "FEED#r").between("U", "V"),
    )
    .await;
    assert!(none.is_empty(), "{none:?}");

    for both in [
        primary.clone().prefix("EVENT#"),
        by_time.clone().prefix("T#1"),
        Query::partition(Index::Primary, "USER#r")
            .prefix("EVENT#")
            .between("EVENT#01", "EVENT#02")
            .limit(0),
    ] {
        let result = store.query(&both).await;
        assert!(
            matches!(result, Err(StoreError::Invalid(_))),
            "a prefix and a range: {result:?}"
        );
    }
    let backwards = Query::partition(Index::Primary, "USER#r").between("EVENT#06", "EVENT#03");
    let result = store.query(&backwards).await;
    assert!(matches!(result, Err(StoreError::Invalid(_))), "{result:?}");
}

async fn batch_reads_return_what_exists(backend: Backend) {
    let server = TestServer::start(backend).await;
    let store = ports(&server).store;
    for n in 0..100 {
        let line =
            item(json!({"pk": "CART#b", "sk": format!("LINE#{n:03}"), "qty": n, "name": "چای"}));
        store
            .put(line, Cond::Always)
            .await
            .expect("put a cart line");
    }
    let sorted_keys = |items: &[Item]| {
        let mut keys: Vec<Key> = items.iter().filter_map(Key::of).collect();
        keys.sort_by(|a, b| (&a.pk, &a.sk).cmp(&(&b.pk, &b.sk)));
        keys
    };

    let mixed = [
        Key::new("CART#b", "LINE#042"),
        Key::new("CART#b", "LINE#100"),
        Key::new("CART#nobody", "LINE#001"),
        Key::new("CART#b", "LINE#007"),
    ];
    let found = store
        .get_many(&mixed)
        .await
        .expect("get the present and missing lines");
    assert_eq!(
        sorted_keys(&found),
        [
            Key::new("CART#b", "LINE#007"),
            Key::new("CART#b", "LINE#042")
        ]
    );
    assert!(
        found.contains(&item(
            json!({"pk": "CART#b", "sk": "LINE#042", "qty": 42, "name": "چای"})
        )),
        "whole items come back: {found:?}"
    );
    let nothing = store
        .get_many(&[Key::new("CART#b", "LINE#999")])
        .await
        .expect("get a missing line");
    assert!(nothing.is_empty(), "{nothing:?}");

    let hundred: Vec<Key> = (0..100)
        .map(|n| Key::new("CART#b", format!("LINE#{n:03}")))
        .collect();
    let found = store.get_many(&hundred).await.expect("get a hundred lines");
    assert_eq!(sorted_keys(&found), hundred);
    let mut quantities: Vec<i64> = found
        .iter()
        .filter_map(|i| i.get("qty").and_then(Value::as_i64))
        .collect();
    quantities.sort_unstable();
    assert_eq!(quantities, (0..100).collect::<Vec<i64>>());

    let mut too_many = hundred.clone();
    too_many.push(Key::new("CART#b", "LINE#100"));
    let result = store.get_many(&too_many).await;
    assert!(
        matches!(result, Err(StoreError::Invalid(_))),
        "101 keys: {result:?}"
    );
    let twice = [mixed[0].clone(), mixed[1].clone(), mixed[0].clone()];
    let result = store.get_many(&twice).await;
    assert!(
        matches!(result, Err(StoreError::Invalid(_))),
        "a key twice: {result:?}"
    );
    assert_eq!(store.get_many(&[]).await, Ok(Vec::new()));
}

async fn an_undeleted_message_returns_and_is_dead_lettered_after_n_receives(backend: Backend) {
    let server = TestServer::start_with(backend, 2).await;
    let queue = "conformance";
    server.ensure_queue(queue).await;
    let q = ports(&server).queue;
    // Attributes (a trace context, here) travel with the message, redelivered or not.
    let attributes = Attributes::from([(
        "traceparent".to_owned(),
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".to_owned(),
    )]);
    q.send(queue, "hello", &attributes)
        .await
        .expect("send the message");
    let visibility = Duration::from_secs(1);
    let first = q
        .receive(queue, 10, visibility)
        .await
        .expect("receive the message");
    assert_eq!(first.len(), 1);
    assert_eq!(
        (first[0].body.as_str(), first[0].receive_count),
        ("hello", 1)
    );
    assert_eq!(first[0].attributes, attributes);
    let hidden = q
        .receive(queue, 10, visibility)
        .await
        .expect("receive while the message is hidden");
    assert!(
        hidden.is_empty(),
        "an in-flight message was handed out twice"
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let second = q
        .receive(queue, 10, visibility)
        .await
        .expect("receive the message again");
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].receive_count, 2);
    assert_eq!(second[0].message_id, first[0].message_id);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // Received twice and never deleted: the next receive moves it to the dead-letter queue.
    let third = q
        .receive(queue, 10, visibility)
        .await
        .expect("receive a third time");
    assert!(third.is_empty(), "{third:?}");
    let dead = q
        .receive(&dead_letter_queue(queue), 10, visibility)
        .await
        .expect("receive from the dead-letter queue");
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].body, "hello");
    assert_eq!(
        dead[0].attributes, attributes,
        "dead-lettered with its attributes"
    );
}

async fn deleted_messages_are_gone(backend: Backend) {
    let server = TestServer::start(backend).await;
    let queue = "conformance";
    server.ensure_queue(queue).await;
    let q = ports(&server).queue;
    for n in 0..3 {
        q.send(queue, &format!("message {n}"), &Attributes::new())
            .await
            .expect("send a message");
    }
    let visibility = Duration::from_secs(1);
    let received = q
        .receive(queue, 10, visibility)
        .await
        .expect("receive the messages");
    let bodies: HashSet<String> = received.iter().map(|m| m.body.clone()).collect();
    assert_eq!(bodies.len(), 3, "{bodies:?}");
    for message in &received {
        q.delete(queue, &message.receipt_handle)
            .await
            .expect("delete a message");
    }
    // Deleting again with the same (now stale) handle is harmless.
    q.delete(queue, &received[0].receipt_handle)
        .await
        .expect("delete a message again");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let again = q
        .receive(queue, 10, visibility)
        .await
        .expect("receive after the deletes");
    assert!(again.is_empty(), "{again:?}");
}

async fn blobs_round_trip_through_presigned_urls(backend: Backend) {
    let server = TestServer::start(backend).await;
    let blobs = ports(&server).blobs;
    let http = reqwest::Client::new();
    blobs
        .put(
            "docs/فاکتور 1.txt",
            "سلام".as_bytes().to_vec(),
            "text/plain; charset=utf-8",
        )
        .await
        .expect("put the text blob");
    let stored = blobs.get("docs/فاکتور 1.txt").await.ok().flatten();
    assert_eq!(
        stored.as_ref().map(|b| b.body.as_slice()),
        Some("سلام".as_bytes())
    );
    assert_eq!(
        stored.map(|b| b.content_type),
        Some("text/plain; charset=utf-8".to_owned())
    );
    assert_eq!(blobs.get("docs/missing").await, Ok(None));

    let key = format!("uploads/{}/image one.png", unique("u"));
    let upload = blobs
        .presign_put(&key, "image/png", None, Duration::from_secs(300))
        .await
        .expect("presign the upload");
    assert_eq!(upload.method, "PUT");
    let mut request = http.put(&upload.url).body(vec![137u8, 80, 78, 71]);
    for (name, value) in &upload.headers {
        request = request.header(name, value);
    }
    let response = request.send().await.expect("send the presigned upload");
    assert!(
        response.status().is_success(),
        "upload refused: {}",
        response.status()
    );
    let uploaded = blobs.get(&key).await.ok().flatten();
    assert_eq!(
        uploaded.as_ref().map(|b| b.body.clone()),
        Some(vec![137u8, 80, 78, 71])
    );
    assert_eq!(
        uploaded.map(|b| b.content_type),
        Some("image/png".to_owned())
    );

    let download = blobs
        .presign_get(&key, Duration::from_secs(300))
        .await
        .expect("presign the download");
    let fetched = http
        .get(&download.url)
        .send()
        .await
        .expect("send the presigned download");
    assert!(fetched.status().is_success());
    assert_eq!(
        fetched.bytes().await.ok().map(|b| b.to_vec()),
        Some(vec![137u8, 80, 78, 71])
    );
}

/// A presigned upload with a length carries it among the signed headers on both backends, and
/// an upload of exactly that length goes through. (That another length is refused is checked
/// on the embedded backend in `presigned_urls.rs`: moto does not check signatures.)
async fn a_sized_presigned_upload_signs_its_length(backend: Backend) {
    let server = TestServer::start(backend).await;
    let blobs = ports(&server).blobs;
    let product = unique("p");
    let key = format!("products/{product}/images/ایران 1.webp");
    let body = b"RIFF....WEBP".to_vec();
    let upload = blobs
        .presign_put(
            &key,
            "image/webp",
            Some(body.len() as u64),
            Duration::from_secs(300),
        )
        .await
        .expect("presign the sized upload");
    let mut headers = upload.headers.clone();
    headers.sort();
    assert_eq!(
        headers,
        [
            ("content-length".to_owned(), body.len().to_string()),
            ("content-type".to_owned(), "image/webp".to_owned()),
        ]
    );
    let mut request = reqwest::Client::new().put(&upload.url).body(body.clone());
    for (name, value) in &upload.headers {
        request = request.header(name, value);
    }
    let response = request.send().await.expect("send the sized upload");
    assert!(
        response.status().is_success(),
        "upload refused: {}",
        response.status()
    );
    let uploaded = blobs.get(&key).await.ok().flatten();
    assert_eq!(
        uploaded.map(|b| (b.body, b.content_type)),
        Some((body, "image/webp".to_owned()))
    );
    let public = blobs.public_url(&key);
    assert!(
        public.ends_with(&format!(
            "/products/{product}/images/%D8%A7%DB%8C%D8%B1%D8%A7%D9%86%201.webp"
        )),
        "{public}"
    );
}

async fn blobs_are_read_by_range(backend: Backend) {
    let server = TestServer::start(backend).await;
    let blobs = ports(&server).blobs;
    let key = format!("imports/{}/catalogue.csv", unique("r"));
    let body: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
    blobs
        .put(&key, body.clone(), "text/csv")
        .await
        .expect("put the CSV blob");
    let range = |start: u64, len: u64| {
        let blobs = blobs.clone();
        let key = key.clone();
        async move {
            blobs
                .get_range(&key, start, len)
                .await
                .expect("read a range")
        }
    };
    assert_eq!(
        range(0, 10).await,
        Some(body[..10].to_vec()),
        "from the start"
    );
    assert_eq!(
        range(500, 256).await,
        Some(body[500..756].to_vec()),
        "from the middle"
    );
    assert_eq!(
        range(990, 100).await,
        Some(body[990..].to_vec()),
        "across the end"
    );
    assert_eq!(range(0, 5000).await, Some(body.clone()), "the whole object");
    assert_eq!(range(1000, 10).await, Some(Vec::new()), "at the end");
    assert_eq!(range(5000, 10).await, Some(Vec::new()), "past the end");
    // A large object read in bounded chunks yields exactly its bytes.
    let mut streamed = Vec::new();
    loop {
        let chunk = range(streamed.len() as u64, 300).await.unwrap_or_default();
        if chunk.is_empty() {
            break;
        }
        streamed.extend(chunk);
    }
    assert_eq!(streamed, body);
    assert_eq!(
        blobs.get_range("imports/missing.csv", 0, 10).await,
        Ok(None),
        "a missing object"
    );
    assert!(blobs.get_range("../escape", 0, 10).await.is_err());
}

/// A user for pipeline tests to address events to; returns the id.
async fn pipeline_user(server: &TestServer, name: &str) -> String {
    let created = server
        .app
        .users()
        .create_admin(
            &format!("{name}@example.com"),
            "pipeline-password-1",
            name,
            bazaar_shared::users::PromoteExisting::No,
        )
        .await
        .expect("create the pipeline user");
    match created {
        bazaar_shared::users::AdminBootstrap::Created(id) => id.to_string(),
        other => panic!("not created: {other:?}"),
    }
}

/// The notifications among `items` written for `event_id` on `channel`.
fn of_event<'a>(
    items: &'a [bazaar_shared::ports::Item],
    event_id: &str,
    channel: &str,
) -> Vec<&'a bazaar_shared::ports::Item> {
    items
        .iter()
        .filter(|item| item.get("event_id") == Some(&json!(event_id)))
        .filter(|item| item.get("channel") == Some(&json!(channel)))
        .collect()
}

async fn an_event_stranded_in_the_outbox_is_still_delivered(backend: Backend) {
    let server = TestServer::start(backend).await;
    let ports = ports(&server);
    let user = pipeline_user(&server, "stranded").await;
    // The state change and its event commit together, then the process "dies" before the
    // inline send: the event sits in the outbox only.
    let event = Event::new(
        EventType::UserRegistered,
        json!({"user_id": user}),
        "crash-test",
        ports.ids.as_ref(),
        ports.clock.as_ref(),
    );
    let staged = Staged::new(outbox::NOTIFICATIONS_QUEUE, event.clone());
    let write = staged
        .write(ports.shards)
        .expect("stage the event's outbox write");
    // A second one where versions before sharding wrote: the unsharded partition.
    let legacy = Event::new(
        EventType::UserRegistered,
        json!({"user_id": user}),
        "crash-test",
        ports.ids.as_ref(),
        ports.clock.as_ref(),
    );
    let legacy_key = Key::new(
        bazaar_shared::keys::OUTBOX_PARTITION,
        format!("EVENT#{}#{}", legacy.id, outbox::NOTIFICATIONS_QUEUE),
    );
    let legacy_write = TxOp::Put {
        item: item(json!({
            "pk": legacy_key.pk,
            "sk": legacy_key.sk,
            "queue": outbox::NOTIFICATIONS_QUEUE,
            "body": serde_json::to_string(&legacy).expect("the event serialises"),
            "created_at": legacy.occurred_at.timestamp(),
        })),
        cond: Cond::NotExists,
    };
    ports
        .store
        .transact(vec![write, legacy_write])
        .await
        .expect("commit the outbox entries");
    // Younger than the grace period: the sweeper leaves it to the (dead) request.
    assert_eq!(
        outbox::sweep(&ports, Duration::from_secs(3600)).await.ok(),
        Some(0)
    );
    // The scheduled sweep hands it on (with whatever else is waiting)...
    assert!(
        outbox::sweep(&ports, Duration::ZERO)
            .await
            .is_ok_and(|sent| sent >= 2)
    );
    // ...once: it left the outbox as it was sent. (Counting a second sweep would race with
    // the server's own pipeline, whose messages pass through the outbox meanwhile.)
    let entry = bazaar_shared::keys::outbox(ports.shards, &event.id, outbox::NOTIFICATIONS_QUEUE);
    for key in [&entry, &legacy_key] {
        assert_eq!(
            ports.store.get(key).await.ok(),
            Some(None),
            "a swept entry stays in the outbox, to be sent again: {key:?}"
        );
    }
    // ...and the notification pipeline (running in the server) records it.
    let query = Query::partition(Index::Primary, format!("USER#{user}")).prefix("NOTIFICATION#");
    for _ in 0..100 {
        let page = ports
            .store
            .query(&query)
            .await
            .expect("query the user's notifications");
        let inbox = of_event(&page.items, &event.id, "inbox");
        let legacy_inbox = of_event(&page.items, &legacy.id, "inbox");
        if !inbox.is_empty() && !legacy_inbox.is_empty() {
            assert_eq!((inbox.len(), legacy_inbox.len()), (1, 1));
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the stranded event never reached its consumer");
}

async fn redelivered_events_are_handled_once_and_poison_is_dead_lettered(backend: Backend) {
    let server = TestServer::start_with(backend, 2).await;
    let queue = "pipeline";
    server.ensure_queue(queue).await;
    let ports = ports(&server);
    let user = pipeline_user(&server, "twice").await;
    let event = Event::new(
        EventType::UserRegistered,
        json!({"user_id": user}),
        "redelivery-test",
        ports.ids.as_ref(),
        ports.clock.as_ref(),
    );
    let body = serde_json::to_string(&event).unwrap_or_default();
    // At-least-once delivery: the same event three times, plus one message that is no event.
    for _ in 0..3 {
        ports
            .queue
            .send(queue, &body, &Attributes::new())
            .await
            .expect("send the event");
    }
    ports
        .queue
        .send(queue, "{not an event", &Attributes::new())
        .await
        .expect("send a message that is no event");
    let visibility = Duration::from_secs(1);
    for _ in 0..4 {
        bazaar::workers::deliver_batch(
            &server.app,
            &bazaar_api::functions::NOTIFICATIONS_CONSUMER,
            queue,
            visibility,
        )
        .await
        .expect("deliver a batch");
        tokio::time::sleep(Duration::from_millis(1200)).await;
    }
    let query = Query::partition(Index::Primary, format!("USER#{user}")).prefix("NOTIFICATION#");
    let recorded = ports
        .store
        .query(&query)
        .await
        .expect("query the user's notifications");
    assert_eq!(
        (
            of_event(&recorded.items, &event.id, "inbox").len(),
            of_event(&recorded.items, &event.id, "email").len()
        ),
        (1, 1),
        "one event, one notification per medium: {:?}",
        recorded.items
    );
    let left = ports
        .queue
        .receive(queue, 10, visibility)
        .await
        .expect("receive what is left");
    assert!(left.is_empty(), "{left:?}");
    // Poison goes to the dead-letter queue of the consumer's own queue on its first receive,
    // whichever queue fed it: nothing waits for this queue's redrive.
    let dead_letters = |queue: &str| {
        let ports = ports.clone();
        let queue = dead_letter_queue(queue);
        async move {
            let dead = ports
                .queue
                .receive(&queue, 10, visibility)
                .await
                .expect("receive from the dead-letter queue");
            dead.into_iter().map(|m| m.body).collect::<Vec<_>>()
        }
    };
    assert_eq!(
        dead_letters(outbox::NOTIFICATIONS_QUEUE).await,
        ["{not an event"]
    );
    assert!(dead_letters(queue).await.is_empty());
}

/// Items spread over every shard of a partition and its unsharded predecessor come back from
/// the merged listing exactly once each, in sort-key order both ways, across page boundaries
/// (pages of 7 over 61 items, so boundaries fall inside shards and between them).
async fn a_listing_spread_over_shards_reads_every_item_once_in_order(backend: Backend) {
    use bazaar_shared::pagination::{PageRequest, Spread, spread_page};
    let server = TestServer::start(backend).await;
    let ports = ports(&server);
    let base = format!("SPREAD#{}", unique("listing"));
    let mut written = Vec::new();
    for n in 0..61 {
        let id = format!("01J{n:023}");
        // Every seventh where an older version wrote, the rest in their shard.
        let partition = if n % 7 == 0 {
            base.clone()
        } else {
            ports.shards.partition(&base, &id)
        };
        ports
            .store
            .put(item(json!({"pk": partition, "sk": id})), Cond::NotExists)
            .await
            .expect("write an entry");
        written.push(id);
    }
    let used: HashSet<String> = (0..61)
        .map(|n| format!("01J{n:023}"))
        .map(|id| ports.shards.partition(&base, &id))
        .collect();
    assert!(
        used.len() >= 4,
        "the entries should spread over shards: {used:?}"
    );
    for ascending in [true, false] {
        let spread = Spread {
            index: Index::Primary,
            partitions: ports.shards.partitions(&base),
            bounds: ("0".to_owned(), "8".to_owned()),
            ascending,
        };
        let mut read = Vec::new();
        let mut page = PageRequest {
            limit: Some(7),
            cursor: None,
        };
        for _ in 0..20 {
            let (items, next) = spread_page(ports.store.as_ref(), &spread, &page)
                .await
                .expect("read a page");
            assert!(items.len() <= 7);
            read.extend(
                items
                    .iter()
                    .filter_map(|item| item.get("sk").and_then(Value::as_str))
                    .map(str::to_owned),
            );
            match next {
                Some(cursor) => page.cursor = Some(cursor),
                None => break,
            }
        }
        let mut expected = written.clone();
        if !ascending {
            expected.reverse();
        }
        assert_eq!(read, expected, "ascending: {ascending}");
    }
    let foreign = PageRequest {
        limit: Some(7),
        cursor: Some(bazaar_shared::pagination::encode(&item(
            json!({"pk": base, "sk": "01J"}),
        ))),
    };
    let spread = Spread {
        index: Index::Primary,
        partitions: ports.shards.partitions(&base),
        bounds: ("0".to_owned(), "8".to_owned()),
        ascending: true,
    };
    assert!(matches!(
        spread_page(ports.store.as_ref(), &spread, &foreign).await,
        Err(bazaar_shared::Error::BadRequest(_))
    ));
}
