//! `FsLocalStorage`: attachment files in a directory, written atomically, confined to it.

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use attachments_core::{
    ByteStream, Error, ErrorKind, LocalStorage, Result, validate_relative_path,
};
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio_util::io::ReaderStream;

/// Directory under the root where files are written before they are renamed into place. It is
/// reserved: no stored path may start with it.
pub const TEMP_DIR: &str = ".attachments-tmp";

/// Chunk size when streaming a file out, and buffer size when writing one: every read or write
/// of a `tokio::fs::File` is a trip to the blocking thread pool, so few large ones beat many
/// small ones (measured with `cargo xtask bench`: see docs/BENCHMARKS.md).
const READ_CHUNK: usize = 512 * 1024;
const WRITE_BUFFER: usize = 1024 * 1024;

/// Attachment files in a directory.
///
/// - Writes are atomic: contents go to a temporary file in the root's `.attachments-tmp`,
///   which is flushed to disk (fsync) and then renamed over the final path; a failed or
///   cancelled write leaves no trace.
/// - Paths are confined to the root: `..`, absolute paths, NUL, backslashes are refused, and so
///   is a path that resolves outside the root through a symbolic link.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use attachments_core::{byte_stream_from, collect_bytes, LocalStorage};
/// let dir = tempfile::tempdir().unwrap();
/// let storage = attachments_fs::FsLocalStorage::new(dir.path()).unwrap();
/// storage.write("photos/a.jpg", byte_stream_from(vec![b"jpeg".to_vec()])).await.unwrap();
/// let back = collect_bytes(storage.read("photos/a.jpg").await.unwrap()).await.unwrap();
/// assert_eq!(back, b"jpeg");
/// assert!(storage.write("../escape", byte_stream_from(Vec::<Vec<u8>>::new())).await.is_err());
/// # });
/// ```
#[derive(Debug, Clone)]
pub struct FsLocalStorage {
    root: PathBuf,
    /// Temporary files of writes in progress in this process: `remove_temp_files` skips them.
    active_temp_files: Arc<Mutex<HashSet<PathBuf>>>,
}

impl FsLocalStorage {
    /// Storage rooted at `root`, which is created if missing.
    ///
    /// # Errors
    /// When the directory cannot be created or resolved.
    pub fn new(root: impl AsRef<Path>) -> Result<Self> {
        let root = root.as_ref();
        std::fs::create_dir_all(root)
            .map_err(|e| Error::from_io(e, format!("creating storage root {}", root.display())))?;
        let root = root
            .canonicalize()
            .map_err(|e| Error::from_io(e, format!("resolving storage root {}", root.display())))?;
        Ok(FsLocalStorage {
            root,
            active_temp_files: Arc::default(),
        })
    }

    /// The root directory (canonical).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The absolute path for a stored path, after validation.
    ///
    /// # Errors
    /// `InvalidInput` for a path that would leave the root or names the temp directory.
    pub fn resolve(&self, path: &str) -> Result<PathBuf> {
        validate_relative_path(path)?;
        if path.split('/').next() == Some(TEMP_DIR) {
            return Err(Error::invalid_input(format!(
                "path {path:?} refused: {TEMP_DIR} is reserved for temporary files"
            )));
        }
        Ok(self.root.join(path))
    }

    /// Refuse a path whose existing part resolves outside the root through a symbolic link.
    async fn confine(&self, path: &str, full: &Path) -> Result<()> {
        let mut existing = full.to_path_buf();
        loop {
            match tokio::fs::canonicalize(&existing).await {
                Ok(resolved) if resolved.starts_with(&self.root) => return Ok(()),
                Ok(_) => {
                    return Err(Error::invalid_input(format!(
                        "path {path:?} refused: it resolves outside the storage root"
                    )));
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    if !existing.pop() {
                        return Ok(());
                    }
                }
                Err(e) => return Err(Error::from_io(e, format!("resolving {path:?}"))),
            }
        }
    }

    fn temp_dir(&self) -> PathBuf {
        self.root.join(TEMP_DIR)
    }
}

/// Removes a temporary file when a write does not finish (error, panic or a dropped future).
struct TempFile {
    path: PathBuf,
    active: Arc<Mutex<HashSet<PathBuf>>>,
    keep: bool,
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.keep {
            // Best effort: a leftover is removed by the next `remove_temp_files`.
            let _ = std::fs::remove_file(&self.path);
        }
        if let Ok(mut active) = self.active.lock() {
            active.remove(&self.path);
        }
    }
}

