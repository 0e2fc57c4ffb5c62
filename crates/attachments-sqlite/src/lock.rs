//! Where the lock file that keeps a second queue off a table lives. The lock itself, and the
//! file's name, are shared with every store of this table (`attachments_sql::lock`), so queues
//! on different stores refuse each other too.

use std::path::PathBuf;

use attachments_core::{Error, ErrorKind, ExclusiveLock, Result};
use sqlx::sqlite::SqliteConnection;

use crate::error::db_error;

/// Where the lock file of `table` lives: `<database file>.<table>.lock`, or `None` for a
/// database with no file (in memory, or a temporary one), which no other process can open.
pub(crate) async fn lock_path(
    connection: &mut SqliteConnection,
    table: &str,
) -> Result<Option<PathBuf>> {
    let files: Vec<(String, String)> =
        sqlx::query_as("SELECT name, file FROM pragma_database_list")
            .fetch_all(&mut *connection)
            .await
            .map_err(|e| db_error(e, "reading PRAGMA database_list"))?;
    Ok(files
        .into_iter()
        .find(|(name, _)| name == "main")
        .map(|(_, file)| file)
        .and_then(|file| attachments_sql::lock_file_path(&file, table)))
}

/// Tables of databases without a file that a queue of this process holds, by pool identity.
static HELD_IN_PROCESS: std::sync::Mutex<Vec<(usize, String)>> = std::sync::Mutex::new(Vec::new());

/// Take the in-process lock of `table` on the pool `pool`: for databases without a file.
///
/// # Errors
/// `InUse` (not retryable) while another queue of this process holds it.
pub(crate) fn lock_in_process(pool: usize, table: &str) -> Result<ExclusiveLock> {
    let key = (pool, table.to_owned());
    let mut held = HELD_IN_PROCESS.lock().expect("lock registry poisoned");
    if held.contains(&key) {
        return Err(Error::new(
            ErrorKind::InUse,
            format!(
                "another attachment queue of this process is using table {table:?} of this \
                 in-memory database; close it first"
            ),
        )
        .with_retryable(false));
    }
    held.push(key.clone());
    Ok(ExclusiveLock::new(HeldInProcess(key)))
}

/// Releases an in-process lock when dropped.
struct HeldInProcess((usize, String));

impl Drop for HeldInProcess {
    fn drop(&mut self) {
        if let Ok(mut held) = HELD_IN_PROCESS.lock() {
            held.retain(|key| *key != self.0);
        }
    }
}
