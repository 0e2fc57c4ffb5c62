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
#[derive(Debug, Clone, Default)]
pub struct MemoryLocalStorage {
    files: Files,
}

impl MemoryLocalStorage {
    /// The contents at `path`, if any.
    pub fn file(&self, path: &str) -> Option<Bytes> {
        self.files.lock().expect("lock").get(path).cloned()
    }

    /// How many files are stored.
    pub fn len(&self) -> usize {
        self.files.lock().expect("lock").len()
    }

    /// Whether no file is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[async_trait]
impl LocalStorage for MemoryLocalStorage {
    async fn write(&self, path: &str, data: ByteStream) -> Result<u64> {
        validate_relative_path(path)?;
        let bytes = collect(data).await?;
        let len = bytes.len() as u64;
        self.files
            .lock()
            .expect("lock")
            .insert(path.to_owned(), bytes);
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
        self.files.lock().expect("lock").remove(path);
        Ok(())
    }

    async fn exists(&self, path: &str) -> Result<bool> {
        validate_relative_path(path)?;
        Ok(self.files.lock().expect("lock").contains_key(path))
    }

    async fn list(&self) -> Result<Vec<String>> {
        Ok(self.files.lock().expect("lock").keys().cloned().collect())
    }

    async fn remove_temp_files(&self) -> Result<u64> {
        Ok(0)
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
