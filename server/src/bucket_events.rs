//! S3 event notifications, locally: when an object is created through a presigned upload, the
//! functions subscribed to its key prefix are invoked with the very `S3Event` payload S3 would
//! send, in the background, as S3 does.

use bazaar_api::App;
use bazaar_api::consumers;
use bazaar_api::functions::{ALL, Trigger};

/// The bucket name local events carry.
const LOCAL_BUCKET: &str = "bazaar-local";

pub fn object_created(app: &App, key: &str, size: usize) {
    for function in ALL {
        let Trigger::Upload { prefix, handler } = function.trigger else {
            continue;
        };
        if !key.starts_with(prefix) {
            continue;
        }
        let event = match consumers::imports::event_for(LOCAL_BUCKET, key, size) {
            Ok(event) => event,
            Err(error) => {
                tracing::error!(%error, "cannot build the S3 event");
                continue;
            }
        };
        let (handled, name) = (handler(app.clone(), event), function.name);
        tokio::spawn(async move {
            if let Err(error) = handled.await {
                tracing::error!(function = name, %error, "upload handler failed");
            }
        });
    }
}
