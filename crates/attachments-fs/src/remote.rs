//! `FsRemoteStorage`: a directory used as the remote (the embedded default, or a mounted
//! network share).

use std::path::Path;

use async_trait::async_trait;
use attachments_core::{Attachment, ByteStream, LocalStorage, RemoteStorage, Result};

use crate::local::FsLocalStorage;

/// A directory as the remote store: the object of an attachment is the file at its
/// `filename` below the root. Uploads are atomic, as [`FsLocalStorage`] writes are, so several
/// queues (devices) may share one directory.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use attachments_core::{byte_stream_from, Attachment, AttachmentId, AttachmentState, RemoteStorage};
/// let dir = tempfile::tempdir().unwrap();
/// let remote = attachments_fs::FsRemoteStorage::new(dir.path()).unwrap();
/// let row = Attachment::new(AttachmentId::new("a").unwrap(), "a.txt", AttachmentState::QueuedUpload, 0);
/// remote.upload(&row, byte_stream_from(vec![b"hi".to_vec()])).await.unwrap();
/// assert!(dir.path().join("a.txt").exists());
/// # });
/// ```
#[derive(Debug, Clone)]
pub struct FsRemoteStorage {
    files: FsLocalStorage,
}

impl FsRemoteStorage {
    /// A remote rooted at `root`, which is created if missing.
    ///
    /// # Errors
    /// When the directory cannot be created.
    pub fn new(root: impl AsRef<Path>) -> Result<Self> {
        Ok(FsRemoteStorage {
            files: FsLocalStorage::new(root)?,
        })
    }

    /// The root directory (canonical).
    pub fn root(&self) -> &Path {
        self.files.root()
    }
}

#[async_trait]
impl RemoteStorage for FsRemoteStorage {
    async fn upload(&self, attachment: &Attachment, data: ByteStream) -> Result<()> {
        self.files
            .write(&attachment.filename, data)
            .await
            .map(|_| ())
    }

    async fn download(&self, attachment: &Attachment) -> Result<ByteStream> {
        self.files.read(&attachment.filename).await
    }

    async fn delete(&self, attachment: &Attachment) -> Result<()> {
        self.files.delete(&attachment.filename).await
    }
}
