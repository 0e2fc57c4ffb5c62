//! Building a queue: its settings ([`QueueConfig`]), checked once in
//! [`AttachmentQueueBuilder::build`], which also takes the exclusive locks.

use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::BoxStream;
use tokio::sync::broadcast;

use super::claims::Claims;
use super::engine::{Clock, Engine};
use super::lifecycle::Lifecycle;
use super::reconcile::References;
use super::worker::Schedule;
use super::{AttachmentQueue, StopOnDrop};
use crate::error::{Error, Result};
use crate::model::ReferencedAttachments;
use crate::policy::{AttachmentErrorHandler, DefaultErrorHandler, RetryPolicy};
use crate::storage::{LocalStorage, RemoteStorage};
use crate::store::AttachmentStore;

/// Produces a fresh stream of readings of the attachments the app references, each time sync
/// starts.
pub type WatchSource =
    Arc<dyn Fn() -> BoxStream<'static, Result<ReferencedAttachments>> + Send + Sync>;

/// Settings of a queue; every field has the default a mobile app wants. Checked once, by
/// [`AttachmentQueueBuilder::build`].
///
/// ```
/// use std::time::Duration;
/// let mut config = attachments_core::QueueConfig::default();
/// config.max_concurrency = 4;
/// config.sync_interval = Duration::from_secs(60);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct QueueConfig {
    /// Time between periodic passes (default 30 s).
    pub sync_interval: Duration,
    /// Shortest time between two passes, however often triggered (default 1 s).
    pub sync_throttle: Duration,
    /// Archived rows kept as a cache (default 100).
    pub archived_cache_limit: usize,
    /// Bytes of archived local files kept as a cache (default: no byte limit).
    pub archived_cache_bytes: Option<u64>,
    /// Transfers running at once (default 8, at least 1).
    pub max_concurrency: usize,
    /// A transfer that moves no byte for this long is cancelled as a retryable failure
    /// (default 60 s, more than zero).
    pub transfer_timeout: Duration,
    /// The largest download accepted for an attachment whose size is not recorded yet
    /// (default: no limit). A larger object is refused (`InvalidInput`) as it streams in.
    pub max_download_bytes: Option<u64>,
    /// Downloads of objects larger than this, from a remote that supports byte ranges
    /// ([`RemoteStorage::supports_ranges`](crate::RemoteStorage::supports_ranges)), fetch
    /// ranges of this many bytes, several at once (default 16 MiB, at least 1 MiB;
    /// `u64::MAX` downloads every file in one stream).
    pub download_part_size: u64,
    /// Ranges of one download fetched at once (default 4, at least 1).
    pub download_part_concurrency: usize,
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
            max_concurrency: 8,
            transfer_timeout: Duration::from_secs(60),
            max_download_bytes: None,
            download_part_size: 16 * 1024 * 1024,
            download_part_concurrency: 4,
            retry: RetryPolicy::default(),
        }
    }
}

impl QueueConfig {
    /// `InvalidInput` naming the first setting that cannot work.
    fn validate(&self) -> Result<()> {
        let refuse = |message: &str| Err(Error::invalid_input(message.to_owned()));
        if self.max_concurrency == 0 {
            return refuse("max_concurrency is 0: the queue would never start a transfer");
        }
        if self.transfer_timeout.is_zero() {
            return refuse("transfer_timeout is 0: every transfer would time out at once");
        }
        if self.sync_interval.is_zero() {
            return refuse("sync_interval is 0: the worker would never rest");
        }
        if self.max_download_bytes == Some(0) {
            return refuse("max_download_bytes is 0: no download could succeed");
        }
        if self.download_part_size < 1024 * 1024 {
            return refuse("download_part_size is below 1 MiB: too many requests per file");
        }
        if self.download_part_concurrency == 0 {
            return refuse("download_part_concurrency is 0: no range would be fetched");
        }
        let retry = &self.retry;
        if !retry.multiplier.is_finite() || retry.multiplier < 1.0 {
            return refuse("retry.multiplier must be a finite number of at least 1");
        }
        if retry.max_backoff < retry.initial_backoff {
            return refuse("retry.max_backoff is shorter than retry.initial_backoff");
        }
        if retry.max_attempts == Some(0) {
            return refuse(
                "retry.max_attempts is 0: use None to retry without limit, or 1 or more",
            );
        }
        Ok(())
    }
}

