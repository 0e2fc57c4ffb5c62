//! The two storage traits: where contents live on this device, and where they are shared.
//!
//! Contents always travel as a [`ByteStream`], so no adapter ever needs a whole file in memory.
//! Adapters classify their failures into an [`Error`](crate::Error) kind and retryable flag;
//! the queue decides what to do about them.

use std::io;
use std::ops::Range;
use std::pin::Pin;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::Stream;

use crate::error::{Error, ErrorKind, Result};
use crate::model::Attachment;

/// A file's contents as a stream of chunks.
pub type ByteStream = Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send + 'static>>;

/// A [`ByteStream`] over chunks already in memory (for tests and small payloads).
///
/// ```
/// let stream = attachments_core::byte_stream_from(vec![b"hello ".to_vec(), b"world".to_vec()]);
/// # drop(stream);
/// ```
pub fn byte_stream_from<I, B>(chunks: I) -> ByteStream
where
    I: IntoIterator<Item = B>,
    I::IntoIter: Send + 'static,
    B: Into<Bytes>,
{
    Box::pin(futures_util::stream::iter(
        chunks.into_iter().map(|chunk| Ok(chunk.into())),
    ))
}

/// Read a whole stream into memory. Meant for tests and small files only: the queue itself
/// never does this.
pub async fn collect_bytes(mut stream: ByteStream) -> io::Result<Vec<u8>> {
    use futures_util::StreamExt;
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk?);
    }
    Ok(out)
}

