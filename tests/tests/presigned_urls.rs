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
        .unwrap_or_else(|e| panic!("{e}"))
}

async fn get(url: &str) -> u16 {
    reqwest::get(url)
        .await
        .map(|response| response.status().as_u16())
        .unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test]
async fn tampered_or_expired_urls_are_refused() {
    let server = TestServer::start(Backend::Embedded).await;
    let blobs = &server.app.ports().blobs;
    let upload = blobs
        .presign_put(
            "imports/catalogue.csv",
            "text/csv",
            Duration::from_secs(300),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
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
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(get(&download.url).await, 200);
    // A presigned GET is not a presigned PUT.
    assert_eq!(put(&download.url, "text/csv").await, 403);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(get(&download.url).await, 403, "an expired URL still works");
}

#[tokio::test]
async fn the_aws_backend_serves_no_local_blob_route() {
    let server = TestServer::start(Backend::Aws).await;
    assert_eq!(
        get(&server.url("/_blobs/anything?X-Bazaar-Expires=1")).await,
        404
    );
}
