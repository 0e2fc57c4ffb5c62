//! Byte ranges: a staged file written in parts at their offsets (a download in ranges, see
//! `LocalStorage::create_staged_parts`), and ranges of a stored file read back (the parts being
//! hashed, and `FsRemoteStorage::download_range`).

use std::ops::Range;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use attachments_core::{
    ByteStream, Error, ErrorKind, RangeBody, Result, StagedParts, object_changed,
};
use futures_util::{FutureExt, StreamExt};

use crate::dirsync::SharedWrites;
use crate::hidden::check_name;
use crate::local::{
    FsLocalStorage, Target, TempFile, check_target, confine, create_temp, move_into_staging,
};
use crate::writer::{BlockWriter, blocking, read_exact_at};

/// Bytes read per trip to the blocking pool when a range is streamed out.
const RANGE_READ_CHUNK: u64 = 1024 * 1024;

/// A staged file being written in parts: a temp file of its full size, written at offsets,
/// synced once and moved into the staging area by `finish`, removed if dropped before.
pub(crate) struct FsStagedParts {
    root: PathBuf,
    name: String,
    size: u64,
    file: Arc<std::fs::File>,
    shared: Arc<SharedWrites>,
    temp: Mutex<TempFile>,
    /// A sync of what has landed so far, started in the background when a part lands (at
    /// most one at a time): the disk writes while the other parts stream, and the final sync
    /// has little left to do.
    background_sync: Mutex<Option<tokio::task::JoinHandle<Result<()>>>>,
    /// The error of a background sync that ended before `finish`.
    sync_error: Mutex<Option<Error>>,
}

impl FsStagedParts {
    pub(crate) async fn create(storage: &FsLocalStorage, path: &str, size: u64) -> Result<Self> {
        check_name(path)?;
        let temp = storage.new_temp("");
        let shared = storage.shared_writes();
        let (root, name, created) = (
            storage.root().to_path_buf(),
            path.to_owned(),
            temp.path.clone(),
        );
        let creating = Arc::clone(&shared);
        let file = blocking(move || {
            check_target(&root, &name, Target::Staged)?;
            let file = create_temp(&root, &name, &created, &creating)?;
            // the full size at once: parts land anywhere, and the disk may refuse it up front
            file.set_len(size)
                .map_err(|e| Error::from_io(e, format!("sizing {name:?}")))?;
            Ok(file)
        })
        .await?;
        let file = Arc::new(file);
        Ok(FsStagedParts {
            root: storage.root().to_path_buf(),
            name: path.to_owned(),
            size,
            file,
            shared,
            temp: Mutex::new(temp),
            background_sync: Mutex::new(None),
            sync_error: Mutex::new(None),
        })
    }

    /// Start syncing what has landed, unless a sync is still running.
    fn start_background_sync(&self) {
        let mut running = self.background_sync.lock().expect("sync lock poisoned");
        if running.as_ref().is_some_and(|sync| !sync.is_finished()) {
            return;
        }
        // A sync reports a write-back error once per open file: a finished sync's error is
        // kept for `finish`, never dropped.
        if let Some(Some(Ok(Err(error)))) = running.take().map(FutureExt::now_or_never) {
            self.sync_error
                .lock()
                .expect("sync lock poisoned")
                .get_or_insert(error);
        }
        let (file, name) = (Arc::clone(&self.file), self.name.clone());
        *running = Some(tokio::task::spawn_blocking(move || {
            file.sync_data()
                .map_err(|e| Error::from_io(e, format!("syncing {name:?}")))
        }));
    }

    fn check_range(&self, offset: u64, len: u64) -> Result<()> {
        if offset.checked_add(len).is_none_or(|end| end > self.size) {
            return Err(Error::invalid_input(format!(
                "{len} bytes at {offset} go past the end of {:?} ({} bytes)",
                self.name, self.size
            )));
        }
        Ok(())
    }
}

#[async_trait]
impl StagedParts for FsStagedParts {
    async fn write_at(&self, offset: u64, mut data: ByteStream) -> Result<u64> {
        let mut writer = BlockWriter::for_part(Arc::clone(&self.file), &self.name, offset);
        let mut written = 0u64;
        while let Some(chunk) = data.next().await {
            let chunk = chunk.map_err(Error::from)?;
            written += chunk.len() as u64;
            self.check_range(offset, written)?;
            writer.push_to_part(chunk).await?;
        }
        writer.finish_part().await?;
        self.start_background_sync();
        Ok(written)
    }

