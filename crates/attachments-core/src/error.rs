//! The one error type of the workspace.
//!
//! Adapters classify what went wrong (a [`ErrorKind`] and whether a retry can help); only the
//! core decides what to do about it (retry with backoff, ask the error handler, archive).

use std::fmt;
use std::sync::Arc;

use crate::model::AttachmentId;
use crate::policy::Operation;

/// Shorthand for `Result<T, attachments_core::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Any error an application callback (such as an update hook) may return.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What kind of failure an [`Error`] is.
///
/// ```
/// use attachments_core::{Error, ErrorKind};
/// let err = Error::not_found("object photos/a.jpg");
/// assert_eq!(err.kind(), ErrorKind::NotFound);
/// assert!(!err.is_retryable());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The attachment, file or object does not exist.
    NotFound,
    /// The thing to create exists already (a bucket, an object written without overwrite).
    AlreadyExists,
    /// The caller passed something unusable: a hostile path, a bad id, an unknown state code.
    InvalidInput,
    /// The storage refused the operation (wrong credentials, missing rights).
    PermissionDenied,
    /// The service could not be reached or answered with a temporary failure.
    Unavailable,
    /// No progress was made within the allowed time.
    TimedOut,
    /// Stored data is inconsistent: a corrupt row, a size or checksum that does not match.
    Corrupt,
    /// The storage is misconfigured (a missing bucket, a bad endpoint).
    Config,
    /// The local database failed.
    Database,
    /// The device ran out of space (`ENOSPC`, `EDQUOT`): retryable, since space can be freed.
    StorageFull,
    /// Another attachment queue holds the storage or database (another process, or a queue of
    /// this process that was not closed): running two at once could lose files.
    InUse,
    /// The application's update hook failed; its transaction was rolled back.
    Hook,
    /// The operation was cancelled by `stop_sync` or `close`.
    Cancelled,
    /// The queue was closed; no further calls are accepted.
    Closed,
    /// Anything else.
    Other,
}

