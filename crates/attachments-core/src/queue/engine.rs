//! How the queue works: the background worker, a sync pass, one transfer, saves and deletes,
//! start-up verification and cache expiry. Every decision is taken by the pure functions of
//! `state_machine`; this module does the I/O around them and applies what they return.

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, info, info_span, warn};

use super::{AttachmentEvent, BoundHook, PassSummary, SaveFile, Shared};
use crate::error::{Error, ErrorKind, Result};
use crate::meter::Meter;
use crate::model::{Attachment, AttachmentId, AttachmentState, default_filename};
use crate::policy::{Operation, random_unit};
use crate::state_machine::{
    SavedFile, TransferOutcome, apply_outcome, pending_operation, request_delete, retry_failed,
    saved_file_row, select_evictions, verify_on_start,
};
use crate::store::{AttachmentStore, RowChange};

/// Progress events are sent at least this many bytes apart, so a fast transfer of a big file
/// does not flood subscribers.
const PROGRESS_STEP: u64 = 256 * 1024;

/// Milliseconds since the Unix epoch: the unit of `timestamp` and `next_attempt_at`.
pub(crate) fn now_ms() -> i64 {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX)
}

/// Removes an entry from one of the in-memory sets when dropped, however the future holding it
/// ends (success, error, cancellation).
struct SetEntry<'a, T: std::hash::Hash + Eq> {
    set: &'a std::sync::Mutex<HashSet<T>>,
    value: T,
}

impl<'a, T: std::hash::Hash + Eq + Clone> SetEntry<'a, T> {
    /// Insert `value`; `None` if it was already there.
    fn claim(set: &'a std::sync::Mutex<HashSet<T>>, value: T) -> Option<Self> {
        let inserted = set.lock().expect("set lock poisoned").insert(value.clone());
        inserted.then_some(SetEntry { set, value })
    }
}

impl<T: std::hash::Hash + Eq> Drop for SetEntry<'_, T> {
    fn drop(&mut self) {
        if let Ok(mut set) = self.set.lock() {
            set.remove(&self.value);
        }
    }
}

impl<S: AttachmentStore> Shared<S> {
    fn emit(&self, event: AttachmentEvent) {
        // no subscriber is fine
        let _ = self.events.send(event);
    }

    /// Report a write of the queue's own (not a reconcile's): an event, and a note for the
    /// next reconcile.
    fn emit_change(&self, from: Option<AttachmentState>, change: &RowChange) {
        self.note_written(change.id());
        self.report_change(from, change);
    }

