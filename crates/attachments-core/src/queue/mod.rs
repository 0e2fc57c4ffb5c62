//! `AttachmentQueue`: the sync engine. The public surface lives here; how a pass and a transfer
//! run is in `engine`.

mod engine;
mod events;
mod reconcile;

use std::collections::HashSet;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use tokio::sync::{Notify, broadcast};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::error::{BoxError, Error, Result};
use crate::model::{Attachment, AttachmentId, ReferencedAttachments, WatchedAttachmentItem};
use crate::policy::{AttachmentErrorHandler, DefaultErrorHandler, RetryPolicy};
use crate::storage::{ByteStream, LocalStorage, RemoteStorage};
use crate::store::{AttachmentStore, StateCounts, UpdateHook};

pub use events::{AttachmentEvent, PassSummary};

/// Produces a fresh stream of readings of the attachments the app references, each time sync
/// starts.
pub type WatchSource =
    Arc<dyn Fn() -> BoxStream<'static, Result<ReferencedAttachments>> + Send + Sync>;

/// Settings of a queue; every field has the default a mobile app wants.
#[derive(Debug, Clone)]
pub struct QueueConfig {
    /// Time between periodic passes (default 30 s).
    pub sync_interval: Duration,
    /// Shortest time between two passes, however often triggered (default 1 s).
    pub sync_throttle: Duration,
    /// Archived rows kept as a cache (default 100).
    pub archived_cache_limit: usize,
    /// Bytes of archived local files kept as a cache (default: no byte limit).
    pub archived_cache_bytes: Option<u64>,
    /// Whether referenced attachments are downloaded (default true).
    pub download_attachments: bool,
    /// Transfers running at once (default 8).
    pub max_concurrency: usize,
    /// A transfer that moves no byte for this long is cancelled as a retryable failure
    /// (default 60 s).
    pub transfer_timeout: Duration,
    /// Backoff and attempt limit for failed transfers.
    pub retry: RetryPolicy,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            sync_interval: Duration::from_secs(30),
            sync_throttle: Duration::from_secs(1),
            archived_cache_limit: 100,
            archived_cache_bytes: None,
            download_attachments: true,
            max_concurrency: 8,
            transfer_timeout: Duration::from_secs(60),
            retry: RetryPolicy::default(),
        }
    }
}

/// A file to save: its contents and what to record about it.
///
/// ```
/// use attachments_core::{byte_stream_from, SaveFile};
/// let file = SaveFile::new(byte_stream_from(vec![b"\xFF\xD8".to_vec()]))
///     .media_type("image/jpeg")
///     .file_extension("jpg")
///     .meta_data(r#"{"todo": 1}"#);
/// # drop(file);
/// ```
pub struct SaveFile {
    data: ByteStream,
    id: Option<AttachmentId>,
    media_type: Option<String>,
    file_extension: Option<String>,
    meta_data: Option<String>,
}

impl SaveFile {
    /// The contents to save, as a stream.
    pub fn new(data: ByteStream) -> Self {
        SaveFile {
            data,
            id: None,
            media_type: None,
            file_extension: None,
            meta_data: None,
        }
    }

    /// Use this id instead of a generated one; it must not exist yet.
    pub fn id(mut self, id: AttachmentId) -> Self {
        self.id = Some(id);
        self
    }

    /// The media type to record, e.g. `image/jpeg`.
    pub fn media_type(mut self, media_type: impl Into<String>) -> Self {
        self.media_type = Some(media_type.into());
        self
    }

    /// The extension of the file name (`{id}.{extension}`), without the dot.
    pub fn file_extension(mut self, extension: impl Into<String>) -> Self {
        self.file_extension = Some(extension.into());
        self
    }

    /// Free text to store with the attachment.
    pub fn meta_data(mut self, meta_data: impl Into<String>) -> Self {
        self.meta_data = Some(meta_data.into());
        self
    }
}

impl fmt::Debug for SaveFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SaveFile")
            .field("id", &self.id)
            .field("media_type", &self.media_type)
            .field("file_extension", &self.file_extension)
            .finish_non_exhaustive()
    }
}

/// Builds an [`AttachmentQueue`]; see [`AttachmentQueue::builder`].
pub struct AttachmentQueueBuilder<S: AttachmentStore> {
    store: S,
    local: Arc<dyn LocalStorage>,
    remote: Arc<dyn RemoteStorage>,
    config: QueueConfig,
    error_handler: Arc<dyn AttachmentErrorHandler>,
    watch_source: Option<WatchSource>,
}

impl<S: AttachmentStore> AttachmentQueueBuilder<S> {
    /// Time between periodic passes.
    pub fn sync_interval(mut self, interval: Duration) -> Self {
        self.config.sync_interval = interval;
        self
    }

