//! Cutting a byte stream into fixed-size chunks, for adapters that upload in parts (S3
//! multipart, TUS), with a bounded pool of chunk buffers.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::Notify;

use crate::error::{Error, Result};
use crate::storage::ByteStream;

/// Hands out a [`ByteStream`] in chunks of exactly `chunk_size` bytes (the last may be
/// shorter), whatever the sizes of the stream's own chunks.
///
/// Chunk buffers come from a pool: a chunk's buffer goes back to the pool when the last clone
/// of the chunk is dropped (by whoever sent it), and serves a later chunk. With
/// [`with_max_buffers`](Self::with_max_buffers) the pool is bounded: when every buffer is out,
/// `next_chunk` waits for one to come back, so the memory an upload holds never exceeds
/// `chunk_size × max_buffers`, and the allocator is not asked for a fresh multi-MiB buffer per
/// chunk (freed large buffers are not always returned to the system).
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use attachments_core::{byte_stream_from, ChunkedReader};
/// let stream = byte_stream_from(vec![vec![1u8; 3], vec![2; 10]]);
/// let mut reader = ChunkedReader::new(stream, 5);
/// let mut sizes = Vec::new();
/// while let Some(chunk) = reader.next_chunk().await.unwrap() {
///     sizes.push(chunk.len());
/// }
/// assert_eq!(sizes, vec![5, 5, 3]);
/// # });
/// ```
pub struct ChunkedReader {
    data: ByteStream,
    chunk_size: usize,
    leftover: Bytes,
    ended: bool,
    pool: Arc<BufferPool>,
}

/// Buffers not in use, how many exist, and a signal when one comes back.
struct BufferPool {
    free: Mutex<Vec<Vec<u8>>>,
    allocated: Mutex<usize>,
    max_buffers: usize,
    returned: Notify,
}

/// A chunk's buffer; dropping it (with the last clone of its `Bytes`) returns it to the pool.
struct PooledBuffer {
    data: Vec<u8>,
    pool: Arc<BufferPool>,
}

impl AsRef<[u8]> for PooledBuffer {
    fn as_ref(&self) -> &[u8] {
        &self.data
    }
}

impl Drop for PooledBuffer {
    fn drop(&mut self) {
        let mut data = std::mem::take(&mut self.data);
        data.clear();
        if let Ok(mut free) = self.pool.free.lock() {
            free.push(data);
        }
        self.pool.returned.notify_one();
    }
}

impl BufferPool {
    /// A free buffer, a new one while under the limit, or the next one handed back. (On the
    /// pool, not the reader: the reader holds a stream that is not `Sync`.)
    async fn buffer(&self, chunk_size: usize) -> Vec<u8> {
        loop {
            if let Some(buffer) = self.free.lock().expect("pool lock poisoned").pop() {
                return buffer;
            }
            {
                let mut allocated = self.allocated.lock().expect("pool lock poisoned");
                if *allocated < self.max_buffers {
                    *allocated += 1;
                    // The whole chunk up front: growing by doubling would leave buffers up
                    // to twice their size; untouched pages of a short chunk cost no memory.
                    return Vec::with_capacity(chunk_size);
                }
            }
            // a buffer returned since the check above left a permit: no return is missed
            self.returned.notified().await;
        }
    }
}

impl ChunkedReader {
    /// Read `data` in chunks of `chunk_size` (at least 1) bytes, with as many buffers as the
    /// caller keeps chunks alive.
    pub fn new(data: ByteStream, chunk_size: usize) -> Self {
        Self::with_max_buffers(data, chunk_size, usize::MAX)
    }

    /// Like [`new`](Self::new), with at most `max_buffers` (at least 1) chunk buffers in
    /// existence: `next_chunk` waits while all of them are out. The caller must drop chunks it
    /// is done with while it waits (for example, let the uploads holding them finish), or it
    /// waits forever.
    pub fn with_max_buffers(data: ByteStream, chunk_size: usize, max_buffers: usize) -> Self {
        ChunkedReader {
            data,
            chunk_size: chunk_size.max(1),
            leftover: Bytes::new(),
            ended: false,
            pool: Arc::new(BufferPool {
                free: Mutex::new(Vec::new()),
                allocated: Mutex::new(0),
                max_buffers: max_buffers.max(1),
                returned: Notify::new(),
            }),
        }
    }

