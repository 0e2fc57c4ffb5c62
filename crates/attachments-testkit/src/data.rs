//! Test contents: deterministic bytes in uneven chunks, produced lazily so even large test
//! files never sit in memory twice.

use attachments_core::{Attachment, AttachmentId, AttachmentState, ByteStream};
use bytes::Bytes;
use futures_util::stream;

/// Chunk sizes cycled through, deliberately uneven (1 byte, odd sizes, 1 MiB).
const CHUNK_SIZES: [usize; 6] = [1, 7, 4096, 65_539, 1 << 20, 13];

/// The byte at `offset` of test file `seed`: cheap, deterministic, and different per seed.
pub fn byte_at(seed: u64, offset: u64) -> u8 {
    let mut x = offset.wrapping_add(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x.to_le_bytes()[0]
}

/// The whole of test file `seed` with `len` bytes (for comparisons).
pub fn patterned_bytes(seed: u64, len: u64) -> Vec<u8> {
    (0..len).map(|offset| byte_at(seed, offset)).collect()
}

/// Test file `seed` with `len` bytes as a stream of uneven chunks.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use attachments_testkit::{patterned_bytes, patterned_stream};
/// let bytes = attachments_core::collect_bytes(patterned_stream(3, 10_000)).await.unwrap();
/// assert_eq!(bytes, patterned_bytes(3, 10_000));
/// # });
/// ```
pub fn patterned_stream(seed: u64, len: u64) -> ByteStream {
    Box::pin(stream::unfold(
        (0u64, 0usize),
        move |(offset, turn)| async move {
            if offset >= len {
                return None;
            }
            let size = (CHUNK_SIZES[turn % CHUNK_SIZES.len()] as u64).min(len - offset);
            let chunk: Vec<u8> = (offset..offset + size).map(|o| byte_at(seed, o)).collect();
            Some((Ok(Bytes::from(chunk)), (offset + size, turn + 1)))
        },
    ))
}

/// A stream that yields `good` bytes of test file `seed`, then fails with a broken pipe.
pub fn failing_stream(seed: u64, good: u64) -> ByteStream {
    use futures_util::StreamExt;
    let failure = stream::once(async {
        Err(std::io::Error::new(
            std::io::ErrorKind::BrokenPipe,
            "injected stream failure",
        ))
    });
    Box::pin(patterned_stream(seed, good).chain(failure))
}

/// A row as the queue hands it to `RemoteStorage::upload`: a fresh id, `filename`, the size
/// when known, media type `image/jpeg`.
///
/// ```
/// let row = attachments_testkit::upload_row("a/b.jpg", Some(3));
/// assert_eq!((row.filename.as_str(), row.size), ("a/b.jpg", Some(3)));
/// ```
pub fn upload_row(filename: &str, size: Option<u64>) -> Attachment {
    let mut row = Attachment::new(
        AttachmentId::generate(),
        filename,
        AttachmentState::QueuedUpload,
        0,
    );
    row.size = size;
    row.media_type = Some("image/jpeg".into());
    row
}
