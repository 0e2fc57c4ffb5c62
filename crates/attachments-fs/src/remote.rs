//! `FsRemoteStorage`: a directory used as the remote (the embedded default, or a mounted
//! network share).

use std::ops::Range;
use std::path::Path;

use async_trait::async_trait;
use attachments_core::{Attachment, ByteStream, LocalStorage, RangeBody, RemoteStorage, Result};

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

impl FsRemoteStorage {
    /// Remove what an earlier upload of this object, cut short by a killed process, left in
    /// the temporary area. Object names are unique per attachment, so these can only be
    /// earlier tries of the same attachment. A failure only leaves the litter.
    async fn remove_earlier_tries(&self, tag: &str) {
        if let Err(error) = self.files.remove_temp_files_tagged(tag).await {
            tracing::warn!(%error, "could not remove an interrupted upload's temp file");
        }
    }
}

/// The prefix of the temp files of uploads of `filename`: a hash of the name (FNV-1a), so any
/// name fits in a file name of the temporary area.
fn upload_tag(filename: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in filename.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("u{hash:016x}~")
}

#[async_trait]
impl RemoteStorage for FsRemoteStorage {
    async fn upload(&self, attachment: &Attachment, data: ByteStream) -> Result<()> {
        let tag = upload_tag(&attachment.filename);
        self.remove_earlier_tries(&tag).await;
        self.files
            .write_tagged(&attachment.filename, data, &tag)
            .await
            .map(|_| ())
    }

    async fn download(&self, attachment: &Attachment) -> Result<ByteStream> {
        self.files.read(&attachment.filename).await
    }

    fn supports_ranges(&self) -> bool {
        true
    }

    async fn download_range(
        &self,
        attachment: &Attachment,
        range: Range<u64>,
        version: Option<&str>,
    ) -> Result<RangeBody> {
        crate::parts::read_stored_range(&self.files, &attachment.filename, range, version).await
    }

    async fn delete(&self, attachment: &Attachment) -> Result<()> {
        self.files.delete(&attachment.filename).await?;
        self.remove_earlier_tries(&upload_tag(&attachment.filename))
            .await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use attachments_core::{AttachmentId, AttachmentState, byte_stream_from};

    fn row(filename: &str) -> Attachment {
        let id = AttachmentId::new(filename.replace('.', "-")).unwrap();
        Attachment::new(id, filename, AttachmentState::QueuedUpload, 0)
    }

    #[tokio::test]
    async fn an_upload_removes_what_a_killed_try_of_the_same_object_left() {
        let dir = tempfile::tempdir().unwrap();
        let remote = FsRemoteStorage::new(dir.path()).unwrap();
        let temp = dir.path().join(crate::TEMP_DIR);
        std::fs::create_dir_all(&temp).unwrap();
        // what a process killed mid-upload leaves, for this object and for another one
        let ours = temp.join(format!("{}dead-0.part", upload_tag("a.jpg")));
        let theirs = temp.join(format!("{}dead-1.part", upload_tag("b.jpg")));
        std::fs::write(&ours, b"half").unwrap();
        std::fs::write(&theirs, b"half").unwrap();

        remote
            .upload(&row("a.jpg"), byte_stream_from(vec![b"whole".to_vec()]))
            .await
            .unwrap();
        assert!(!ours.exists(), "the earlier try of a.jpg is gone");
        assert!(theirs.exists(), "another object's try is not ours to judge");

        // deleting an object removes its earlier tries too
        remote.delete(&row("b.jpg")).await.unwrap();
        assert!(!theirs.exists());
        assert_eq!(std::fs::read(dir.path().join("a.jpg")).unwrap(), b"whole");
    }
}