    /// Report a write: the cache may overflow after an archive; an event when the state moved.
    fn report_change(&self, from: Option<AttachmentState>, change: &RowChange) {
        let to = change.new_state();
        if to == Some(AttachmentState::Archived) {
            self.cache_may_overflow.store(true, Ordering::SeqCst);
        }
        if from != to {
            self.emit(AttachmentEvent::StateChanged {
                id: change.id().clone(),
                from,
                to,
            });
        }
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

    // ---- the background worker -------------------------------------------------------------

    pub(super) async fn run_worker(self: Arc<Self>, cancel: CancellationToken) {
        let span = info_span!("attachment_sync");
        async move {
            info!("sync started");
            if let Some(source) = self.watch_source.clone() {
                let watcher = Arc::clone(&self);
                let watch_cancel = cancel.clone();
                tokio::spawn(
                    async move { watcher.run_watcher(source(), watch_cancel).await }
                        .in_current_span(),
                );
            }
            let mut last_pass: Option<Instant> = None;
            let mut next_due: Option<Instant> = None;
            loop {
                if let Some(last) = last_pass {
                    let wake = match next_due {
                        Some(due) => due.min(last + self.config.sync_interval),
                        None => last + self.config.sync_interval,
                    };
                    tokio::select! {
                        _ = cancel.cancelled() => break,
                        _ = self.trigger.notified() => {}
                        _ = tokio::time::sleep_until(wake) => {}
                    }
                    let earliest = last + self.config.sync_throttle;
                    tokio::select! {
                        _ = cancel.cancelled() => break,
                        _ = tokio::time::sleep_until(earliest) => {}
                    }
                }
                last_pass = Some(Instant::now());
                match self.run_pass(&cancel).await {
                    Ok(_) => {}
                    Err(error) => {
                        warn!(%error, "sync pass failed");
                        self.emit_error(None, None, error);
                    }
                }
                if cancel.is_cancelled() {
                    break;
                }
                next_due = self.next_due_instant();
            }
            info!("sync stopped");
        }
        .instrument(span)
        .await
    }

    async fn run_watcher(
        self: Arc<Self>,
        mut stream: futures_util::stream::BoxStream<
            'static,
            Result<crate::model::ReferencedAttachments>,
        >,
        cancel: CancellationToken,
    ) {
        loop {
            let next = tokio::select! {
                _ = cancel.cancelled() => return,
                next = stream.next() => next,
            };
            match next {
                Some(Ok(reading)) => {
                    debug!(
                        referenced = reading.items.len(),
                        "watched attachments changed"
                    );
                    self.set_latest_items(reading.items);
                    self.trigger.notify_one();
                }
                Some(Err(error)) => {
                    warn!(%error, "watched attachments query failed");
                    self.emit_error(None, None, error);
                }
                None => {
                    debug!("watched attachments stream ended");
                    return;
                }
            }
        }
    }

    /// Record a new set of references, to be reconciled at the next pass.
    pub(super) fn set_latest_items(&self, items: Vec<crate::model::WatchedAttachmentItem>) {
        *self.latest_items.lock().expect("items lock poisoned") = Some(Arc::new(items));
        self.reconcile_pending.store(true, Ordering::SeqCst);
    }

    /// When the earliest backed-off row becomes due, so the worker wakes for it. Rows queued
    /// after the last pass listed the table come with a trigger of their own.
    fn next_due_instant(&self) -> Option<Instant> {
        let earliest = self.next_due_ms.load(Ordering::SeqCst);
        if earliest == i64::MAX {
            return None;
        }
        let wait = u64::try_from(earliest.saturating_sub(now_ms())).unwrap_or(0);
        Some(Instant::now() + Duration::from_millis(wait))
    }

    // ---- one pass ---------------------------------------------------------------------------

    pub(super) async fn run_pass(
        self: &Arc<Self>,
        cancel: &CancellationToken,
    ) -> Result<PassSummary> {
        let started = Instant::now();
        if !self.verified.load(Ordering::SeqCst) {
            // Two passes may both verify at start; the work is idempotent.
            self.verify_local_files().await?;
            self.verified.store(true, Ordering::SeqCst);
        }
        let mut summary = PassSummary::default();
        let work = async {
            if self.reconcile_pending.swap(false, Ordering::SeqCst)
                && let Err(error) = self.reconcile().await
            {
                self.reconcile_pending.store(true, Ordering::SeqCst);
                return Err(error);
            }
            self.run_due_transfers(cancel, &mut summary).await?;
            // the cache can only overflow when something was archived since the last expiry
            if self.cache_may_overflow.swap(false, Ordering::SeqCst) {
                match self.expire_cache().await {
                    Ok(evicted) => summary.evicted = evicted,
                    Err(error) => {
                        self.cache_may_overflow.store(true, Ordering::SeqCst);
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

    /// Apply changes computed from `before` and emit a state event for each one that applied.
    /// `note_writes`: whether the next reconcile must look at these rows again (not for the
    /// reconcile's own writes).
    pub(super) async fn apply_and_report(
        &self,
        before: &[Attachment],
        changes: Vec<RowChange>,
        note_writes: bool,
    ) -> Result<u64> {
        if changes.is_empty() {
            return Ok(0);
        }
        let applied = self.store.apply(changes.clone()).await?;
        // by id, so reporting stays linear when one emission archives thousands of rows
        let states_before: std::collections::HashMap<&AttachmentId, AttachmentState> =
            before.iter().map(|row| (&row.id, row.state)).collect();
        let mut count = 0;
        for (change, applied) in changes.iter().zip(applied) {
            if applied {
                count += 1;
                let from = states_before.get(change.id()).copied();
                if note_writes {
                    self.emit_change(from, change);
                } else {
                    self.report_change(from, change);
                }
            }
        }
        Ok(count)
    }

    async fn run_due_transfers(
        self: &Arc<Self>,
        cancel: &CancellationToken,
        summary: &mut PassSummary,
    ) -> Result<()> {
        let rows = self.store.list(Some(&AttachmentState::QUEUED)).await?;
        let now = now_ms();
        let downloads = self.download_attachments.load(Ordering::SeqCst);
        // queued downloads wait while downloads are off
        let (due, backed_off): (Vec<Attachment>, Vec<Attachment>) = rows
            .into_iter()
            .filter(|row| downloads || row.state != AttachmentState::QueuedDownload)
            .partition(|row| row.next_attempt_at.is_none_or(|at| at <= now));
        let next_due = backed_off
            .iter()
            .filter_map(|row| row.next_attempt_at)
            .min();
        self.next_due_ms
            .store(next_due.unwrap_or(i64::MAX), Ordering::SeqCst);
        let due: Vec<(Attachment, SetEntry<'_, AttachmentId>)> = due
            .into_iter()
            .filter_map(|row| {
                let claim = SetEntry::claim(&self.transferring, row.id.clone())?;
                Some((row, claim))
            })
            .collect();
        // At most `max_concurrency` transfers at once. Outcomes are written in groups: while
        // one group is being written, the transfers that end meanwhile wait for the next write,
        // so a busy pass writes many outcomes per round trip and an idle one writes each at
        // once. A transfer's claim is held until its outcome is written.
        let mut waiting = due.into_iter();
        let mut running = FuturesUnordered::new();
        let mut finished: Vec<(Finished, SetEntry<'_, AttachmentId>)> = Vec::new();
        let mut writing = None;
        loop {
            while running.len() < self.config.max_concurrency {
                let Some((row, claim)) = waiting.next() else {
                    break;
                };
                // a task each, so transfers use every core of the runtime
                let engine = Arc::clone(self);
                let token = cancel.clone();
                let task = AbortOnDrop(tokio::spawn(
                    async move { engine.transfer(row, &token).await },
                ));
                running.push(async move { (task.finish().await, claim) });
            }
            if writing.is_none() && !finished.is_empty() {
                writing = Some(Box::pin(
                    self.record_outcomes(std::mem::take(&mut finished)),
                ));
            }
            if running.is_empty() && writing.is_none() {
                return Ok(());
            }
            tokio::select! {
                Some((ended, claim)) = running.next(), if !running.is_empty() => match ended {
                    Some(done) => finished.push((done, claim)),
                    None => summary.cancelled = true,
                },
                reports = async { writing.as_mut().expect("guarded").await }, if writing.is_some() => {
                    writing = None;
                    for report in reports? {
                        summary.count(report);
                    }
                }
            }
        }
    }

    /// Write the outcomes of finished transfers in one store call, then report each: events,
    /// the local file of a completed delete, a new pass for outcomes the row outran.
    async fn record_outcomes(
        &self,
        batch: Vec<(Finished, SetEntry<'_, AttachmentId>)>,
    ) -> Result<Vec<TransferReport>> {
        let changes = batch.iter().map(|(done, _)| done.change.clone()).collect();
        let applied = self.store.apply(changes).await?;
        let mut reports = Vec::with_capacity(batch.len());
        for ((done, claim), applied) in batch.into_iter().zip(applied) {
            let Finished {
                row,
                operation,
                change,
                report,
            } = done;
            if !applied {
                // The row changed during the transfer (a delete, a re-save): its new state
                // wins, and a new pass acts on it.
                info!(id = %row.id, %operation, "outcome discarded: the attachment changed during the transfer");
                self.trigger.notify_one();
                reports.push(TransferReport::Discarded);
                continue;
            }
            self.emit_change(Some(row.state), &change);
            if let RowChange::Update { row: retried, .. } = &change
                && let Some(due) = retried.next_attempt_at
            {
                self.next_due_ms.fetch_min(due, Ordering::SeqCst);
            }
            if operation == Operation::Delete {
                // a download cut short by the delete may have left its file at `filename`
                let path = row.local_uri.as_deref().unwrap_or(&row.filename);
                self.remove_local_file(Some(path)).await;
            }
            drop(claim);
            reports.push(report);
        }
        Ok(reports)
    }

    // ---- one transfer -----------------------------------------------------------------------

    /// Run one transfer and compute the change its outcome makes; `None` when cancelled (the
    /// row stays as it was).
    async fn transfer(&self, row: Attachment, cancel: &CancellationToken) -> Option<Finished> {
        let operation = pending_operation(row.state).expect("only queued rows are transferred");
        let span = info_span!("transfer", id = %row.id, %operation);
        async move {
            // only a download records a checksum of what it moved
            let meter = match operation {
                Operation::Download => Meter::new(),
                Operation::Upload | Operation::Delete => Meter::counting(),
            };
            let work = async {
                match operation {
                    Operation::Upload => self.upload(&row, &meter).await,
                    Operation::Download => self.download(&row, &meter).await,
                    Operation::Delete => self
                        .remote
                        .delete(&row)
                        .await
                        .map(|()| TransferOutcome::Deleted),
                }
            };
            let total = match operation {
                Operation::Upload => row.size,
                _ => None,
            };
            let result = tokio::select! {
                result = self.watch_progress(work, &meter, &row.id, operation, total) => result,
                // a cancelled transfer is not a failure: its row stays as it was
                _ = cancel.cancelled() => return None,
            };
            let outcome = match result {
                Ok(outcome) => outcome,
                Err(error) => {
                    let action = self.error_handler.on_error(&row, operation, &error).await;
                    warn!(%error, ?action, attempts = row.attempts + 1, "transfer failed");
                    self.emit_error(Some(row.id.clone()), Some(operation), error.clone());
                    TransferOutcome::Failed { error, action }
                }
            };
            let failed = matches!(outcome, TransferOutcome::Failed { .. });
            let change = apply_outcome(&row, outcome, &self.config.retry, random_unit(), now_ms());
            // archived by the error handler, or by the retry policy's last attempt
            let report = if change.new_state() == Some(AttachmentState::Archived) {
                TransferReport::Archived
            } else if failed {
                TransferReport::Retrying
            } else {
                TransferReport::Completed(operation)
            };
            Some(Finished {
                row,
                operation,
                change,
                report,
            })
        }
        .instrument(span)
        .await
    }

    async fn upload(&self, row: &Attachment, meter: &Arc<Meter>) -> Result<TransferOutcome> {
        let path = row.local_uri.as_deref().ok_or_else(|| {
            Error::not_found(format!("attachment {} has no local file to upload", row.id))
        })?;
        let data = self.local.read(path).await?;
        self.remote.upload(row, meter.wrap(data)).await?;
        if let Some(expected) = row.size
            && meter.bytes() != expected
        {
            return Err(Error::new(
                ErrorKind::Corrupt,
                format!(
                    "local file {path:?} holds {} bytes, {expected} were saved",
                    meter.bytes()
                ),
            ));
        }
        Ok(TransferOutcome::Uploaded)
    }

    async fn download(&self, row: &Attachment, meter: &Arc<Meter>) -> Result<TransferOutcome> {
        let data = self.remote.download(row).await?;
        let size = self
            .local
            .write_downloaded(&row.filename, meter.wrap(data))
            .await?;
        let checksum = stream_checksum(meter).await?;
        // A row that knows its contents (saved here, or synced before) checks what arrived: a
        // truncated or foreign body is not kept.
        let size_differs = row.size.is_some_and(|expected| expected != size);
        let checksum_differs = row
            .checksum
            .as_ref()
            .is_some_and(|expected| *expected != checksum);
        if size_differs || checksum_differs {
            if let Err(cleanup) = self.local.delete(&row.filename).await {
                warn!(%cleanup, "could not remove a download that failed its check");
            }
            return Err(Error::new(
                ErrorKind::Corrupt,
                format!(
                    "downloaded {size} bytes with {checksum}, expected {} bytes with {}",
                    row.size.map_or("?".to_owned(), |s| s.to_string()),
                    row.checksum.as_deref().unwrap_or("?")
                ),
            )
            // a body cut short by the network is worth another try
            .with_retryable(true));
        }
        Ok(TransferOutcome::Downloaded { size, checksum })
    }

    /// Run `work`, reporting byte progress, and fail it when no byte moves for
    /// `transfer_timeout`.
    async fn watch_progress<T>(
        &self,
        work: impl Future<Output = Result<T>>,
        meter: &Arc<Meter>,
        id: &AttachmentId,
        operation: Operation,
        total: Option<u64>,
    ) -> Result<T> {
        let idle_limit = self.config.transfer_timeout;
        let mut progress = meter.subscribe();
        let watchdog = async {
            let mut reported = 0u64;
            loop {
                match tokio::time::timeout(idle_limit, progress.changed()).await {
                    Ok(Ok(())) => {
                        let bytes = *progress.borrow_and_update();
                        if bytes >= reported + PROGRESS_STEP {
                            reported = bytes;
                            self.emit(AttachmentEvent::Progress {
                                id: id.clone(),
                                operation,
                                bytes,
                                total,
                            });
                        }
                    }
                    // the meter lives as long as this future: cannot happen, but never spin
                    Ok(Err(_)) => std::future::pending::<()>().await,
                    Err(_) => return,
                }
            }
        };
        let result = tokio::select! {
            result = work => result,
            () = watchdog => Err(Error::new(
                ErrorKind::TimedOut,
                format!("no byte moved for {idle_limit:?}"),
            )),
        };
        if result.is_ok() && operation != Operation::Delete {
            self.emit(AttachmentEvent::Progress {
                id: id.clone(),
                operation,
                bytes: meter.bytes(),
                total: Some(meter.bytes()),
            });
        }
        result
    }

    /// Whether the file a row points at exists. A `local_uri` the storage refuses (a row
    /// written by something else, pointing outside the root) counts as missing: nothing is
    /// read there, and the row is repaired like any row whose file is gone.
    pub(super) async fn local_file_present(&self, path: &str) -> Result<bool> {
        match self.local.exists(path).await {
            Ok(present) => Ok(present),
            Err(error) if error.kind() == ErrorKind::InvalidInput => {
                warn!(path, %error, "a row points at a path the local storage refuses");
                Ok(false)
            }
            Err(error) => Err(error),
        }
    }

    /// Remove a local file the table no longer references, unless a save is writing it.
    async fn remove_local_file(&self, path: Option<&str>) {
        let Some(path) = path else { return };
        if self
            .saving
            .lock()
            .expect("saving lock poisoned")
            .contains(path)
        {
            return;
        }
        if let Err(error) = self.local.delete(path).await {
            // left as an orphan: the start-up sweep removes it
            warn!(path, %error, "could not remove local file");
        }
    }

    // ---- app operations ---------------------------------------------------------------------

    pub(super) async fn save_file(
        &self,
        file: SaveFile,
        hook: Option<BoundHook<S::Connection>>,
    ) -> Result<Attachment> {
        self.ensure_open()?;
        let given_id = file.id.is_some();
        let id = file.id.unwrap_or_else(AttachmentId::generate);
        let filename = default_filename(&id, file.file_extension.as_deref())?;
        // Claimed before the check below: a second save of the same id cannot pass the check
        // while this one is between it and its commit.
        let Some(_saving) = SetEntry::claim(&self.saving, filename.clone()) else {
            return Err(Error::new(
                ErrorKind::AlreadyExists,
                format!("a save of {filename:?} is already in progress"),
            ));
        };
        // An id the app chose may exist: refuse it before its file is overwritten. A generated
        // UUID cannot, and the insert checks again anyway, so it skips this round trip.
        if given_id && self.store.get(&id).await?.is_some() {
            return Err(crate::store::already_exists(&id));
        }
        let meter = Meter::new();
        let size = self.local.write(&filename, meter.wrap(file.data)).await?;
        let checksum = stream_checksum(&meter).await?;
        let row = saved_file_row(
            SavedFile {
                id: id.clone(),
                filename: filename.clone(),
                size,
                checksum,
                media_type: file.media_type,
                meta_data: file.meta_data,
            },
            now_ms(),
        );
        let hook = hook.map(|bind| bind(row.clone()));
        match self.store.insert_with_hook(row.clone(), hook).await {
            Ok(saved) => {
                self.emit_change(None, &RowChange::Insert(saved.clone()));
                info!(%id, size, "attachment saved");
                self.trigger.notify_one();
                Ok(saved)
            }
            Err(error) => {
                if let Err(cleanup) = self.local.delete(&filename).await {
                    warn!(%id, %cleanup, "could not remove the file of a failed save");
                }
                Err(error)
            }
        }
    }

    pub(super) async fn delete_file(
        &self,
        id: &AttachmentId,
        hook: Option<BoundHook<S::Connection>>,
    ) -> Result<()> {
        self.ensure_open()?;
        let current = self
            .store
            .get(id)
            .await?
            .ok_or_else(|| Error::not_found(format!("attachment {id}")))?;
        let now = now_ms();
        let missing = id.clone();
        let decide = Box::new(move |existing: Option<Attachment>| match existing {
            Some(row) => Ok(request_delete(&row, now)),
            None => Err(Error::not_found(format!("attachment {missing}"))),
        });
        let hook = hook.map(|bind| bind(current.clone()));
        // Recorded before the commit: any reconcile that finds the row gone also finds this.
        let newly_recorded = self
            .deleted_ids
            .lock()
            .expect("deleted set lock poisoned")
            .insert(id.clone());
        let change = match self.store.apply_with_hook(id, decide, hook).await {
            Ok(change) => change,
            Err(error) => {
                if newly_recorded {
                    self.deleted_ids
                        .lock()
                        .expect("deleted set lock poisoned")
                        .remove(id);
                }
                return Err(error);
            }
        };
        self.emit_change(Some(current.state), &change);
        self.trigger.notify_one();
        Ok(())
    }

    pub(super) async fn retry(&self, id: &AttachmentId) -> Result<()> {
        let row = self
            .store
            .get(id)
            .await?
            .ok_or_else(|| Error::not_found(format!("attachment {id}")))?;
        if row.failed_state == Some(AttachmentState::QueuedUpload) {
            let present = match &row.local_uri {
                Some(path) => self.local_file_present(path).await?,
                None => false,
            };
            if !present {
                return Err(Error::not_found(format!(
                    "attachment {id} failed to upload and its local file is gone: nothing to retry"
                )));
            }
        }
        let now = now_ms();
        let missing = id.clone();
        let decide = Box::new(move |existing: Option<Attachment>| match existing {
            Some(row) => retry_failed(&row, now),
            None => Err(Error::not_found(format!("attachment {missing}"))),
        });
        let change = self.store.apply_with_hook(id, decide, None).await?;
        self.emit_change(Some(row.state), &change);
        self.trigger.notify_one();
        Ok(())
    }

    pub(super) async fn expire_cache(&self) -> Result<u64> {
        let archived = self.store.list(Some(&[AttachmentState::Archived])).await?;
        let evictions = select_evictions(
            &archived,
            self.config.archived_cache_limit,
            self.config.archived_cache_bytes,
        );
        let mut evicted = 0;
        for row in evictions {
            let change = RowChange::Delete {
                id: row.id.clone(),
                expected_version: row.version,
            };
            // Row first: if it was revived meanwhile, its file stays.
            if self.store.apply(vec![change.clone()]).await?[0] {
                evicted += 1;
                self.emit_change(Some(row.state), &change);
                self.remove_local_file(row.local_uri.as_deref()).await;
            }
        }
        if evicted > 0 {
            debug!(evicted, "archived attachments evicted from the cache");
        }
        Ok(evicted)
    }

    pub(super) async fn clear_queue(&self) -> Result<u64> {
        let rows = self.store.list(None).await?;
        let removed = self.store.clear().await?;
        self.drop_baseline();
        self.deleted_ids
            .lock()
            .expect("deleted set lock poisoned")
            .clear();
        for row in &rows {
            self.remove_local_file(row.local_uri.as_deref()).await;
            self.emit(AttachmentEvent::StateChanged {
                id: row.id.clone(),
                from: Some(row.state),
                to: None,
            });
        }
        info!(removed, "attachment queue cleared");
        Ok(removed)
    }

    fn ensure_open(&self) -> Result<()> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(Error::closed());
        }
        Ok(())
    }

    // ---- start-up verification ---------------------------------------------------------------

    /// Bring the table and local storage back in line after a crash: drop temp files, fix rows
    /// whose file is gone, remove files no row references.
    async fn verify_local_files(&self) -> Result<()> {
        let temp_removed = self.local.remove_temp_files().await?;
        let rows = self.store.list(None).await?;
        let now = now_ms();
        let mut changes = Vec::new();
        for row in &rows {
            let exists = match &row.local_uri {
                Some(path) => self.local_file_present(path).await?,
                None => false,
            };
            if let Some(change) = verify_on_start(row, exists, now) {
                warn!(id = %row.id, state = %row.state, "local file missing");
                changes.push(change);
            }
        }
        let repaired = self.apply_and_report(&rows, changes, true).await?;

        // Snapshot order matters: files, then saves in progress, then rows. A save that renames
        // its file after the listing is not in it; one that commits after the snapshot of saves
        // is in the rows.
        let files = self.local.list().await?;
        let saving = self.saving.lock().expect("saving lock poisoned").clone();
        let rows = self.store.list(None).await?;
        let mut keep: HashSet<String> = saving;
        for row in rows {
            keep.extend(row.local_uri);
            // a download may have renamed its file but not yet recorded it
            keep.insert(row.filename);
        }
        let mut orphans_removed = 0;
        for file in files.into_iter().filter(|file| !keep.contains(file)) {
            self.local.delete(&file).await?;
            orphans_removed += 1;
        }
        info!(
            temp_removed,
            repaired, orphans_removed, "local files verified"
        );
        Ok(())
    }
}

/// The checksum of a stream a storage has written.
async fn stream_checksum(meter: &Meter) -> Result<String> {
    meter.checksum().await.ok_or_else(|| {
        Error::new(
            ErrorKind::Other,
            "the local storage kept the stream it was given after writing it",
        )
    })
}

/// A spawned transfer, aborted if the pass that waits for it is dropped (cancelled): its claim
/// is released then, so the transfer must not go on.
struct AbortOnDrop(tokio::task::JoinHandle<Option<Finished>>);

impl AbortOnDrop {
    /// The transfer's end; `None` when it was cancelled (also by a runtime shutting down).
    async fn finish(mut self) -> Option<Finished> {
        match (&mut self.0).await {
            Ok(finished) => finished,
            Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
            Err(_) => None,
        }
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A transfer that ran to its end, with the change its outcome makes to the row it started
/// from.
struct Finished {
    row: Attachment,
    operation: Operation,
    change: RowChange,
    report: TransferReport,
}

/// How one transfer ended, for the pass summary.
enum TransferReport {
    Completed(Operation),
    Retrying,
    Archived,
    Discarded,
}

impl PassSummary {
    fn count(&mut self, report: TransferReport) {
        match report {
            TransferReport::Completed(Operation::Upload) => self.uploaded += 1,
            TransferReport::Completed(Operation::Download) => self.downloaded += 1,
            TransferReport::Completed(Operation::Delete) => self.deleted += 1,
            TransferReport::Retrying => self.retrying += 1,
            TransferReport::Archived => self.archived += 1,
            TransferReport::Discarded => self.discarded += 1,
        }
    }
}
