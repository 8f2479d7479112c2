//! Black-box tests of the "Catalogue and inventory" endpoints through the local server over
//! HTTP, on the embedded backend and on the AWS adapters against moto: categories, products,
//! listing (every order, filters, cursors), text search (Persian and Arabic forms, digits,
//! diacritics, every word), optimistic concurrency, archiving, stock and its transitions, and
//! which partitions the read paths touch (through a recording store).

use std::collections::BTreeSet;
use std::time::Duration;

use bazaar_shared::ports::{Index, Query};
use bazaar_tests::http::{Client, Response, concurrently, count};
use bazaar_tests::recording::{Call, RecordingStore};
use bazaar_tests::{Backend, TestServer};
use reqwest::Method;
use serde_json::{Value, json};

bazaar_tests::on_both_backends!(
    categories_are_created_by_admins_and_listed_by_slug,
    products_are_created_with_the_documented_shape,
    invalid_products_list_every_failing_field,
    a_product_is_read_with_an_etag,
    listings_carry_an_etag,
    bad_listing_parameters_are_bad_requests,
    every_order_pages_through_everything_once,
    filters_page_through_everything_once,
    the_name_order_is_the_order_of_names,
    search_matches_whole_words_in_names_and_descriptions,
    every_word_of_the_query_must_match,
    persian_search_folds_letters_digits_and_diacritics,
    updates_need_the_version_read,
    updates_show_in_reads_listings_and_search,
    concurrent_updates_of_one_version_let_one_through,
    archived_products_are_gone_but_keep_their_sku,
    stock_is_set_and_adjusted_never_below_zero,
    out_of_stock_is_recorded_once_per_transition,
    customers_and_anonymous_callers_cannot_administer,
    customers_are_refused_before_their_bodies_are_read,
    reads_only_query_index_partitions,
    a_cursor_from_other_price_bounds_is_a_bad_request,
);

const CATEGORIES: &str = "/api/v1/categories";
const PRODUCTS: &str = "/api/v1/products";

// ---------------------------------------------------------------------------------------------
// Helpers.

/// A server, a client and an admin's token.
async fn shop(backend: Backend) -> (TestServer, Client, String) {
    let server = TestServer::start(backend).await;
    let client = Client::new(&server);
    let admin = client.admin(&server).await;
    (server, client, admin)
}

fn product_path(id: &str) -> String {
    format!("{PRODUCTS}/{id}")
}

fn stock_path(id: &str) -> String {
    format!("{PRODUCTS}/{id}/stock")
}

fn usd(amount: i64) -> Value {
    json!({"amount": amount, "currency": "USD"})
}

/// Creates a category (201 expected); returns it.
async fn create_category(client: &Client, admin: &str, body: Value) -> Value {
    let response = client.post(CATEGORIES, Some(admin), body).await;
    response.expect(201);
    response.body.clone()
}

/// Creates a product (201 expected); returns it.
async fn create_product(client: &Client, admin: &str, body: Value) -> Value {
    let response = client.post(PRODUCTS, Some(admin), body).await;
    response.expect(201);
    response.body.clone()
}

/// Creates a product from the essentials; returns its id.
async fn quick_product(
    client: &Client,
    admin: &str,
    sku: &str,
    name: &str,
    description: &str,
    amount: i64,
    stock: i64,
) -> String {
    let product = create_product(
        client,
        admin,
        json!({"sku": sku, "name": name, "description": description, "price": usd(amount), "stock": stock}),
    )
    .await;
    text(&product["id"])
}

fn text(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_owned()
}

/// `GET path?params`, the parameters URL-encoded.
async fn get_with(client: &Client, path: &str, params: &[(&str, &str)]) -> Response {
    client
        .send(client.request(Method::GET, path, None).query(params))
        .await
}

/// One listing page of `GET /products?params`.
async fn list(client: &Client, params: &[(&str, &str)]) -> Response {
    get_with(client, PRODUCTS, params).await
}

/// Pages through `path?params` with `limit`, following `next_cursor` until it is null, and
/// returns every item in the order served. Each page must hold at most `limit` items.
async fn collect_from(
    client: &Client,
    path: &str,
    params: &[(&str, &str)],
    limit: usize,
) -> Vec<Value> {
    let limit_text = limit.to_string();
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..100 {
        let mut query: Vec<(&str, &str)> = params.to_vec();
        query.push(("limit", &limit_text));
        if let Some(cursor) = &cursor {
            query.push(("cursor", cursor));
        }
        let page = get_with(client, path, &query).await;
        page.expect(200);
        let batch = page.body["items"]
            .as_array()
            .unwrap_or_else(|| panic!("no items in {}", page.text));
        assert!(batch.len() <= limit, "{params:?}: page of {}", batch.len());
        items.extend(batch.iter().cloned());
        match &page.body["next_cursor"] {
            Value::String(next) => cursor = Some(next.clone()),
            Value::Null => return items,
            other => panic!("next_cursor is neither a string nor null: {other}"),
        }
    }
    panic!("{path} {params:?} still has a cursor after 100 pages");
}

/// Every product of `GET /products?params`, paging by `limit`.
async fn collect(client: &Client, params: &[(&str, &str)], limit: usize) -> Vec<Value> {
    collect_from(client, PRODUCTS, params, limit).await
}

fn names(items: &[Value]) -> Vec<String> {
    items.iter().map(|item| text(&item["name"])).collect()
}

fn name_set(items: &[Value]) -> BTreeSet<String> {
    names(items).into_iter().collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|name| (*name).to_owned()).collect()
}

/// The names found by `q` (all pages).
async fn search(client: &Client, q: &str) -> BTreeSet<String> {
    let found = collect(client, &[("q", q)], 100).await;
    let names = name_set(&found);
    assert_eq!(
        names.len(),
        found.len(),
        "{q:?} found duplicates: {found:?}"
    );
    names
}

/// `PATCH /products/{id}` with `If-Match`.
async fn patch_if_match(
    client: &Client,
    admin: &str,
    id: &str,
    if_match: &str,
    body: Value,
) -> Response {
    client
        .send(
            client
                .request(Method::PATCH, &product_path(id), Some(admin))
                .header("if-match", if_match)
                .json(&body),
        )
        .await
}

async fn put_stock(client: &Client, token: Option<&str>, id: &str, body: Value) -> Response {
    client
        .call(Method::PUT, &stock_path(id), token, Some(body))
        .await
}

/// `GET /products/{id}` with `If-None-Match`.
async fn get_if_none_match(client: &Client, path: &str, etag: &str) -> Response {
    client
        .send(
            client
                .request(Method::GET, path, None)
                .header("if-none-match", etag),
        )
        .await
}

fn parse_time(value: &Value) -> chrono::DateTime<chrono::FixedOffset> {
    chrono::DateTime::parse_from_rfc3339(value.as_str().unwrap_or_default())
        .unwrap_or_else(|error| panic!("{value} is not RFC 3339: {error}"))
}

// ---------------------------------------------------------------------------------------------
// Categories.

