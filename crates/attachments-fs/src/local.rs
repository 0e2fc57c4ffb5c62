//! `FsLocalStorage`: attachment files in a directory, written atomically, confined to it.

use std::collections::{HashSet, VecDeque};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use attachments_core::{
    ByteStream, Error, ErrorKind, LocalStorage, Result, validate_relative_path,
};
use futures_util::StreamExt;
use tokio_util::io::ReaderStream;

/// Directory under the root where files are written before they are renamed into place. It is
/// reserved: no stored path may start with it.
pub const TEMP_DIR: &str = ".attachments-tmp";

/// Chunk size when streaming a file out, and how many bytes gather before a write: every read
/// or write is a trip to the blocking thread pool, so few large ones beat many small ones
/// (measured with `cargo xtask bench`: see docs/BENCHMARKS.md).
const READ_CHUNK: usize = 512 * 1024;
const WRITE_BUFFER: usize = 1024 * 1024;

/// Block writes of one file running at once (each copies its block into the page cache).
const WRITES_IN_FLIGHT: usize = 4;

/// A big file is synced to disk every this many bytes as it is written (on a second handle, in
/// the background), not only at the end: the disk works while the stream is still being read,
/// and the final sync has little left to do.
const SYNC_EVERY: usize = 64 * 1024 * 1024;

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
    /// Temp file names: a random prefix per storage, then a counter (no random bytes per write).
    temp_prefix: Arc<str>,
    temp_counter: Arc<AtomicU64>,
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
            temp_prefix: Arc::from(uuid::Uuid::new_v4().simple().to_string()),
            temp_counter: Arc::default(),
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

    /// Write through a temp file, synced and renamed into place; the directory too when asked.
    async fn write_file(
        &self,
        path: &str,
        mut data: ByteStream,
        sync_directory: SyncDirectory,
    ) -> Result<u64> {
        let destination = self.resolve(path)?;
        let temp_dir = self.temp_dir();
        let temp_path = temp_dir.join(format!(
            "{}-{}.part",
            self.temp_prefix,
            self.temp_counter.fetch_add(1, Ordering::Relaxed)
        ));
        self.active_temp_files
            .lock()
            .expect("temp set lock poisoned")
            .insert(temp_path.clone());
        let mut temp = TempFile {
            path: temp_path.clone(),
            active: Arc::clone(&self.active_temp_files),
            keep: false,
        };

        let (root, name, target) = (self.root.clone(), path.to_owned(), destination.clone());
        let created = temp_path.clone();
        let file = blocking(move || {
            confine(&root, &name, &target)?;
            // the temp directory exists but for the first write: no mkdir call per write
            let created = std::fs::File::create(&created).or_else(|e| {
                if e.kind() != io::ErrorKind::NotFound {
                    return Err(e);
                }
                std::fs::create_dir_all(&temp_dir)?;
                std::fs::File::create(&created)
            });
            created.map_err(|e| Error::from_io(e, format!("creating a temp file for {name:?}")))
        })
        .await?;

        let mut writer = BlockWriter::new(file, path);
        let mut written = 0u64;
        while let Some(chunk) = data.next().await {
            let chunk = chunk.map_err(Error::from)?;
            written += chunk.len() as u64;
            writer.push(chunk).await?;
        }
        let (file, rest, offset) = writer.finish().await?;

        let (root, name) = (self.root.clone(), path.to_owned());
        blocking(move || {
            write_all_at(&file, &rest, offset)
                .map_err(|e| Error::from_io(e, format!("writing {name:?}")))?;
            file.sync_all()
                .map_err(|e| Error::from_io(e, format!("syncing {name:?}")))?;
            drop(file);
            let parent = destination.parent().unwrap_or(&root);
            confine(&root, &name, &destination)?;
            if let Err(e) = std::fs::rename(&temp_path, &destination) {
                if e.kind() != io::ErrorKind::NotFound {
                    return Err(Error::from_io(e, format!("moving {name:?} into place")));
                }
                // its directory does not exist yet: create it, then look again for links
                std::fs::create_dir_all(parent).map_err(|e| {
                    Error::from_io(e, format!("creating the directory of {name:?}"))
                })?;
                confine(&root, &name, &destination)?;
                std::fs::rename(&temp_path, &destination)
                    .map_err(|e| Error::from_io(e, format!("moving {name:?} into place")))?;
            }
            if sync_directory == SyncDirectory::No {
                return Ok(());
            }
            // The rename is durable only once the directory entry is on disk.
            std::fs::File::open(parent)
                .and_then(|directory| directory.sync_all())
                .map_err(|e| Error::from_io(e, format!("syncing the directory of {name:?}")))
        })
        .await?;
        temp.keep = true;
        Ok(written)
    }

    fn temp_dir(&self) -> PathBuf {
        self.root.join(TEMP_DIR)
    }
}