    /// Shortest time between two passes.
    pub fn sync_throttle(mut self, throttle: Duration) -> Self {
        self.config.sync_throttle = throttle;
        self
    }

    /// Archived rows kept as a cache.
    pub fn archived_cache_limit(mut self, limit: usize) -> Self {
        self.config.archived_cache_limit = limit;
        self
    }

    /// Bytes of archived local files kept as a cache.
    pub fn archived_cache_bytes(mut self, bytes: u64) -> Self {
        self.config.archived_cache_bytes = Some(bytes);
        self
    }

    /// Whether referenced attachments are downloaded.
    pub fn download_attachments(mut self, enabled: bool) -> Self {
        self.config.download_attachments = enabled;
        self
    }

    /// Transfers running at once (at least 1).
    pub fn max_concurrency(mut self, transfers: usize) -> Self {
        self.config.max_concurrency = transfers.max(1);
        self
    }

    /// How long a transfer may go without moving a byte.
    pub fn transfer_timeout(mut self, timeout: Duration) -> Self {
        self.config.transfer_timeout = timeout;
        self
    }

    /// Backoff and attempt limit for failed transfers.
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.config.retry = policy;
        self
    }

    /// Decides, per failed transfer, between retry and archive.
    pub fn error_handler(mut self, handler: impl AttachmentErrorHandler) -> Self {
        self.error_handler = Arc::new(handler);
        self
    }

    /// The attachments the app references: `source` is called at each `start_sync` and must
    /// return a stream that emits the full set of referenced items, now and after every change.
    pub fn watch_attachments<F>(mut self, source: F) -> Self
    where
        F: Fn() -> BoxStream<'static, Result<ReferencedAttachments>> + Send + Sync + 'static,
    {
        self.watch_source = Some(Arc::new(source));
        self
    }

    /// Replace all settings at once.
    pub fn config(mut self, config: QueueConfig) -> Self {
        self.config = config;
        self
    }

    /// The queue. Nothing runs until [`AttachmentQueue::start_sync`] or
    /// [`AttachmentQueue::sync_now`].
    pub fn build(self) -> AttachmentQueue<S> {
        let (events, _) = broadcast::channel(1024);
        let cancel = Arc::new(Mutex::new(CancellationToken::new()));
        AttachmentQueue {
            _stop_on_drop: Arc::new(StopOnDrop {
                cancel: Arc::downgrade(&cancel),
            }),
            shared: Arc::new(Shared {
                download_attachments: AtomicBool::new(self.config.download_attachments),
                store: self.store,
                local: self.local,
                remote: self.remote,
                config: self.config,
                error_handler: self.error_handler,
                watch_source: self.watch_source,
                events,
                closed: AtomicBool::new(false),
                latest_items: Mutex::new(None),
                reconcile_pending: AtomicBool::new(false),
                deleted_ids: Mutex::new(HashSet::new()),
                transferring: Mutex::new(HashSet::new()),
                saving: Mutex::new(HashSet::new()),
                cancel,
                worker: Mutex::new(None),
                trigger: Notify::new(),
                verified: AtomicBool::new(false),
                cache_may_overflow: AtomicBool::new(true),
                next_due_ms: AtomicI64::new(i64::MAX),
                baseline: Mutex::new(None),
                reconciling: tokio::sync::Mutex::new(()),
            }),
        }
    }
}

/// Everything the queue's tasks share. Locks here are std mutexes held for a few instructions,
/// never across an await.
struct Shared<S: AttachmentStore> {
    store: S,
    local: Arc<dyn LocalStorage>,
    remote: Arc<dyn RemoteStorage>,
    config: QueueConfig,
    error_handler: Arc<dyn AttachmentErrorHandler>,
    watch_source: Option<WatchSource>,
    events: broadcast::Sender<AttachmentEvent>,
    closed: AtomicBool,
    download_attachments: AtomicBool,
    /// The last set of referenced items the watcher emitted.
    latest_items: Mutex<Option<Arc<Vec<WatchedAttachmentItem>>>>,
    /// Whether `latest_items` (or the download toggle) changed since the last reconcile. Each
    /// emission is reconciled once, when it is new: re-applying an old emission at every pass
    /// would re-create an attachment deleted after it was taken.
    reconcile_pending: AtomicBool,
    /// Ids deleted through `delete_file` by this queue. A watched emission read from the
    /// database before a delete committed can be delivered after the delete completed (the
    /// watcher may lag by more than one emission); without this it would bring the attachment
    /// back as a new download. An id is recorded before its delete commits and kept for the
    /// queue's life (a few dozen bytes per delete; `clear_queue` empties it): a deleted id is
    /// gone from the remote, so downloading it again could only fail.
    deleted_ids: Mutex<HashSet<AttachmentId>>,
    /// Ids with a transfer in flight: a second pass never starts another for them.
    transferring: Mutex<HashSet<AttachmentId>>,
    /// Local paths of saves between their first byte and their commit: the orphan sweep and
    /// deletes leave them alone.
    saving: Mutex<HashSet<String>>,
    /// Cancelled by `stop_sync`/`close`; every pass runs under the token current at its start.
    cancel: Arc<Mutex<CancellationToken>>,
    worker: Mutex<Option<JoinHandle<()>>>,
    /// Every trigger (watch emission, save, delete, `trigger_sync`) lands here; many triggers
    /// before the worker wakes collapse into one pass.
    trigger: Notify,
    /// Set when a row is archived (and at start); a pass expires the cache only then.
    cache_may_overflow: AtomicBool,
    /// Start-up verification runs once per queue, before its first pass.
    verified: AtomicBool,
    /// When the earliest backed-off row the last pass saw (or made) becomes due, in ms since
    /// the epoch (`i64::MAX`: none), so the worker wakes for it without listing the table.
    next_due_ms: AtomicI64,
    /// What the last reconcile left in place, so the next one reads only the rows that can
    /// differ (`None`: the next one reads the whole table). See `reconcile.rs`.
    baseline: Mutex<Option<reconcile::ReconcileBaseline>>,
    /// Reconciles run one at a time, each from the baseline the previous one left.
    reconciling: tokio::sync::Mutex<()>,
}

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
    shared: Arc<Shared<S>>,
    /// Shared by all clones: when the last one is dropped, background sync stops.
    _stop_on_drop: Arc<StopOnDrop>,
}

