//! Classify sqlx errors at the boundary.

use attachments_core::{Error, ErrorKind};

/// A `Database` error; retryable when SQLite was busy or locked, or the pool had no free
/// connection in time.
pub(crate) fn db_error(error: sqlx::Error, context: impl Into<String>) -> Error {
    let retryable = match &error {
        sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) => true,
        sqlx::Error::Database(db) => {
            // SQLITE_BUSY = 5, SQLITE_LOCKED = 6 (and their extended codes, low byte)
            db.code()
                .and_then(|code| code.parse::<i64>().ok())
                .is_some_and(|code| matches!(code & 0xff, 5 | 6))
        }
        _ => false,
    };
    Error::new(ErrorKind::Database, context)
        .with_source(error)
        .with_retryable(retryable)
}
