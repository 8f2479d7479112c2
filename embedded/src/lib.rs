//! The embedded backend: Bazaar's ports on one machine, with nothing to install. The local
//! server and `cargo lambda watch --features local` use it; function packages do not link it
//! (nor SQLite, nor the SMTP client).
//!
//! - [`EmbeddedStore`]: the state store in a SQLite database, one row per item;
//! - [`EmbeddedQueue`]: queues in a second SQLite database, with visibility timeouts and
//!   dead-letter redrive as SQS has them;
//! - [`EmbeddedBlobs`]: objects as files under a directory, with presigned URLs that the local
//!   server checks with [`EmbeddedBlobs::verify`].
//!
//! Everything is durable across restarts (SQLite in WAL mode with `synchronous=FULL`, blob
//! writes through fsync and rename), so a laptop or a single small server can run the shop for
//! real, and the semantics are those of the AWS services so that code behaves the same on both.

//! [`connect`] chooses between it and the AWS adapters from configuration, for the local
//! server, its admin commands and the tests.

pub mod blobs;
pub mod connect;
pub mod notify;
pub mod private_files;
pub mod queue;
pub mod secret_file;
mod sqlite;
pub mod store;

pub use blobs::{BlobAccessError, EmbeddedBlobs};
pub use connect::{EmbeddedHandles, Local, connect};
pub use queue::EmbeddedQueue;
pub use store::EmbeddedStore;

pub(crate) use sqlite::Sqlite;

/// Temporary directories for the tests of this module, removed when dropped.
#[cfg(test)]
pub(crate) mod test_support {
    use std::path::{Path, PathBuf};

    pub(crate) struct TempDir(PathBuf);

    impl TempDir {
        pub(crate) fn new(tag: &str) -> Self {
            let path = std::env::temp_dir().join(format!(
                "bazaar-embedded-{tag}-{}-{}",
                std::process::id(),
                ulid::Ulid::new()
            ));
            std::fs::create_dir_all(&path).expect("create the temporary directory");
            Self(path)
        }

        pub(crate) fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}
