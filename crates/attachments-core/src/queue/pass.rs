//! One sync pass: verify local files once, reconcile the references, run the due transfers on
//! a bounded pool, write their outcomes in groups, expire the cache.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::claims::Claim;
use super::engine::{Engine, run_to_the_end};
use super::transfer::{StagedFile, TransferEnd};
use super::{AttachmentEvent, PassSummary};
use crate::error::{Error, Result};
use crate::model::{Attachment, AttachmentId, AttachmentState};
use crate::policy::{Operation, random_unit};
use crate::state_machine::{TransferOutcome, apply_outcome, pending_operation};
use crate::store::{AttachmentStore, RowChange};

/// Due rows read per query. A pass reads more when it has started all of them, so a backlog
/// of fresh rows is worked through in one pass while memory stays bounded.
const DUE_ROWS_PER_READ: usize = 1_000;

/// The claims a transfer holds until its outcome is written: its id, and the local path it
/// stages (downloads and deletes).
struct TransferClaims {
    _id: Claim<AttachmentId>,
    _path: Option<Claim<String>>,
}

impl<S: AttachmentStore> Engine<S> {
    pub(super) async fn run_pass(
        self: &Arc<Self>,
        cancel: &CancellationToken,
    ) -> Result<PassSummary> {
        let started = Instant::now();
        self.ensure_verified(cancel).await?;
        let mut summary = PassSummary::default();
        let work = async {
            if self.references.reconcile_due() {
                self.reconcile().await?;
            }
            self.run_due_transfers(cancel, &mut summary).await?;
            // judge what the transfers wrote against the latest references now, not only at
            // the next pass: an upload of an attachment nobody references ends archived
            if self.references.reconcile_due() {
                self.reconcile().await?;
            }
            // the cache can only overflow when something was archived since the last expiry
            if self
                .schedule
                .cache_may_overflow
                .swap(false, Ordering::SeqCst)
            {
                match self.expire_cache(cancel).await {
                    Ok(evicted) => summary.evicted = evicted,
                    Err(error) => {
                        self.schedule
                            .cache_may_overflow
                            .store(true, Ordering::SeqCst);
                        return Err(error);
                    }
                }
            }
            Ok::<(), Error>(())
        };
        tokio::select! {
            result = work => result?,
            _ = cancel.cancelled() => summary.cancelled = true,
        }
        summary.duration = started.elapsed();
        debug!(?summary, "sync pass done");
        self.emit(AttachmentEvent::PassCompleted(summary.clone()));
        Ok(summary)
    }

    /// Claim a due row for a transfer, unless other work holds its id or path.
    fn claim_for_transfer(
        &self,
        row: &Attachment,
        cancel: &CancellationToken,
    ) -> Option<(TransferClaims, CancellationToken)> {
        if !self.lifecycle.transfers_allowed() {
            return None; // `clear_queue` is running
        }
        let id = self.claimed_ids.try_claim(row.id.clone(), cancel)?;
        let path = match pending_operation(row.state) {
            Some(Operation::Download) => Some(row.filename.clone()),
            Some(Operation::Delete) => Some(row.local_uri.clone().unwrap_or(row.filename.clone())),
            _ => None,
        };
        let path = match path {
            Some(path) => Some(self.claimed_paths.try_claim(path, cancel)?),
            None => None,
        };
        let token = id.token().clone();
        Some((
            TransferClaims {
                _id: id,
                _path: path,
            },
            token,
        ))
    }

