//! A remote storage for the attachments queue, written the way a third party would write one:
//! on `attachments-core` alone, checked by `attachments-testkit`'s suite.
//!
//! [`FlatDirRemoteStorage`] keeps every object as one file in a single flat directory, such as
//! a folder a sync tool (Syncthing, a NAS share, a mounted drive) shares between devices. Unlike
//! the workspace's own `FsRemoteStorage`, which mirrors object names as nested directories, it
//! encodes each name into one lowercase ASCII file name ([`FlatDirRemoteStorage::file_name_for`]),
//! so the directory also works on case-insensitive file systems (macOS, Windows, FAT cards),
//! where `Photo.jpg` and `photo.jpg` would otherwise be one file.
//!
//! ```no_run
//! use attachments_core::{AttachmentQueue, AttachmentStore, LocalStorage};
//! use third_party_remote::FlatDirRemoteStorage;
//!
//! # async fn demo<S: AttachmentStore>(store: S, local: impl LocalStorage) -> attachments_core::Result<()> {
//! let remote = FlatDirRemoteStorage::new("/mnt/shared/attachments")?;
//! let queue = AttachmentQueue::builder(store, local, remote).build()?;
//! queue.start_sync().await?;
//! # Ok(()) }
//! ```

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use attachments_core::{
    Attachment, ByteStream, Error, MAX_PATH_COMPONENT_LEN, RemoteStorage, Result, async_trait,
    validate_relative_path,
};
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio_util::io::ReaderStream;

/// Size of the reads a download streams: large enough that a big file is few system calls,
/// small enough that many parallel downloads hold little memory.
const DOWNLOAD_CHUNK: usize = 256 * 1024;

/// Uploads in progress are written under this prefix first. No object's file name starts with
/// a dot (see [`FlatDirRemoteStorage::file_name_for`]), so a part file never shadows an object.
const PART_PREFIX: &str = ".upload-";

/// A remote storage keeping each object as one file in a flat directory.
///
/// # Behaviour
/// Uploads are atomic (a part file, synced, then renamed over the object), so another device
/// reading the directory sees the old object or the new one, never a part. A process that dies
/// mid-upload leaves a `.upload-*.part` file, which no object can be mistaken for; since other
/// devices may be uploading into the same directory, this storage never removes part files it
/// did not write in this process.
///
/// # Errors
/// Names are checked with [`validate_relative_path`] and refused as `InvalidInput` (permanent)
/// when hostile or too long for one file name; file-system errors are classified by
/// [`Error::from_io`] (a missing object is `NotFound`, a full disk a retryable `StorageFull`,
/// missing rights `PermissionDenied`).
///
/// ```
/// use third_party_remote::FlatDirRemoteStorage;
/// let dir = tempfile::tempdir().unwrap();
/// let remote = FlatDirRemoteStorage::new(dir.path()).unwrap();
/// assert_eq!(remote.root(), dir.path());
/// ```
#[derive(Debug)]
pub struct FlatDirRemoteStorage {
    root: PathBuf,
    next_part: AtomicU64,
}

impl FlatDirRemoteStorage {
    /// A remote in the directory `root`, created if missing.
    ///
    /// # Errors
    /// The file system's error creating the directory, classified by [`Error::from_io`].
    pub fn new(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        std::fs::create_dir_all(&root)
            .map_err(|e| Error::from_io(e, format!("create {}", root.display())))?;
        Ok(FlatDirRemoteStorage {
            root,
            next_part: AtomicU64::new(0),
        })
    }

    /// The directory holding the objects.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The file name an object is kept under: `a-z`, `0-9`, `-`, `_` and `.` (but not a leading
    /// one) stay as they are; every other byte, `/` and capital letters included, becomes `%XX`.
    /// Different names never meet in one file, even where the file system ignores case.
    ///
    /// # Errors
    /// `InvalidInput` for a name [`validate_relative_path`] refuses, or one whose file name
    /// would be longer than [`MAX_PATH_COMPONENT_LEN`] bytes. The queue's own names
    /// (`{id}.{extension}`, at most 145 bytes of letters, digits, `-`, `_` and `.`) always fit.
    ///
    /// ```
    /// use third_party_remote::FlatDirRemoteStorage;
    /// assert_eq!(FlatDirRemoteStorage::file_name_for("photos/Cat.jpg").unwrap(), "photos%2F%43at.jpg");
    /// assert_eq!(FlatDirRemoteStorage::file_name_for(".hidden").unwrap(), "%2Ehidden");
    /// assert!(FlatDirRemoteStorage::file_name_for("../escape").is_err());
    /// ```
    pub fn file_name_for(object_name: &str) -> Result<String> {
        validate_relative_path(object_name)?;
        let mut file_name = String::with_capacity(object_name.len());
        for (position, byte) in object_name.bytes().enumerate() {
            match byte {
                b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' => file_name.push(char::from(byte)),
                b'.' if position > 0 => file_name.push('.'),
                _ => {
                    let _ = write!(file_name, "%{byte:02X}");
                }
            }
        }
        if file_name.len() > MAX_PATH_COMPONENT_LEN {
            // the name itself is left out: it may be kilobytes long
            return Err(Error::invalid_input(format!(
                "an object name of {} bytes needs a file name of {} bytes, more than {MAX_PATH_COMPONENT_LEN}",
                object_name.len(),
                file_name.len()
            )));
        }
        Ok(file_name)
    }

