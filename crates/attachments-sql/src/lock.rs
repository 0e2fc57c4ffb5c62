//! The lock file that keeps a second queue off a table, whichever store each queue uses.
//!
//! SQLite's own locks last one transaction; a queue holds its table for its whole life, so a
//! store locks a file beside the database instead. `flock`-style locks (`File::try_lock`) are
//! released by the OS when the holder dies, so a crashed process never leaves the table
//! locked. Both stores use the same path, so a sqlx queue and a PowerSync queue on one table
//! refuse each other too.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use attachments_core::{Error, ErrorKind, ExclusiveLock, Result};

/// Where the lock file of `table` lives: `<database file>.<table>.lock`, or `None` for a
/// database with no file (in memory, or a temporary one: `PRAGMA database_list` gives an
/// empty name), which no other process can open.
///
/// ```
/// use std::path::PathBuf;
/// let path = attachments_sql::lock_file_path("/data/app.db", "attachments_queue");
/// assert_eq!(path, Some(PathBuf::from("/data/app.db.attachments_queue.lock")));
/// assert_eq!(attachments_sql::lock_file_path("", "attachments_queue"), None);
/// ```
pub fn lock_file_path(database_file: &str, table: &str) -> Option<PathBuf> {
    (!database_file.is_empty()).then(|| PathBuf::from(format!("{database_file}.{table}.lock")))
}

/// Take the lock at `path` without waiting.
///
/// # Errors
/// `InUse` (not retryable) while another holder has it; the I/O error's kind when the file
/// cannot be opened.
///
/// ```
/// let dir = std::env::temp_dir().join(format!("lock-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let path = dir.join("app.db.attachments_queue.lock");
/// let held = attachments_sql::lock(&path).unwrap();
/// let refused = attachments_sql::lock(&path).unwrap_err();
/// assert_eq!(refused.kind(), attachments_core::ErrorKind::InUse);
/// drop(held);
/// assert!(attachments_sql::lock(&path).is_ok());
/// ```
pub fn lock(path: &Path) -> Result<ExclusiveLock> {
    let file: File = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| Error::from_io(e, format!("opening lock file {}", path.display())))?;
    match file.try_lock() {
        Ok(()) => Ok(ExclusiveLock::new(file)),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::new(
            ErrorKind::InUse,
            format!(
                "another attachment queue is using this database table (lock file {}); \
                 close it first, or give this queue its own table",
                path.display()
            ),
        )
        .with_retryable(false)),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(Error::from_io(e, format!("locking {}", path.display())))
        }
    }
}
