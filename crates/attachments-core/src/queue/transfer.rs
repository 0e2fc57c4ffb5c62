//! One transfer: an upload, a download or a delete of one attachment, with byte progress and
//! a stall watchdog. A transfer does not write its row; it returns how it ended, and the pass
//! writes that with compare-and-set.

use std::future::Future;
use std::sync::Arc;

use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info, info_span, warn};

use super::AttachmentEvent;
use super::engine::Engine;
use super::ranged::Landed;
use crate::error::{Error, ErrorKind, Result};
use crate::meter::Meter;
use crate::model::{Attachment, AttachmentId};
use crate::policy::Operation;
use crate::state_machine::{TransferOutcome, pending_operation};
use crate::storage::ByteStream;
use crate::store::AttachmentStore;

/// Progress events are sent at least this many bytes apart, so a fast transfer of a big file
/// does not flood subscribers.
const PROGRESS_STEP: u64 = 256 * 1024;

/// A transfer that ran to its end.
pub(super) struct TransferEnd {
    /// The row as it was when the transfer started: the outcome applies only to it.
    pub(super) row: Attachment,
    pub(super) operation: Operation,
    pub(super) outcome: TransferOutcome,
    /// A file in the staging area that waits for the outcome to be written.
    pub(super) staged: Option<StagedFile>,
}

/// A file a transfer left in the local storage's staging area.
#[derive(Debug)]
pub(super) enum StagedFile {
    /// A downloaded file: promoted once the row says `Synced`, removed if the row moved on.
    Downloaded(String),
    /// The local file of a deleted attachment: removed once the row is gone, put back if the
    /// row stayed.
    Removed(String),
}

impl<S: AttachmentStore> Engine<S> {
    /// Run one transfer; `None` when cancelled (the row stays as it was).
    pub(super) async fn transfer(
        &self,
        row: Attachment,
        cancel: &CancellationToken,
    ) -> Option<TransferEnd> {
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
                    Operation::Upload => self
                        .upload(&row, &meter)
                        .await
                        .map(|()| (TransferOutcome::Uploaded, None)),
                    Operation::Download => self.download(&row, &meter).await.map(|outcome| {
                        (outcome, Some(StagedFile::Downloaded(row.filename.clone())))
                    }),
                    Operation::Delete => self.delete_remote_and_stage_local(&row).await,
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
            let (outcome, staged) = match result {
                Ok(done) => done,
                Err(error) => {
                    let error = error.with_operation(operation).with_attachment(&row.id);
                    let action = self.error_handler.on_error(&row, operation, &error).await;
                    warn!(%error, ?action, attempts = row.attempts + 1, "transfer failed");
                    self.emit_error(Some(row.id.clone()), Some(operation), error.clone());
                    (TransferOutcome::Failed { error, action }, None)
                }
            };
            Some(TransferEnd {
                row,
                operation,
                outcome,
                staged,
            })
        }
        .instrument(span)
        .await
    }

    async fn upload(&self, row: &Attachment, meter: &Arc<Meter>) -> Result<()> {
        let path = row
            .local_uri
            .as_deref()
            .ok_or_else(|| Error::not_found("the attachment has no local file to upload"))?;
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
        Ok(())
    }

    /// Download into the staging area; the pass promotes the file once the row says `Synced`.
    async fn download(&self, row: &Attachment, meter: &Arc<Meter>) -> Result<TransferOutcome> {
        // A row with no local file has none at its path either: a file there is the app's own
        // (a watched item may name any path), and the queue never replaces what it did not write.
        if row.local_uri.is_none() && self.local.exists(&row.filename).await? {
            return Err(Error::new(
                ErrorKind::AlreadyExists,
                format!(
                    "a file the queue did not write is at {:?}; it is not replaced",
                    row.filename
                ),
            ));
        }
        let Landed { size, checksum } = match self.download_in_parts(row, meter).await? {
            Some(landed) => landed,
            None => self.download_in_one_stream(row, meter).await?,
        };
        // A row that knows its contents (saved here, or synced before) checks what arrived: a
        // truncated or foreign body is not kept.
        let size_differs = row.size.is_some_and(|expected| expected != size);
        let checksum_differs = row
            .checksum
            .as_ref()
            .is_some_and(|expected| *expected != checksum);
        // The same different body twice is the remote's truth, not a transfer gone wrong: the
        // id was reused (saved again on another device after a delete). A body cut short or
        // garbled by the network differs from one try to the next.
        let seen_before = row
            .last_error
            .as_deref()
            .is_some_and(|last| last.contains(&checksum));
        if (size_differs || checksum_differs) && seen_before {
            info!(size, %checksum, "the remote object changed since it was recorded; taken as it is");
            return Ok(TransferOutcome::Downloaded { size, checksum });
        }
        if size_differs || checksum_differs {
            if let Err(cleanup) = self.local.discard_staged(&row.filename).await {
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

    /// Download `row` into the staging area with one `download` stream.
    async fn download_in_one_stream(&self, row: &Attachment, meter: &Arc<Meter>) -> Result<Landed> {
        let data = self.remote.download(row).await?;
        // No more than the app's limit. A row that records its size is checked once the body
        // is in (below), not cut at that size: a reused id's new body may be longer, and must
        // be seen whole to be recognised when it arrives again.
        let data = match self.config.max_download_bytes {
            Some(limit) => limit_stream(data, limit),
            None => data,
        };
        let size = self
            .local
            .write_staged(&row.filename, meter.wrap(data))
            .await?;
        let checksum = stream_checksum(meter).await?;
        Ok(Landed { size, checksum })
    }

    /// Remove the remote object, then move the local file into the staging area: it is
    /// removed once the row is gone, so a crash in between never strands it in the root.
    async fn delete_remote_and_stage_local(
        &self,
        row: &Attachment,
    ) -> Result<(TransferOutcome, Option<StagedFile>)> {
        self.remote.delete(row).await?;
        // a download cut short by the delete may have left its file at `filename`
        let path = row.local_uri.as_deref().unwrap_or(&row.filename);
        let staged = match self.local.stage_existing(path).await {
            Ok(true) => Some(StagedFile::Removed(path.to_owned())),
            Ok(false) => None,
            Err(error) if error.kind() == ErrorKind::InvalidInput => {
                // a row written by something else, pointing outside the root: nothing of ours
                warn!(path, %error, "the deleted row points at a path the local storage refuses");
                None
            }
            Err(error) => return Err(error),
        };
        Ok((TransferOutcome::Deleted, staged))
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
}

/// The checksum of a stream a storage has written.
pub(super) async fn stream_checksum(meter: &Meter) -> Result<String> {
    meter.checksum().await.ok_or_else(|| {
        Error::new(
            ErrorKind::Other,
            "the local storage kept the stream it was given after writing it",
        )
    })
}

/// Fail the stream as soon as it carries more than `limit` bytes (`max_download_bytes`): the
/// object is refused for good (`InvalidInput`), before it fills the disk.
fn limit_stream(data: ByteStream, limit: u64) -> ByteStream {
    let mut seen = 0u64;
    Box::pin(data.map(move |chunk| {
        let chunk = chunk?;
        seen = seen.saturating_add(chunk.len() as u64);
        if seen > limit {
            let error = Error::new(
                ErrorKind::InvalidInput,
                format!("the remote object is larger than max_download_bytes ({limit})"),
            );
            return Err(error.into_io());
        }
        Ok(chunk)
    }))
}