async fn categories_are_created_by_admins_and_listed_by_slug(backend: Backend) {
    let (server, client, admin) = shop(backend).await;

    let summer = create_category(&client, &admin, json!({"name": "Summer Shoes"})).await;
    assert_eq!(summer["name"], "Summer Shoes");
    assert_eq!(summer["slug"], "summer-shoes");
    assert_eq!(summer["parent_id"], Value::Null);
    let summer_id = text(&summer["id"]);
    assert!(!summer_id.is_empty(), "{summer}");

    let persian = create_category(&client, &admin, json!({"name": "كفش تابستاني"})).await;
    assert_eq!(persian["slug"], "کفش-تابستانی");
    assert_eq!(persian["name"], "كفش تابستاني");

    let sandals = create_category(
        &client,
        &admin,
        json!({"name": "Sandals", "slug": "sandals", "parent_id": summer_id}),
    )
    .await;
    assert_eq!(sandals["parent_id"], json!(summer_id));
    assert_eq!(sandals["slug"], "sandals");

    // A slug made from another name, and one given, both clash.
    let same_made = client
        .post(CATEGORIES, Some(&admin), json!({"name": "summer  SHOES!"}))
        .await;
    same_made.expect_problem(409);
    assert_eq!(same_made.error_fields(), ["slug"]);
    let same_given = client
        .post(
            CATEGORIES,
            Some(&admin),
            json!({"name": "Other", "slug": "sandals"}),
        )
        .await;
    same_given.expect_problem(409);
    assert_eq!(same_given.error_fields(), ["slug"]);

    let orphan = client
        .post(
            CATEGORIES,
            Some(&admin),
            json!({"name": "Orphans", "parent_id": "01JZZZZZZZZZZZZZZZZZZZZZZZ"}),
        )
        .await;
    orphan.expect_problem(422);
    assert_eq!(orphan.error_fields(), ["parent_id"]);

    let bad_slug = client
        .post(
            CATEGORIES,
            Some(&admin),
            json!({"name": "Bad", "slug": "Bad Slug"}),
        )
        .await;
    bad_slug.expect_problem(422);
    assert_eq!(bad_slug.error_fields(), ["slug"]);

    let nameless = client.post(CATEGORIES, Some(&admin), json!({})).await;
    nameless.expect_problem(422);
    assert_eq!(nameless.error_fields(), ["name"]);

    let (customer, _) = client.register("carol").await;
    client
        .post(CATEGORIES, Some(&customer), json!({"name": "Hats"}))
        .await
        .expect_problem(403);
    client
        .post(CATEGORIES, None, json!({"name": "Hats"}))
        .await
        .expect_problem(401);

    // The failed attempts wrote nothing: "orphans" and "hats" are free.
    let orphans = create_category(&client, &admin, json!({"name": "Orphans"})).await;
    assert_eq!(orphans["slug"], "orphans");

    // Anyone lists them, by slug.
    let expected = ["orphans", "sandals", "summer-shoes", "کفش-تابستانی"];
    let listed = client.get(CATEGORIES, None).await;
    listed.expect(200);
    let slugs: Vec<String> = listed.body["items"]
        .as_array()
        .map(|items| items.iter().map(|item| text(&item["slug"])).collect())
        .unwrap_or_default();
    assert_eq!(slugs, expected, "{}", listed.text);
    assert_eq!(listed.body["next_cursor"], Value::Null);
    assert_eq!(
        listed.body["items"][1], sandals,
        "a listed category is the created one"
    );

    // Page by page, the same.
    let paged = collect_from(&client, CATEGORIES, &[], 1).await;
    let slugs: Vec<String> = paged.iter().map(|item| text(&item["slug"])).collect();
    assert_eq!(slugs, expected);

    get_with(&client, CATEGORIES, &[("cursor", "garbage")])
        .await
        .expect_problem(400);
    get_with(&client, CATEGORIES, &[("limit", "0")])
        .await
        .expect_problem(400);
    drop(server);
}

// ---------------------------------------------------------------------------------------------
// Products: create and read.

async fn products_are_created_with_the_documented_shape(backend: Backend) {
    let (server, client, admin) = shop(backend).await;
    let kitchen = create_category(&client, &admin, json!({"name": "Kitchen"})).await;
    let kitchen_id = text(&kitchen["id"]);

    let created = client
        .post(
            PRODUCTS,
            Some(&admin),
            json!({
                "sku": "ABC-1",
                "name": "Red Mug",
                "description": "A large ceramic mug.",
                "category_id": kitchen_id,
                "price": usd(1999),
                "stock": 5,
            }),
        )
        .await;
    created.expect(201);
    let mug = &created.body;
    assert!(!text(&mug["id"]).is_empty(), "{mug}");
    assert_eq!(mug["sku"], "ABC-1");
    assert_eq!(mug["name"], "Red Mug");
    assert_eq!(mug["description"], "A large ceramic mug.");
    assert_eq!(mug["category_id"], json!(kitchen_id));
    assert_eq!(mug["price"], json!({"amount": 1999, "currency": "USD"}));
    assert_eq!(mug["stock"], 5);
    assert_eq!(mug["images"], json!([]));
    assert_eq!(mug["version"], 1);
    assert_eq!(
        parse_time(&mug["created_at"]),
        parse_time(&mug["updated_at"])
    );
    assert!(
        mug.get("reserved").is_none() && mug.get("indexed_terms").is_none(),
        "internal fields leak: {mug}"
    );

    // The optional fields have their defaults.
    let plain = create_product(
        &client,
        &admin,
        json!({"sku": "plain_1.x", "name": "Plain", "price": {"amount": 0, "currency": "IRR"}}),
    )
    .await;
    assert_eq!(plain["description"], "");
    assert_eq!(plain["category_id"], Value::Null);
    assert_eq!(plain["stock"], 0);
    assert_eq!(plain["price"], json!({"amount": 0, "currency": "IRR"}));

    // Anyone reads it back as created, and finds it listed.
    let id = text(&mug["id"]);
    let read = client.get(&product_path(&id), None).await;
    read.expect(200);
    assert_eq!(&read.body, mug);
    let listed = collect(&client, &[], 20).await;
    assert_eq!(names(&listed), ["Plain", "Red Mug"]);
    assert_eq!(&listed[1], mug);

    // SKUs are unique whatever their case.
    for sku in ["ABC-1", "abc-1", "Abc-1"] {
        let twin = client
            .post(
                PRODUCTS,
                Some(&admin),
                json!({"sku": sku, "name": "Twin", "price": usd(1)}),
            )
            .await;
        twin.expect_problem(409);
        assert_eq!(twin.error_fields(), ["sku"], "{sku}");
    }
    assert_eq!(
        names(&collect(&client, &[], 20).await),
        ["Plain", "Red Mug"]
    );

    client
        .get(&product_path("01JZZZZZZZZZZZZZZZZZZZZZZZ"), None)
        .await
        .expect_problem(404);
    drop(server);
}

async fn invalid_products_list_every_failing_field(backend: Backend) {
    let (server, client, admin) = shop(backend).await;
    let cases = [
        (json!({}), vec!["name", "price", "sku"]),
        (
            json!({"sku": "BAD-1", "price": {"amount": -1, "currency": "usd"}}),
            vec!["name", "price.amount", "price.currency"],
        ),
        (
            json!({"sku": "BAD-2", "name": "Float", "price": {"amount": 19.99, "currency": "USD"}}),
            vec!["price.amount"],
        ),
        (
            json!({"sku": "BAD-3", "name": "Nowhere", "price": usd(100), "category_id": "01JZZZZZZZZZZZZZZZZZZZZZZZ"}),
            vec!["category_id"],
        ),
        (
            json!({"sku": "BAD-4", "name": "Negative", "price": usd(100), "stock": -1}),
            vec!["stock"],
        ),
        (
            json!({"sku": "AB 12", "name": "Spaced", "price": usd(100)}),
            vec!["sku"],
        ),
        (
            json!({"sku": "BAD-5", "name": "Dollars", "price": {"amount": 100, "currency": "DOLLAR"}}),
            vec!["price.currency"],
        ),
    ];
    for (body, fields) in cases {
        let response = client.post(PRODUCTS, Some(&admin), body.clone()).await;
        response.expect_problem(422);
        assert_eq!(response.error_fields(), fields, "{body}: {}", response.text);
    }
    // Nothing was written: the listing is empty and the SKUs are free.
    let listed = list(&client, &[]).await;
    listed.expect(200);
    assert_eq!(listed.body["items"], json!([]), "{}", listed.text);
    create_product(
        &client,
        &admin,
        json!({"sku": "BAD-3", "name": "Now valid", "price": usd(100)}),
    )
    .await;
    drop(server);
}