#[async_trait]
impl LocalStorage for FsLocalStorage {
    async fn write(&self, path: &str, mut data: ByteStream) -> Result<u64> {
        let destination = self.resolve(path)?;
        self.confine(path, &destination).await?;
        let temp_dir = self.temp_dir();
        tokio::fs::create_dir_all(&temp_dir)
            .await
            .map_err(|e| Error::from_io(e, "creating the temp directory"))?;
        let temp_path = temp_dir.join(format!("{}.part", uuid::Uuid::new_v4()));
        self.active_temp_files
            .lock()
            .expect("temp set lock poisoned")
            .insert(temp_path.clone());
        let mut temp = TempFile {
            path: temp_path,
            active: Arc::clone(&self.active_temp_files),
            keep: false,
        };

        let file = tokio::fs::File::create(&temp.path)
            .await
            .map_err(|e| Error::from_io(e, format!("creating a temp file for {path:?}")))?;
        let mut file = tokio::io::BufWriter::with_capacity(WRITE_BUFFER, file);
        let mut written = 0u64;
        while let Some(chunk) = data.next().await {
            let chunk = chunk.map_err(Error::from)?;
            file.write_all(&chunk)
                .await
                .map_err(|e| Error::from_io(e, format!("writing {path:?}")))?;
            written += chunk.len() as u64;
        }
        file.flush()
            .await
            .map_err(|e| Error::from_io(e, format!("writing {path:?}")))?;
        let file = file.into_inner();
        file.sync_all()
            .await
            .map_err(|e| Error::from_io(e, format!("syncing {path:?}")))?;
        drop(file);

        let parent = destination.parent().unwrap_or(&self.root).to_path_buf();
        tokio::fs::create_dir_all(&parent)
            .await
            .map_err(|e| Error::from_io(e, format!("creating the directory of {path:?}")))?;
        self.confine(path, &destination).await?;
        tokio::fs::rename(&temp.path, &destination)
            .await
            .map_err(|e| Error::from_io(e, format!("moving {path:?} into place")))?;
        temp.keep = true;
        drop(temp);
        // The rename is durable only once the directory entry is on disk.
        tokio::task::spawn_blocking(move || std::fs::File::open(&parent)?.sync_all())
            .await
            .map_err(|e| Error::new(ErrorKind::Other, "syncing a directory").with_source(e))?
            .map_err(|e| Error::from_io(e, format!("syncing the directory of {path:?}")))?;
        Ok(written)
    }

    async fn read(&self, path: &str) -> Result<ByteStream> {
        let full = self.resolve(path)?;
        self.confine(path, &full).await?;
        let file = tokio::fs::File::open(&full)
            .await
            .map_err(|e| Error::from_io(e, format!("opening {path:?}")))?;
        let metadata = file
            .metadata()
            .await
            .map_err(|e| Error::from_io(e, format!("reading {path:?}")))?;
        if !metadata.is_file() {
            return Err(Error::not_found(format!("{path:?} is not a file")));
        }
        Ok(Box::pin(ReaderStream::with_capacity(file, READ_CHUNK)))
    }

    async fn delete(&self, path: &str) -> Result<()> {
        let full = self.resolve(path)?;
        self.confine(path, &full).await?;
        match tokio::fs::remove_file(&full).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::from_io(e, format!("removing {path:?}"))),
        }
    }

    async fn exists(&self, path: &str) -> Result<bool> {
        let full = self.resolve(path)?;
        self.confine(path, &full).await?;
        match tokio::fs::metadata(&full).await {
            Ok(metadata) => Ok(metadata.is_file()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::from_io(e, format!("checking {path:?}"))),
        }
    }

    async fn list(&self) -> Result<Vec<String>> {
        let root = self.root.clone();
        tokio::task::spawn_blocking(move || list_files(&root))
            .await
            .map_err(|e| Error::new(ErrorKind::Other, "listing files").with_source(e))?
            .map_err(|e| Error::from_io(e, "listing stored files"))
    }

    async fn remove_temp_files(&self) -> Result<u64> {
        let mut entries = match tokio::fs::read_dir(self.temp_dir()).await {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(Error::from_io(e, "reading the temp directory")),
        };
        let mut removed = 0;
        while let Some(entry) = entries
            .next_entry()
            .await
            .map_err(|e| Error::from_io(e, "reading the temp directory"))?
        {
            let path = entry.path();
            let in_progress = self
                .active_temp_files
                .lock()
                .expect("temp set lock poisoned")
                .contains(&path);
            if in_progress {
                continue;
            }
            match tokio::fs::remove_file(&path).await {
                Ok(()) => removed += 1,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::from_io(e, "removing a temp file")),
            }
        }
        Ok(removed)
    }
}

/// Every regular file below `root` as a `/`-separated relative path, skipping the temp
/// directory, symbolic links and names that are not UTF-8 (which no stored path can be).
fn list_files(root: &Path) -> io::Result<Vec<String>> {
    let mut files = Vec::new();
    let mut pending = vec![(root.to_path_buf(), String::new())];
    while let Some((dir, prefix)) = pending.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            if prefix.is_empty() && name == TEMP_DIR {
                continue;
            }
            let relative = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
            let kind = entry.file_type()?;
            if kind.is_dir() {
                pending.push((entry.path(), relative));
            } else if kind.is_file() {
                files.push(relative);
            }
        }
    }
    Ok(files)
}