    /// The next chunk; `None` once the stream is consumed.
    ///
    /// # Errors
    /// The stream's own error.
    pub async fn next_chunk(&mut self) -> Result<Option<Bytes>> {
        if self.is_done() {
            return Ok(None);
        }
        let mut chunk = self.pool.buffer(self.chunk_size).await;
        loop {
            let room = self.chunk_size - chunk.len();
            let piece = self.leftover.split_to(room.min(self.leftover.len()));
            chunk.extend_from_slice(&piece);
            if chunk.len() == self.chunk_size || self.ended {
                break;
            }
            match self.data.next().await {
                Some(next) => self.leftover = next.map_err(Error::from)?,
                None => self.ended = true,
            }
        }
        if chunk.is_empty() {
            return Ok(None); // the buffer goes back to the pool with the owner
        }
        Ok(Some(Bytes::from_owner(PooledBuffer {
            data: chunk,
            pool: Arc::clone(&self.pool),
        })))
    }

    /// Whether every byte of the stream has been handed out.
    pub fn is_done(&self) -> bool {
        self.ended && self.leftover.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::byte_stream_from;

    #[tokio::test]
    async fn chunks_have_the_configured_size_and_keep_every_byte() {
        let chunks: Vec<Vec<u8>> = vec![vec![1; 3], vec![2; 10], vec![3; 1], vec![4; 6]];
        let mut reader = ChunkedReader::new(byte_stream_from(chunks), 7);
        let mut sizes = Vec::new();
        let mut all = Vec::new();
        while let Some(chunk) = reader.next_chunk().await.unwrap() {
            sizes.push(chunk.len());
            all.extend_from_slice(&chunk);
        }
        assert_eq!(sizes, vec![7, 7, 6]);
        assert_eq!(&all[..4], &[1, 1, 1, 2]);
        assert_eq!(all.len(), 20);
        assert!(reader.is_done());
    }

    #[tokio::test]
    async fn an_empty_stream_has_no_chunks() {
        let mut reader = ChunkedReader::new(byte_stream_from(Vec::<Vec<u8>>::new()), 7);
        assert!(reader.next_chunk().await.unwrap().is_none());
        assert!(reader.is_done());
    }

    #[tokio::test]
    async fn a_stream_ending_on_a_chunk_boundary_is_done_after_the_last_chunk() {
        let mut reader = ChunkedReader::new(byte_stream_from(vec![vec![0u8; 14]]), 7);
        assert_eq!(reader.next_chunk().await.unwrap().unwrap().len(), 7);
        assert_eq!(reader.next_chunk().await.unwrap().unwrap().len(), 7);
        assert!(reader.next_chunk().await.unwrap().is_none());
        assert!(reader.is_done());
    }

    #[tokio::test]
    async fn dropped_chunks_give_their_buffer_to_the_next() {
        let mut reader = ChunkedReader::new(byte_stream_from(vec![vec![7u8; 30]]), 10);
        let first = reader.next_chunk().await.unwrap().unwrap();
        let address = first.as_ptr();
        drop(first);
        let second = reader.next_chunk().await.unwrap().unwrap();
        assert_eq!(
            second.as_ptr(),
            address,
            "the same buffer serves the next chunk"
        );
        assert_eq!(&second[..], &[7u8; 10]);
    }

    #[tokio::test]
    async fn a_bounded_pool_waits_for_a_buffer_to_come_back() {
        let mut reader =
            ChunkedReader::with_max_buffers(byte_stream_from(vec![vec![1u8; 30]]), 10, 1);
        let first = reader.next_chunk().await.unwrap().unwrap();
        let held = first.clone(); // as an HTTP stack would, while sending
        drop(first);
        let mut next = Box::pin(reader.next_chunk());
        assert!(
            futures_util::FutureExt::now_or_never(next.as_mut()).is_none(),
            "no second buffer while the only one is out"
        );
        drop(held);
        let second = next.await.unwrap().unwrap();
        assert_eq!(second.len(), 10);
    }
}
