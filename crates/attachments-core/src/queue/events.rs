//! What the queue tells its subscribers.

use std::time::Duration;

use crate::error::Error;
use crate::model::{AttachmentId, AttachmentState};
use crate::policy::Operation;

/// One thing that happened in the queue; see [`AttachmentQueue::subscribe`](crate::AttachmentQueue::subscribe).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum AttachmentEvent {
    /// A row changed state (`None`: no row before, or the row is gone).
    StateChanged {
        /// The attachment.
        id: AttachmentId,
        /// The state before.
        from: Option<AttachmentState>,
        /// The state after.
        to: Option<AttachmentState>,
    },
    /// Bytes moved during a transfer (reported at least every 256 KiB, and at the end).
    Progress {
        /// The attachment.
        id: AttachmentId,
        /// Upload or download.
        operation: Operation,
        /// Bytes moved so far.
        bytes: u64,
        /// Total bytes, when known.
        total: Option<u64>,
    },
    /// A sync pass ended.
    PassCompleted(PassSummary),
    /// Something failed: a transfer (retried or archived), the watcher, a pass.
    Error {
        /// The attachment concerned, if one.
        id: Option<AttachmentId>,
        /// The transfer concerned, if one.
        operation: Option<Operation>,
        /// What went wrong.
        error: Error,
    },
}

/// What one sync pass did.
///
/// ```
/// let summary = attachments_core::PassSummary::default();
/// assert_eq!(summary.transferred(), 0);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PassSummary {
    /// Uploads that completed.
    pub uploaded: u64,
    /// Downloads that completed.
    pub downloaded: u64,
    /// Deletes that completed.
    pub deleted: u64,
    /// Failed transfers that will be retried after their backoff.
    pub retrying: u64,
    /// Failed transfers that were archived.
    pub archived: u64,
    /// Outcomes discarded because the row changed during the transfer.
    pub discarded: u64,
    /// Archived rows evicted from the cache.
    pub evicted: u64,
    /// Whether `stop_sync` or `close` cut the pass short.
    pub cancelled: bool,
    /// How long the pass took.
    pub duration: Duration,
}

impl PassSummary {
    /// Completed transfers of any kind.
    pub fn transferred(&self) -> u64 {
        self.uploaded + self.downloaded + self.deleted
    }
}
