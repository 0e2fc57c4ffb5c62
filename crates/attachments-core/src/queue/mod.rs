//! `AttachmentQueue`: the public surface of the sync engine. Every method here is thin: the
//! work happens in the engine's rooms (see `engine`).

mod builder;
mod claims;
mod commands;
mod engine;
mod events;
mod hooks;
mod lifecycle;
mod pass;
mod ranged;
mod reconcile;
mod save_file;
mod startup;
mod transfer;
mod worker;

use std::fmt;
use std::sync::{Arc, Mutex};

use futures_util::future::BoxFuture;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::error::{BoxError, Error, ErrorKind, Result};
use crate::model::{Attachment, AttachmentId, ReferencedAttachments};
use crate::storage::{ByteStream, LocalStorage, RemoteStorage};
use crate::store::{AttachmentStore, StateCounts};
use engine::Engine;
use hooks::bind_hook;

pub use builder::{AttachmentQueueBuilder, QueueConfig, WatchSource};
pub use events::{AttachmentEvent, PassSummary};
pub use save_file::SaveFile;

/// Keeps attachments in sync between a local storage and a remote one, with their state in an
/// [`AttachmentStore`].
///
/// Cheap to clone: clones share one engine.
///
/// ```no_run
/// # async fn demo<S: attachments_core::AttachmentStore>(queue: attachments_core::AttachmentQueue<S>) -> attachments_core::Result<()> {
/// use attachments_core::{byte_stream_from, SaveFile};
/// queue.start_sync().await?;
/// let photo = queue
///     .save_file(SaveFile::new(byte_stream_from(vec![b"jpeg bytes".to_vec()])).file_extension("jpg"))
///     .await?;
/// println!("saved {} as {}", photo.id, photo.filename);
/// queue.close().await;
/// # Ok(()) }
/// ```
pub struct AttachmentQueue<S: AttachmentStore> {
    engine: Arc<Engine<S>>,
    /// Shared by all clones: when the last one is dropped, background sync stops.
    _stop_on_drop: Arc<StopOnDrop>,
}

impl<S: AttachmentStore> Clone for AttachmentQueue<S> {
    fn clone(&self) -> Self {
        AttachmentQueue {
            engine: Arc::clone(&self.engine),
            _stop_on_drop: Arc::clone(&self._stop_on_drop),
        }
    }
}

/// Cancels background sync when the app drops its last queue handle without `close`: the
/// worker holds the engine alive, so without this it would run for the rest of the process.
struct StopOnDrop {
    cancel: std::sync::Weak<Mutex<CancellationToken>>,
}

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        if let Some(cancel) = self.cancel.upgrade()
            && let Ok(token) = cancel.lock()
        {
            token.cancel();
        }
    }
}

impl<S: AttachmentStore> fmt::Debug for AttachmentQueue<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AttachmentQueue")
            .field("config", &self.engine.config)
            .field(
                "download_attachments",
                &self.engine.references.downloads_enabled(),
            )
            .field("closed", &self.engine.lifecycle.is_closed())
            .finish_non_exhaustive()
    }
}

impl<S: AttachmentStore> AttachmentQueue<S> {
    /// Start building a queue over a store, a local storage and a remote.
    pub fn builder(
        store: S,
        local: impl LocalStorage,
        remote: impl RemoteStorage,
    ) -> AttachmentQueueBuilder<S> {
        AttachmentQueueBuilder::new(store, Arc::new(local), Arc::new(remote))
    }

    /// A new random attachment id.
    pub fn generate_attachment_id(&self) -> AttachmentId {
        AttachmentId::generate()
    }

    /// The store this queue writes to.
    pub fn store(&self) -> &S {
        &self.engine.store
    }

    /// Start background sync: verify local files once, watch the app's references, and run a
    /// pass at every trigger and every `sync_interval`. Starting twice is a no-op.
    ///
    /// # Errors
    /// `Closed` after [`close`](Self::close).
    pub async fn start_sync(&self) -> Result<()> {
        self.engine.lifecycle.ensure_open()?;
        let engine = Arc::clone(&self.engine);
        self.engine
            .lifecycle
            .start_worker(|cancel| tokio::spawn(engine.run_worker(cancel)));
        Ok(())
    }