/// Where attachment contents are kept on this device.
///
/// Paths are relative, `/`-separated, and checked with
/// [`validate_relative_path`](crate::validate_relative_path).
///
/// ```
/// use attachments_core::LocalStorage;
/// fn takes_any(_storage: std::sync::Arc<dyn LocalStorage>) {}
/// ```
#[async_trait]
pub trait LocalStorage: Send + Sync + 'static {
    /// Store `data` at `path`, replacing any file there, and return the number of bytes written.
    ///
    /// # Behavior
    /// Atomic: readers see the old contents or the new ones, never a part. If the stream fails
    /// or the future is dropped, nothing is left at `path` that was not there before, and no
    /// temporary file survives the call.
    ///
    /// # Errors
    /// `InvalidInput` for a path that would leave the root; the stream's own error if it fails.
    async fn write(&self, path: &str, data: ByteStream) -> Result<u64>;

    /// Store a file the remote also holds (a download), as [`LocalStorage::write`] does, but
    /// where losing it to a power cut is allowed: it may then be missing, never partial, and
    /// the queue's start-up check queues it for download again. A store may skip work that
    /// only protects the only copy (the file system's storage skips the directory sync). The
    /// default is `write`.
    ///
    /// # Errors
    /// As `write`.
    async fn write_downloaded(&self, path: &str, data: ByteStream) -> Result<u64> {
        self.write(path, data).await
    }

    /// Stream the contents at `path`.
    ///
    /// # Errors
    /// `NotFound` when there is no file; `InvalidInput` for a hostile path.
    async fn read(&self, path: &str) -> Result<ByteStream>;

    /// Remove the file at `path`.
    ///
    /// # Behavior
    /// Removing a missing file is `Ok`.
    ///
    /// # Errors
    /// `InvalidInput` for a hostile path.
    async fn delete(&self, path: &str) -> Result<()>;

    /// Whether a file exists at `path`.
    ///
    /// # Errors
    /// `InvalidInput` for a hostile path.
    async fn exists(&self, path: &str) -> Result<bool>;

    /// Every stored file's path (not temporary or staged files), in no particular order.
    async fn list(&self) -> Result<Vec<String>>;

    /// For each of `paths`, in order, whether a file exists there, as
    /// [`exists`](LocalStorage::exists) answers it (a hostile path is its own `InvalidInput`
    /// error, and leaves the others' answers alone). Start-up checks the files of a whole page
    /// of rows this way: a storage on a disk answers them in one trip to the blocking pool.
    /// The default asks `exists` for each path.
    async fn exists_many(&self, paths: &[String]) -> Vec<Result<bool>> {
        let mut answers = Vec::with_capacity(paths.len());
        for path in paths {
            answers.push(self.exists(path).await);
        }
        answers
    }

    /// Remove temporary files left behind by an earlier process that crashed mid-write, and
    /// return how many were removed.
    ///
    /// # Behavior
    /// Never removes the temporary file of a write still in progress in this process, nor a
    /// staged file, nor anything outside the storage's own temporary area.
    async fn remove_temp_files(&self) -> Result<u64>;

    /// Store `data` in the storage's staging area under the name `path`: complete and durable
    /// when this returns, but not visible at `path` (and not in `list`) until
    /// [`promote_staged`](LocalStorage::promote_staged). The queue saves a file this way and
    /// promotes it only after its row committed, so after a crash every file of an unfinished
    /// save is in the staging area, where start-up finds it without judging the app's files.
    ///
    /// # Behavior
    /// Atomic like `write`; replaces an earlier staged file of the same name.
    ///
    /// The default writes straight to `path` (a storage without a staging area); its
    /// `promote_staged` then has nothing to do.
    ///
    /// # Errors
    /// As `write`.
    async fn write_staged(&self, path: &str, data: ByteStream) -> Result<u64> {
        self.write(path, data).await
    }

    /// Move the staged file `path` to `path`, replacing any file there; durable when this
    /// returns.
    ///
    /// # Errors
    /// `NotFound` when nothing is staged under that name; `InvalidInput` for a hostile path.
    async fn promote_staged(&self, path: &str) -> Result<()> {
        let _ = path;
        Ok(())
    }

    /// Move the file at `path` into the staging area (the reverse of `promote_staged`), so it
    /// can be removed after its row is gone, or put back if the row stays. Returns whether
    /// there was a file to move.
    ///
    /// The default moves nothing and returns whether the file exists; `discard_staged` then
    /// deletes it at `path`.
    ///
    /// # Errors
    /// `InvalidInput` for a hostile path.
    async fn stage_existing(&self, path: &str) -> Result<bool> {
        self.exists(path).await
    }

    /// Remove the staged file `path`. Removing a missing one is `Ok`.
    ///
    /// The default deletes the file at `path` (see `write_staged`).
    ///
    /// # Errors
    /// `InvalidInput` for a hostile path.
    async fn discard_staged(&self, path: &str) -> Result<()> {
        self.delete(path).await
    }

    /// Stream a staged file (start-up checks its checksum before promoting it).
    ///
    /// # Errors
    /// `NotFound` when nothing is staged under that name.
    async fn read_staged(&self, path: &str) -> Result<ByteStream> {
        self.read(path).await
    }

    /// The names of every staged file, in no particular order. The default has none.
    async fn list_staged(&self) -> Result<Vec<String>> {
        Ok(Vec::new())
    }

    /// Open a downloaded file of `size` bytes to be written in parts, each at its offset and
    /// several at once (a download in parallel byte ranges), that becomes the staged file
    /// `path` when [`StagedParts::finish`] returns. `None` when this storage only writes
    /// streams in order: the default, and the queue then downloads in one stream through
    /// [`write_staged`](LocalStorage::write_staged).
    ///
    /// # Behavior
    /// As `write_staged` under [`write_downloaded`](LocalStorage::write_downloaded)'s
    /// rules: the finished file is complete and its contents durable, and if the writer is
    /// dropped before `finish`, nothing is left behind.
    ///
    /// # Errors
    /// As `write`.
    async fn create_staged_parts(
        &self,
        path: &str,
        size: u64,
    ) -> Result<Option<Box<dyn StagedParts>>> {
        let _ = (path, size);
        Ok(None)
    }

    /// Take this storage for one queue: a second queue on the same files (in this process
    /// or another) must be refused, since its start-up would remove the first one's staged
    /// and temporary files. The queue holds the returned lock until it is closed or dropped.
    ///
    /// The default takes no lock (`Ok(None)`): a storage that cannot be shared needs none.
    ///
    /// # Errors
    /// `InUse` while another holder has the lock; I/O errors taking it.
    fn lock_exclusive(&self) -> Result<Option<ExclusiveLock>> {
        Ok(None)
    }
}

/// A staged file being written in parts at their offsets, from
/// [`LocalStorage::create_staged_parts`]. Dropped before [`finish`](StagedParts::finish), it
/// leaves nothing behind.
///
/// ```
/// use attachments_core::{byte_stream_from, Result, StagedParts};
/// // a download's parts may arrive in any order
/// async fn write_two_parts(parts: Box<dyn StagedParts>) -> Result<()> {
///     parts.write_at(3, byte_stream_from(vec![b"def".to_vec()])).await?;
///     parts.write_at(0, byte_stream_from(vec![b"abc".to_vec()])).await?;
///     parts.finish().await
/// }
/// ```
#[async_trait]
pub trait StagedParts: Send + Sync + 'static {
    /// Write `data` at `offset` and return how many bytes it held. Writes of ranges that do
    /// not overlap may run at once.
    ///
    /// # Errors
    /// `InvalidInput` when the data would go past the file's size; the stream's own error.
    async fn write_at(&self, offset: u64, data: ByteStream) -> Result<u64>;

    /// Stream back `len` bytes from `offset`, as written (the queue hashes the file from
    /// here, in order, while later parts are still being written).
    ///
    /// # Errors
    /// `InvalidInput` for a range past the file's size; I/O errors.
    async fn read_at(&self, offset: u64, len: u64) -> Result<ByteStream>;

    /// Make the file the staged file it was opened as, complete and its contents durable.
    ///
    /// # Errors
    /// I/O errors; the file is then removed.
    async fn finish(&self) -> Result<()>;
}

