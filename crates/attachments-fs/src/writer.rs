//! Writing one file in blocks on the blocking thread pool, and the trips to that pool.

use std::collections::VecDeque;
use std::io;
use std::sync::Arc;

use attachments_core::{Error, ErrorKind, Result};

/// How many bytes gather before a write: every write is a trip to the blocking thread pool, so
/// few large ones beat many small ones (measured with `cargo xtask bench`: see
/// docs/BENCHMARKS.md).
pub(crate) const WRITE_BUFFER: usize = 1024 * 1024;

/// Block writes of one file running at once (each copies its block into the page cache).
const WRITES_IN_FLIGHT: usize = 4;

/// Block writes of one part of a file written in parts running at once: the parts run side
/// by side already, and each write in flight holds a block in memory.
const PART_WRITES_IN_FLIGHT: usize = 2;

/// The block size of a part: several parts are written side by side, each with a block
/// filling and `PART_WRITES_IN_FLIGHT` being written, so blocks are smaller than one file's.
const PART_BLOCK: usize = 512 * 1024;

/// A big file is synced to disk every this many bytes as it is written (on a second handle, in
/// the background), not only at the end: the disk works while the stream is still being read,
/// and the final sync has little left to do.
const SYNC_EVERY: usize = 64 * 1024 * 1024;

/// Run one step of file-system work on the blocking thread pool. Every trip there costs two
/// thread switches, so a step makes all its calls in one trip (a small file is written in two
/// trips, not eleven).
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Error::new(ErrorKind::Other, "a file-system task failed").with_source(e))?
}

/// Writes a file in blocks of about `WRITE_BUFFER` bytes on the blocking pool, each at its own
/// offset, up to `WRITES_IN_FLIGHT` at once while the next block fills: reading (and hashing)
/// the stream overlaps with the copies into the page cache, and those use more than one core.
pub(crate) struct BlockWriter {
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
    /// Syncs in the background every `SYNC_EVERY` bytes (not for a part of a download).
    syncs_as_it_goes: bool,
    max_in_flight: usize,
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
    pub(crate) fn new(file: std::fs::File, name: &str) -> Self {
        BlockWriter {
            name: name.to_owned(),
            file: Arc::new(file),
            offset: 0,
            in_flight: VecDeque::new(),
            spare: Vec::new(),
            pending: Vec::new(),
            unsynced: 0,
            background_sync: None,
            syncs_as_it_goes: true,
            max_in_flight: WRITES_IN_FLIGHT,
        }
    }

    /// A writer of one part of a file, from `offset` on, beside writers of other parts; it
    /// syncs nothing (the file is synced once, when complete).
    pub(crate) fn for_part(file: Arc<std::fs::File>, name: &str, offset: u64) -> Self {
        BlockWriter {
            name: name.to_owned(),
            file,
            offset,
            in_flight: VecDeque::new(),
            spare: Vec::new(),
            pending: Vec::new(),
            unsynced: 0,
            background_sync: None,
            syncs_as_it_goes: false,
            max_in_flight: PART_WRITES_IN_FLIGHT,
        }
    }

    pub(crate) async fn push(&mut self, chunk: bytes::Bytes) -> Result<()> {
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

    /// As [`push`](Self::push), for a part: blocks of exactly `PART_BLOCK` bytes, gathered in
    /// buffers of that capacity that are reused, so the memory of a part stays fixed.
    pub(crate) async fn push_to_part(&mut self, mut chunk: bytes::Bytes) -> Result<()> {
        while !chunk.is_empty() {
            if self.pending.capacity() == 0 {
                self.pending = self
                    .spare
                    .pop()
                    .unwrap_or_else(|| Vec::with_capacity(PART_BLOCK));
            }
            let take = (PART_BLOCK - self.pending.len()).min(chunk.len());
            self.pending.extend_from_slice(&chunk.split_to(take));
            if self.pending.len() >= PART_BLOCK {
                let block = std::mem::take(&mut self.pending);
                self.submit(Block::Gathered(block)).await?;
            }
        }
        Ok(())
    }

    /// Start writing `block` at the current offset, once fewer than `WRITES_IN_FLIGHT` are.
    async fn submit(&mut self, block: Block) -> Result<()> {
        if self.in_flight.len() >= self.max_in_flight {
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
        if self.syncs_as_it_goes && self.unsynced >= SYNC_EVERY && self.background_sync.is_none() {
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

    /// Write what is left and wait for every write of this part.
    pub(crate) async fn finish_part(mut self) -> Result<()> {
        let rest = std::mem::take(&mut self.pending);
        if !rest.is_empty() {
            self.submit(Block::Gathered(rest)).await?;
        }
        while !self.in_flight.is_empty() {
            self.wait_for_oldest_write().await?;
        }
        Ok(())
    }

    /// Wait for every write and sync; hand back the file, the bytes not yet written and
    /// where they go (a small file is written whole by the caller's last step).
    pub(crate) async fn finish(mut self) -> Result<(std::fs::File, Vec<u8>, u64)> {
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

/// Fill `buffer` from `offset`, wherever the file's cursor is.
#[cfg(unix)]
pub(crate) fn read_exact_at(
    file: &std::fs::File,
    buffer: &mut [u8],
    offset: u64,
) -> io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buffer, offset)
}

/// Fill `buffer` from `offset`, wherever the file's cursor is.
#[cfg(windows)]
pub(crate) fn read_exact_at(
    file: &std::fs::File,
    mut buffer: &mut [u8],
    mut offset: u64,
) -> io::Result<()> {
    while !buffer.is_empty() {
        let read = std::os::windows::fs::FileExt::seek_read(file, buffer, offset)?;
        if read == 0 {
            return Err(io::Error::from(io::ErrorKind::UnexpectedEof));
        }
        buffer = &mut buffer[read..];
        offset += read as u64;
    }
    Ok(())
}

/// Write all of `bytes` at `offset`, wherever the file's cursor is.
#[cfg(unix)]
pub(crate) fn write_all_at(file: &std::fs::File, bytes: &[u8], offset: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(file, bytes, offset)
}

/// Write all of `bytes` at `offset`, wherever the file's cursor is.
#[cfg(windows)]
pub(crate) fn write_all_at(
    file: &std::fs::File,
    mut bytes: &[u8],
    mut offset: u64,
) -> io::Result<()> {
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