    /// Stop background sync and cancel every transfer in flight (theirs rows stay queued and
    /// are picked up by the next pass). Returns once the worker has stopped.
    pub async fn stop_sync(&self) {
        self.engine.lifecycle.stop().await;
    }

    /// Stop sync for good: every later call fails with `Closed`, and the locks on the store
    /// and the local storage are released, so another queue may be built on them.
    pub async fn close(&self) {
        self.engine.lifecycle.close().await;
    }

    /// Run one pass now (reconcile references, run due transfers, expire the cache) and wait
    /// for it. Works with or without background sync.
    ///
    /// # Errors
    /// `Closed` after [`close`](Self::close); a store error that stopped the pass.
    pub async fn sync_now(&self) -> Result<PassSummary> {
        self.engine.lifecycle.ensure_open()?;
        let cancel = self.engine.lifecycle.current_cancel();
        self.engine.run_pass(&cancel).await
    }

    /// Ask the background worker for a pass soon (at most one per `sync_throttle`).
    pub fn trigger_sync(&self) {
        self.engine.schedule.trigger();
    }

    /// Tell the queue the full set of attachments the app references, and reconcile the table
    /// with it now. This is what the watched stream does at every reading; apps that learn of
    /// changes some other way can push them here: a `Vec` of items is a reading taken now, a
    /// [`ReferencedAttachments`] says when it was taken (a reading older than the newest one
    /// the queue has is ignored).
    ///
    /// # Errors
    /// `Closed` after `close`; store errors.
    pub async fn set_referenced(&self, reading: impl Into<ReferencedAttachments>) -> Result<()> {
        self.engine.lifecycle.ensure_open()?;
        self.engine.references.set_latest(reading.into());
        self.engine.reconcile().await?;
        self.trigger_sync();
        Ok(())
    }

    /// Turn downloads on or off while running.
    pub fn set_download_attachments(&self, enabled: bool) {
        self.engine.references.set_downloads(enabled);
        self.trigger_sync();
    }

    /// Save a file: stream it to local storage, then record it as `QueuedUpload`.
    ///
    /// # Errors
    /// `InvalidInput` for a bad extension; `AlreadyExists` for an id that is taken (its row and
    /// file stay as they were); the stream's or the storage's error. On error nothing is
    /// recorded and no file is left behind.
    pub async fn save_file(&self, file: SaveFile) -> Result<Attachment> {
        self.engine.save_file(file, None).await
    }