impl ErrorKind {
    /// A short lowercase name, used in messages and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "not found",
            ErrorKind::AlreadyExists => "already exists",
            ErrorKind::InvalidInput => "invalid input",
            ErrorKind::PermissionDenied => "permission denied",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::TimedOut => "timed out",
            ErrorKind::Corrupt => "corrupt data",
            ErrorKind::Config => "configuration error",
            ErrorKind::Database => "database error",
            ErrorKind::StorageFull => "storage full",
            ErrorKind::InUse => "in use by another queue",
            ErrorKind::Hook => "update hook failed",
            ErrorKind::Cancelled => "cancelled",
            ErrorKind::Closed => "queue closed",
            ErrorKind::Other => "error",
        }
    }

    /// Whether errors of this kind are retryable unless an adapter says otherwise.
    fn retryable_by_default(self) -> bool {
        matches!(
            self,
            ErrorKind::Unavailable | ErrorKind::TimedOut | ErrorKind::StorageFull
        )
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error with a kind, a retryable flag, a message and an optional source.
///
/// Cheap to clone (the source is shared), so one error can be logged, stored as a row's
/// `last_error` and sent to event subscribers.
///
/// ```
/// use attachments_core::{Error, ErrorKind};
/// let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset by peer");
/// let err = Error::new(ErrorKind::Unavailable, "upload photos/a.jpg").with_source(io);
/// assert!(err.is_retryable());
/// assert_eq!(err.to_string(), "unavailable: upload photos/a.jpg: reset by peer");
/// ```
#[derive(Clone, thiserror::Error)]
pub struct Error {
    kind: ErrorKind,
    retryable: bool,
    message: String,
    operation: Option<Operation>,
    attachment: Option<AttachmentId>,
    #[source]
    source: Option<Arc<dyn std::error::Error + Send + Sync + 'static>>,
}

impl Error {
    /// A new error; retryable if the kind usually is (`Unavailable`, `TimedOut`,
    /// `StorageFull`).
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            retryable: kind.retryable_by_default(),
            message: message.into(),
            operation: None,
            attachment: None,
            source: None,
        }
    }

    /// A `NotFound` error.
    pub fn not_found(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::NotFound, message)
    }

    /// An `InvalidInput` error.
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::InvalidInput, message)
    }

    /// A `Closed` error.
    pub fn closed() -> Self {
        Error::new(ErrorKind::Closed, "the attachment queue was closed")
    }

    /// Attach the underlying cause.
    pub fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.source = Some(Arc::from(source.into()));
        self
    }

    /// Override whether a retry can help.
    pub fn with_retryable(mut self, retryable: bool) -> Self {
        self.retryable = retryable;
        self
    }

    /// Say which transfer failed (the queue adds this to every transfer error).
    pub fn with_operation(mut self, operation: Operation) -> Self {
        self.operation = Some(operation);
        self
    }

    /// Say which attachment the error concerns.
    ///
    /// ```
    /// use attachments_core::{AttachmentId, Error, Operation};
    /// let id = AttachmentId::new("photo-1").unwrap();
    /// let error = Error::not_found("no object").with_operation(Operation::Download).with_attachment(&id);
    /// assert_eq!(error.attachment(), Some(&id));
    /// assert_eq!(error.operation(), Some(Operation::Download));
    /// assert_eq!(error.to_string(), "not found (download of attachment photo-1): no object");
    /// ```
    pub fn with_attachment(mut self, id: &AttachmentId) -> Self {
        self.attachment = Some(id.clone());
        self
    }

    /// The transfer that failed, when the error came from one.
    pub fn operation(&self) -> Option<Operation> {
        self.operation
    }

    /// The attachment concerned, when known.
    pub fn attachment(&self) -> Option<&AttachmentId> {
        self.attachment.as_ref()
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// Whether trying the same operation again later may succeed.
    pub fn is_retryable(&self) -> bool {
        self.retryable
    }

    /// The message, without kind or source.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Classify an I/O error: `NotFound`, `PermissionDenied`, `InvalidInput`, `TimedOut`,
    /// a full disk or quota as retryable `StorageFull`, connection failures as retryable
    /// `Unavailable`, the rest as `Other`.
    pub fn from_io(error: std::io::Error, message: impl Into<String>) -> Self {
        use std::io::ErrorKind as Io;
        let kind = match error.kind() {
            Io::NotFound => ErrorKind::NotFound,
            Io::PermissionDenied => ErrorKind::PermissionDenied,
            Io::InvalidInput | Io::InvalidFilename => ErrorKind::InvalidInput,
            Io::InvalidData | Io::UnexpectedEof => ErrorKind::Corrupt,
            Io::TimedOut => ErrorKind::TimedOut,
            Io::StorageFull | Io::QuotaExceeded => ErrorKind::StorageFull,
            Io::ConnectionRefused
            | Io::ConnectionReset
            | Io::ConnectionAborted
            | Io::NotConnected
            | Io::BrokenPipe
            | Io::Interrupted
            | Io::WouldBlock => ErrorKind::Unavailable,
            _ => ErrorKind::Other,
        };
        Error::new(kind, message).with_source(error)
    }

    /// Turn this error into an `io::Error` (for use inside byte streams), keeping the kind.
    pub fn into_io(self) -> std::io::Error {
        use std::io::ErrorKind as Io;
        let kind = match self.kind {
            ErrorKind::NotFound => Io::NotFound,
            ErrorKind::PermissionDenied => Io::PermissionDenied,
            ErrorKind::InvalidInput => Io::InvalidInput,
            ErrorKind::TimedOut => Io::TimedOut,
            ErrorKind::Corrupt => Io::InvalidData,
            ErrorKind::Unavailable => Io::ConnectionReset,
            ErrorKind::StorageFull => Io::StorageFull,
            _ => Io::Other,
        };
        std::io::Error::new(kind, self)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.kind)?;
        match (&self.operation, &self.attachment) {
            (Some(operation), Some(id)) => write!(f, " ({operation} of attachment {id})")?,
            (None, Some(id)) => write!(f, " (attachment {id})")?,
            (Some(operation), None) => write!(f, " ({operation})")?,
            (None, None) => {}
        }
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        if let Some(source) = &self.source {
            write!(f, ": {source}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.kind)
            .field("retryable", &self.retryable)
            .field("message", &self.message)
            .field("operation", &self.operation)
            .field("attachment", &self.attachment)
            .field("source", &self.source.as_ref().map(|s| s.to_string()))
            .finish()
    }
}

/// An `io::Error` read from a byte stream may wrap one of ours (see [`Error::into_io`]):
/// unwrap it so its kind and retryability survive the trip through the stream.
impl From<std::io::Error> for Error {
    fn from(error: std::io::Error) -> Self {
        if error.get_ref().is_some_and(|inner| inner.is::<Error>()) {
            let inner = error.into_inner().expect("checked above");
            return *inner.downcast::<Error>().expect("checked above");
        }
        Error::from_io(error, "i/o error")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_round_trip_keeps_kind_and_retryability() {
        let original = Error::new(ErrorKind::PermissionDenied, "bucket").with_retryable(false);
        let back = Error::from(original.clone().into_io());
        assert_eq!(back.kind(), ErrorKind::PermissionDenied);
        assert!(!back.is_retryable());
        assert_eq!(back.to_string(), original.to_string());
    }

    #[test]
    fn io_errors_are_classified() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let err = Error::from(refused);
        assert_eq!(err.kind(), ErrorKind::Unavailable);
        assert!(err.is_retryable());
        let missing = Error::from(std::io::Error::from(std::io::ErrorKind::NotFound));
        assert_eq!(missing.kind(), ErrorKind::NotFound);
        assert!(!missing.is_retryable());
    }

    #[test]
    fn a_full_disk_or_quota_is_worth_retrying() {
        // ENOSPC and EDQUOT: the app or the user can free space, so archiving would be wrong
        for raw in [28, 122] {
            let err = Error::from(std::io::Error::from_raw_os_error(raw));
            assert_eq!(err.kind(), ErrorKind::StorageFull, "errno {raw}");
            assert!(err.is_retryable(), "errno {raw}");
        }
    }
}