    async fn run_due_transfers(
        self: &Arc<Self>,
        cancel: &CancellationToken,
        summary: &mut PassSummary,
    ) -> Result<()> {
        let downloads = self.references.downloads_enabled();
        let now = self.clock.now_ms();
        let mut waiting = self
            .store
            .list_due(now, downloads, DUE_ROWS_PER_READ)
            .await?
            .into_iter();
        let mut more_due = waiting.len() == DUE_ROWS_PER_READ;
        // At most `max_concurrency` transfers at once. Outcomes are written in groups: while
        // one group is being written, the transfers that end meanwhile wait for the next write,
        // so a busy pass writes many outcomes per round trip and an idle one writes each at
        // once. A transfer's claims are held until its outcome is written.
        let mut running = FuturesUnordered::new();
        let mut finished: Vec<(TransferEnd, TransferClaims)> = Vec::new();
        let mut writing = None;
        loop {
            while running.len() < self.config.max_concurrency {
                let Some(row) = waiting.next() else {
                    if more_due && !cancel.is_cancelled() {
                        let rows = self
                            .store
                            .list_due(self.clock.now_ms(), downloads, DUE_ROWS_PER_READ)
                            .await?;
                        more_due = rows.len() == DUE_ROWS_PER_READ;
                        // rows in flight are still due until their outcome is written: a read
                        // that finds nothing else ends the reading, never spins
                        let fresh: Vec<Attachment> = rows
                            .into_iter()
                            .filter(|row| !self.claimed_ids.is_claimed(&row.id))
                            .collect();
                        if !fresh.is_empty() {
                            waiting = fresh.into_iter();
                            continue;
                        }
                        more_due = false;
                    }
                    break;
                };
                let Some((claims, token)) = self.claim_for_transfer(&row, cancel) else {
                    continue; // in flight in another pass, or being saved or evicted
                };
                // a task each, so transfers use every core of the runtime
                let engine = Arc::clone(self);
                let task = TransferTask(tokio::spawn(
                    async move { engine.transfer(row, &token).await },
                ));
                running.push(async move { (task.join().await, claims) });
            }
            if writing.is_none() && !finished.is_empty() {
                writing = Some(Box::pin(
                    self.record_outcomes_to_the_end(std::mem::take(&mut finished)),
                ));
            }
            if running.is_empty() && writing.is_none() {
                // When to wake for the rows waiting out a backoff, read once every outcome of
                // this pass is written. A time already past (a row due but in flight elsewhere)
                // wakes the worker after `sync_throttle`.
                let next_due = self.store.next_attempt_at(downloads).await?;
                self.schedule
                    .next_due_ms
                    .store(next_due.unwrap_or(i64::MAX), Ordering::SeqCst);
                return Ok(());
            }
            tokio::select! {
                Some((ended, claims)) = running.next(), if !running.is_empty() => match ended {
                    Some(end) => finished.push((end, claims)),
                    None => summary.cancelled = true,
                },
                written = async { writing.as_mut().expect("guarded").await }, if writing.is_some() => {
                    writing = None;
                    for (outcome, change, applied) in written? {
                        summary.count(&outcome, &change, applied);
                    }
                }
            }
        }
    }

    /// [`record_outcomes`](Self::record_outcomes) in a task of its own, which runs to its end
    /// even when the pass is cancelled (`stop_sync`): an outcome written without its staged
    /// file promoted would leave a `Synced` row without its file.
    async fn record_outcomes_to_the_end(
        self: &Arc<Self>,
        batch: Vec<(TransferEnd, TransferClaims)>,
    ) -> Result<Vec<(TransferOutcome, RowChange, bool)>> {
        let engine = Arc::clone(self);
        run_to_the_end(async move { engine.record_outcomes(batch).await }).await
    }

    /// Write the outcomes of finished transfers in one store call, then finish each: events,
    /// the staged file promoted or discarded, a new pass for outcomes the row outran.
    async fn record_outcomes(
        &self,
        batch: Vec<(TransferEnd, TransferClaims)>,
    ) -> Result<Vec<(TransferOutcome, RowChange, bool)>> {
        let now = self.clock.now_ms();
        let changes: Vec<RowChange> = batch
            .iter()
            .map(|(end, _)| {
                apply_outcome(
                    &end.row,
                    end.outcome.clone(),
                    &self.config.retry,
                    random_unit(),
                    now,
                )
            })
            .collect();
        let applied = self.store.apply(changes.clone()).await?;
        let mut written = Vec::with_capacity(batch.len());
        for (((end, claims), change), applied) in batch.into_iter().zip(changes).zip(applied) {
            // files first, events after: whoever hears `Synced` can read the file
            if let Some(staged) = &end.staged
                && let Err(error) = self.finish_staged(staged, applied).await
            {
                match (staged, applied) {
                    (StagedFile::Downloaded(path), true) if self.moved_into_place(path).await => {
                        // the file moved, then the directory sync failed: it is the queue's
                        // own, complete file; if a power cut loses it, start-up sees a
                        // `Synced` row without its file and downloads it again
                        warn!(path, %error, "a downloaded file is in place, but its directory could not be synced");
                    }
                    (StagedFile::Downloaded(_), true) => {
                        // the row says Synced but its file could not be put in place
                        self.undo_download(&end.row.id, error).await;
                        written.push((end.outcome, change, false));
                        continue;
                    }
                    // the staged file stays; start-up puts it where its row says
                    _ => warn!(?staged, %error, "could not finish a staged file"),
                }
            }
            if applied {
                self.report_write(Some(end.row.state), &change);
                if let RowChange::Update { row: retried, .. } = &change
                    && let Some(due) = retried.next_attempt_at
                {
                    self.schedule.due_at(due);
                }
            } else {
                // The row changed during the transfer (a delete, `clear_queue`): its new state
                // wins, and a new pass acts on it.
                info!(id = %end.row.id, operation = %end.operation, "outcome discarded: the attachment changed during the transfer");
                self.schedule.trigger();
            }
            drop(claims);
            written.push((end.outcome, change, applied));
        }
        Ok(written)
    }