    /// Save a file and run `update_hook` (the app's own SQL, e.g. setting `todos.photo_id`) in
    /// the same transaction that records the attachment: both happen, or neither.
    ///
    /// ```no_run
    /// # async fn demo<S: attachments_core::AttachmentStore>(queue: attachments_core::AttachmentQueue<S>, data: attachments_core::ByteStream) -> attachments_core::Result<()> {
    /// # use attachments_core::SaveFile;
    /// let photo = queue
    ///     .save_file_with_hook(SaveFile::new(data).file_extension("jpg"), |connection, attachment| {
    ///         Box::pin(async move {
    ///             // with SQLite: sqlx::query("UPDATE todos SET photo_id = ?").bind(attachment.id.as_str()).execute(&mut *connection).await?;
    ///             let _ = (connection, attachment);
    ///             Ok::<(), attachments_core::BoxError>(())
    ///         })
    ///     })
    ///     .await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`save_file`](Self::save_file); a failing hook is a `Hook` error and rolls back.
    pub async fn save_file_with_hook<F>(&self, file: SaveFile, update_hook: F) -> Result<Attachment>
    where
        F: for<'c> FnOnce(&'c mut S::Connection, Attachment) -> BoxFuture<'c, Result<(), BoxError>>
            + Send
            + 'static,
    {
        self.engine
            .save_file(file, Some(bind_hook::<S, F>(update_hook)))
            .await
    }

    /// Mark an attachment for deletion: the next pass removes the remote object, the local file
    /// and the row.
    ///
    /// # Errors
    /// `NotFound` for an unknown id.
    pub async fn delete_file(&self, id: &AttachmentId) -> Result<()> {
        self.engine.delete_file(id, None).await
    }

    /// [`delete_file`](Self::delete_file), running `update_hook` in the same transaction.
    ///
    /// # Errors
    /// `NotFound` for an unknown id; a failing hook is a `Hook` error and rolls back.
    pub async fn delete_file_with_hook<F>(&self, id: &AttachmentId, update_hook: F) -> Result<()>
    where
        F: for<'c> FnOnce(&'c mut S::Connection, Attachment) -> BoxFuture<'c, Result<(), BoxError>>
            + Send
            + 'static,
    {
        self.engine
            .delete_file(id, Some(bind_hook::<S, F>(update_hook)))
            .await
    }

    /// Evict archived rows (and their local files) beyond the cache limits. Always returns.
    ///
    /// # Errors
    /// `Closed` after `close`; store errors.
    pub async fn expire_cache(&self) -> Result<u64> {
        self.engine.lifecycle.ensure_open()?;
        let cancel = self.engine.lifecycle.current_cancel();
        self.engine.expire_cache(&cancel).await
    }

    /// Forget every attachment: remove each row and the local file it references (and nothing
    /// else in local storage). Pending uploads are dropped. Returns how many rows were removed.
    ///
    /// # Errors
    /// `Closed` after `close`; store errors.
    pub async fn clear_queue(&self) -> Result<u64> {
        self.engine.lifecycle.ensure_open()?;
        self.engine.clear_queue().await
    }

    /// Re-queue an attachment that a permanent failure archived, in the state it failed in.
    ///
    /// # Errors
    /// `NotFound` for an unknown id, or a failed upload whose local file is gone;
    /// `InvalidInput` when the attachment was not archived by a failure.
    pub async fn retry(&self, id: &AttachmentId) -> Result<()> {
        self.engine.lifecycle.ensure_open()?;
        self.engine.retry(id).await
    }

    /// The row of one attachment.
    ///
    /// # Errors
    /// `Closed` after `close`; store errors.
    pub async fn get(&self, id: &AttachmentId) -> Result<Option<Attachment>> {
        self.engine.lifecycle.ensure_open()?;
        self.engine.store.get(id).await
    }

    /// How many attachments are in each state.
    ///
    /// # Errors
    /// `Closed` after `close`; store errors.
    pub async fn status(&self) -> Result<StateCounts> {
        self.engine.lifecycle.ensure_open()?;
        self.engine.store.count_by_state().await
    }

    /// A stream of [`AttachmentEvent`]s from now on. A subscriber that falls more than 1024
    /// events behind misses the oldest (and is told so by the receiver).
    pub fn subscribe(&self) -> broadcast::Receiver<AttachmentEvent> {
        self.engine.events.subscribe()
    }

    /// Read the local copy of an attachment. A download whose row already says `Synced` but
    /// whose file is still being put in place is waited for.
    ///
    /// # Errors
    /// `NotFound` when the attachment or its local file does not exist.
    pub async fn read_file(&self, id: &AttachmentId) -> Result<ByteStream> {
        self.engine.lifecycle.ensure_open()?;
        match self.read_local_copy(id).await {
            // The row of a download says `Synced` a moment before its file is promoted (the
            // compare-and-set decides first); the download holds its id until then.
            Err(error)
                if error.kind() == ErrorKind::NotFound
                    && self.engine.claimed_ids.is_claimed(id) =>
            {
                self.engine.claimed_ids.wait_until_released(id).await;
                self.read_local_copy(id).await
            }
            read => read,
        }
    }

    async fn read_local_copy(&self, id: &AttachmentId) -> Result<ByteStream> {
        let row = self
            .engine
            .store
            .get(id)
            .await?
            .ok_or_else(|| Error::not_found("no such attachment").with_attachment(id))?;
        let path = row.local_uri.ok_or_else(|| {
            Error::not_found("the attachment has no local file (yet)").with_attachment(id)
        })?;
        self.engine.local.read(&path).await
    }
}
