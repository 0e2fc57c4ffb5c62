//! The engine behind every [`AttachmentQueue`](super::AttachmentQueue) handle: what it holds,
//! grouped by concern, and the few helpers every room uses. The work itself lives in the
//! rooms: `worker` (background loop), `pass` (one sync pass), `transfer` (one upload, download
//! or delete), `commands` (save, delete, retry, expire, clear), `startup` (verification after
//! a crash) and `reconcile` (the app's references).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::broadcast;

use super::claims::Claims;
use super::lifecycle::Lifecycle;
use super::reconcile::References;
use super::worker::Schedule;
use super::{AttachmentEvent, QueueConfig, WatchSource};
use crate::error::Error;
use crate::model::{AttachmentId, AttachmentState};
use crate::policy::{AttachmentErrorHandler, Operation};
use crate::storage::{LocalStorage, RemoteStorage};
use crate::store::{AttachmentStore, RowChange};

/// Everything the queue's handles and tasks share. Locks inside are std mutexes held for a
/// few instructions, never across an await.
pub(super) struct Engine<S: AttachmentStore> {
    pub(super) store: S,
    pub(super) local: Arc<dyn LocalStorage>,
    pub(super) remote: Arc<dyn RemoteStorage>,
    pub(super) config: QueueConfig,
    pub(super) error_handler: Arc<dyn AttachmentErrorHandler>,
    pub(super) watch_source: Option<WatchSource>,
    pub(super) events: broadcast::Sender<AttachmentEvent>,
    pub(super) clock: Clock,
    /// Open or closed, the background worker, the exclusive locks.
    pub(super) lifecycle: Lifecycle,
    /// Ids with work in flight (transfers, saves, evictions).
    pub(super) claimed_ids: Arc<Claims<AttachmentId>>,
    /// Local paths being written or moved (a save's or a download's staged file).
    pub(super) claimed_paths: Arc<Claims<String>>,
    /// The app's references and what the last reconcile left in place.
    pub(super) references: References,
    /// When the next pass runs and what it has to do.
    pub(super) schedule: Schedule,
}

impl<S: AttachmentStore> Engine<S> {
    pub(super) fn emit(&self, event: AttachmentEvent) {
        // no subscriber is fine
        let _ = self.events.send(event);
    }

    pub(super) fn emit_error(
        &self,
        id: Option<AttachmentId>,
        operation: Option<Operation>,
        error: Error,
    ) {
        self.emit(AttachmentEvent::Error {
            id,
            operation,
            error,
        });
    }

    /// Report a write of the queue's own (not a reconcile's): an event, and a note for the
    /// next reconcile, which judges the row against the latest references.
    pub(super) fn report_write(&self, from: Option<AttachmentState>, change: &RowChange) {
        self.references.note_written(change.id());
        self.report_change(from, change);
    }

    /// Report a write: the cache may overflow after an archive; an event when the state moved.
    pub(super) fn report_change(&self, from: Option<AttachmentState>, change: &RowChange) {
        let to = change.new_state();
        if to == Some(AttachmentState::Archived) {
            self.schedule
                .cache_may_overflow
                .store(true, Ordering::SeqCst);
        }
        if from != to {
            self.emit(AttachmentEvent::StateChanged {
                id: change.id().clone(),
                from,
                to,
            });
        }
    }

    /// Apply changes computed from rows in `before` states and report each one that applied.
    /// `own_writes`: whether the next reconcile must judge these rows again (not for the
    /// reconcile's own writes).
    pub(super) async fn apply_and_report(
        &self,
        before: &[crate::model::Attachment],
        changes: Vec<RowChange>,
        own_writes: bool,
    ) -> crate::error::Result<u64> {
        if changes.is_empty() {
            return Ok(0);
        }
        let applied = self.store.apply(changes.clone()).await?;
        // by id, so reporting stays linear when one reading archives thousands of rows
        let states_before: std::collections::HashMap<&AttachmentId, AttachmentState> =
            before.iter().map(|row| (&row.id, row.state)).collect();
        let mut count = 0;
        for (change, applied) in changes.iter().zip(applied) {
            if applied {
                count += 1;
                let from = states_before.get(change.id()).copied();
                if own_writes {
                    self.report_write(from, change);
                } else {
                    self.report_change(from, change);
                }
            }
        }
        Ok(count)
    }
}

/// Run `work` in a task of its own and wait for it. The work goes on to its end even when the
/// caller stops waiting (a dropped future, `stop_sync`): used for steps that must not stop
/// half way, such as a row written but its staged file not yet promoted.
pub(super) async fn run_to_the_end<T: Send + 'static>(
    work: impl std::future::Future<Output = crate::error::Result<T>> + Send + 'static,
) -> crate::error::Result<T> {
    match tokio::spawn(work).await {
        Ok(result) => result,
        Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
        Err(_) => Err(Error::new(
            crate::error::ErrorKind::Cancelled,
            "the runtime shut down while the queue was writing",
        )),
    }
}

/// Milliseconds since the Unix epoch (the unit of `timestamp` and `next_attempt_at`), read
/// from the wall clock once and advanced by the monotonic clock after that: a wall-clock jump
/// while the process runs does not move every backoff.
pub(super) struct Clock {
    wall_ms_at_start: i64,
    started: Instant,
}

impl Clock {
    pub(super) fn new() -> Self {
        let since_epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Clock {
            wall_ms_at_start: i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX),
            started: Instant::now(),
        }
    }

    pub(super) fn now_ms(&self) -> i64 {
        let elapsed = i64::try_from(self.started.elapsed().as_millis()).unwrap_or(i64::MAX);
        self.wall_ms_at_start.saturating_add(elapsed)
    }
}