async fn a_product_is_read_with_an_etag(backend: Backend) {
    let (server, client, admin) = shop(backend).await;
    let id = quick_product(&client, &admin, "TAG-1", "Tagged", "", 500, 3).await;
    let path = product_path(&id);

    let read = client.get(&path, None).await;
    read.expect(200);
    let etag = read.header("etag").unwrap_or_default().to_owned();
    assert!(
        etag.len() > 2 && etag.starts_with('"') && etag.ends_with('"'),
        "etag {etag:?}"
    );
    assert!(read.header("cache-control").is_some(), "{:?}", read.headers);

    let again = client.get(&path, None).await;
    again.expect(200);
    assert_eq!(again.header("etag"), Some(etag.as_str()), "stable etag");

    let unchanged = get_if_none_match(&client, &path, &etag).await;
    unchanged.expect(304);
    assert_eq!(unchanged.text, "", "a 304 has no body");
    assert_eq!(unchanged.header("etag"), Some(etag.as_str()));
    assert!(unchanged.header("cache-control").is_some());

    get_if_none_match(&client, &path, "\"something-else\"")
        .await
        .expect(200);

    // A stock change is a new representation: the old tag no longer matches.
    put_stock(&client, Some(&admin), &id, json!({"set": 4}))
        .await
        .expect(200);
    let changed = get_if_none_match(&client, &path, &etag).await;
    changed.expect(200);
    assert_eq!(changed.body["stock"], 4);
    let new_etag = changed.header("etag").unwrap_or_default().to_owned();
    assert_ne!(new_etag, etag);
    // So is an update.
    let renamed = client
        .patch(
            &path,
            Some(&admin),
            json!({"name": "Retagged", "version": 1}),
        )
        .await;
    renamed.expect(200);
    let after = get_if_none_match(&client, &path, &new_etag).await;
    after.expect(200);
    assert_eq!(after.body["name"], "Retagged");
    assert_ne!(after.header("etag"), Some(new_etag.as_str()));
    drop(server);
}

async fn listings_carry_an_etag(backend: Backend) {
    let (server, client, admin) = shop(backend).await;
    quick_product(&client, &admin, "L-1", "First", "", 100, 1).await;
    let params = [("sort", "price_asc")];
    let first = list(&client, &params).await;
    first.expect(200);
    let etag = first.header("etag").unwrap_or_default().to_owned();
    assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag:?}");
    assert!(first.header("cache-control").is_some());

    let unchanged = client
        .send(
            client
                .request(Method::GET, PRODUCTS, None)
                .query(&params)
                .header("if-none-match", &etag),
        )
        .await;
    unchanged.expect(304);
    assert_eq!(unchanged.text, "");

    quick_product(&client, &admin, "L-2", "Second", "", 200, 1).await;
    let changed = client
        .send(
            client
                .request(Method::GET, PRODUCTS, None)
                .query(&params)
                .header("if-none-match", &etag),
        )
        .await;
    changed.expect(200);
    assert_eq!(
        names(
            &changed.body["items"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        ),
        ["First", "Second"]
    );
    assert_ne!(changed.header("etag"), Some(etag.as_str()));
    drop(server);
}

async fn bad_listing_parameters_are_bad_requests(backend: Backend) {
    let (server, client, admin) = shop(backend).await;
    quick_product(&client, &admin, "P-1", "Something", "", 100, 1).await;
    let bad: &[&[(&str, &str)]] = &[
        &[("limit", "0")],
        &[("limit", "1000")],
        &[("limit", "101")],
        &[("limit", "abc")],
        &[("limit", "-1")],
        &[("cursor", "garbage")],
        &[("cursor", "garbage"), ("q", "something")],
        &[("min_price", "500"), ("max_price", "100")],
        &[("sort", "random")],
        &[("in_stock", "maybe")],
        &[("min_price", "1.5")],
        &[("max_price", "cheap")],
    ];
    for params in bad {
        let response = list(&client, params).await;
        assert_eq!(response.status, 400, "{params:?}: {}", response.text);
        response.expect_problem(400);
    }
    // A cursor of one listing is not a cursor of another.
    quick_product(&client, &admin, "P-2", "Other", "", 200, 1).await;
    let page = list(&client, &[("sort", "price_asc"), ("limit", "1")]).await;
    page.expect(200);
    let cursor = text(&page.body["next_cursor"]);
    assert!(!cursor.is_empty(), "{}", page.text);
    list(&client, &[("sort", "name"), ("cursor", &cursor)])
        .await
        .expect_problem(400);

    // Good parameters at the edges are fine; an unknown category lists nothing.
    for params in [
        &[("limit", "1")][..],
        &[("limit", "100")],
        &[("in_stock", "false")],
        &[("in_stock", "true")],
        &[("min_price", "100"), ("max_price", "100")],
    ] {
        list(&client, params).await.expect(200);
    }
    let nowhere = list(&client, &[("category", "no-such-category")]).await;
    nowhere.expect(200);
    assert_eq!(nowhere.body, json!({"items": [], "next_cursor": null}));
    drop(server);
}

// ---------------------------------------------------------------------------------------------
// Listing: orders, filters, cursors.

const PHONETIC: [&str; 25] = [
    "Alpha", "bravo", "Charlie", "delta", "Echo", "Foxtrot", "golf", "Hotel", "India", "juliett",
    "Kilo", "Lima", "Mike", "November", "oscar", "Papa", "Quebec", "Romeo", "Sierra", "Tango",
    "Uniform", "Victor", "Whiskey", "Xray", "Yankee",
];

/// One product of the pagination fixture, as the test knows it.
#[derive(Clone, Debug)]
struct Made {
    seq: usize,
    name: String,
    amount: i64,
    stock: i64,
    kitchen: bool,
}

/// 25 products with distinct names and prices, created in an order that is neither their
/// name nor their price order; every third in the "kitchen" category, every fourth (from the
/// second) out of stock. Returns them and the category's id.
async fn catalogue_of_25(client: &Client, admin: &str) -> (Vec<Made>, String) {
    let kitchen = create_category(client, admin, json!({"name": "Kitchen"})).await;
    let kitchen_id = text(&kitchen["id"]);
    let mut made = Vec::new();
    for seq in 0..25 {
        let item = Made {
            seq,
            name: PHONETIC[(seq * 7) % 25].to_owned(),
            amount: ((seq * 11) % 25 + 1) as i64 * 100,
            stock: if seq % 4 == 1 {
                0
            } else {
                (seq % 5 + 1) as i64
            },
            kitchen: seq % 3 == 0,
        };
        let mut body = json!({
            "sku": format!("SKU-{seq:02}"),
            "name": item.name,
            "price": usd(item.amount),
            "stock": item.stock,
        });
        if item.kitchen {
            body["category_id"] = json!(kitchen_id);
        }
        create_product(client, admin, body).await;
        made.push(item);
    }
    (made, kitchen_id)
}

/// The names of `made` that pass `keep`, in the order `sort` promises.
fn expected(made: &[Made], sort: &str, keep: impl Fn(&Made) -> bool) -> Vec<String> {
    let mut kept: Vec<&Made> = made.iter().filter(|item| keep(item)).collect();
    match sort {
        "newest" => kept.sort_by_key(|item| std::cmp::Reverse(item.seq)),
        "price_asc" => kept.sort_by_key(|item| item.amount),
        "price_desc" => kept.sort_by_key(|item| std::cmp::Reverse(item.amount)),
        "name" => kept.sort_by_key(|item| item.name.to_lowercase()),
        other => panic!("no sort {other}"),
    }
    kept.iter().map(|item| item.name.clone()).collect()
}

const SORTS: [&str; 4] = ["newest", "price_asc", "price_desc", "name"];