    /// A download's file is promoted once its row says `Synced`, and removed if the row moved
    /// on; a deleted row's file is removed once the row is gone, and put back if it stayed.
    async fn finish_staged(&self, staged: &StagedFile, applied: bool) -> Result<()> {
        match (staged, applied) {
            (StagedFile::Downloaded(path), true) | (StagedFile::Removed(path), false) => {
                self.local.promote_staged(path).await
            }
            (StagedFile::Downloaded(path), false) | (StagedFile::Removed(path), true) => {
                self.local.discard_staged(path).await
            }
        }
    }

    /// Whether a promotion that reported an error moved the staged file to `path` anyway (the
    /// move happened, the directory sync after it failed): the staged file is gone and a file
    /// is at the path. Anything unsure answers no.
    async fn moved_into_place(&self, path: &str) -> bool {
        let still_staged = match self.local.list_staged().await {
            Ok(staged) => staged.iter().any(|staged| staged == path),
            Err(_) => true,
        };
        !still_staged && self.local.exists(path).await.unwrap_or(false)
    }

    /// A download whose file could not be put at its path (something the queue did not write
    /// is in the way, the disk refused): the row goes back from `Synced` to a failed download,
    /// with the error, as the error handler decides.
    async fn undo_download(&self, id: &AttachmentId, error: Error) {
        let error = error
            .with_operation(Operation::Download)
            .with_attachment(id);
        warn!(%error, "a downloaded file could not be put in place");
        self.emit_error(Some(id.clone()), Some(Operation::Download), error.clone());
        let row = match self.store.get(id).await {
            Ok(Some(row)) if row.state == AttachmentState::Synced => row,
            _ => return,
        };
        if let Err(cleanup) = self.local.discard_staged(&row.filename).await {
            warn!(%cleanup, "could not remove a staged download");
        }
        let mut queued = row.clone();
        queued.state = AttachmentState::QueuedDownload;
        queued.local_uri = None;
        let action = self
            .error_handler
            .on_error(&queued, Operation::Download, &error)
            .await;
        let change = apply_outcome(
            &queued,
            TransferOutcome::Failed { error, action },
            &self.config.retry,
            random_unit(),
            self.clock.now_ms(),
        );
        match self.store.apply(vec![change.clone()]).await {
            Ok(applied) if applied[0] => self.report_write(Some(row.state), &change),
            Ok(_) => {}
            Err(error) => warn!(%error, "could not record a failed download"),
        }
    }
}

impl PassSummary {
    fn count(&mut self, outcome: &TransferOutcome, change: &RowChange, applied: bool) {
        let counter = match outcome {
            _ if !applied => &mut self.discarded,
            TransferOutcome::Failed { .. }
                if change.new_state() == Some(AttachmentState::Archived) =>
            {
                &mut self.archived
            }
            TransferOutcome::Failed { .. } => &mut self.retrying,
            TransferOutcome::Uploaded => &mut self.uploaded,
            TransferOutcome::Downloaded { .. } => &mut self.downloaded,
            TransferOutcome::Deleted => &mut self.deleted,
        };
        *counter += 1;
    }
}

/// A spawned transfer, aborted if the pass that waits for it is dropped (cancelled): its
/// claims are released then, so the transfer must not go on.
struct TransferTask(tokio::task::JoinHandle<Option<TransferEnd>>);

impl TransferTask {
    /// The transfer's end; `None` when it was cancelled (also by a runtime shutting down).
    async fn join(mut self) -> Option<TransferEnd> {
        match (&mut self.0).await {
            Ok(end) => end,
            Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
            Err(_) => None,
        }
    }
}

impl Drop for TransferTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}
