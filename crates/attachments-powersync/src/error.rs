//! Classify rusqlite and PowerSync errors at the boundary.

use attachments_core::{Error, ErrorKind};

/// A `Database` error; retryable when SQLite was busy or locked (another writer held the
/// database past the writer's busy timeout).
pub(crate) fn sqlite_error(error: rusqlite::Error, context: impl Into<String>) -> Error {
    let retryable = matches!(
        error.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    );
    Error::new(ErrorKind::Database, context)
        .with_source(error)
        .with_retryable(retryable)
}

/// A `Database` error from PowerSync itself (opening a lease runs its schema set-up). Its error
/// type is opaque at 0.0.5, so nothing tells a temporary failure apart: not retryable.
pub(crate) fn powersync_error(
    error: powersync::error::PowerSyncError,
    context: impl Into<String>,
) -> Error {
    Error::new(ErrorKind::Database, context)
        .with_source(error)
        .with_retryable(false)
}

/// A blocking task that did not finish: it panicked, or the runtime is shutting down.
pub(crate) fn join_error(error: tokio::task::JoinError, context: impl Into<String>) -> Error {
    Error::new(ErrorKind::Database, context)
        .with_source(error)
        .with_retryable(false)
}