async fn every_order_pages_through_everything_once(backend: Backend) {
    let (server, client, admin) = shop(backend).await;
    let (made, _) = catalogue_of_25(&client, &admin).await;

    for sort in SORTS {
        let served = collect(&client, &[("sort", sort)], 7).await;
        assert_eq!(
            names(&served),
            expected(&made, sort, |_| true),
            "sort={sort}"
        );
        // Every item is a whole product.
        for item in &served {
            let own = made
                .iter()
                .find(|m| m.name == text(&item["name"]))
                .unwrap_or_else(|| panic!("unknown {item}"));
            assert_eq!(item["price"], usd(own.amount), "{item}");
            assert_eq!(item["stock"], own.stock, "{item}");
        }
    }
    // The default order is newest first; the default page is at most 20.
    let default = collect(&client, &[], 7).await;
    assert_eq!(names(&default), expected(&made, "newest", |_| true));
    let first = list(&client, &[]).await;
    first.expect(200);
    let items = first.body["items"].as_array().cloned().unwrap_or_default();
    assert!(
        !items.is_empty() && items.len() <= 20,
        "{} items",
        items.len()
    );
    assert!(first.body["next_cursor"].is_string(), "{}", first.text);
    // Odd page sizes change nothing.
    for limit in [1, 24, 25, 100] {
        let served = collect(&client, &[("sort", "price_desc")], limit).await;
        assert_eq!(
            names(&served),
            expected(&made, "price_desc", |_| true),
            "limit={limit}"
        );
    }
    drop(server);
}

async fn filters_page_through_everything_once(backend: Backend) {
    let (server, client, admin) = shop(backend).await;
    let (made, kitchen_id) = catalogue_of_25(&client, &admin).await;

    type Keep = fn(&Made) -> bool;
    let in_range: Keep = |m| (800..=1800).contains(&m.amount);
    let expensive: Keep = |m| m.amount >= 2000;
    let cheap: Keep = |m| m.amount <= 700;
    let stocked: Keep = |m| m.stock > 0;
    let kitchen: Keep = |m| m.kitchen;
    let mixed: Keep = |m| m.kitchen && m.stock > 0 && m.amount >= 500;
    let cheap_stocked: Keep = |m| m.stock > 0 && m.amount <= 1200;
    let scenarios: Vec<(Vec<(&str, &str)>, Keep)> = vec![
        (vec![("min_price", "800"), ("max_price", "1800")], in_range),
        (vec![("min_price", "2000")], expensive),
        (vec![("max_price", "700")], cheap),
        (vec![("in_stock", "true")], stocked),
        (vec![("category", &kitchen_id)], kitchen),
        (vec![("category", "kitchen")], kitchen),
        (
            vec![
                ("category", "kitchen"),
                ("in_stock", "true"),
                ("min_price", "500"),
            ],
            mixed,
        ),
        (
            vec![("in_stock", "true"), ("max_price", "1200")],
            cheap_stocked,
        ),
    ];
    for (params, keep) in &scenarios {
        let wanted = expected(&made, "newest", keep);
        assert!(
            wanted.len() >= 3 && wanted.len() < made.len(),
            "the fixture does not exercise {params:?}"
        );
        for sort in SORTS {
            let mut query = params.clone();
            query.push(("sort", sort));
            let served = collect(&client, &query, 7).await;
            assert_eq!(names(&served), expected(&made, sort, keep), "{query:?}");
        }
    }
    drop(server);
}

async fn the_name_order_is_the_order_of_names(backend: Backend) {
    let (server, client, admin) = shop(backend).await;
    // Names that are prefixes of others, mixed case: "Tea" comes before "Tea Cup".
    for (n, name) in [
        "teapot", "Tea Set", "Tea", "tea cup", "Te", "Zebra", "apple",
    ]
    .iter()
    .enumerate()
    {
        quick_product(
            &client,
            &admin,
            &format!("T-{n}"),
            name,
            "",
            100 + n as i64,
            1,
        )
        .await;
    }
    let wanted = [
        "apple", "Te", "Tea", "tea cup", "Tea Set", "teapot", "Zebra",
    ];
    // Search (sorted in memory) and browsing (the NAME listing partition) agree.
    let searched = collect(&client, &[("q", "tea"), ("sort", "name")], 2).await;
    assert_eq!(
        names(&searched),
        ["Tea", "tea cup", "Tea Set"],
        "searching by name"
    );
    let browsed = collect(&client, &[("sort", "name")], 3).await;
    assert_eq!(names(&browsed), wanted, "browsing by name");
    drop(server);
}

// ---------------------------------------------------------------------------------------------
// Search.

async fn search_matches_whole_words_in_names_and_descriptions(backend: Backend) {
    let (server, client, admin) = shop(backend).await;
    let red_mug = quick_product(
        &client,
        &admin,
        "S-1",
        "Red Mug",
        "Large ceramic mug",
        1500,
        2,
    )
    .await;
    quick_product(
        &client,
        &admin,
        "S-2",
        "Blue Mug",
        "Dishwasher safe",
        1200,
        2,
    )
    .await;
    quick_product(&client, &admin, "S-3", "Red Plate", "", 900, 0).await;
    quick_product(&client, &admin, "S-4", "Mugshot Poster", "", 500, 2).await;
    quick_product(&client, &admin, "S-5", "Café Crème", "Coffee", 300, 2).await;

    assert_eq!(search(&client, "mug").await, set(&["Blue Mug", "Red Mug"]));
    assert_eq!(search(&client, "MUG").await, set(&["Blue Mug", "Red Mug"]));
    assert_eq!(search(&client, "mu").await, set(&[]), "whole words only");
    assert_eq!(search(&client, "mugshot").await, set(&["Mugshot Poster"]));
    assert_eq!(
        search(&client, "ceramic").await,
        set(&["Red Mug"]),
        "description"
    );
    assert_eq!(search(&client, "dishwasher").await, set(&["Blue Mug"]));
    assert_eq!(
        search(&client, "cafe").await,
        set(&["Café Crème"]),
        "accents"
    );
    assert_eq!(search(&client, "CRÈME").await, set(&["Café Crème"]));
    assert_eq!(
        search(&client, "Red,").await,
        set(&["Red Mug", "Red Plate"])
    );

    // Search combines with filters and orders.
    let cheap = collect(&client, &[("q", "mug"), ("max_price", "1300")], 10).await;
    assert_eq!(names(&cheap), ["Blue Mug"]);
    let stocked = collect(&client, &[("q", "red"), ("in_stock", "true")], 10).await;
    assert_eq!(names(&stocked), ["Red Mug"]);
    for (sort, order) in [
        ("price_asc", ["Blue Mug", "Red Mug"]),
        ("price_desc", ["Red Mug", "Blue Mug"]),
        ("name", ["Blue Mug", "Red Mug"]),
        ("newest", ["Blue Mug", "Red Mug"]),
    ] {
        let served = collect(&client, &[("q", "mug"), ("sort", sort)], 1).await;
        assert_eq!(names(&served), order, "sort={sort}");
    }
    let found = collect(&client, &[("q", "ceramic")], 10).await;
    assert_eq!(found.len(), 1);
    let read = client.get(&product_path(&red_mug), None).await;
    read.expect(200);
    assert_eq!(found[0], read.body, "a search result is the product");
    drop(server);
}

async fn every_word_of_the_query_must_match(backend: Backend) {
    let (server, client, admin) = shop(backend).await;
    quick_product(
        &client,
        &admin,
        "W-1",
        "Red Mug",
        "Large ceramic mug",
        1500,
        2,
    )
    .await;
    quick_product(
        &client,
        &admin,
        "W-2",
        "Blue Mug",
        "Dishwasher safe",
        1200,
        2,
    )
    .await;
    quick_product(&client, &admin, "W-3", "Red Plate", "", 900, 2).await;
    quick_product(&client, &admin, "W-4", "Blue Plate", "Large", 800, 2).await;

    assert_eq!(search(&client, "red").await, set(&["Red Mug", "Red Plate"]));
    assert_eq!(search(&client, "red mug").await, set(&["Red Mug"]));
    assert_eq!(search(&client, "mug red").await, set(&["Red Mug"]));
    assert_eq!(search(&client, "red cup").await, set(&[]));
    assert_eq!(search(&client, "blue large").await, set(&["Blue Plate"]));
    assert_eq!(
        search(&client, "large ceramic red").await,
        set(&["Red Mug"]),
        "name and description words together"
    );
    assert_eq!(
        search(&client, "blue dishwasher safe").await,
        set(&["Blue Mug"])
    );
    assert_eq!(search(&client, "blue dishwasher unsafe").await, set(&[]));
    assert_eq!(
        search(&client, "plate  PLATE plate").await,
        set(&["Blue Plate", "Red Plate"])
    );
    drop(server);
}

