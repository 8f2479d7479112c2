//! The `imports-process` function: S3 `ObjectCreated` events for catalogue uploads. Object keys
//! arrive URL-encoded in S3 events (`+` for a space, `%XX` for other bytes): they are decoded
//! before use. One failing record fails the invocation, so that S3's asynchronous invocation
//! retries it; a retried import resumes from its checkpoint.

use aws_lambda_events::s3::S3Event;
use bazaar_shared::imports;
use percent_encoding::percent_decode_str;
use serde_json::json;

use crate::App;

/// Decodes an object key as S3 event notifications encode it.
pub fn decode_key(encoded: &str) -> Result<String, String> {
    let spaced = encoded.replace('+', " ");
    percent_decode_str(&spaced)
        .decode_utf8()
        .map(|key| key.into_owned())
        .map_err(|_| format!("the object key {encoded:?} is not UTF-8"))
}

pub async fn handle(app: &App, event: S3Event) -> Result<(), String> {
    let mut failures = Vec::new();
    for record in event.records {
        let Some(encoded) = record.s3.object.key.as_deref() else {
            continue;
        };
        let key = match decode_key(encoded) {
            Ok(key) => key,
            Err(reason) => {
                failures.push(reason);
                continue;
            }
        };
        if imports::import_id_of(&key).is_none() {
            tracing::warn!(%key, "not an import upload; ignored");
            continue;
        }
        match imports::run(app.products(), &key).await {
            Ok(view) => tracing::info!(
                import_id = %view.id,
                status = ?view.status,
                rows_read = view.rows_read,
                created = view.created,
                updated = view.updated,
                rejected = view.rejected_count,
                "import ran"
            ),
            Err(error) => {
                tracing::error!(%key, %error, "import failed; it will be retried");
                failures.push(format!("{key}: {error}"));
            }
        }
    }
    app.cache().clear();
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("; "))
    }
}

/// The event S3 sends when `key` is created in `bucket`, with the key encoded as S3 does.
pub fn event_for(bucket: &str, key: &str, size: usize) -> Result<S3Event, serde_json::Error> {
    let encoded: String = key
        .split('/')
        .map(|segment| {
            percent_encoding::utf8_percent_encode(segment, S3_KEY_ESCAPES)
                .to_string()
                .replace("%20", "+")
        })
        .collect::<Vec<_>>()
        .join("/");
    serde_json::from_value(json!({
        "Records": [{
            "eventVersion": "2.1",
            "eventSource": "aws:s3",
            "awsRegion": "local",
            "eventTime": chrono::Utc::now().to_rfc3339(),
            "eventName": "ObjectCreated:Put",
            "userIdentity": { "principalId": "local" },
            "requestParameters": { "sourceIPAddress": "127.0.0.1" },
            "responseElements": {},
            "s3": {
                "s3SchemaVersion": "1.0",
                "configurationId": "imports",
                "bucket": { "name": bucket, "arn": format!("arn:aws:s3:::{bucket}") },
                "object": { "key": encoded, "size": size, "sequencer": format!("{:016X}", size) }
            }
        }]
    }))
}

/// What S3 escapes in event keys: everything but unreserved characters.
const S3_KEY_ESCAPES: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'*');

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_decoded_as_s3_encodes_them() {
        assert_eq!(
            decode_key("imports/01A/my+file.csv").ok(),
            Some("imports/01A/my file.csv".into())
        );
        assert_eq!(
            decode_key("imports/01A/%DA%A9%D8%A7%D8%AA%D8%A7%D9%84%D9%88%DA%AF+1.csv").ok(),
            Some("imports/01A/کاتالوگ 1.csv".into())
        );
        assert_eq!(
            decode_key("imports/01A/a%2Bb.csv").ok(),
            Some("imports/01A/a+b.csv".into())
        );
        assert!(decode_key("imports/%FF").is_err());
    }

    #[test]
    fn built_events_round_trip_their_key() {
        let key = "imports/01A/کاتالوگ پاییز+1.csv";
        let event = event_for("assets", key, 10).expect("build the S3 event");
        let encoded = event.records[0].s3.object.key.clone().unwrap_or_default();
        assert!(!encoded.contains(' ') && encoded.is_ascii(), "{encoded}");
        assert_eq!(decode_key(&encoded).ok(), Some(key.to_owned()));
    }
}
