//! `FsLocalStorage`: attachment files in a directory, written atomically, confined to it.

use std::collections::HashSet;
use std::fs::TryLockError;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use attachments_core::{
    ByteStream, Error, ErrorKind, ExclusiveLock, LocalStorage, Result, StagedParts,
};
use futures_util::StreamExt;
use tokio_util::io::ReaderStream;

use crate::dirsync::SharedWrites;
use crate::hidden::{self, Found, TEMP_DIR, TEMP_SUFFIX, check_name, staged_parts};
use crate::promote::Promotions;
use crate::writer::{BlockWriter, WRITE_BUFFER, blocking, write_all_at};

/// Chunk size when streaming a file out: every read is a trip to the blocking thread pool, so
/// few large ones beat many small ones (measured with `cargo xtask bench`: see
/// docs/BENCHMARKS.md).
const READ_CHUNK: usize = 512 * 1024;

/// Components of a staged name's path that belong to the hidden area itself (`TEMP_DIR` and
/// the staging directory): emptied staging subdirectories are removed, never these.
const HIDDEN_PREFIX_LEN: usize = 2;

/// Attachment files in a directory.
///
/// - Writes are atomic: contents go to a temporary file in the root's `.attachments-tmp`,
///   which is flushed to disk (fsync) and then renamed over the final path; a failed or
///   cancelled write leaves no trace.
/// - Paths are confined to the root: `..`, absolute paths, NUL, backslashes are refused, and so
///   is a path that resolves outside the root (or into `.attachments-tmp`) through a symbolic
///   link.
/// - Staged files (see [`LocalStorage::write_staged`]) live in `.attachments-tmp/staged/`,
///   at their own relative path below it (`photos/a.jpg` is staged as
///   `.attachments-tmp/staged/photos/a.jpg`), so a staged name maps to one file and back.
///   Promoting and staging are renames within the root, hence within one file system.
/// - `.attachments-tmp` is the storage's alone: nothing in it, nor the directory itself, may
///   be a symbolic link (it is refused, never followed), so `remove_temp_files` can never
///   delete outside the root.
/// - [`LocalStorage::lock_exclusive`] locks `.attachments-tmp/lock`, so one queue at a time
///   uses a root, across processes; the operating system releases it when a process dies.
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
///
/// // staged: complete on disk, invisible until promoted
/// storage.write_staged("b.jpg", byte_stream_from(vec![b"new".to_vec()])).await.unwrap();
/// assert!(!storage.exists("b.jpg").await.unwrap());
/// storage.promote_staged("b.jpg").await.unwrap();
/// assert!(storage.exists("b.jpg").await.unwrap());
///
/// // one queue per root
/// let lock = storage.lock_exclusive().unwrap();
/// let again = attachments_fs::FsLocalStorage::new(dir.path()).unwrap();
/// assert!(again.lock_exclusive().is_err());
/// drop(lock);
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
    /// The file-creation lock and the directory syncs the writes share.
    shared: Arc<SharedWrites>,
    /// Promotions waiting for the blocking thread that does them.
    promotions: Arc<Promotions>,
}

/// Where a write ends: at its final path (with or without a directory sync), or staged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    Final(SyncDirectory),
    Staged,
}

