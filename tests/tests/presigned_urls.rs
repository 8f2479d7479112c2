//! Presigned blob URLs served by the local server for the embedded store. moto does not check
//! presigned signatures, so expiry and tampering are tested here, on the embedded backend.

use std::time::Duration;

use bazaar_tests::{Backend, TestServer};

async fn put(url: &str, content_type: &str) -> u16 {
    reqwest::Client::new()
        .put(url)
        .header("content-type", content_type)
        .body("payload")
        .send()
        .await
        .map(|response| response.status().as_u16())
        .expect("send the PUT")
}

async fn get(url: &str) -> u16 {
    reqwest::get(url)
        .await
        .map(|response| response.status().as_u16())
        .expect("send the GET")
}

#[tokio::test]
async fn tampered_or_expired_urls_are_refused() {
    let server = TestServer::start(Backend::Embedded).await;
    let blobs = &server.app.ports().blobs;
    let upload = blobs
        .presign_put(
            "imports/catalogue.csv",
            "text/csv",
            None,
            Duration::from_secs(300),
        )
        .await
        .expect("presign the upload");
    assert!(upload.url.starts_with(&server.base_url), "{}", upload.url);

    assert_eq!(
        put(&upload.url, "text/plain").await,
        403,
        "another content type"
    );
    let other_key = upload.url.replace("catalogue.csv", "other.csv");
    assert_eq!(put(&other_key, "text/csv").await, 403, "another key");
    let flipped = {
        let mut url = upload.url.clone();
        let last = url
            .pop()
            .map(|c| if c == '0' { '1' } else { '0' })
            .unwrap_or('0');
        url.push(last);
        url
    };
    assert_eq!(put(&flipped, "text/csv").await, 403, "another signature");
    let unsigned = upload.url.split('?').next().unwrap_or_default().to_owned();
    assert_eq!(put(&unsigned, "text/csv").await, 403, "no signature");
    assert_eq!(
        blobs.get("imports/catalogue.csv").await,
        Ok(None),
        "a refused upload wrote"
    );

    assert_eq!(put(&upload.url, "text/csv").await, 200);
    let download = blobs
        .presign_get("imports/catalogue.csv", Duration::from_secs(1))
        .await
        .expect("presign the download");
    assert_eq!(get(&download.url).await, 200);
    // A presigned GET is not a presigned PUT.
    assert_eq!(put(&download.url, "text/csv").await, 403);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(get(&download.url).await, 403, "an expired URL still works");
}

async fn put_bytes(url: &str, content_type: &str, body: Vec<u8>) -> u16 {
    reqwest::Client::new()
        .put(url)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .map(|response| response.status().as_u16())
        .expect("send the PUT")
}

#[tokio::test]
async fn a_sized_upload_url_takes_exactly_that_many_bytes() {
    let server = TestServer::start(Backend::Embedded).await;
    let blobs = &server.app.ports().blobs;
    let key = "products/p1/images/photo.png";
    let upload = blobs
        .presign_put(key, "image/png", Some(8), Duration::from_secs(300))
        .await
        .expect("presign the sized upload");

    // A browser cannot lie about Content-Length: a body of another size declares that size.
    assert_eq!(
        put_bytes(&upload.url, "image/png", vec![1; 9]).await,
        403,
        "one byte more"
    );
    assert_eq!(
        put_bytes(&upload.url, "image/png", vec![1; 7]).await,
        403,
        "one byte less"
    );
    assert_eq!(
        put_bytes(&upload.url, "image/png", Vec::new()).await,
        403,
        "empty"
    );
    assert_eq!(
        put_chunked(&upload.url, "image/png", &[1; 8]).await,
        403,
        "a chunked upload declares no length"
    );
    // Changing the signed length in the URL breaks the signature.
    let larger = upload
        .url
        .replace("X-Bazaar-Length=8&", "X-Bazaar-Length=9&");
    assert_ne!(larger, upload.url);
    assert_eq!(put_bytes(&larger, "image/png", vec![1; 9]).await, 403);
    assert_eq!(blobs.get(key).await, Ok(None), "a refused upload wrote");

    assert_eq!(put_bytes(&upload.url, "image/png", vec![1; 8]).await, 200);
    assert_eq!(
        blobs.get(key).await.ok().flatten().map(|blob| blob.body),
        Some(vec![1; 8])
    );
}

/// PUTs `body` with `Transfer-Encoding: chunked` and no Content-Length (as a client streaming
/// a body of unknown length does), over a plain socket; returns the status.
async fn put_chunked(url: &str, content_type: &str, body: &[u8]) -> u16 {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").unwrap_or(url);
    let (host, target) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let request = format!(
        "PUT {target} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {content_type}\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n",
        body.len()
    );
    let mut bytes = request.into_bytes();
    bytes.extend_from_slice(body);
    bytes.extend_from_slice(b"\r\n0\r\n\r\n");
    let host = host.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut socket = std::net::TcpStream::connect(&host).expect("connect to the local server");
        socket.write_all(&bytes).expect("send the chunked upload");
        let mut response = String::new();
        let _ = socket.read_to_string(&mut response);
        response
            .split(' ')
            .nth(1)
            .and_then(|status| status.parse().ok())
            .unwrap_or_else(|| panic!("no status in {response:?}"))
    })
    .await
    .expect("join the chunked upload")
}

#[tokio::test]
async fn public_assets_are_products_only() {
    let server = TestServer::start(Backend::Embedded).await;
    let blobs = &server.app.ports().blobs;
    blobs
        .put("products/p1/images/a.png", b"PNG".to_vec(), "image/png")
        .await
        .expect("put the product image");
    blobs
        .put("imports/secret.csv", b"sku".to_vec(), "text/csv")
        .await
        .expect("put the import file");
    let url = blobs.public_url("products/p1/images/a.png");
    assert_eq!(url, server.url("/assets/products/p1/images/a.png"));
    let response = reqwest::get(&url).await.expect("get the public asset");
    assert_eq!(response.status().as_u16(), 200);
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
    };
    assert_eq!(header("content-type").as_deref(), Some("image/png"));
    assert_eq!(
        header("cache-control").as_deref(),
        Some("public, max-age=86400")
    );
    assert_eq!(
        response.bytes().await.ok().map(|bytes| bytes.to_vec()),
        Some(b"PNG".to_vec())
    );
    for path in [
        "/assets/imports/secret.csv",
        "/assets/products/p1/images/missing.png",
        "/assets/products/../imports/secret.csv",
        "/assets/products%2F..%2Fimports/secret.csv",
    ] {
        let response = reqwest::get(server.url(path))
            .await
            .expect("get an asset path outside the public prefixes");
        assert_eq!(response.status().as_u16(), 404, "{path}");
        assert_eq!(
            response
                .headers()
                .get("content-type")
                .and_then(|value| value.to_str().ok()),
            Some("application/problem+json"),
            "{path}"
        );
    }
}

#[tokio::test]
async fn the_aws_backend_serves_no_local_blob_route() {
    let server = TestServer::start(Backend::Aws).await;
    assert_eq!(
        get(&server.url("/_blobs/anything?X-Bazaar-Expires=1")).await,
        404
    );
    assert_eq!(get(&server.url("/assets/products/p1/a.png")).await, 404);
}
