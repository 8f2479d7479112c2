//! The SQLite connection the embedded store and queues share.

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rusqlite::Connection;

/// How long a write waits for another connection's lock (an admin CLI, a second process)
/// before giving up, instead of failing at once with `SQLITE_BUSY`.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// One SQLite connection shared by every task of the process.
///
/// SQLite serialises writers anyway, so one connection behind a mutex costs nothing in
/// throughput and keeps each `BEGIN IMMEDIATE` transaction free of self-inflicted
/// `SQLITE_BUSY`. Calls run on tokio's blocking pool because SQLite does blocking I/O.
#[derive(Clone)]
pub(crate) struct Sqlite {
    connection: Arc<Mutex<Connection>>,
}

impl Sqlite {
    /// Opens (creating if needed) the database at `path`, configures it and runs `schema`
    /// (idempotent `CREATE ... IF NOT EXISTS` statements). Errors are SQLite's messages.
    pub(crate) fn open(path: &Path, schema: &str) -> Result<Self, String> {
        create_parent_directory(path)?;
        // Owner-only before SQLite writes a byte; its WAL and shared-memory files copy the mode.
        crate::private_files::ensure_file(path)
            .map_err(|error| format!("cannot create {}: {error}", path.display()))?;
        let connection = Connection::open(path).map_err(|error| describe(path, &error))?;
        configure(&connection).map_err(|error| describe(path, &error))?;
        connection
            .execute_batch(schema)
            .map_err(|error| describe(path, &error))?;
        Ok(Self {
            connection: Arc::new(Mutex::new(connection)),
        })
    }

    /// Runs `work` with the connection on the calling thread: for set-up (migrations) before
    /// any task shares the database.
    pub(crate) fn now<T>(&self, work: impl FnOnce(&Connection) -> T) -> T {
        let guard = self
            .connection
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        work(&guard)
    }

    /// A handle that does not keep the database open (see [`WeakSqlite`]).
    pub(crate) fn downgrade(&self) -> WeakSqlite {
        WeakSqlite(Arc::downgrade(&self.connection))
    }

    /// Runs `work` with the connection on the blocking pool. `unavailable` builds the caller's
    /// error type when the blocking task itself fails (it panicked or the runtime is closing).
    pub(crate) async fn call<T, E>(
        &self,
        unavailable: fn(String) -> E,
        work: impl FnOnce(&mut Connection) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: Send + 'static,
    {
        let connection = Arc::clone(&self.connection);
        tokio::task::spawn_blocking(move || {
            // A panic while the lock was held cannot have left a transaction half-committed:
            // rusqlite rolls back a transaction that is dropped unfinished.
            let mut guard = connection.lock().unwrap_or_else(PoisonError::into_inner);
            work(&mut guard)
        })
        .await
        .map_err(|error| unavailable(format!("the database task failed: {error}")))?
    }
}

/// A database handle for background work that should stop once everyone else has let go
/// of the database.
pub(crate) struct WeakSqlite(std::sync::Weak<Mutex<Connection>>);

impl WeakSqlite {
    pub(crate) fn upgrade(&self) -> Option<Sqlite> {
        self.0.upgrade().map(|connection| Sqlite { connection })
    }
}

/// WAL lets readers (including another process) proceed while one writer commits;
/// `synchronous=FULL` makes every commit durable before it returns, which an order or a
/// payment record needs; the busy timeout makes concurrent writers queue rather than fail.
fn configure(connection: &Connection) -> rusqlite::Result<()> {
    connection.busy_timeout(BUSY_TIMEOUT)?;
    let mode: String = connection.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(
            mode,
            "SQLite refused WAL mode; concurrent readers will wait for writers"
        );
    }
    connection.execute_batch("PRAGMA synchronous = FULL;")?;
    Ok(())
}

/// SQLite creates the file but not its directory; a fresh data directory should just work.
fn create_parent_directory(path: &Path) -> Result<(), String> {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => crate::private_files::create_dir(parent)
            .map_err(|error| format!("cannot create {}: {error}", parent.display())),
        _ => Ok(()),
    }
}

fn describe(path: &Path, error: &rusqlite::Error) -> String {
    format!("{}: {error}", path.display())
}