/// Whether a write waits for its directory entry to reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SyncDirectory {
    Yes,
    No,
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
            temp_prefix: Arc::from(uuid::Uuid::new_v4().simple().to_string()),
            temp_counter: Arc::default(),
            active_temp_files: Arc::default(),
            shared: Arc::new(SharedWrites::new(&root)),
            promotions: Arc::default(),
            root,
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
        check_name(path)?;
        Ok(self.root.join(path))
    }

    /// Write `path` as [`LocalStorage::write`] does, with a temp file whose name starts with
    /// `tag`, so [`remove_temp_files_tagged`](Self::remove_temp_files_tagged) can find the temp
    /// files an earlier, killed process left for the same path.
    pub(crate) async fn write_tagged(
        &self,
        path: &str,
        data: ByteStream,
        tag: &str,
    ) -> Result<u64> {
        self.write_file_tagged(path, data, Target::Final(SyncDirectory::Yes), tag)
            .await
    }

    /// Remove the temp files whose names start with `tag`, but for writes in progress in this
    /// process; return how many.
    pub(crate) async fn remove_temp_files_tagged(&self, tag: &str) -> Result<u64> {
        let (root, active, tag) = (
            self.root.clone(),
            Arc::clone(&self.active_temp_files),
            tag.to_owned(),
        );
        blocking(move || {
            hidden::remove_temp_files(&root, |path| {
                let tagged = path
                    .file_name()
                    .and_then(|name| name.to_str())
                    .is_some_and(|name| name.starts_with(&tag));
                // "in progress" keeps a file: ours still being written, or another path's
                !tagged
                    || active
                        .lock()
                        .expect("temp set lock poisoned")
                        .contains(path)
            })
        })
        .await
    }

    /// A new temp file name, `{tag}{prefix}-{n}.part`, registered as in progress; the file
    /// (once created) is removed when the guard is dropped, unless kept.
    pub(crate) fn new_temp(&self, tag: &str) -> TempFile {
        let path = self.root.join(TEMP_DIR).join(format!(
            "{tag}{}-{}{TEMP_SUFFIX}",
            self.temp_prefix,
            self.temp_counter.fetch_add(1, Ordering::Relaxed)
        ));
        // registered before the file exists, so `remove_temp_files` can never see it unlisted
        self.active_temp_files
            .lock()
            .expect("temp set lock poisoned")
            .insert(path.clone());
        TempFile {
            path,
            active: Arc::clone(&self.active_temp_files),
            keep: false,
        }
    }

    /// The directory syncs and temp-file creations this storage's writes share.
    pub(crate) fn shared_writes(&self) -> Arc<SharedWrites> {
        Arc::clone(&self.shared)
    }

    /// Write through a temp file, synced and renamed to `target`.
    async fn write_file(&self, path: &str, data: ByteStream, target: Target) -> Result<u64> {
        self.write_file_tagged(path, data, target, "").await
    }

    /// [`write_file`](Self::write_file) with a temp file named `{tag}{prefix}-{n}.part`.
    ///
    /// The stream's first block (up to `WRITE_BUFFER`) is read before the disk is touched: a
    /// file that ends within it, as most attachments do, is created, written, synced and moved
    /// in one trip to the blocking pool; a bigger one is written in blocks as it arrives.
    async fn write_file_tagged(
        &self,
        path: &str,
        mut data: ByteStream,
        target: Target,
        tag: &str,
    ) -> Result<u64> {
        check_name(path)?;
        let (head, head_len, ended) = match read_head(&mut data).await {
            Ok(head) => head,
            Err(error) => {
                // a refused target is the clearer error, whatever the stream did
                let (root, name) = (self.root.clone(), path.to_owned());
                blocking(move || check_target(&root, &name, target)).await?;
                return Err(error);
            }
        };
        let mut temp = self.new_temp(tag);
        let temp_path = temp.path.clone();
        let (root, name, shared) = (self.root.clone(), path.to_owned(), Arc::clone(&self.shared));
        if ended {
            let contents = concat(head, head_len);
            blocking(move || {
                // no check before the temp file is created: the move below checks the target
                // right before its rename, and a refused write removes its temp file
                let file = create_temp(&root, &name, &temp_path, &shared)?;
                write_all_at(&file, &contents, 0)
                    .map_err(|e| Error::from_io(e, format!("writing {name:?}")))?;
                finish_temp(file, &root, &name, &temp_path, target, &shared)
            })
            .await?;
            temp.keep = true;
            return Ok(head_len as u64);
        }

        let created = temp_path.clone();
        let file = blocking(move || {
            // refused before the rest of the stream is read
            check_target(&root, &name, target)?;
            create_temp(&root, &name, &created, &shared)
        })
        .await?;

        let mut writer = BlockWriter::new(file, path);
        let mut written = head_len as u64;
        for chunk in head {
            writer.push(chunk).await?;
        }
        while let Some(chunk) = data.next().await {
            let chunk = chunk.map_err(Error::from)?;
            written += chunk.len() as u64;
            writer.push(chunk).await?;
        }
        let (file, rest, offset) = writer.finish().await?;

        let (root, name, shared) = (self.root.clone(), path.to_owned(), Arc::clone(&self.shared));
        blocking(move || {
            write_all_at(&file, &rest, offset)
                .map_err(|e| Error::from_io(e, format!("writing {name:?}")))?;
            finish_temp(file, &root, &name, &temp_path, target, &shared)
        })
        .await?;
        temp.keep = true;
        Ok(written)
    }
}

