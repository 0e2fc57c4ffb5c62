//! Retry policy and the error handler: how the queue reacts when a transfer fails.

use std::time::Duration;

use async_trait::async_trait;

use crate::error::{Error, ErrorKind};
use crate::model::Attachment;

/// Which transfer an attachment is waiting for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// Sending the local file to the remote.
    Upload,
    /// Fetching the remote object into local storage.
    Download,
    /// Removing the remote object, the local file and the row.
    Delete,
}

impl std::fmt::Display for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Operation::Upload => "upload",
            Operation::Download => "download",
            Operation::Delete => "delete",
        })
    }
}

/// What to do with a failed transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorAction {
    /// Try again after the retry policy's backoff.
    Retry,
    /// Give up: archive the attachment with the error (until `retry(id)`).
    Archive,
}

/// Decides, per failed transfer, whether to retry or archive.
///
/// ```
/// use attachments_core::{async_trait, Attachment, AttachmentErrorHandler, Error, ErrorAction, Operation};
///
/// /// Never give up on uploads: the user's photo must reach the server.
/// struct KeepUploading;
///
/// #[async_trait]
/// impl AttachmentErrorHandler for KeepUploading {
///     async fn on_error(&self, _: &Attachment, operation: Operation, error: &Error) -> ErrorAction {
///         if operation == Operation::Upload || error.is_retryable() {
///             ErrorAction::Retry
///         } else {
///             ErrorAction::Archive
///         }
///     }
/// }
/// ```
#[async_trait]
pub trait AttachmentErrorHandler: Send + Sync + 'static {
    /// Called once per failed transfer, with the row as it was when the transfer started.
    async fn on_error(
        &self,
        attachment: &Attachment,
        operation: Operation,
        error: &Error,
    ) -> ErrorAction;
}

/// The default handler: retry what is retryable, and a download that finds no object (in a
/// synced app, usually one its author's device has not uploaded yet); archive the rest.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use attachments_core::*;
/// let row = Attachment::new(AttachmentId::new("a").unwrap(), "a.jpg", AttachmentState::QueuedDownload, 0);
/// let not_uploaded_yet = Error::not_found("no such object");
/// let action = DefaultErrorHandler.on_error(&row, Operation::Download, &not_uploaded_yet).await;
/// assert_eq!(action, ErrorAction::Retry);
/// # });
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultErrorHandler;

#[async_trait]
impl AttachmentErrorHandler for DefaultErrorHandler {
    async fn on_error(&self, _: &Attachment, operation: Operation, error: &Error) -> ErrorAction {
        let not_uploaded_yet =
            operation == Operation::Download && error.kind() == ErrorKind::NotFound;
        if error.is_retryable() || not_uploaded_yet {
            ErrorAction::Retry
        } else {
            ErrorAction::Archive
        }
    }
}

/// A closure is a handler too:
///
/// ```
/// use attachments_core::{AttachmentErrorHandler, ErrorAction, Operation};
/// fn takes(_: impl AttachmentErrorHandler) {}
/// // never give up on uploads; otherwise retry what is retryable
/// takes(|_: &attachments_core::Attachment, operation: Operation, error: &attachments_core::Error| {
///     if operation == Operation::Upload || error.is_retryable() {
///         ErrorAction::Retry
///     } else {
///         ErrorAction::Archive
///     }
/// });
/// ```
#[async_trait]
impl<F> AttachmentErrorHandler for F
where
    F: Fn(&Attachment, Operation, &Error) -> ErrorAction + Send + Sync + 'static,
{
    async fn on_error(
        &self,
        attachment: &Attachment,
        operation: Operation,
        error: &Error,
    ) -> ErrorAction {
        self(attachment, operation, error)
    }
}

/// Exponential backoff with jitter, and an optional cap on attempts.
///
/// The default retries without limit, from 1 s up to 5 min between attempts: a phone that is
/// offline for a day must not give up on its uploads. Set `max_attempts` to archive after a
/// number of failures instead.
///
/// ```
/// use std::time::Duration;
/// use attachments_core::RetryPolicy;
/// let policy = RetryPolicy::default();
/// // the first retry waits between half and all of `initial_backoff`
/// assert_eq!(policy.backoff(1, 0.0), Duration::from_millis(500));
/// assert_eq!(policy.backoff(1, 1.0), Duration::from_secs(1));
/// // and the wait never exceeds `max_backoff`
/// assert_eq!(policy.backoff(40, 1.0), Duration::from_secs(300));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Failures after which the attachment is archived; `None` retries forever.
    pub max_attempts: Option<u32>,
    /// The wait before the first retry.
    pub initial_backoff: Duration,
    /// The longest wait.
    pub max_backoff: Duration,
    /// Growth factor of the wait per failure.
    pub multiplier: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: None,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(300),
            multiplier: 2.0,
        }
    }
}

impl RetryPolicy {
    /// The wait after the `attempt`-th consecutive failure (1-based), with "equal jitter":
    /// half of the exponential wait is fixed, the other half scaled by `jitter` in `[0, 1]`.
    /// The fixed half keeps retries from bunching up at zero; the random half spreads many
    /// failing attachments apart.
    pub fn backoff(&self, attempt: u32, jitter: f64) -> Duration {
        let exponent = attempt.saturating_sub(1).min(64) as i32;
        let full = self.initial_backoff.as_secs_f64() * self.multiplier.max(1.0).powi(exponent);
        let full = full.min(self.max_backoff.as_secs_f64());
        let jitter = jitter.clamp(0.0, 1.0);
        Duration::from_secs_f64(full / 2.0 + full / 2.0 * jitter)
    }

    /// Whether `attempts` failures exhaust the policy.
    pub fn is_exhausted(&self, attempts: u32) -> bool {
        self.max_attempts.is_some_and(|max| attempts >= max)
    }
}

/// A uniformly random number in `[0, 1)`, for jitter. Drawn from the UUID generator's random
/// source so the core needs no extra dependency.
pub(crate) fn random_unit() -> f64 {
    let (high, _) = uuid::Uuid::new_v4().as_u64_pair();
    let bits = high >> 11; // the 53 bits an f64 mantissa holds
    bits as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let policy = RetryPolicy::default();
        let waits: Vec<u64> = (1..=10).map(|n| policy.backoff(n, 1.0).as_secs()).collect();
        assert_eq!(waits, vec![1, 2, 4, 8, 16, 32, 64, 128, 256, 300]);
        assert_eq!(policy.backoff(u32::MAX, 1.0), policy.max_backoff);
    }

    #[test]
    fn jitter_stays_within_bounds() {
        let policy = RetryPolicy::default();
        for _ in 0..1000 {
            let wait = policy.backoff(3, random_unit());
            assert!(wait >= Duration::from_secs(2) && wait <= Duration::from_secs(4));
        }
    }

    #[test]
    fn exhaustion() {
        let unlimited = RetryPolicy::default();
        assert!(!unlimited.is_exhausted(u32::MAX));
        let three = RetryPolicy {
            max_attempts: Some(3),
            ..RetryPolicy::default()
        };
        assert!(!three.is_exhausted(2));
        assert!(three.is_exhausted(3));
    }
}