/// Refuse a path whose existing part resolves outside `root` through a symbolic link.
///
/// `path` is already validated (relative, no `..`), so only a symbolic link below the root can
/// lead out. Each existing component is looked at without following links (one `lstat`); a
/// link is resolved and must stay inside the root.
fn confine(root: &Path, path: &str, full: &Path) -> Result<()> {
    let relative = full.strip_prefix(root).unwrap_or(Path::new(path));
    let mut current = root.to_path_buf();
    for component in relative.components() {
        current.push(component);
        let metadata = match std::fs::symlink_metadata(&current) {
            Ok(metadata) => metadata,
            // nothing below a missing component exists
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(Error::from_io(e, format!("resolving {path:?}"))),
        };
        if metadata.file_type().is_symlink() {
            match current.canonicalize() {
                Ok(resolved) if resolved.starts_with(root) => {}
                Ok(_) => {
                    return Err(Error::invalid_input(format!(
                        "path {path:?} refused: it resolves outside the storage root"
                    )));
                }
                // a dangling link: whatever it names would be created outside the root
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    return Err(Error::invalid_input(format!(
                        "path {path:?} refused: it goes through a dangling symbolic link"
                    )));
                }
                Err(e) => return Err(Error::from_io(e, format!("resolving {path:?}"))),
            }
        }
    }
    Ok(())
}

/// Run one step of file-system work on the blocking thread pool. Every trip there costs two
/// thread switches, so a step makes all its calls in one trip (a small file is written in two
/// trips, not eleven).
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Error::new(ErrorKind::Other, "a file-system task failed").with_source(e))?
}

/// Whether a write waits for its directory entry to reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SyncDirectory {
    Yes,
    No,
}

/// Writes a file in blocks of about `WRITE_BUFFER` bytes on the blocking pool, each at its own
/// offset, up to `WRITES_IN_FLIGHT` at once while the next block fills: reading (and hashing)
/// the stream overlaps with the copies into the page cache, and those use more than one core.
struct BlockWriter {
    name: String,
    file: Arc<std::fs::File>,
    /// Where the next block goes.
    offset: u64,
    /// Writes in flight, oldest first; each hands back its buffer for reuse.
    in_flight: VecDeque<tokio::task::JoinHandle<Result<Vec<u8>>>>,
    /// Emptied buffers, ready to gather the next block.
    spare: Vec<Vec<u8>>,
    pending: Vec<u8>,
    /// Bytes handed to writes since the last background sync started.
    unsynced: usize,
    /// A sync of what was written so far, running beside the writes (at most one).
    background_sync: Option<tokio::task::JoinHandle<Result<()>>>,
}

/// One write: a block gathered from small chunks, or a chunk big enough on its own (written
/// as it came, without a copy).
enum Block {
    Gathered(Vec<u8>),
    Whole(bytes::Bytes),
}

impl Block {
    fn bytes(&self) -> &[u8] {
        match self {
            Block::Gathered(buffer) => buffer,
            Block::Whole(chunk) => chunk,
        }
    }
}

impl BlockWriter {
    fn new(file: std::fs::File, name: &str) -> Self {
        BlockWriter {
            name: name.to_owned(),
            file: Arc::new(file),
            offset: 0,
            in_flight: VecDeque::new(),
            spare: Vec::new(),
            pending: Vec::new(),
            unsynced: 0,
            background_sync: None,
        }
    }

    async fn push(&mut self, chunk: bytes::Bytes) -> Result<()> {
        if self.pending.is_empty() && chunk.len() >= WRITE_BUFFER {
            return self.submit(Block::Whole(chunk)).await;
        }
        self.pending.extend_from_slice(&chunk);
        if self.pending.len() >= WRITE_BUFFER {
            let next = self.spare.pop().unwrap_or_default();
            let block = std::mem::replace(&mut self.pending, next);
            return self.submit(Block::Gathered(block)).await;
        }
        Ok(())
    }

    /// Start writing `block` at the current offset, once fewer than `WRITES_IN_FLIGHT` are.
    async fn submit(&mut self, block: Block) -> Result<()> {
        if self.in_flight.len() >= WRITES_IN_FLIGHT {
            self.wait_for_oldest_write().await?;
        }
        if self
            .background_sync
            .as_ref()
            .is_some_and(|sync| sync.is_finished())
        {
            // the last one is done: its error (if any) is this write's
            self.wait_for_background_sync().await?;
        }
        let len = block.bytes().len();
        if self.unsynced >= SYNC_EVERY && self.background_sync.is_none() {
            let (file, name) = (Arc::clone(&self.file), self.name.clone());
            self.background_sync = Some(tokio::task::spawn_blocking(move || {
                file.sync_data()
                    .map_err(|e| Error::from_io(e, format!("syncing {name:?}")))
            }));
            self.unsynced = 0;
        }
        self.unsynced += len;
        let (file, name, offset) = (Arc::clone(&self.file), self.name.clone(), self.offset);
        self.offset += len as u64;
        self.in_flight
            .push_back(tokio::task::spawn_blocking(move || {
                write_all_at(&file, block.bytes(), offset)
                    .map_err(|e| Error::from_io(e, format!("writing {name:?}")))?;
                Ok(match block {
                    Block::Gathered(mut buffer) => {
                        buffer.clear();
                        buffer
                    }
                    Block::Whole(_) => Vec::new(),
                })
            }));
        Ok(())
    }