/// Read up to `WRITE_BUFFER` bytes of `data`: the chunks, their length, and whether the
/// stream ended within them.
async fn read_head(data: &mut ByteStream) -> Result<(Vec<bytes::Bytes>, usize, bool)> {
    let mut head = Vec::new();
    let mut len = 0usize;
    while len < WRITE_BUFFER {
        match data.next().await {
            Some(chunk) => {
                let chunk = chunk.map_err(Error::from)?;
                len += chunk.len();
                head.push(chunk);
            }
            None => return Ok((head, len, true)),
        }
    }
    Ok((head, len, false))
}

/// Refuse a target that leaves the root, or where a directory stands.
pub(crate) fn check_target(root: &Path, name: &str, target: Target) -> Result<()> {
    match target {
        Target::Final(_) => check_final(root, name),
        Target::Staged => check_staged(root, name),
    }
}

/// The chunks of a small file as one buffer (without a copy when there is one chunk).
fn concat(chunks: Vec<bytes::Bytes>, len: usize) -> bytes::Bytes {
    if chunks.len() == 1 {
        return chunks.into_iter().next().expect("one chunk");
    }
    let mut contents = Vec::with_capacity(len);
    for chunk in &chunks {
        contents.extend_from_slice(chunk);
    }
    bytes::Bytes::from(contents)
}

/// Create the temp file of a write of `name` (its directory too, if missing).
pub(crate) fn create_temp(
    root: &Path,
    name: &str,
    temp_path: &Path,
    shared: &SharedWrites,
) -> Result<std::fs::File> {
    hidden::ensure_dirs(root, &[TEMP_DIR])?;
    let _creating = shared.creating();
    // `create_new` never opens an existing entry, so never a link planted at this name;
    // readable too: a file written in parts is read back to be hashed
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(temp_path)
        .map_err(|e| Error::from_io(e, format!("creating a temp file for {name:?}")))
}

/// Sync a written temp file and move it to `target`.
fn finish_temp(
    file: std::fs::File,
    root: &Path,
    name: &str,
    temp_path: &Path,
    target: Target,
    shared: &SharedWrites,
) -> Result<()> {
    file.sync_all()
        .map_err(|e| Error::from_io(e, format!("syncing {name:?}")))?;
    drop(file);
    match target {
        Target::Final(sync) => move_into_place(root, name, temp_path, sync, shared),
        Target::Staged => move_into_staging(root, name, temp_path, shared),
    }
}

/// Move the staged file `name` to its path, without syncing the directory it entered: return
/// that directory, which the caller syncs before it reports the promotion done.
pub(crate) fn promote_unsynced(root: &Path, name: &str, shared: &SharedWrites) -> Result<PathBuf> {
    let parts = staged_parts(name);
    let (source, found) = hidden::inspect(root, &parts)?;
    if !matches!(found, Found::File(_)) {
        return Err(Error::not_found(format!("nothing is staged as {name:?}")));
    }
    // Only the directory entered is synced: if a power cut undid the removal from the staging
    // area, the file would be in both places, and start-up promotes it again.
    move_into_place(root, name, &source, SyncDirectory::No, shared)?;
    hidden::remove_empty_dirs(root, &parts[..parts.len() - 1], HIDDEN_PREFIX_LEN);
    let destination = root.join(name);
    Ok(destination.parent().unwrap_or(root).to_path_buf())
}

/// Refuse a final path that leaves the root or where a directory stands.
fn check_final(root: &Path, name: &str) -> Result<()> {
    let destination = root.join(name);
    // the `lstat` of the destination that `confine` made tells a directory in the way
    match confine(root, name, &destination)? {
        Some(metadata) if metadata.is_dir() => Err(directory_in_the_way(name)),
        _ => Ok(()),
    }
}