    fn object_path(&self, attachment: &Attachment) -> Result<PathBuf> {
        Ok(self.root.join(Self::file_name_for(&attachment.filename)?))
    }

    /// Make a rename in the directory survive a power cut: the object is the only copy other
    /// devices will find once the uploader marks it synced.
    async fn sync_directory(&self) -> std::io::Result<()> {
        if cfg!(unix) {
            tokio::fs::File::open(&self.root).await?.sync_all().await?;
        }
        Ok(())
    }
}

/// A part file that is removed unless the upload completes.
struct PartFile {
    path: PathBuf,
    renamed: bool,
}

impl Drop for PartFile {
    fn drop(&mut self) {
        // A dropped upload future (a cancelled transfer) cannot await, so the part file goes
        // with a blocking call: one unlink, rare, and it must not outlive the upload.
        if !self.renamed {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[async_trait]
impl RemoteStorage for FlatDirRemoteStorage {
    async fn upload(&self, attachment: &Attachment, mut data: ByteStream) -> Result<()> {
        let target = self.object_path(attachment)?;
        let context = |action: &str| format!("{action} object {}", attachment.filename);
        let number = self.next_part.fetch_add(1, Ordering::Relaxed);
        let mut part = PartFile {
            path: self
                .root
                .join(format!("{PART_PREFIX}{}-{number}.part", std::process::id())),
            renamed: false,
        };
        let mut file = tokio::fs::File::create(&part.path)
            .await
            .map_err(|e| Error::from_io(e, context("upload")))?;
        while let Some(chunk) = data.next().await {
            // `Error::from` keeps the kind of an error the stream carries from its own source
            let chunk = chunk.map_err(Error::from)?;
            file.write_all(&chunk)
                .await
                .map_err(|e| Error::from_io(e, context("upload")))?;
        }
        file.flush()
            .await
            .map_err(|e| Error::from_io(e, context("upload")))?;
        file.sync_all()
            .await
            .map_err(|e| Error::from_io(e, context("sync")))?;
        drop(file);
        tokio::fs::rename(&part.path, &target)
            .await
            .map_err(|e| Error::from_io(e, context("store")))?;
        part.renamed = true;
        self.sync_directory()
            .await
            .map_err(|e| Error::from_io(e, context("sync the directory of")))
    }

    async fn download(&self, attachment: &Attachment) -> Result<ByteStream> {
        let path = self.object_path(attachment)?;
        // a missing file is `NotFound`, which the queue retries later: the uploading device
        // may not have synced the directory yet
        let file = tokio::fs::File::open(&path)
            .await
            .map_err(|e| Error::from_io(e, format!("download object {}", attachment.filename)))?;
        Ok(Box::pin(ReaderStream::with_capacity(file, DOWNLOAD_CHUNK)))
    }

    async fn delete(&self, attachment: &Attachment) -> Result<()> {
        let path = self.object_path(attachment)?;
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::from_io(
                e,
                format!("delete object {}", attachment.filename),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::FlatDirRemoteStorage;

    #[test]
    fn names_that_differ_only_in_case_get_different_files() {
        let lower = FlatDirRemoteStorage::file_name_for("photo.jpg").unwrap();
        let upper = FlatDirRemoteStorage::file_name_for("Photo.jpg").unwrap();
        assert_ne!(lower.to_lowercase(), upper.to_lowercase());
    }

    #[test]
    fn escapes_cannot_be_forged_by_a_name() {
        // a name that contains what looks like an escape has its `%` escaped in turn
        let slash = FlatDirRemoteStorage::file_name_for("a/b").unwrap();
        let forged = FlatDirRemoteStorage::file_name_for("a%2Fb").unwrap();
        assert_eq!(slash, "a%2Fb");
        assert_eq!(forged, "a%252%46b");
    }

    #[test]
    fn unicode_is_escaped_byte_by_byte() {
        assert_eq!(
            FlatDirRemoteStorage::file_name_for("été.jpg").unwrap(),
            "%C3%A9t%C3%A9.jpg"
        );
    }

    #[test]
    fn a_name_too_long_for_one_file_is_invalid_input() {
        let name = "É".repeat(60); // 120 bytes, 360 once escaped
        let error = FlatDirRemoteStorage::file_name_for(&name).unwrap_err();
        assert_eq!(error.kind(), attachments_core::ErrorKind::InvalidInput);
        assert!(!error.is_retryable());
    }
}