    async fn wait_for_oldest_write(&mut self) -> Result<()> {
        if let Some(write) = self.in_flight.pop_front() {
            let buffer = write.await.map_err(task_failed)??;
            if buffer.capacity() > 0 {
                self.spare.push(buffer);
            }
        }
        Ok(())
    }

    async fn wait_for_background_sync(&mut self) -> Result<()> {
        match self.background_sync.take() {
            Some(sync) => sync.await.map_err(task_failed)?,
            None => Ok(()),
        }
    }

    /// Wait for every write and sync; hand back the file, the bytes not yet written and
    /// where they go (a small file is written whole by the caller's last step).
    async fn finish(mut self) -> Result<(std::fs::File, Vec<u8>, u64)> {
        while !self.in_flight.is_empty() {
            self.wait_for_oldest_write().await?;
        }
        self.wait_for_background_sync().await?;
        let file = Arc::try_unwrap(self.file).map_err(|_| {
            Error::new(
                ErrorKind::Other,
                "a write of the file was still running after all had ended",
            )
        })?;
        Ok((file, self.pending, self.offset))
    }
}

fn task_failed(error: tokio::task::JoinError) -> Error {
    Error::new(ErrorKind::Other, "a file-system task failed").with_source(error)
}

/// Write all of `bytes` at `offset`, wherever the file's cursor is.
#[cfg(unix)]
fn write_all_at(file: &std::fs::File, bytes: &[u8], offset: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(file, bytes, offset)
}

/// Write all of `bytes` at `offset`, wherever the file's cursor is.
#[cfg(windows)]
fn write_all_at(file: &std::fs::File, mut bytes: &[u8], mut offset: u64) -> io::Result<()> {
    while !bytes.is_empty() {
        let written = std::os::windows::fs::FileExt::seek_write(file, bytes, offset)?;
        if written == 0 {
            return Err(io::Error::from(io::ErrorKind::WriteZero));
        }
        bytes = &bytes[written..];
        offset += written as u64;
    }
    Ok(())
}

/// A file opened for reading: read whole when small, streamed when not.
enum Opened {
    Small(bytes::Bytes),
    Large(std::fs::File),
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
    async fn write(&self, path: &str, data: ByteStream) -> Result<u64> {
        self.write_file(path, data, SyncDirectory::Yes).await
    }

    async fn write_downloaded(&self, path: &str, data: ByteStream) -> Result<u64> {
        // The file's contents are synced before the rename: after a power cut the file is
        // complete or missing (the queue downloads a missing one again), never partial.
        self.write_file(path, data, SyncDirectory::No).await
    }

    async fn read(&self, path: &str) -> Result<ByteStream> {
        let full = self.resolve(path)?;
        let (root, name) = (self.root.clone(), path.to_owned());
        let opened = blocking(move || {
            confine(&root, &name, &full)?;
            let mut file = std::fs::File::open(&full)
                .map_err(|e| Error::from_io(e, format!("opening {name:?}")))?;
            let metadata = file
                .metadata()
                .map_err(|e| Error::from_io(e, format!("reading {name:?}")))?;
            if !metadata.is_file() {
                return Err(Error::not_found(format!("{name:?} is not a file")));
            }
            if metadata.len() > READ_CHUNK as u64 {
                return Ok(Opened::Large(file));
            }
            // a small file is read in this same trip to the blocking pool
            let mut contents = Vec::with_capacity(usize::try_from(metadata.len()).unwrap_or(0));
            std::io::Read::read_to_end(&mut file, &mut contents)
                .map_err(|e| Error::from_io(e, format!("reading {name:?}")))?;
            Ok(Opened::Small(bytes::Bytes::from(contents)))
        })
        .await?;
        Ok(match opened {
            Opened::Small(contents) => {
                Box::pin(futures_util::stream::iter([Ok::<_, io::Error>(contents)]))
            }
            Opened::Large(file) => Box::pin(ReaderStream::with_capacity(
                tokio::fs::File::from_std(file),
                READ_CHUNK,
            )),
        })
    }

    async fn delete(&self, path: &str) -> Result<()> {
        let full = self.resolve(path)?;
        let (root, name) = (self.root.clone(), path.to_owned());
        blocking(move || {
            confine(&root, &name, &full)?;
            match std::fs::remove_file(&full) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(Error::from_io(e, format!("removing {name:?}"))),
            }
        })
        .await
    }

    async fn exists(&self, path: &str) -> Result<bool> {
        let full = self.resolve(path)?;
        let (root, name) = (self.root.clone(), path.to_owned());
        blocking(move || {
            confine(&root, &name, &full)?;
            match std::fs::metadata(&full) {
                Ok(metadata) => Ok(metadata.is_file()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
                Err(e) => Err(Error::from_io(e, format!("checking {name:?}"))),
            }
        })
        .await
    }

    async fn list(&self) -> Result<Vec<String>> {
        let root = self.root.clone();
        blocking(move || list_files(&root).map_err(|e| Error::from_io(e, "listing stored files")))
            .await
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