/// Refuse a staged name whose place in the staging area goes through a link or holds a
/// directory.
fn check_staged(root: &Path, name: &str) -> Result<()> {
    match hidden::inspect(root, &staged_parts(name))? {
        (_, Found::Directory) => Err(directory_in_the_way(name)),
        _ => Ok(()),
    }
}

/// The refusal to put a file where a directory stands: `rename` would fail with a less
/// helpful error, and the directory may hold the app's files.
fn directory_in_the_way(name: &str) -> Error {
    Error::new(
        ErrorKind::AlreadyExists,
        format!("{name:?} cannot be stored: a directory is in its place"),
    )
}

/// Rename `source` (a temp or staged file) to the final path of `name`, creating its
/// directories, and sync the directory when asked.
fn move_into_place(
    root: &Path,
    name: &str,
    source: &Path,
    sync: SyncDirectory,
    shared: &SharedWrites,
) -> Result<()> {
    let destination = root.join(name);
    let parent = destination.parent().unwrap_or(root);
    check_final(root, name)?;
    if let Err(e) = std::fs::rename(source, &destination) {
        if e.kind() != io::ErrorKind::NotFound {
            return Err(Error::from_io(e, format!("moving {name:?} into place")));
        }
        // its directory does not exist yet: create it, then look again for links
        hidden::create_dirs_durably(parent)?;
        check_final(root, name)?;
        std::fs::rename(source, &destination)
            .map_err(|e| Error::from_io(e, format!("moving {name:?} into place")))?;
    }
    if sync == SyncDirectory::Yes {
        // the rename is durable only once the directory entry is on disk
        shared.sync_dir(parent, name)?;
    }
    Ok(())
}

/// Rename `source` (a temp file or a stored file) to the staged file `name`, creating its
/// directories in the staging area, and sync the directory it entered.
pub(crate) fn move_into_staging(
    root: &Path,
    name: &str,
    source: &Path,
    shared: &SharedWrites,
) -> Result<()> {
    let parts = staged_parts(name);
    let (_, dirs) = parts.split_last().expect("a staged name has a component");
    // A promote or discard of a sibling may remove an emptied directory between its creation
    // and the rename: then it is created once more.
    let mut retried = false;
    loop {
        let parent = hidden::ensure_dirs(root, dirs)?;
        let (destination, found) = hidden::inspect(root, &parts)?;
        if let Found::Directory = found {
            return Err(directory_in_the_way(name));
        }
        match std::fs::rename(source, &destination) {
            Ok(()) => return shared.sync_dir(&parent, name),
            Err(e) if e.kind() == io::ErrorKind::NotFound && !retried => retried = true,
            Err(e) => return Err(Error::from_io(e, format!("staging {name:?}"))),
        }
    }
}