/// Builds an [`AttachmentQueue`]; see [`AttachmentQueue::builder`].
pub struct AttachmentQueueBuilder<S: AttachmentStore> {
    store: S,
    local: Arc<dyn LocalStorage>,
    remote: Arc<dyn RemoteStorage>,
    config: QueueConfig,
    download_attachments: bool,
    error_handler: Arc<dyn AttachmentErrorHandler>,
    watch_source: Option<WatchSource>,
}

impl<S: AttachmentStore> AttachmentQueueBuilder<S> {
    pub(super) fn new(
        store: S,
        local: Arc<dyn LocalStorage>,
        remote: Arc<dyn RemoteStorage>,
    ) -> Self {
        AttachmentQueueBuilder {
            store,
            local,
            remote,
            config: QueueConfig::default(),
            download_attachments: true,
            error_handler: Arc::new(DefaultErrorHandler),
            watch_source: None,
        }
    }

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

    /// Whether referenced attachments are downloaded (default true); changed later with
    /// [`AttachmentQueue::set_download_attachments`].
    pub fn download_attachments(mut self, enabled: bool) -> Self {
        self.download_attachments = enabled;
        self
    }

    /// Transfers running at once (at least 1).
    pub fn max_concurrency(mut self, transfers: usize) -> Self {
        self.config.max_concurrency = transfers;
        self
    }

    /// How long a transfer may go without moving a byte.
    pub fn transfer_timeout(mut self, timeout: Duration) -> Self {
        self.config.transfer_timeout = timeout;
        self
    }

    /// The largest download accepted for an attachment whose size is not recorded yet.
    pub fn max_download_bytes(mut self, bytes: u64) -> Self {
        self.config.max_download_bytes = Some(bytes);
        self
    }

    /// Bytes per range, and ranges fetched at once, when a large file is downloaded in parts
    /// (see [`QueueConfig::download_part_size`]).
    pub fn download_parts(mut self, part_size: u64, concurrency: usize) -> Self {
        self.config.download_part_size = part_size;
        self.config.download_part_concurrency = concurrency;
        self
    }

    /// Backoff and attempt limit for failed transfers.
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.config.retry = policy;
        self
    }

    /// Decides, per failed transfer, between retry and archive: a type implementing
    /// [`AttachmentErrorHandler`], or a closure `Fn(&Attachment, Operation, &Error) -> ErrorAction`.
    pub fn error_handler(mut self, handler: impl AttachmentErrorHandler) -> Self {
        self.error_handler = Arc::new(handler);
        self
    }

    /// The attachments the app references: `source` is called at each `start_sync` and must
    /// return a stream that emits a reading of the full set of referenced items, now and after
    /// every change.
    pub fn watch_attachments<F>(mut self, source: F) -> Self
    where
        F: Fn() -> BoxStream<'static, Result<ReferencedAttachments>> + Send + Sync + 'static,
    {
        self.watch_source = Some(Arc::new(source));
        self
    }

    /// Replace all settings at once (the download toggle is set separately).
    pub fn config(mut self, config: QueueConfig) -> Self {
        self.config = config;
        self
    }

    /// The queue. Nothing runs until [`AttachmentQueue::start_sync`] or
    /// [`AttachmentQueue::sync_now`].
    ///
    /// # Errors
    /// `InvalidInput` naming a setting that cannot work; `InUse` when another queue (in this
    /// process or another) holds the store's table or the local storage: two queues on the
    /// same files would remove each other's staged files.
    pub fn build(self) -> Result<AttachmentQueue<S>> {
        self.config.validate()?;
        let mut locks = Vec::new();
        locks.extend(self.store.lock_exclusive()?);
        locks.extend(self.local.lock_exclusive()?);
        let (events, _) = broadcast::channel(1024);
        let engine = Arc::new(Engine {
            store: self.store,
            local: self.local,
            remote: self.remote,
            config: self.config,
            error_handler: self.error_handler,
            watch_source: self.watch_source,
            events,
            clock: Clock::new(),
            lifecycle: Lifecycle::new(locks),
            claimed_ids: Arc::new(Claims::new()),
            claimed_paths: Arc::new(Claims::new()),
            references: References::new(self.download_attachments),
            schedule: Schedule::new(),
        });
        Ok(AttachmentQueue {
            _stop_on_drop: Arc::new(StopOnDrop {
                cancel: engine.lifecycle.cancel_slot(),
            }),
            engine,
        })
    }
}
