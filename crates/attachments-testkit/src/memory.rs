//! In-memory storages: the reference implementations of the storage contracts, for tests.
//! They hold whole files in memory, which is exactly what the real adapters never do.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use attachments_core::{
    Attachment, ByteStream, Error, LocalStorage, RemoteStorage, Result, byte_stream_from,
    validate_relative_path,
};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;

type Files = Arc<Mutex<HashMap<String, Bytes>>>;

/// Read a whole stream; a failing stream changes nothing.
async fn collect(mut data: ByteStream) -> Result<Bytes> {
    let mut buffer = BytesMut::new();
    while let Some(chunk) = data.next().await {
        buffer.extend_from_slice(&chunk.map_err(Error::from)?);
    }
    Ok(buffer.freeze())
}

fn stream_of(bytes: Bytes) -> ByteStream {
    byte_stream_from(vec![bytes])
}

/// A [`LocalStorage`] in memory. Clones share the same files.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use attachments_core::{byte_stream_from, LocalStorage};
/// let storage = attachments_testkit::MemoryLocalStorage::default();
/// storage.write("a.txt", byte_stream_from(vec![b"hi".to_vec()])).await.unwrap();
/// assert_eq!(storage.file("a.txt").unwrap(), &b"hi"[..]);
/// # });
/// ```
///
/// Staged files live in a map of their own, so a staged file is invisible at its path until
/// promoted, as in a storage with a real staging area:
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use attachments_core::{byte_stream_from, LocalStorage};
/// let storage = attachments_testkit::MemoryLocalStorage::default();
/// storage.write_staged("b.txt", byte_stream_from(vec![b"new".to_vec()])).await.unwrap();
/// assert!(storage.file("b.txt").is_none());
/// assert_eq!(storage.staged_file("b.txt").unwrap(), &b"new"[..]);
/// storage.promote_staged("b.txt").await.unwrap();
/// assert_eq!(storage.file("b.txt").unwrap(), &b"new"[..]);
/// # });
/// ```
#[derive(Debug, Clone, Default)]
pub struct MemoryLocalStorage {
    /// Both maps sit behind one lock, so a promote or a stage moves a file in one step.
    contents: Arc<Mutex<LocalContents>>,
}

#[derive(Debug, Default)]
struct LocalContents {
    files: HashMap<String, Bytes>,
    staged: HashMap<String, Bytes>,
}

impl MemoryLocalStorage {
    /// The contents at `path`, if any.
    pub fn file(&self, path: &str) -> Option<Bytes> {
        self.lock().files.get(path).cloned()
    }

    /// The contents staged as `path`, if any.
    pub fn staged_file(&self, path: &str) -> Option<Bytes> {
        self.lock().staged.get(path).cloned()
    }

    /// How many files are stored (staged ones not counted).
    pub fn len(&self) -> usize {
        self.lock().files.len()
    }

    /// Whether no file is stored (staged ones not counted).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LocalContents> {
        self.contents.lock().expect("lock")
    }
}

#[async_trait]
impl LocalStorage for MemoryLocalStorage {
    async fn write(&self, path: &str, data: ByteStream) -> Result<u64> {
        validate_relative_path(path)?;
        let bytes = collect(data).await?;
        let len = bytes.len() as u64;
        self.lock().files.insert(path.to_owned(), bytes);
        Ok(len)
    }

    async fn read(&self, path: &str) -> Result<ByteStream> {
        validate_relative_path(path)?;
        self.file(path)
            .map(stream_of)
            .ok_or_else(|| Error::not_found(format!("file {path:?}")))
    }

    async fn delete(&self, path: &str) -> Result<()> {
        validate_relative_path(path)?;
        self.lock().files.remove(path);
        Ok(())
    }

    async fn exists(&self, path: &str) -> Result<bool> {
        validate_relative_path(path)?;
        Ok(self.lock().files.contains_key(path))
    }

    async fn list(&self) -> Result<Vec<String>> {
        Ok(self.lock().files.keys().cloned().collect())
    }

    async fn remove_temp_files(&self) -> Result<u64> {
        Ok(0)
    }

    async fn write_staged(&self, path: &str, data: ByteStream) -> Result<u64> {
        validate_relative_path(path)?;
        let bytes = collect(data).await?;
        let len = bytes.len() as u64;
        self.lock().staged.insert(path.to_owned(), bytes);
        Ok(len)
    }

    async fn promote_staged(&self, path: &str) -> Result<()> {
        validate_relative_path(path)?;
        let mut contents = self.lock();
        let bytes = contents
            .staged
            .remove(path)
            .ok_or_else(|| Error::not_found(format!("nothing is staged as {path:?}")))?;
        contents.files.insert(path.to_owned(), bytes);
        Ok(())
    }

    async fn stage_existing(&self, path: &str) -> Result<bool> {
        validate_relative_path(path)?;
        let mut contents = self.lock();
        match contents.files.remove(path) {
            Some(bytes) => {
                contents.staged.insert(path.to_owned(), bytes);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn discard_staged(&self, path: &str) -> Result<()> {
        validate_relative_path(path)?;
        self.lock().staged.remove(path);
        Ok(())
    }

    async fn read_staged(&self, path: &str) -> Result<ByteStream> {
        validate_relative_path(path)?;
        self.staged_file(path)
            .map(stream_of)
            .ok_or_else(|| Error::not_found(format!("nothing is staged as {path:?}")))
    }

    async fn list_staged(&self) -> Result<Vec<String>> {
        Ok(self.lock().staged.keys().cloned().collect())
    }
}

/// A [`RemoteStorage`] in memory, keyed by filename. Clones share the same objects, so two
/// queues (two "devices") can share one.
///
/// ```
/// let remote = attachments_testkit::MemoryRemoteStorage::default();
/// assert_eq!(remote.len(), 0);
/// ```
#[derive(Debug, Clone, Default)]
pub struct MemoryRemoteStorage {
    objects: Files,
}

impl MemoryRemoteStorage {
    /// The object stored under `filename`, if any.
    pub fn object(&self, filename: &str) -> Option<Bytes> {
        self.objects.lock().expect("lock").get(filename).cloned()
    }

    /// How many objects are stored.
    pub fn len(&self) -> usize {
        self.objects.lock().expect("lock").len()
    }

    /// Whether no object is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[async_trait]
impl RemoteStorage for MemoryRemoteStorage {
    async fn upload(&self, attachment: &Attachment, data: ByteStream) -> Result<()> {
        validate_relative_path(&attachment.filename)?;
        let bytes = collect(data).await?;
        self.objects
            .lock()
            .expect("lock")
            .insert(attachment.filename.clone(), bytes);
        Ok(())
    }

    async fn download(&self, attachment: &Attachment) -> Result<ByteStream> {
        validate_relative_path(&attachment.filename)?;
        self.object(&attachment.filename)
            .map(stream_of)
            .ok_or_else(|| Error::not_found(format!("object {:?}", attachment.filename)))
    }

    async fn delete(&self, attachment: &Attachment) -> Result<()> {
        validate_relative_path(&attachment.filename)?;
        self.objects
            .lock()
            .expect("lock")
            .remove(&attachment.filename);
        Ok(())
    }
}