async fn persian_search_folds_letters_digits_and_diacritics(backend: Backend) {
    let (server, client, admin) = shop(backend).await;
    // Written with Arabic kaf and yeh.
    quick_product(&client, &admin, "FA-1", "كتاب قديمي", "", 100, 1).await;
    // With harakat.
    quick_product(&client, &admin, "FA-2", "كِتَابٌ", "", 200, 1).await;
    quick_product(&client, &admin, "FA-3", "گوشی ۱۲", "", 300, 1).await;
    quick_product(&client, &admin, "FA-4", "دفتر علي", "", 400, 1).await;
    // "کتاب" is only part of this word.
    quick_product(&client, &admin, "FA-5", "کتابخانه مرکزی", "", 500, 1).await;
    // The word is in the description.
    quick_product(&client, &admin, "FA-6", "Notebook", "یک کتاب خوب", 600, 1).await;

    let books = set(&["كتاب قديمي", "كِتَابٌ", "Notebook"]);
    assert_eq!(search(&client, "کتاب").await, books, "Persian letters");
    assert_eq!(search(&client, "كتاب").await, books, "Arabic letters");
    assert_eq!(
        search(&client, "كِتَاب").await,
        books,
        "diacritics in the query"
    );
    assert_eq!(search(&client, "کتاب قدیمی").await, set(&["كتاب قديمي"]));
    assert_eq!(search(&client, "قديمي كتاب").await, set(&["كتاب قديمي"]));
    assert_eq!(search(&client, "کتاب جدید").await, set(&[]));
    assert_eq!(
        search(&client, "12").await,
        set(&["گوشی ۱۲"]),
        "ASCII digits"
    );
    assert_eq!(
        search(&client, "١٢").await,
        set(&["گوشی ۱۲"]),
        "Arabic-Indic digits"
    );
    assert_eq!(
        search(&client, "۱۲").await,
        set(&["گوشی ۱۲"]),
        "Persian digits"
    );
    assert_eq!(search(&client, "گوشی 12").await, set(&["گوشی ۱۲"]));
    assert_eq!(search(&client, "علی").await, set(&["دفتر علي"]));
    assert_eq!(search(&client, "علي").await, set(&["دفتر علي"]));
    assert_eq!(search(&client, "کتابخانه").await, set(&["کتابخانه مرکزی"]));
    // Persian names keep their letters as written.
    let found = collect(&client, &[("q", "قدیمی")], 10).await;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["name"], "كتاب قديمي");
    drop(server);
}

// ---------------------------------------------------------------------------------------------
// Updates.

async fn updates_need_the_version_read(backend: Backend) {
    let (server, client, admin) = shop(backend).await;
    let id = quick_product(&client, &admin, "U-1", "Lamp", "", 1000, 1).await;
    let path = product_path(&id);
    let read = client.get(&path, None).await;
    read.expect(200);
    let etag = read.header("etag").unwrap_or_default().to_owned();

    let blind = client
        .patch(&path, Some(&admin), json!({"name": "Blind"}))
        .await;
    blind.expect_problem(428);

    // The ETag from GET as If-Match.
    let first = patch_if_match(&client, &admin, &id, &etag, json!({"name": "Desk Lamp"})).await;
    first.expect(200);
    assert_eq!(first.body["version"], 2);
    assert_eq!(first.body["name"], "Desk Lamp");
    assert_eq!(first.body["sku"], "U-1");
    assert_eq!(first.body["created_at"], read.body["created_at"]);
    assert!(parse_time(&first.body["updated_at"]) >= parse_time(&read.body["updated_at"]));

    // Stale: the same ETag again, or version 1 as a bare tag, is 412.
    patch_if_match(&client, &admin, &id, &etag, json!({"name": "Stale"}))
        .await
        .expect_problem(412);
    patch_if_match(&client, &admin, &id, "\"1\"", json!({"name": "Stale"}))
        .await
        .expect_problem(412);
    // The current version as a bare tag works.
    let second = patch_if_match(&client, &admin, &id, "\"2\"", json!({"price": usd(900)})).await;
    second.expect(200);
    assert_eq!(second.body["version"], 3);
    assert_eq!(second.body["price"], usd(900));
    assert_eq!(second.body["name"], "Desk Lamp");

    // A stale body version is a 409; the current one works.
    client
        .patch(&path, Some(&admin), json!({"name": "Stale", "version": 2}))
        .await
        .expect_problem(409);
    let third = client
        .patch(
            &path,
            Some(&admin),
            json!({"description": "Bright", "version": 3}),
        )
        .await;
    third.expect(200);
    assert_eq!(third.body["version"], 4);

    // The SKU cannot change; validation lists the fields.
    let sku = client
        .patch(&path, Some(&admin), json!({"sku": "NEW-1", "version": 4}))
        .await;
    sku.expect_problem(422);
    assert_eq!(sku.error_fields(), ["sku"]);
    let bad_price = client
        .patch(
            &path,
            Some(&admin),
            json!({"price": {"amount": -5, "currency": "USD"}, "version": 4}),
        )
        .await;
    bad_price.expect_problem(422);
    assert_eq!(bad_price.error_fields(), ["price.amount"]);
    let no_category = client
        .patch(
            &path,
            Some(&admin),
            json!({"category_id": "01JZZZZZZZZZZZZZZZZZZZZZZZ", "version": 4}),
        )
        .await;
    no_category.expect_problem(422);
    assert_eq!(no_category.error_fields(), ["category_id"]);

    // Nothing of the refused changes stuck.
    let now = client.get(&path, None).await;
    now.expect(200);
    assert_eq!(now.body["version"], 4);
    assert_eq!(now.body["name"], "Desk Lamp");
    assert_eq!(now.body["sku"], "U-1");
    assert_eq!(now.body["description"], "Bright");
    assert_eq!(now.body["price"], usd(900));
    assert_eq!(now.body["category_id"], Value::Null);

    client
        .patch(
            &product_path("01JZZZZZZZZZZZZZZZZZZZZZZZ"),
            Some(&admin),
            json!({"name": "Ghost", "version": 1}),
        )
        .await
        .expect_problem(404);
    drop(server);
}