/// Bytes of an object from [`RemoteStorage::download_range`], with what the remote said of the
/// whole object when it served them.
///
/// ```
/// let part = attachments_core::RangeBody::new(10, Some("etag-1".into()),
///     attachments_core::byte_stream_from(vec![b"abc".to_vec()]));
/// assert_eq!(part.object_size, 10);
/// ```
#[non_exhaustive]
pub struct RangeBody {
    /// The whole object's size when the range was served.
    pub object_size: u64,
    /// Tells this version of the object from a later one (an `ETag`, a modification time);
    /// `None` when the remote cannot tell.
    pub version: Option<String>,
    /// The bytes of the range that are within the object.
    pub data: ByteStream,
}

impl RangeBody {
    /// A range's bytes and what the remote said of the whole object.
    pub fn new(object_size: u64, version: Option<String>, data: ByteStream) -> Self {
        RangeBody {
            object_size,
            version,
            data,
        }
    }
}

impl std::fmt::Debug for RangeBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RangeBody")
            .field("object_size", &self.object_size)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

/// The error of an object that changed between two ranges of one download: the download
/// starts over (retryable), with the new version.
///
/// ```
/// let error = attachments_core::object_changed("photos/a.jpg");
/// assert!(error.is_retryable());
/// ```
pub fn object_changed(name: &str) -> Error {
    Error::new(
        ErrorKind::Corrupt,
        format!("the remote object {name:?} changed while it was downloaded in parts"),
    )
    .with_retryable(true)
}

/// A lock a storage or store hands to the queue that uses it; released when dropped.
///
/// ```
/// let lock = attachments_core::ExclusiveLock::new(std::fs::File::open("/dev/null").unwrap());
/// drop(lock); // released
/// ```
pub struct ExclusiveLock {
    _held: Box<dyn Send + Sync + 'static>,
}

impl ExclusiveLock {
    /// A lock held for as long as `held` lives (for example a locked `std::fs::File`).
    pub fn new(held: impl Send + Sync + 'static) -> Self {
        ExclusiveLock {
            _held: Box::new(held),
        }
    }
}

impl std::fmt::Debug for ExclusiveLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ExclusiveLock")
    }
}

/// Where attachment contents are shared between devices: S3, Supabase Storage, a directory.
///
/// The object is addressed by [`Attachment::filename`] (adapters may add a prefix).
///
/// # Names
/// A filename has passed [`validate_relative_path`](crate::validate_relative_path): relative,
/// `/`-separated, no `..`, NUL, backslash or control characters, at most
/// [`MAX_PATH_LEN`](crate::MAX_PATH_LEN) bytes. A service with a narrower alphabet (Supabase
/// Storage) refuses a name outside it with `InvalidInput` before any request, naming the
/// character, and never rewrites it (other devices look the object up by the same name);
/// the test kit's remote suite takes the alphabet an adapter declares.
///
/// # Errors: what an adapter reports
/// Only adapters classify; the queue's error handler decides from kind and retryability.
///
/// | condition | kind | retryable |
/// | --- | --- | --- |
/// | object missing on download (404, `NoSuchKey`) | `NotFound` | no (the default handler retries downloads anyway: the author may not have uploaded yet) |
/// | object missing on delete | — (`Ok`) | — |
/// | connection refused/reset, DNS failure, 5xx, 429/throttling, 423 | `Unavailable` | yes |
/// | a request or body that timed out | `TimedOut` | yes |
/// | credentials that expire and are refreshed (expired token, STS `ExpiredToken`, clock skew) | `PermissionDenied` | yes |
/// | credentials refused for good, missing rights (403 on a valid token) | `PermissionDenied` | no |
/// | missing bucket, wrong endpoint or region, a body encoding the server refuses | `Config` | no |
/// | a name or size the service refuses (invalid key, too large) | `InvalidInput` | no |
/// | a body that does not match its size or checksum | `Corrupt` | yes |
/// | the local disk full while streaming | `StorageFull` | yes |
/// | anything else | `Other` | no |
///
/// Messages never contain secrets (keys, tokens, signed URLs).
///
/// ```
/// use attachments_core::RemoteStorage;
/// fn takes_any(_storage: std::sync::Arc<dyn RemoteStorage>) {}
/// ```
#[async_trait]
pub trait RemoteStorage: Send + Sync + 'static {
    /// Store `data` as the object for `attachment`.
    ///
    /// # Behavior
    /// Overwrites an existing object, so retrying after a crash succeeds. `attachment.size`,
    /// when set, is the exact length of `data`; `attachment.media_type` should be recorded as
    /// the object's content type.
    ///
    /// # Errors
    /// Classified: temporary failures retryable, refusals permanent.
    async fn upload(&self, attachment: &Attachment, data: ByteStream) -> Result<()>;

    /// Stream the object for `attachment`.
    ///
    /// # Errors
    /// `NotFound` (not retryable) when there is no such object.
    async fn download(&self, attachment: &Attachment) -> Result<ByteStream>;

    /// Whether [`download_range`](RemoteStorage::download_range) works: the queue then
    /// downloads large objects in byte ranges, several at once. The default is `false`, and
    /// the queue uses [`download`](RemoteStorage::download).
    fn supports_ranges(&self) -> bool {
        false
    }

    /// Stream the bytes `range` of the object for `attachment`, with the object's size and
    /// version (S3: `GetObject` with a `Range` header).
    ///
    /// # Behavior
    /// A range that ends past the object's end is cut at it (the last part); one that starts
    /// exactly at the end is empty (the first range of an empty object). When `version` is
    /// given, the object must still be that version.
    ///
    /// # Errors
    /// `NotFound` as `download`; `InvalidInput` (not retryable) for an empty range or one
    /// that starts past the object's end; [`object_changed`] when the object is no longer
    /// `version`; `Corrupt` for an answer that is not the range asked for. The default
    /// refuses: a remote that supports ranges says so with `supports_ranges`.
    async fn download_range(
        &self,
        attachment: &Attachment,
        range: Range<u64>,
        version: Option<&str>,
    ) -> Result<RangeBody> {
        let _ = (attachment, range, version);
        Err(Error::new(
            ErrorKind::Other,
            "this remote does not download byte ranges",
        ))
    }

    /// Remove the object for `attachment`.
    ///
    /// # Behavior
    /// Removing a missing object is `Ok`.
    async fn delete(&self, attachment: &Attachment) -> Result<()>;
}

