//! Black-box tests of product images (`POST /api/v1/products/{id}/images`) through the local
//! server over HTTP, on the embedded backend and on the AWS adapters against moto: presign,
//! upload straight to blob storage, and the product listing the image.

use bazaar_tests::http::{Client, Response};
use bazaar_tests::{Backend, TestServer};
use serde_json::{Value, json};

bazaar_tests::on_both_backends!(
    an_admin_uploads_an_image_through_a_presigned_url,
    image_requests_are_validated,
    only_admins_add_images_to_existing_products,
    a_product_has_at_most_ten_images,
    an_upload_of_another_size_is_refused,
);

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n-a-small-test-image-";

fn images_path(product_id: &str) -> String {
    format!("/api/v1/products/{product_id}/images")
}

/// Creates an active product; returns its id.
async fn product(client: &Client, admin: &str, sku: &str) -> String {
    let created = client
        .post(
            "/api/v1/products",
            Some(admin),
            json!({
                "sku": sku,
                "name": format!("Product {sku}"),
                "price": {"amount": 1999, "currency": "USD"},
                "stock": 5,
            }),
        )
        .await;
    created.expect(201);
    created.body["id"].as_str().unwrap_or_default().to_owned()
}

async fn presign(client: &Client, token: &str, product_id: &str, body: Value) -> Response {
    client
        .post(&images_path(product_id), Some(token), body)
        .await
}

/// Sends `body` to a presigned upload with the headers it names, except those given in
/// `skip` (a client sending another body cannot keep the signed Content-Length).
async fn upload(presigned: &Value, body: Vec<u8>, skip: &[&str]) -> reqwest::StatusCode {
    let url = presigned["upload_url"].as_str().unwrap_or_default();
    assert_eq!(presigned["method"], "PUT");
    let mut request = reqwest::Client::new().put(url).body(body);
    if let Some(headers) = presigned["headers"].as_object() {
        for (name, value) in headers {
            if !skip.contains(&name.as_str()) {
                request = request.header(name, value.as_str().unwrap_or_default());
            }
        }
    }
    request.send().await.expect("send the upload").status()
}