    async fn read_at(&self, offset: u64, len: u64) -> Result<ByteStream> {
        self.check_range(offset, len)?;
        Ok(read_range(
            Arc::clone(&self.file),
            self.name.clone(),
            offset..offset + len,
        ))
    }

    async fn finish(&self) -> Result<()> {
        let running = self
            .background_sync
            .lock()
            .expect("sync lock poisoned")
            .take();
        if let Some(sync) = running {
            sync.await.map_err(|e| {
                Error::new(ErrorKind::Other, "a file-system task failed").with_source(e)
            })??;
        }
        if let Some(error) = self.sync_error.lock().expect("sync lock poisoned").take() {
            return Err(error);
        }
        let temp_path = self.temp.lock().expect("temp lock poisoned").path.clone();
        let (file, root, name) = (Arc::clone(&self.file), self.root.clone(), self.name.clone());
        let shared = Arc::clone(&self.shared);
        blocking(move || {
            // One sync, of the complete file, before it enters the staging area: a file the
            // queue promotes is never one whose contents a power cut could lose (see
            // docs/ARCHITECTURE.md, "What a download syncs").
            file.sync_data()
                .map_err(|e| Error::from_io(e, format!("syncing {name:?}")))?;
            move_into_staging(&root, &name, &temp_path, &shared)
        })
        .await?;
        self.temp.lock().expect("temp lock poisoned").keep = true;
        Ok(())
    }
}

/// Stream `range` of `file`, a block per trip to the blocking pool.
fn read_range(file: Arc<std::fs::File>, name: String, range: Range<u64>) -> ByteStream {
    let stream = futures_util::stream::try_unfold(range, move |range| {
        let (file, name) = (Arc::clone(&file), name.clone());
        async move {
            if range.is_empty() {
                return Ok(None);
            }
            let len = (range.end - range.start).min(RANGE_READ_CHUNK);
            let start = range.start;
            let block = blocking(move || {
                let mut block = vec![0; usize::try_from(len).expect("a block fits in memory")];
                read_exact_at(&file, &mut block, start)
                    .map_err(|e| Error::from_io(e, format!("reading {name:?}")))?;
                Ok(bytes::Bytes::from(block))
            })
            .await
            .map_err(Error::into_io)?;
            Ok(Some((block, start + len..range.end)))
        }
    });
    Box::pin(stream)
}

/// Stream `range` of the stored file `path` (the fs remote's ranged download).
pub(crate) async fn read_stored_range(
    storage: &FsLocalStorage,
    path: &str,
    range: Range<u64>,
    version: Option<&str>,
) -> Result<RangeBody> {
    if range.is_empty() {
        return Err(Error::invalid_input(format!(
            "an empty byte range ({}..{}) of {path:?}",
            range.start, range.end
        )));
    }
    let full = storage.resolve(path)?;
    let (root, name) = (storage.root().to_path_buf(), path.to_owned());
    let (file, size, found) = blocking(move || {
        confine(&root, &name, &full)?;
        // looked at before opening: opening a FIFO would never return
        if let Ok(metadata) = std::fs::metadata(&full)
            && !metadata.is_file()
        {
            return Err(Error::not_found(format!("{name:?} is not a file")));
        }
        let file = std::fs::File::open(&full)
            .map_err(|e| Error::from_io(e, format!("opening {name:?}")))?;
        let metadata = file
            .metadata()
            .map_err(|e| Error::from_io(e, format!("reading {name:?}")))?;
        Ok((file, metadata.len(), version_of(&metadata)))
    })
    .await?;
    if version.is_some_and(|wanted| wanted != found) {
        return Err(object_changed(path));
    }
    if range.start > size {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!(
                "bytes from {} of {path:?} asked for, it holds {size}",
                range.start
            ),
        ));
    }
    let data = read_range(
        Arc::new(file),
        path.to_owned(),
        range.start..range.end.min(size),
    );
    Ok(RangeBody::new(size, Some(found), data))
}

/// What tells one version of a stored file from the next: uploads replace a file with a new
/// one (a rename), so its identity, size and modification time change.
fn version_of(metadata: &std::fs::Metadata) -> String {
    let modified = metadata
        .modified()
        .ok()
        .and_then(|time| time.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |since| since.as_nanos());
    #[cfg(unix)]
    let identity = std::os::unix::fs::MetadataExt::ino(metadata);
    #[cfg(not(unix))]
    let identity = 0u64;
    format!("{identity:x}-{:x}-{modified:x}", metadata.len())
}