/// Share one storage between the queue and the app: `Arc<FsLocalStorage>` is a storage too.
#[async_trait]
impl<T: LocalStorage + ?Sized> LocalStorage for std::sync::Arc<T> {
    async fn write(&self, path: &str, data: ByteStream) -> Result<u64> {
        (**self).write(path, data).await
    }
    async fn write_downloaded(&self, path: &str, data: ByteStream) -> Result<u64> {
        (**self).write_downloaded(path, data).await
    }
    async fn read(&self, path: &str) -> Result<ByteStream> {
        (**self).read(path).await
    }
    async fn delete(&self, path: &str) -> Result<()> {
        (**self).delete(path).await
    }
    async fn exists(&self, path: &str) -> Result<bool> {
        (**self).exists(path).await
    }
    async fn list(&self) -> Result<Vec<String>> {
        (**self).list().await
    }
    async fn exists_many(&self, paths: &[String]) -> Vec<Result<bool>> {
        (**self).exists_many(paths).await
    }
    async fn remove_temp_files(&self) -> Result<u64> {
        (**self).remove_temp_files().await
    }
    async fn write_staged(&self, path: &str, data: ByteStream) -> Result<u64> {
        (**self).write_staged(path, data).await
    }
    async fn promote_staged(&self, path: &str) -> Result<()> {
        (**self).promote_staged(path).await
    }
    async fn stage_existing(&self, path: &str) -> Result<bool> {
        (**self).stage_existing(path).await
    }
    async fn discard_staged(&self, path: &str) -> Result<()> {
        (**self).discard_staged(path).await
    }
    async fn read_staged(&self, path: &str) -> Result<ByteStream> {
        (**self).read_staged(path).await
    }
    async fn list_staged(&self) -> Result<Vec<String>> {
        (**self).list_staged().await
    }
    async fn create_staged_parts(
        &self,
        path: &str,
        size: u64,
    ) -> Result<Option<Box<dyn StagedParts>>> {
        (**self).create_staged_parts(path, size).await
    }
    fn lock_exclusive(&self) -> Result<Option<ExclusiveLock>> {
        (**self).lock_exclusive()
    }
}

/// Share one remote between queues or with the app: `Arc<S3RemoteStorage>` is a remote too.
#[async_trait]
impl<T: RemoteStorage + ?Sized> RemoteStorage for std::sync::Arc<T> {
    async fn upload(&self, attachment: &Attachment, data: ByteStream) -> Result<()> {
        (**self).upload(attachment, data).await
    }
    async fn download(&self, attachment: &Attachment) -> Result<ByteStream> {
        (**self).download(attachment).await
    }
    fn supports_ranges(&self) -> bool {
        (**self).supports_ranges()
    }
    async fn download_range(
        &self,
        attachment: &Attachment,
        range: Range<u64>,
        version: Option<&str>,
    ) -> Result<RangeBody> {
        (**self).download_range(attachment, range, version).await
    }
    async fn delete(&self, attachment: &Attachment) -> Result<()> {
        (**self).delete(attachment).await
    }
}