impl<S: AttachmentStore> Clone for AttachmentQueue<S> {
    fn clone(&self) -> Self {
        AttachmentQueue {
            shared: Arc::clone(&self.shared),
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
            .field("config", &self.shared.config)
            .field("closed", &self.shared.closed.load(Ordering::Relaxed))
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
        AttachmentQueueBuilder {
            store,
            local: Arc::new(local),
            remote: Arc::new(remote),
            config: QueueConfig::default(),
            error_handler: Arc::new(DefaultErrorHandler),
            watch_source: None,
        }
    }

    /// A new random attachment id.
    pub fn generate_attachment_id(&self) -> AttachmentId {
        AttachmentId::generate()
    }

    /// The store this queue writes to.
    pub fn store(&self) -> &S {
        &self.shared.store
    }

    /// Start background sync: verify local files once, watch the app's references, and run a
    /// pass at every trigger and every `sync_interval`. Starting twice is a no-op.
    ///
    /// # Errors
    /// `Closed` after [`close`](Self::close).
    pub async fn start_sync(&self) -> Result<()> {
        self.ensure_open()?;
        let mut worker = self.shared.worker.lock().expect("worker lock poisoned");
        if worker.as_ref().is_some_and(|handle| !handle.is_finished()) {
            return Ok(());
        }
        let cancel = self.current_cancel();
        let engine = Arc::clone(&self.shared);
        *worker = Some(tokio::spawn(engine.run_worker(cancel)));
        Ok(())
    }

    /// Stop background sync and cancel every transfer in flight (theirs rows stay queued and
    /// are picked up by the next pass). Returns once the worker has stopped.
    pub async fn stop_sync(&self) {
        let cancelled = {
            let mut cancel = self.shared.cancel.lock().expect("cancel lock poisoned");
            std::mem::take(&mut *cancel)
        };
        cancelled.cancel();
        let worker = self
            .shared
            .worker
            .lock()
            .expect("worker lock poisoned")
            .take();
        if let Some(worker) = worker
            && let Err(error) = worker.await
            && error.is_panic()
        {
            tracing::error!(%error, "attachment sync worker panicked");
        }
    }

    /// Stop sync for good: every later call fails with `Closed`.
    pub async fn close(&self) {
        self.shared.closed.store(true, Ordering::SeqCst);
        self.stop_sync().await;
    }

    /// Run one pass now (reconcile references, run due transfers, expire the cache) and wait
    /// for it. Works with or without background sync.
    ///
    /// # Errors
    /// `Closed` after [`close`](Self::close); a store error that stopped the pass.
    pub async fn sync_now(&self) -> Result<PassSummary> {
        self.ensure_open()?;
        let cancel = self.current_cancel();
        self.shared.run_pass(&cancel).await
    }

    /// Ask the background worker for a pass soon (at most one per `sync_throttle`).
    pub fn trigger_sync(&self) {
        self.shared.trigger.notify_one();
    }

    /// Tell the queue the full set of attachments the app references, and reconcile the table
    /// with it now. This is what the watched stream does at every emission; apps that learn of
    /// changes some other way can push them here.
    ///
    /// # Errors
    /// `Closed` after `close`; store errors.
    pub async fn set_referenced(&self, items: Vec<WatchedAttachmentItem>) -> Result<()> {
        self.ensure_open()?;
        self.shared.set_latest_items(items);
        self.shared.reconcile().await?;
        self.trigger_sync();
        Ok(())
    }

    /// Turn downloads on or off while running.
    pub fn set_download_attachments(&self, enabled: bool) {
        self.shared
            .download_attachments
            .store(enabled, Ordering::SeqCst);
        self.shared.reconcile_pending.store(true, Ordering::SeqCst);
        self.trigger_sync();
    }

    /// Save a file: stream it to local storage, then record it as `QueuedUpload`.
    ///
    /// # Errors
    /// `InvalidInput` for a bad extension; `AlreadyExists` for an id that is taken (its row and
    /// file stay as they were); the stream's or the storage's error. On error nothing is
    /// recorded and no file is left behind.
    pub async fn save_file(&self, file: SaveFile) -> Result<Attachment> {
        self.shared.save_file(file, None).await
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
        self.shared
            .save_file(file, Some(bind_hook::<S, F>(update_hook)))
            .await
    }

    /// Mark an attachment for deletion: the next pass removes the remote object, the local file
    /// and the row.
    ///
    /// # Errors
    /// `NotFound` for an unknown id.
    pub async fn delete_file(&self, id: &AttachmentId) -> Result<()> {
        self.shared.delete_file(id, None).await
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
        self.shared
            .delete_file(id, Some(bind_hook::<S, F>(update_hook)))
            .await
    }

    /// Evict archived rows (and their local files) beyond the cache limits. Always returns.
    ///
    /// # Errors
    /// `Closed` after `close`; store errors.
    pub async fn expire_cache(&self) -> Result<u64> {
        self.ensure_open()?;
        self.shared.expire_cache().await
    }

    /// Forget every attachment: remove each row and the local file it references (and nothing
    /// else in local storage). Pending uploads are dropped. Returns how many rows were removed.
    ///
    /// # Errors
    /// `Closed` after `close`; store errors.
    pub async fn clear_queue(&self) -> Result<u64> {
        self.ensure_open()?;
        self.shared.clear_queue().await
    }

    /// Re-queue an attachment that a permanent failure archived, in the state it failed in.
    ///
    /// # Errors
    /// `NotFound` for an unknown id, or a failed upload whose local file is gone;
    /// `InvalidInput` when the attachment was not archived by a failure.
    pub async fn retry(&self, id: &AttachmentId) -> Result<()> {
        self.ensure_open()?;
        self.shared.retry(id).await
    }

    /// The row of one attachment.
    ///
    /// # Errors
    /// `Closed` after `close`; store errors.
    pub async fn get(&self, id: &AttachmentId) -> Result<Option<Attachment>> {
        self.ensure_open()?;
        self.shared.store.get(id).await
    }

    /// How many attachments are in each state.
    ///
    /// # Errors
    /// `Closed` after `close`; store errors.
    pub async fn status(&self) -> Result<StateCounts> {
        self.ensure_open()?;
        self.shared.store.count_by_state().await
    }

    /// A stream of [`AttachmentEvent`]s from now on. A subscriber that falls more than 1024
    /// events behind misses the oldest (and is told so by the receiver).
    pub fn subscribe(&self) -> broadcast::Receiver<AttachmentEvent> {
        self.shared.events.subscribe()
    }

    /// Read the local copy of an attachment.
    ///
    /// # Errors
    /// `NotFound` when the attachment or its local file does not exist.
    pub async fn read_file(&self, id: &AttachmentId) -> Result<ByteStream> {
        self.ensure_open()?;
        let row = self
            .shared
            .store
            .get(id)
            .await?
            .ok_or_else(|| Error::not_found(format!("attachment {id}")))?;
        let path = row
            .local_uri
            .ok_or_else(|| Error::not_found(format!("attachment {id} has no local file (yet)")))?;
        self.shared.local.read(&path).await
    }

    fn ensure_open(&self) -> Result<()> {
        if self.shared.closed.load(Ordering::SeqCst) {
            return Err(Error::closed());
        }
        Ok(())
    }

    fn current_cancel(&self) -> CancellationToken {
        self.shared
            .cancel
            .lock()
            .expect("cancel lock poisoned")
            .clone()
    }
}

/// The app's hook takes the attachment row; the store's hook only the connection: bind the row
/// in once it is known.
type BoundHook<C> = Box<dyn FnOnce(Attachment) -> UpdateHook<C> + Send + 'static>;

fn bind_hook<S, F>(hook: F) -> BoundHook<S::Connection>
where
    S: AttachmentStore,
    F: for<'c> FnOnce(&'c mut S::Connection, Attachment) -> BoxFuture<'c, Result<(), BoxError>>
        + Send
        + 'static,
{
    Box::new(move |attachment: Attachment| -> UpdateHook<S::Connection> {
        Box::new(move |connection: &mut S::Connection| hook(connection, attachment))
    })
}
