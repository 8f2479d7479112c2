//! The import record: status, counts, rejected lines, and the checkpoint a resumed run
//! starts from.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::entity::{self, Stored};
use crate::ids::ImportId;
use crate::keys;
use crate::ports::Key;

/// The most rejected lines kept with their reason; the count goes on beyond it.
pub const MAX_REJECTIONS_KEPT: usize = 100;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImportStatus {
    Pending,
    Running,
    Done,
    Failed,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejection {
    pub line: u64,
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Import {
    pub id: ImportId,
    pub status: ImportStatus,
    /// The uploaded object.
    pub key: String,
    pub rows_read: u64,
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub rejected: Vec<Rejection>,
    pub rejected_count: u64,
    /// Why the whole import failed (a bad header, a missing file).
    pub error: Option<String>,
    /// Byte offset and line number of the next row to read.
    pub checkpoint_offset: u64,
    pub checkpoint_line: u64,
    /// Who holds the import while it runs, until when (seconds since the epoch).
    pub lease_until: i64,
    pub lease_version: u64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// What `GET /imports/{id}` shows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportView {
    pub id: ImportId,
    pub status: ImportStatus,
    pub rows_read: u64,
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub rejected: Vec<Rejection>,
    pub rejected_count: u64,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl From<&Import> for ImportView {
    fn from(import: &Import) -> Self {
        Self {
            id: import.id.clone(),
            status: import.status,
            rows_read: import.rows_read,
            created: import.created,
            updated: import.updated,
            unchanged: import.unchanged,
            rejected: import.rejected.clone(),
            rejected_count: import.rejected_count,
            error: import.error.clone(),
            created_at: import.created_at,
            finished_at: import.finished_at,
        }
    }
}

impl Stored for Import {
    const KIND: &'static str = "import";
    type Owner = ();

    fn key(&self, _: &()) -> Key {
        keys::import(&self.id)
    }
}

entity::attributes!(Import {
    STATUS = "status",
    ROWS_READ = "rows_read",
    CREATED = "created",
    UPDATED = "updated",
    UNCHANGED = "unchanged",
    REJECTED = "rejected",
    REJECTED_COUNT = "rejected_count",
    ERROR = "error",
    CHECKPOINT_OFFSET = "checkpoint_offset",
    CHECKPOINT_LINE = "checkpoint_line",
    LEASE_UNTIL = "lease_until",
    LEASE_VERSION = "lease_version",
    UPDATED_AT = "updated_at",
    FINISHED_AT = "finished_at",
});
