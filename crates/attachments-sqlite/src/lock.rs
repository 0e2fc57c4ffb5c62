//! Where the lock file that keeps a second queue off a table lives. The lock itself, and the
//! file's name, are shared with every store of this table (`attachments_sql::lock`), so queues
//! on different stores refuse each other too.

use std::path::PathBuf;

use attachments_core::Result;
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