async fn updates_show_in_reads_listings_and_search(backend: Backend) {
    let (server, client, admin) = shop(backend).await;
    let kitchen = create_category(&client, &admin, json!({"name": "Kitchen"})).await;
    let kitchen_id = text(&kitchen["id"]);
    let mug = quick_product(&client, &admin, "V-1", "Red Mug", "ceramic", 1500, 2).await;
    quick_product(&client, &admin, "V-2", "Blue Bowl", "", 1000, 2).await;
    quick_product(&client, &admin, "V-3", "Green Plate", "", 2000, 2).await;
    let path = product_path(&mug);

    // Warm the listings so that a stale cache would show.
    assert_eq!(
        names(&collect(&client, &[("sort", "name")], 10).await),
        ["Blue Bowl", "Green Plate", "Red Mug"]
    );
    assert_eq!(search(&client, "mug").await, set(&["Red Mug"]));
    client.get(&path, None).await.expect(200);

    let changed = client
        .patch(
            &path,
            Some(&admin),
            json!({
                "name": "Amber Cup",
                "description": "porcelain",
                "price": usd(500),
                "category_id": kitchen_id,
                "version": 1,
            }),
        )
        .await;
    changed.expect(200);
    assert_eq!(changed.body["version"], 2);

    let read = client.get(&path, None).await;
    read.expect(200);
    assert_eq!(read.body, changed.body);
    assert_eq!(read.body["category_id"], json!(kitchen_id));

    assert_eq!(
        names(&collect(&client, &[("sort", "name")], 2).await),
        ["Amber Cup", "Blue Bowl", "Green Plate"]
    );
    assert_eq!(
        names(&collect(&client, &[("sort", "price_asc")], 2).await),
        ["Amber Cup", "Blue Bowl", "Green Plate"]
    );
    assert_eq!(
        names(&collect(&client, &[("max_price", "600")], 2).await),
        ["Amber Cup"]
    );
    assert_eq!(
        names(&collect(&client, &[("min_price", "1400"), ("sort", "price_asc")], 2).await),
        ["Green Plate"]
    );
    assert_eq!(
        names(&collect(&client, &[("category", "kitchen")], 2).await),
        ["Amber Cup"]
    );
    assert_eq!(search(&client, "mug").await, set(&[]), "old name words");
    assert_eq!(search(&client, "red").await, set(&[]));
    assert_eq!(
        search(&client, "ceramic").await,
        set(&[]),
        "old description words"
    );
    assert_eq!(search(&client, "amber cup").await, set(&["Amber Cup"]));
    assert_eq!(search(&client, "porcelain").await, set(&["Amber Cup"]));

    // `category_id: null` takes it out of the category.
    let uncategorised = client
        .patch(
            &path,
            Some(&admin),
            json!({"category_id": null, "version": 2}),
        )
        .await;
    uncategorised.expect(200);
    assert_eq!(uncategorised.body["category_id"], Value::Null);
    assert_eq!(uncategorised.body["name"], "Amber Cup");
    let in_kitchen = list(&client, &[("category", &kitchen_id)]).await;
    in_kitchen.expect(200);
    assert_eq!(in_kitchen.body["items"], json!([]));
    // Leaving `category_id` out keeps it as it is.
    let renamed = client
        .patch(
            &path,
            Some(&admin),
            json!({"name": "Amber Mug", "version": 3}),
        )
        .await;
    renamed.expect(200);
    assert_eq!(renamed.body["category_id"], Value::Null);
    assert_eq!(renamed.body["price"], usd(500));
    assert_eq!(renamed.body["description"], "porcelain");
    drop(server);
}

async fn concurrent_updates_of_one_version_let_one_through(backend: Backend) {
    let (server, client, admin) = shop(backend).await;
    let id = quick_product(&client, &admin, "C-1", "Contested", "", 1000, 1).await;
    let path = product_path(&id);
    let statuses = concurrently(10, |n| {
        let client = client.clone();
        let admin = admin.clone();
        let path = path.clone();
        async move {
            client
                .patch(
                    &path,
                    Some(&admin),
                    json!({"name": format!("Winner {n}"), "version": 1}),
                )
                .await
        }
    })
    .await;
    assert_eq!(count(&statuses, 200), 1, "{statuses:?}");
    assert_eq!(count(&statuses, 409), 9, "{statuses:?}");

    let read = client.get(&path, None).await;
    read.expect(200);
    assert_eq!(read.body["version"], 2);
    let name = text(&read.body["name"]);
    assert!(name.starts_with("Winner "), "{name}");
    // The index holds the winner only: one product found, under its own name.
    let found = search(&client, "winner").await;
    assert_eq!(found, set(&[&name]));
    assert_eq!(search(&client, "contested").await, set(&[]));
    let all = collect(&client, &[("sort", "name")], 5).await;
    assert_eq!(names(&all), [name]);
    drop(server);
}

// ---------------------------------------------------------------------------------------------
// Archive.

async fn archived_products_are_gone_but_keep_their_sku(backend: Backend) {
    let (server, client, admin) = shop(backend).await;
    let kitchen = create_category(&client, &admin, json!({"name": "Kitchen"})).await;
    let kitchen_id = text(&kitchen["id"]);
    let gone = create_product(
        &client,
        &admin,
        json!({"sku": "GONE-1", "name": "Vanishing Vase", "price": usd(700), "stock": 3, "category_id": kitchen_id}),
    )
    .await;
    let id = text(&gone["id"]);
    quick_product(&client, &admin, "STAY-1", "Staying Vase", "", 800, 3).await;
    let path = product_path(&id);
    // Warm the reads.
    client.get(&path, None).await.expect(200);
    assert_eq!(search(&client, "vase").await.len(), 2);

    let deleted = client.delete(&path, Some(&admin)).await;
    deleted.expect(204);
    assert_eq!(deleted.text, "");

    client.get(&path, None).await.expect_problem(404);
    for sort in SORTS {
        let listed = collect(&client, &[("sort", sort)], 5).await;
        assert_eq!(names(&listed), ["Staying Vase"], "sort={sort}");
    }
    let in_kitchen = list(&client, &[("category", "kitchen")]).await;
    in_kitchen.expect(200);
    assert_eq!(in_kitchen.body["items"], json!([]));
    assert_eq!(search(&client, "vase").await, set(&["Staying Vase"]));
    assert_eq!(search(&client, "vanishing").await, set(&[]));

    // The SKU stays taken.
    for sku in ["GONE-1", "gone-1"] {
        let again = client
            .post(
                PRODUCTS,
                Some(&admin),
                json!({"sku": sku, "name": "Vase Again", "price": usd(700)}),
            )
            .await;
        again.expect_problem(409);
        assert_eq!(again.error_fields(), ["sku"]);
    }
    // It cannot be changed, restocked or archived again.
    client.delete(&path, Some(&admin)).await.expect_problem(404);
    client
        .patch(&path, Some(&admin), json!({"name": "Back", "version": 2}))
        .await
        .expect_problem(404);
    put_stock(&client, Some(&admin), &id, json!({"set": 5}))
        .await
        .expect_problem(404);
    client
        .delete(&product_path("01JZZZZZZZZZZZZZZZZZZZZZZZ"), Some(&admin))
        .await
        .expect_problem(404);
    drop(server);
}

// ---------------------------------------------------------------------------------------------
// Stock.

async fn stock_is_set_and_adjusted_never_below_zero(backend: Backend) {
    let (server, client, admin) = shop(backend).await;
    let id = quick_product(&client, &admin, "ST-1", "Stocked", "", 1000, 0).await;
    let other = quick_product(&client, &admin, "ST-2", "Always There", "", 900, 4).await;
    let path = product_path(&id);

    let five = put_stock(&client, Some(&admin), &id, json!({"set": 5})).await;
    five.expect(200);
    assert_eq!(five.body["stock"], 5);
    assert_eq!(five.body["id"], json!(id));
    assert_eq!(five.body["sku"], "ST-1");
    let down = put_stock(&client, Some(&admin), &id, json!({"adjust": -2})).await;
    down.expect(200);
    assert_eq!(down.body["stock"], 3);
    let up = put_stock(&client, Some(&admin), &id, json!({"adjust": 4})).await;
    up.expect(200);
    assert_eq!(up.body["stock"], 7);

    let before = client.get(&path, None).await;
    before.expect(200);
    let etag = before.header("etag").unwrap_or_default().to_owned();

    for body in [
        json!({"set": 1, "adjust": 1}),
        json!({}),
        json!({"set": -1}),
    ] {
        let refused = put_stock(&client, Some(&admin), &id, body.clone()).await;
        refused.expect_problem(422);
        assert!(
            !refused.error_fields().is_empty(),
            "{body}: {}",
            refused.text
        );
    }
    put_stock(&client, Some(&admin), &id, json!({"adjust": -8}))
        .await
        .expect_problem(409);
    // Nothing changed.
    let after = get_if_none_match(&client, &path, &etag).await;
    after.expect(304);
    let read = client.get(&path, None).await;
    assert_eq!(read.body["stock"], 7);

    // Down to exactly zero is allowed; then the product is out of the in-stock listing.
    let zero = put_stock(&client, Some(&admin), &id, json!({"adjust": -7})).await;
    zero.expect(200);
    assert_eq!(zero.body["stock"], 0);
    put_stock(&client, Some(&admin), &id, json!({"adjust": -1}))
        .await
        .expect_problem(409);
    assert_eq!(
        names(&collect(&client, &[("in_stock", "true")], 10).await),
        ["Always There"]
    );
    assert_eq!(
        name_set(&collect(&client, &[], 10).await),
        set(&["Always There", "Stocked"])
    );
    assert_eq!(client.get(&path, None).await.body["stock"], 0);

    put_stock(&client, Some(&admin), &id, json!({"set": 2}))
        .await
        .expect(200);
    assert_eq!(
        name_set(&collect(&client, &[("in_stock", "true")], 10).await),
        set(&["Always There", "Stocked"])
    );
    put_stock(
        &client,
        Some(&admin),
        "01JZZZZZZZZZZZZZZZZZZZZZZZ",
        json!({"set": 1}),
    )
    .await
    .expect_problem(404);
    let untouched = client.get(&product_path(&other), None).await;
    assert_eq!(untouched.body["stock"], 4);
    drop(server);
}