async fn images_of(client: &Client, product_id: &str) -> Vec<String> {
    let product = client
        .get(&format!("/api/v1/products/{product_id}"), None)
        .await;
    product.expect(200);
    product.body["images"]
        .as_array()
        .map(|images| {
            images
                .iter()
                .filter_map(|image| image.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

async fn an_admin_uploads_an_image_through_a_presigned_url(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = Client::new(&server);
    let admin = client.admin(&server).await;
    let id = product(&client, &admin, "IMG-1").await;
    // Read once, so that a cached copy would show a stale image list.
    assert!(images_of(&client, &id).await.is_empty());

    let presigned = presign(
        &client,
        &admin,
        &id,
        json!({"content_type": "image/png", "size": PNG.len()}),
    )
    .await;
    presigned.expect(201);
    let body = &presigned.body;
    assert_eq!(body["method"], "PUT");
    assert_eq!(body["expires_in"], 900);
    assert_eq!(body["headers"]["content-type"], "image/png");
    assert_eq!(body["headers"]["content-length"], PNG.len().to_string());
    let image_url = body["image_url"].as_str().unwrap_or_default().to_owned();
    let prefix = format!("/products/{id}/images/");
    assert!(
        image_url.contains(&prefix) && image_url.ends_with(".png"),
        "{image_url}"
    );
    let image_name = image_url.rsplit('/').next().unwrap_or_default();
    assert_eq!(
        image_name.trim_end_matches(".png").len(),
        26,
        "a ULID: {image_url}"
    );

    let status = upload(body, PNG.to_vec(), &[]).await;
    assert!(status.is_success(), "upload refused: {status}");
    assert_eq!(
        images_of(&client, &id).await,
        std::slice::from_ref(&image_url)
    );
    let listed = client.get("/api/v1/products?sort=newest", None).await;
    listed.expect(200);
    assert!(listed.text.contains(&image_url), "{}", listed.text);

    let stored_key = format!(
        "products/{id}/images/{}",
        image_url.rsplit('/').next().unwrap_or_default()
    );
    let stored = server.app.ports().blobs.get(&stored_key).await;
    assert_eq!(
        stored
            .ok()
            .flatten()
            .map(|blob| (blob.body, blob.content_type)),
        Some((PNG.to_vec(), "image/png".to_owned()))
    );

    if matches!(backend, Backend::Embedded) {
        // The local server serves public images itself, as a CDN would in AWS.
        assert!(image_url.starts_with(&server.base_url), "{image_url}");
        let served = reqwest::get(&image_url)
            .await
            .expect("get the served image");
        assert_eq!(served.status().as_u16(), 200);
        assert_eq!(
            served
                .headers()
                .get("cache-control")
                .and_then(|value| value.to_str().ok()),
            Some("public, max-age=86400")
        );
        assert_eq!(
            served
                .headers()
                .get("content-type")
                .and_then(|value| value.to_str().ok()),
            Some("image/png")
        );
        assert_eq!(
            served.bytes().await.ok().map(|bytes| bytes.to_vec()),
            Some(PNG.to_vec())
        );
    }

    // A second image goes after the first, with its own key and extension.
    let second = presign(
        &client,
        &admin,
        &id,
        json!({"content_type": "image/webp", "size": 10}),
    )
    .await;
    second.expect(201);
    let second_url = second.body["image_url"].as_str().unwrap_or_default();
    assert!(second_url.ends_with(".webp"), "{second_url}");
    assert_eq!(
        images_of(&client, &id).await,
        [image_url.clone(), second_url.to_owned()]
    );
    let jpeg = presign(
        &client,
        &admin,
        &id,
        json!({"content_type": "image/jpeg", "size": 10}),
    )
    .await;
    jpeg.expect(201);
    assert!(
        jpeg.body["image_url"]
            .as_str()
            .is_some_and(|url| url.ends_with(".jpg")),
        "{}",
        jpeg.text
    );
}

async fn image_requests_are_validated(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = Client::new(&server);
    let admin = client.admin(&server).await;
    let id = product(&client, &admin, "IMG-2").await;
    for (body, field) in [
        (
            json!({"content_type": "image/gif", "size": 10}),
            "content_type",
        ),
        (
            json!({"content_type": "image/svg+xml", "size": 10}),
            "content_type",
        ),
        (json!({"content_type": "image/png", "size": 0}), "size"),
        (
            json!({"content_type": "image/png", "size": 5_242_881}),
            "size",
        ),
        (json!({"content_type": "image/png", "size": -1}), "size"),
        (json!({"content_type": "image/png"}), "size"),
        (json!({"size": 10}), "content_type"),
    ] {
        let refused = presign(&client, &admin, &id, body.clone()).await;
        refused.expect_problem(422);
        assert_eq!(refused.error_fields(), [field], "{body}");
    }
    // The largest image allowed is exactly 5 MiB.
    presign(
        &client,
        &admin,
        &id,
        json!({"content_type": "image/png", "size": 5_242_880}),
    )
    .await
    .expect(201);
    assert_eq!(images_of(&client, &id).await.len(), 1, "a refusal wrote");
}

async fn only_admins_add_images_to_existing_products(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = Client::new(&server);
    let admin = client.admin(&server).await;
    let id = product(&client, &admin, "IMG-3").await;
    let body = json!({"content_type": "image/png", "size": 10});

    let (customer, _) = client.register("shopper").await;
    presign(&client, &customer, &id, body.clone())
        .await
        .expect_problem(403);
    client
        .post(&images_path(&id), None, body.clone())
        .await
        .expect_problem(401);
    assert!(images_of(&client, &id).await.is_empty());

    presign(&client, &admin, "01ARZ3NDEKTSV4RRFFQ69G5FAV", body.clone())
        .await
        .expect_problem(404);

    client
        .delete(&format!("/api/v1/products/{id}"), Some(&admin))
        .await
        .expect(204);
    presign(&client, &admin, &id, body)
        .await
        .expect_problem(404);
}

async fn a_product_has_at_most_ten_images(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = Client::new(&server);
    let admin = client.admin(&server).await;
    let id = product(&client, &admin, "IMG-4").await;
    let body = json!({"content_type": "image/jpeg", "size": 100});
    let mut urls = Vec::new();
    for _ in 0..10 {
        let presigned = presign(&client, &admin, &id, body.clone()).await;
        presigned.expect(201);
        urls.push(
            presigned.body["image_url"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        );
    }
    let eleventh = presign(&client, &admin, &id, body).await;
    eleventh.expect_problem(409);
    assert_eq!(images_of(&client, &id).await, urls);
    let product = client.get(&format!("/api/v1/products/{id}"), None).await;
    assert_eq!(product.body["version"], 11, "each image bumps the version");
}

async fn an_upload_of_another_size_is_refused(backend: Backend) {
    let server = TestServer::start(backend).await;
    let client = Client::new(&server);
    let admin = client.admin(&server).await;
    let id = product(&client, &admin, "IMG-5").await;
    let presigned = presign(
        &client,
        &admin,
        &id,
        json!({"content_type": "image/png", "size": PNG.len()}),
    )
    .await;
    presigned.expect(201);
    let mut larger = PNG.to_vec();
    larger.extend_from_slice(b"and then some more bytes");
    // The client's own Content-Length (that of the body sent) replaces the signed one.
    let status = upload(&presigned.body, larger, &["content-length"]).await;
    match backend {
        Backend::Embedded => {
            assert!(status.is_client_error(), "accepted: {status}");
            let image_url = presigned.body["image_url"].as_str().unwrap_or_default();
            let served = reqwest::get(image_url)
                .await
                .expect("get the image URL of the refused upload");
            assert_eq!(
                served.status().as_u16(),
                404,
                "the refused upload was stored"
            );
        }
        // moto does not check presigned signatures (S3 does: the Content-Length is a signed
        // header, so S3 answers 403 SignatureDoesNotMatch), so nothing is asserted there.
        Backend::Aws => {}
    }
    // The exact size still goes through.
    let status = upload(&presigned.body, PNG.to_vec(), &[]).await;
    assert!(status.is_success(), "upload refused: {status}");
}