/// Refuse a path whose existing part resolves outside `root` through a symbolic link.
///
/// `path` is already validated (relative, no `..`), so only a symbolic link below the root can
/// lead out. Each existing component is looked at without following links (one `lstat`); a
/// link is resolved and must stay inside the root. Returns what the last `lstat` found at
/// `full` itself (`None` when the path does not exist), so callers need not look again.
pub(crate) fn confine(root: &Path, path: &str, full: &Path) -> Result<Option<std::fs::Metadata>> {
    let relative = full.strip_prefix(root).unwrap_or(Path::new(path));
    let mut current = root.to_path_buf();
    let mut found = None;
    for component in relative.components() {
        current.push(component);
        let metadata = match std::fs::symlink_metadata(&current) {
            Ok(metadata) => metadata,
            // nothing below a missing component exists
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::from_io(e, format!("resolving {path:?}"))),
        };
        if metadata.file_type().is_symlink() {
            match current.canonicalize() {
                // the hidden area is reached through its own name only, which `check_name`
                // refuses: a link into it would let a stored path overwrite a staged file or
                // delete the lock file
                Ok(resolved) if resolved.starts_with(root.join(TEMP_DIR)) => {
                    return Err(Error::invalid_input(format!(
                        "path {path:?} refused: it leads into the storage's own {TEMP_DIR}"
                    )));
                }
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
        found = Some(metadata);
    }
    Ok(found)
}

/// Whether a regular file is at `full` (the resolved `name`), confined to `root`.
fn file_exists(root: &Path, name: &str, full: &Path) -> Result<bool> {
    // `confine` looked at every component: missing is missing, and a link (inside the root)
    // is followed to what it names
    match confine(root, name, full)? {
        None => Ok(false),
        Some(metadata) if !metadata.file_type().is_symlink() => Ok(metadata.is_file()),
        Some(_) => match std::fs::metadata(full) {
            Ok(metadata) => Ok(metadata.is_file()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::from_io(e, format!("checking {name:?}"))),
        },
    }
}

/// A file opened for reading: read whole when small, streamed when not.
enum Opened {
    Small(bytes::Bytes),
    Large(std::fs::File),
}

/// Removes a temporary file when a write does not finish (error, panic or a dropped future).
pub(crate) struct TempFile {
    pub(crate) path: PathBuf,
    active: Arc<Mutex<HashSet<PathBuf>>>,
    pub(crate) keep: bool,
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

/// Stream the file a read opened: whole when small, in chunks when not.
fn read_opened(mut file: std::fs::File, name: &str) -> Result<Opened> {
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
}

impl Opened {
    fn into_stream(self) -> ByteStream {
        match self {
            Opened::Small(contents) => {
                Box::pin(futures_util::stream::iter([Ok::<_, io::Error>(contents)]))
            }
            Opened::Large(file) => Box::pin(ReaderStream::with_capacity(
                tokio::fs::File::from_std(file),
                READ_CHUNK,
            )),
        }
    }
}

#[async_trait]
impl LocalStorage for FsLocalStorage {
    async fn write(&self, path: &str, data: ByteStream) -> Result<u64> {
        self.write_file(path, data, Target::Final(SyncDirectory::Yes))
            .await
    }

    async fn write_downloaded(&self, path: &str, data: ByteStream) -> Result<u64> {
        // The file's contents are synced before the rename: after a power cut the file is
        // complete or missing (the queue downloads a missing one again), never partial.
        self.write_file(path, data, Target::Final(SyncDirectory::No))
            .await
    }

    async fn read(&self, path: &str) -> Result<ByteStream> {
        let full = self.resolve(path)?;
        let (root, name) = (self.root.clone(), path.to_owned());
        let opened = blocking(move || {
            let found = confine(&root, &name, &full)?;
            // looked at before opening: opening a FIFO someone left there would never return
            // (the `lstat` of `confine` says it, unless the path is a link to follow)
            let metadata = match found {
                Some(metadata) if !metadata.file_type().is_symlink() => Ok(metadata),
                _ => std::fs::metadata(&full),
            };
            match metadata {
                Ok(metadata) if !metadata.is_file() => {
                    return Err(Error::not_found(format!("{name:?} is not a file")));
                }
                _ => {}
            }
            let file = std::fs::File::open(&full)
                .map_err(|e| Error::from_io(e, format!("opening {name:?}")))?;
            read_opened(file, &name)
        })
        .await?;
        Ok(opened.into_stream())
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
        blocking(move || file_exists(&root, &name, &full)).await
    }

    async fn exists_many(&self, paths: &[String]) -> Vec<Result<bool>> {
        let resolved: Vec<(String, Result<PathBuf>)> = paths
            .iter()
            .map(|path| (path.clone(), self.resolve(path)))
            .collect();
        let root = self.root.clone();
        // every path in one trip to the blocking pool: start-up checks a page of rows at once
        let answers = blocking(move || {
            Ok(resolved
                .into_iter()
                .map(|(name, full)| file_exists(&root, &name, &full?))
                .collect::<Vec<_>>())
        })
        .await;
        match answers {
            Ok(answers) => answers,
            Err(error) => paths.iter().map(|_| Err(error.clone())).collect(),
        }
    }

    async fn list(&self) -> Result<Vec<String>> {
        let root = self.root.clone();
        blocking(move || {
            hidden::walk_files(&root, |name| name == TEMP_DIR)
                .map_err(|e| Error::from_io(e, "listing stored files"))
        })
        .await
    }

    async fn remove_temp_files(&self) -> Result<u64> {
        let (root, active) = (self.root.clone(), Arc::clone(&self.active_temp_files));
        blocking(move || {
            hidden::remove_temp_files(&root, |path| {
                active
                    .lock()
                    .expect("temp set lock poisoned")
                    .contains(path)
            })
        })
        .await
    }

    async fn write_staged(&self, path: &str, data: ByteStream) -> Result<u64> {
        self.write_file(path, data, Target::Staged).await
    }

    async fn promote_staged(&self, path: &str) -> Result<()> {
        check_name(path)?;
        // with the promotions of other saves pending at the same time: one trip to the
        // blocking pool and one directory sync for all of them
        self.promotions
            .promote(&self.root, path, &self.shared)
            .await
    }

    async fn stage_existing(&self, path: &str) -> Result<bool> {
        let full = self.resolve(path)?;
        let (root, name, shared) = (self.root.clone(), path.to_owned(), Arc::clone(&self.shared));
        blocking(move || {
            confine(&root, &name, &full)?;
            let is_file = |full: &Path| match std::fs::symlink_metadata(full) {
                Ok(metadata) => Ok(metadata.is_file()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
                Err(e) => Err(Error::from_io(e, format!("checking {name:?}"))),
            };
            // The queue only ever writes regular files: a link or directory at this path is
            // someone else's, and staging it would lead to its removal.
            if !is_file(&full)? {
                return Ok(false);
            }
            if let Err(error) = move_into_staging(&root, &name, &full, &shared) {
                // removed meanwhile: there is nothing to move
                return if is_file(&full)? {
                    Err(error)
                } else {
                    Ok(false)
                };
            }
            // The staging directory was synced; the one left is synced too, so a power cut
            // cannot bring the file back to its path after its row is gone.
            shared.sync_dir(full.parent().unwrap_or(&root), &name)?;
            Ok(true)
        })
        .await
    }

    async fn discard_staged(&self, path: &str) -> Result<()> {
        check_name(path)?;
        let (root, name) = (self.root.clone(), path.to_owned());
        blocking(move || {
            let parts = staged_parts(&name);
            let (staged, found) = hidden::inspect(&root, &parts)?;
            if let Found::File(_) = found {
                match std::fs::remove_file(&staged) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => {
                        return Err(Error::from_io(e, format!("discarding staged {name:?}")));
                    }
                }
                // no directory sync: a discard undone by a power cut is found and done again
                hidden::remove_empty_dirs(&root, &parts[..parts.len() - 1], HIDDEN_PREFIX_LEN);
            }
            Ok(())
        })
        .await
    }

    async fn read_staged(&self, path: &str) -> Result<ByteStream> {
        check_name(path)?;
        let (root, name) = (self.root.clone(), path.to_owned());
        let opened = blocking(
            move || match hidden::open_file(&root, &staged_parts(&name))? {
                Some(file) => read_opened(file, &name),
                None => Err(Error::not_found(format!("nothing is staged as {name:?}"))),
            },
        )
        .await?;
        Ok(opened.into_stream())
    }

    async fn list_staged(&self) -> Result<Vec<String>> {
        let root = self.root.clone();
        blocking(move || hidden::list_staged(&root)).await
    }

    async fn create_staged_parts(
        &self,
        path: &str,
        size: u64,
    ) -> Result<Option<Box<dyn StagedParts>>> {
        let parts = crate::parts::FsStagedParts::create(self, path, size).await?;
        Ok(Some(Box::new(parts)))
    }

    fn lock_exclusive(&self) -> Result<Option<ExclusiveLock>> {
        let file = hidden::open_lock_file(&self.root)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(ExclusiveLock::new(file))),
            Err(TryLockError::WouldBlock) => Err(Error::new(
                ErrorKind::InUse,
                format!(
                    "another attachment queue uses the directory {} (in this process or \
                     another): close it before opening a new one",
                    self.root.display()
                ),
            )
            .with_retryable(false)),
            Err(TryLockError::Error(e)) => Err(Error::from_io(
                e,
                format!("locking the directory {}", self.root.display()),
            )),
        }
    }
}