async fn out_of_stock_is_recorded_once_per_transition(backend: Backend) {
    let (server, client, admin) = shop(backend).await;
    let id = quick_product(&client, &admin, "OOS-1", "Scarce", "", 1000, 1).await;
    for (body, stock) in [
        (json!({"set": 5}), 5),
        (json!({"set": 0}), 0),
        (json!({"set": 0}), 0),
        (json!({"adjust": 3}), 3),
        (json!({"adjust": -3}), 0),
    ] {
        let changed = put_stock(&client, Some(&admin), &id, body.clone()).await;
        changed.expect(200);
        assert_eq!(changed.body["stock"], stock, "{body}");
    }
    let records = server
        .app
        .ports()
        .store
        .query(&Query::partition(Index::Primary, format!("PRODUCT#{id}")).prefix("STOCK#"))
        .await
        .expect("query the product's stock records");
    let transitions: Vec<String> = records
        .items
        .iter()
        .map(|item| text(item.get("transition").unwrap_or(&Value::Null)))
        .collect();
    assert_eq!(
        transitions,
        ["out_of_stock", "back_in_stock", "out_of_stock"],
        "{:?}",
        records.items
    );
    drop(server);
}

// ---------------------------------------------------------------------------------------------
// Authorisation.

async fn customers_and_anonymous_callers_cannot_administer(backend: Backend) {
    let (server, client, admin) = shop(backend).await;
    let id = quick_product(&client, &admin, "A-1", "Guarded", "", 1000, 3).await;
    let (customer, _) = client.register("dana").await;
    let path = product_path(&id);
    let stock = stock_path(&id);
    let attempts: Vec<(Method, String, Option<Value>)> = vec![
        (
            Method::POST,
            CATEGORIES.to_owned(),
            Some(json!({"name": "Hats"})),
        ),
        (
            Method::POST,
            PRODUCTS.to_owned(),
            Some(json!({"sku": "A-2", "name": "Sneaky", "price": usd(1)})),
        ),
        (
            Method::PATCH,
            path.clone(),
            Some(json!({"name": "Hacked", "version": 1})),
        ),
        (Method::DELETE, path.clone(), None),
        (Method::PUT, stock.clone(), Some(json!({"set": 0}))),
        (Method::PUT, stock.clone(), Some(json!({"adjust": -1}))),
    ];
    for (method, target, body) in &attempts {
        let as_customer = client
            .call(method.clone(), target, Some(&customer), body.clone())
            .await;
        assert_eq!(
            as_customer.status, 403,
            "customer {method} {target} {body:?}: {}",
            as_customer.text
        );
        as_customer.expect_problem(403);
        let anonymous = client
            .call(method.clone(), target, None, body.clone())
            .await;
        assert_eq!(
            anonymous.status, 401,
            "anonymous {method} {target} {body:?}: {}",
            anonymous.text
        );
        anonymous.expect_problem(401);
    }
    // Nothing changed.
    let read = client.get(&path, None).await;
    read.expect(200);
    assert_eq!(read.body["name"], "Guarded");
    assert_eq!(read.body["stock"], 3);
    assert_eq!(read.body["version"], 1);
    assert_eq!(names(&collect(&client, &[], 10).await), ["Guarded"]);
    let categories = client.get(CATEGORIES, None).await;
    assert_eq!(categories.body["items"], json!([]));
    // And the public reads need no token.
    client.get(&path, Some(&customer)).await.expect(200);
    drop(server);
}

