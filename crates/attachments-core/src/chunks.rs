//! Cutting a byte stream into fixed-size chunks, for adapters that upload in parts (S3
//! multipart, TUS): at most one chunk is held in memory.

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;

use crate::error::{Error, Result};
use crate::storage::ByteStream;

/// Hands out a [`ByteStream`] in chunks of exactly `chunk_size` bytes (the last may be
/// shorter), whatever the sizes of the stream's own chunks.
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
    /// Buffers of chunks handed back with [`recycle`](Self::recycle), reused before allocating.
    spare: Vec<BytesMut>,
}

impl ChunkedReader {
    /// Read `data` in chunks of `chunk_size` (at least 1) bytes.
    pub fn new(data: ByteStream, chunk_size: usize) -> Self {
        ChunkedReader {
            data,
            chunk_size: chunk_size.max(1),
            leftover: Bytes::new(),
            ended: false,
            spare: Vec::new(),
        }
    }

    /// Hand back a chunk that is no longer needed, so its buffer serves a later chunk. Reusing
    /// buffers keeps memory flat over a long upload: freshly allocated multi-MiB buffers are
    /// not always returned to the system by the allocator. A chunk still shared elsewhere is
    /// simply dropped.
    pub fn recycle(&mut self, chunk: Bytes) {
        if let Ok(mut buffer) = chunk.try_into_mut()
            && buffer.capacity() >= self.chunk_size
        {
            buffer.clear();
            self.spare.push(buffer);
        }
    }

    /// The next chunk; `None` once the stream is consumed.
    ///
    /// # Errors
    /// The stream's own error.
    pub async fn next_chunk(&mut self) -> Result<Option<Bytes>> {
        // The whole chunk up front: growing by doubling would leave parts holding up to twice
        // their size. Pages not written (a short last chunk) are never touched, so cost no RSS.
        let mut chunk = self
            .spare
            .pop()
            .unwrap_or_else(|| BytesMut::with_capacity(self.chunk_size));
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
        Ok((!chunk.is_empty()).then(|| chunk.freeze()))
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
    async fn recycled_buffers_are_reused() {
        let mut reader = ChunkedReader::new(byte_stream_from(vec![vec![7u8; 30]]), 10);
        let first = reader.next_chunk().await.unwrap().unwrap();
        let address = first.as_ptr();
        reader.recycle(first);
        let second = reader.next_chunk().await.unwrap().unwrap();
        assert_eq!(
            second.as_ptr(),
            address,
            "the same buffer serves the next chunk"
        );
        assert_eq!(&second[..], &[7u8; 10]);
        // a chunk still shared is not reused
        let kept = second.clone();
        reader.recycle(second);
        let third = reader.next_chunk().await.unwrap().unwrap();
        assert_ne!(third.as_ptr(), kept.as_ptr());
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
}
