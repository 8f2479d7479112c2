//! Catalogue imports, the "process a huge uploaded file in the background" job: an
//! admin uploads a CSV to blob storage through a presigned URL, the upload triggers
//! [`run`] (an S3 event in AWS, the same event built by the local server), which streams the
//! file in bounded memory, upserts every good row by SKU, rejects bad lines with their number
//! and reason, records progress, and publishes `IMPORT_FINISHED`.
//!
//! Re-running is safe at any point: rows are upserts (a row that matches the product changes
//! nothing), progress is checkpointed with the byte offset of the next row, and a run that
//! dies is resumed from its last checkpoint by the next delivery of the event, or by the
//! scheduled [`sweep`] once its lease has lapsed.

pub mod model;
pub mod rows;
pub mod run;
pub mod sweep;

pub use model::{Import, ImportStatus, ImportView, Rejection};
pub use run::{create, get, run};
pub use sweep::{Swept, sweep};

/// Where uploads of catalogue files go: `imports/<import id>/<file name>`.
pub const KEY_PREFIX: &str = "imports/";

/// The import a blob key belongs to, if it is an import upload.
pub fn import_id_of(key: &str) -> Option<&str> {
    let rest = key.strip_prefix(KEY_PREFIX)?;
    let (id, file) = rest.split_once('/')?;
    (!id.is_empty() && !file.is_empty()).then_some(id)
}

#[cfg(test)]
mod tests {
    use super::import_id_of;

    #[test]
    fn import_keys_name_their_import() {
        assert_eq!(import_id_of("imports/01ABC/catalogue.csv"), Some("01ABC"));
        assert_eq!(
            import_id_of("imports/01ABC/کاتالوگ پاییز.csv"),
            Some("01ABC")
        );
        assert_eq!(import_id_of("imports/01ABC"), None);
        assert_eq!(import_id_of("products/01ABC/x.png"), None);
    }
}