/// A customer is refused for who they are, whatever the body: the role is checked before the
/// body's shape, so a malformed body tells a customer nothing about the endpoint.
async fn customers_are_refused_before_their_bodies_are_read(backend: Backend) {
    let (server, client, admin) = shop(backend).await;
    let id = quick_product(&client, &admin, "A-1", "Guarded", "", 1000, 3).await;
    let (customer, _) = client.register("erin").await;
    let attempts: Vec<(Method, String, Value)> = vec![
        (Method::POST, CATEGORIES.to_owned(), json!({"name": 7})),
        (Method::POST, PRODUCTS.to_owned(), json!({"sku": 5})),
        (Method::PATCH, product_path(&id), json!({"price": "free"})),
        (Method::PUT, stock_path(&id), json!({"set": "lots"})),
    ];
    let mut wrong = Vec::new();
    for (method, target, body) in &attempts {
        let response = client
            .call(method.clone(), target, Some(&customer), Some(body.clone()))
            .await;
        if response.status != 403 {
            wrong.push(format!(
                "{method} {target} {body}: {} {}",
                response.status, response.text
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "customers not refused with 403:\n{}",
        wrong.join("\n")
    );
    drop(server);
}

// ---------------------------------------------------------------------------------------------
// What the read paths touch.

/// Waits for the background work the setup caused (the admin's `USER_REGISTERED` reaching
/// the notifications consumer) and for the store to stay idle, then forgets every call, so
/// that what is recorded next is the requests' own doing.
async fn settle(server: &TestServer, client: &Client, admin: &str, recorder: &RecordingStore) {
    let me = client.get("/api/v1/users/me", Some(admin)).await;
    me.expect(200);
    let notifications = Query::partition(Index::Primary, format!("USER#{}", text(&me.body["id"])))
        .prefix("NOTIFICATION#");
    let mut notified = false;
    for _ in 0..100 {
        let page = server
            .app
            .ports()
            .store
            .query(&notifications)
            .await
            .expect("query the user's notifications");
        if !page.items.is_empty() {
            notified = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(notified, "the admin's registration was never handled");
    let mut quiet = 0;
    for _ in 0..100 {
        recorder.clear();
        tokio::time::sleep(Duration::from_millis(200)).await;
        if recorder.calls().is_empty() {
            quiet += 1;
            if quiet == 3 {
                return;
            }
        } else {
            quiet = 0;
        }
    }
    panic!("the store never fell idle: {:?}", recorder.calls());
}

/// Checks the calls one read made: only `get`, `get_many` and `query`; every query on a
/// listing (`LIST#…`), search-term (`TERM#…`) or category (`CATEGORIES`) partition; products
/// read by key; and the number of calls bounded. Returns the queried partitions.
#[track_caller]
fn check_read_calls(what: &str, calls: &[Call]) -> Vec<String> {
    let mut queried = Vec::new();
    for call in calls {
        match call.operation {
            "query" => {
                let partition = &call.partitions[0];
                assert!(
                    partition.starts_with("LIST#")
                        || partition.starts_with("TERM#")
                        || partition == "CATEGORIES",
                    "{what}: query of {partition} ({call:?})"
                );
                queried.push(partition.clone());
            }
            "get_many" => {
                assert!(
                    call.keys
                        .iter()
                        .all(|key| key.pk.starts_with("PRODUCT#") && key.sk == "PRODUCT"),
                    "{what}: batch read of {:?}",
                    call.keys
                );
            }
            "get" => {
                let key = &call.keys[0];
                assert!(
                    ["PRODUCT#", "CATEGORY#", "CATSLUG#"]
                        .iter()
                        .any(|prefix| key.pk.starts_with(prefix)),
                    "{what}: get of {key:?}"
                );
            }
            other => panic!("{what}: a read path called {other}: {call:?}"),
        }
    }
    let of = |operation: &str| calls.iter().filter(|c| c.operation == operation).count();
    assert!(
        of("query") <= 6,
        "{what}: {} queries: {calls:?}",
        of("query")
    );
    assert!(
        of("get_many") <= 6,
        "{what}: {} batch reads: {calls:?}",
        of("get_many")
    );
    assert!(of("get") <= 3, "{what}: {} gets: {calls:?}", of("get"));
    queried
}

async fn reads_only_query_index_partitions(backend: Backend) {
    let (server, recorder) = TestServer::start_recording(backend).await;
    let client = Client::new(&server);
    let admin = client.admin(&server).await;
    let kitchen = create_category(&client, &admin, json!({"name": "Kitchen"})).await;
    let kitchen_id = text(&kitchen["id"]);
    let mut ids = Vec::new();
    for n in 0..12_i64 {
        // Stock 0 from the start: no stock transition, so no background work.
        let mut body = json!({
            "sku": format!("R-{n}"),
            "name": format!("Recorded Lamp {n}"),
            "description": if n % 2 == 0 { "brass" } else { "steel" },
            "price": usd(100 * (n + 1)),
            "stock": if n % 3 == 0 { 0 } else { 2 },
        });
        if n % 2 == 0 {
            body["category_id"] = json!(kitchen_id);
        }
        ids.push(text(&create_product(&client, &admin, body).await["id"]));
    }
    // The writes went through the recorder too.
    assert!(
        recorder
            .calls()
            .iter()
            .any(|call| call.operation == "transact"),
        "the recorder saw no writes"
    );
    settle(&server, &client, &admin, &recorder).await;

    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (vec![], "LIST#ALL#NEWEST"),
        (vec![("sort", "newest")], "LIST#ALL#NEWEST"),
        (vec![("sort", "price_asc")], "LIST#ALL#PRICE"),
        (vec![("sort", "price_desc")], "LIST#ALL#PRICE"),
        (vec![("sort", "name")], "LIST#ALL#NAME"),
        (
            vec![
                ("sort", "price_asc"),
                ("min_price", "300"),
                ("max_price", "900"),
            ],
            "LIST#ALL#PRICE",
        ),
        (
            vec![("min_price", "300"), ("max_price", "900")],
            "LIST#ALL#NEWEST",
        ),
        (
            vec![("in_stock", "true"), ("sort", "name")],
            "LIST#ALL#NAME",
        ),
        (
            vec![("in_stock", "true"), ("limit", "2")],
            "LIST#ALL#NEWEST",
        ),
        (
            vec![("category", "kitchen"), ("sort", "price_desc")],
            "LIST#CAT#",
        ),
        (
            vec![("category", &kitchen_id), ("in_stock", "true")],
            "LIST#CAT#",
        ),
        (vec![("q", "lamp")], "TERM#lamp"),
        (vec![("q", "brass lamp"), ("sort", "price_asc")], "TERM#"),
        (
            vec![("q", "lamp"), ("category", "kitchen"), ("in_stock", "true")],
            "TERM#lamp",
        ),
    ];
    for (params, partition) in &cases {
        let what = format!("GET /products {params:?}");
        // Some cases are one listing spelled two ways (`sort=newest` is the default), which the
        // response cache serves as one entry; each case here is about the store's read path.
        server.app.cache().clear();
        let response = list(&client, params).await;
        response.expect(200);
        let calls = recorder.take();
        let queried = check_read_calls(&what, &calls);
        assert!(!queried.is_empty(), "{what}: no query at all: {calls:?}");
        assert!(
            queried.iter().all(|p| p.starts_with(partition)),
            "{what}: expected {partition}, queried {queried:?}"
        );
        if partition.starts_with("LIST#CAT#") {
            assert!(
                queried.iter().all(|p| p.contains(&kitchen_id)),
                "{what}: {queried:?}"
            );
        }
        assert!(
            calls.iter().any(|call| call.operation == "get_many"),
            "{what}: products not read by key: {calls:?}"
        );
        // And following the cursor is as cheap.
        if let Some(cursor) = response.body["next_cursor"].as_str() {
            let mut next = params.clone();
            next.push(("cursor", cursor));
            list(&client, &next).await.expect(200);
            check_read_calls(&format!("{what} (next page)"), &recorder.take());
        }
    }

    // One product: read by key, nothing else.
    let path = product_path(&ids[3]);
    let read = client.get(&path, None).await;
    read.expect(200);
    let calls = recorder.take();
    check_read_calls("GET /products/{id}", &calls);
    assert!(
        calls
            .iter()
            .all(|call| call.operation == "get"
                && call.partitions == [format!("PRODUCT#{}", ids[3])]),
        "GET /products/{{id}}: {calls:?}"
    );
    assert!(!calls.is_empty() && calls.len() <= 2, "{calls:?}");
    let etag = read.header("etag").unwrap_or_default().to_owned();
    get_if_none_match(&client, &path, &etag).await.expect(304);
    check_read_calls("GET /products/{id} (304)", &recorder.take());
    client
        .get(&product_path("01JZZZZZZZZZZZZZZZZZZZZZZZ"), None)
        .await
        .expect_problem(404);
    check_read_calls("GET /products/{unknown}", &recorder.take());

    // The categories are a query of their own index partition.
    client.get(CATEGORIES, None).await.expect(200);
    let calls = recorder.take();
    let queried = check_read_calls("GET /categories", &calls);
    assert_eq!(queried, ["CATEGORIES"], "{calls:?}");
    assert!(
        calls
            .iter()
            .all(|call| call.index == Some(Index::Gsi1) || call.operation != "query")
    );

    // A listing with a filter that rejects most of what it reads stays bounded.
    let sparse = list(
        &client,
        &[("in_stock", "true"), ("max_price", "100"), ("limit", "1")],
    )
    .await;
    sparse.expect(200);
    check_read_calls("sparse listing", &recorder.take());
    drop(server);
}

async fn a_cursor_from_other_price_bounds_is_a_bad_request(backend: Backend) {
    let (_server, client, admin) = shop(backend).await;
    for (n, amount) in [100, 200, 300].into_iter().enumerate() {
        create_product(&client, &admin, json!({"sku": format!("RANGE-{n}"), "name": format!("Range {n}"), "price": usd(amount)})).await;
    }
    let first = client
        .get(
            &format!("{PRODUCTS}?sort=price_asc&min_price=100&max_price=300&limit=1"),
            None,
        )
        .await;
    first.expect(200);
    let cursor = first.body["next_cursor"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(!cursor.is_empty(), "{}", first.text);
    // The same cursor within its own bounds goes on...
    let next = client
        .get(
            &format!(
                "{PRODUCTS}?sort=price_asc&min_price=100&max_price=300&limit=1&cursor={cursor}"
            ),
            None,
        )
        .await;
    next.expect(200);
    assert_eq!(next.body["items"][0]["price"]["amount"], 200);
    // ...but it starts below a raised lower bound: a client error, not a store error.
    client
        .get(
            &format!(
                "{PRODUCTS}?sort=price_asc&min_price=250&max_price=300&limit=1&cursor={cursor}"
            ),
            None,
        )
        .await
        .expect_problem(400);
}
